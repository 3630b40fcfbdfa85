"""`pgguard check`: which statements the guard will refuse, found offline, before the deploy.

The library side of the command: :func:`check` reads SQL files, an Alembic project or a Django
project, follows the catalog and the transactions the way the server would, and returns a
:class:`CheckReport`. It connects to no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .analyze import Analyzer
from .model import CheckOptions, CheckReport, Refusal, Statement, Unparsed
from .sqlfiles import sql_files, statements

__all__ = [
    "AlembicSource",
    "CheckOptions",
    "CheckReport",
    "DjangoSource",
    "Refusal",
    "Statement",
    "Unparsed",
    "check",
    "check_sql",
]


@dataclass(frozen=True)
class AlembicSource:
    """Which revisions of an Alembic project to render (``None``: from base / to heads)."""

    from_rev: str | None = None
    to_rev: str | None = None
    downgrade: bool = False


@dataclass(frozen=True)
class DjangoSource:
    """Which Django migrations: ``targets`` as for ``migrate`` (``app``, ``app name``,
    ``app zero``); none means every migration from an empty database."""

    settings: str | None = None
    targets: tuple[tuple[str, str | None], ...] = ()
    #: plan from what the project's database has applied (one read of django_migrations)
    unapplied: bool = False


def feed_text(an: Analyzer, text: str, file: str, line_base: int = 1) -> None:
    """Parse ``text`` and judge its statements in order."""
    for node, src, error in statements(text, file, line_base):
        if node is None:
            an.statements += 1
            an.note(src, error or "cannot parse")
            an.opaque()  # whatever it was, it may have written rows
        else:
            an.feed(node, src)


def check_sql(texts: Sequence[tuple[str, str]], options: CheckOptions | None = None) -> CheckReport:
    """Check SQL given as ``(file name, text)`` pairs, run in that order (as ``psql -f`` each)."""
    opts = options or CheckOptions()
    an = Analyzer(opts)
    for name, text in texts:
        feed_text(an, text, name)
        an.commit()  # psql ends the session at the end of a file; an open block is lost
    return _report(an, len(texts), opts)


def _report(an: Analyzer, files: int, opts: CheckOptions) -> CheckReport:
    return CheckReport(files, an.statements, tuple(an.refusals), tuple(an.unparsed), opts)


def _display(p: Path) -> str:
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def kind_of(path: Path) -> str:
    """``alembic``, ``django`` or ``sql``: what a path names."""
    if path.name == "alembic.ini" or (path.is_dir() and (path / "alembic.ini").is_file()):
        return "alembic"
    if path.name == "manage.py" or (path.is_dir() and (path / "manage.py").is_file()):
        return "django"
    return "sql"


def check(
    paths: Sequence[Path],
    options: CheckOptions | None = None,
    *,
    alembic: AlembicSource | None = None,
    django: DjangoSource | None = None,
) -> CheckReport:
    """Check every path in order: ``.sql`` files, directories of them, Alembic or Django projects.

    Raises :class:`~pgguard.errors.UsageError` for a path that does not exist or cannot be read.
    """
    opts = options or CheckOptions()
    an = Analyzer(opts)
    files = 0
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
        kind = kind_of(path)
        if kind == "alembic":
            from .alembic import feed_alembic

            files += feed_alembic(an, path, alembic or AlembicSource())
        elif kind == "django":
            from .django_source import feed_django

            files += feed_django(an, path, django or DjangoSource())
        else:
            found = sql_files(path)
            if path.is_dir() and not found:
                raise UsageError(
                    f"{path}: no .sql files, alembic.ini or manage.py here: nothing to check"
                )
            if path.suffix == ".py":
                raise UsageError(f"{path}: a Python file; give manage.py or alembic.ini")
            for f in found:
                try:
                    text = f.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    raise UsageError(f"cannot read {f}: {e}") from e
                files += 1
                feed_text(an, text, _display(f))
                an.commit()
    return _report(an, files, opts)
