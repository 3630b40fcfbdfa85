"""Alembic projects: render the offline SQL with Alembic itself, and map it to revision files.

Alembic's offline mode (``upgrade --sql``) writes every statement through
``DefaultImpl.static_output``; while rendering, that method is wrapped to note, for each piece
of SQL, the revision file and line of the ``op.…`` call that produced it (read from the call
stack) or, for Alembic's own statements (version table, BEGIN/COMMIT), the revision running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .sqlfiles import statements

if TYPE_CHECKING:
    from . import AlembicSource
    from .analyze import Analyzer


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One piece of rendered SQL and where it came from."""

    text: str
    file: str
    line: int


def _display(path: str, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return path


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def render(ini: Path, source: AlembicSource) -> tuple[list[Chunk], int]:
    """The offline SQL of the revision range, in chunks, and how many revision files it ran."""
    from alembic import command
    from alembic.config import Config
    from alembic.ddl.impl import DefaultImpl
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    chunks: list[Chunk] = []
    files: set[str] = set()
    base = Path.cwd().resolve()
    ini_name = _display(str(ini), base)
    ini = ini.resolve()
    with _chdir(ini.parent):
        cfg = Config(str(ini), output_buffer=io.StringIO())
        try:
            script = ScriptDirectory.from_config(cfg)
            paths = {str(Path(s.path).resolve()) for s in script.walk_revisions() if s.path}
        except CommandError as e:
            raise UsageError(f"{ini_name}: {e}") from e
        original = DefaultImpl.static_output

        def recording(impl: Any, text: str) -> None:
            file, line = ini_name, 1
            frame = sys._getframe(1)
            running = None
            while frame is not None:
                path = str(Path(frame.f_code.co_filename).resolve())
                if path in paths and file == ini_name:
                    file, line = _display(path, base), frame.f_lineno
                step = frame.f_locals.get("step") if running is None else None
                if step is not None and getattr(getattr(step, "revision", None), "path", None):
                    running = step.revision.path
                frame = frame.f_back  # type: ignore[assignment]
            if file == ini_name and running is not None:
                file = _display(str(Path(running).resolve()), base)
            if file != ini_name:
                files.add(file)
            chunks.append(Chunk(text, file, line))
            original(impl, text)

        DefaultImpl.static_output = recording  # type: ignore[method-assign,assignment]
        try:
            if source.downgrade:
                rng = f"{source.from_rev or 'heads'}:{source.to_rev or 'base'}"
                command.downgrade(cfg, rng, sql=True)
            else:
                target = source.to_rev or "heads"
                rng = f"{source.from_rev}:{target}" if source.from_rev else target
                command.upgrade(cfg, rng, sql=True)
        except CommandError as e:
            raise UsageError(f"{ini_name}: alembic cannot render offline SQL: {e}") from e
        except Exception as e:  # noqa: BLE001 - the project's env.py and revisions are its code
            raise UsageError(
                f"{ini_name}: the Alembic project failed while rendering offline SQL: "
                f"{type(e).__name__}: {e}"
            ) from e
        finally:
            DefaultImpl.static_output = original  # type: ignore[method-assign]
    return chunks, len(files)


def feed_alembic(an: Analyzer, path: Path, source: AlembicSource) -> int:
    """Check an Alembic project's revision range; returns how many revision files ran."""
    ini = path if path.is_file() else path / "alembic.ini"
    chunks, files = render(ini, source)
    for chunk in chunks:
        for node, src, error in statements(chunk.text, chunk.file):
            src = dataclasses.replace(src, line=chunk.line)
            if node is None:
                an.statements += 1
                an.note(src, error or "cannot parse")
                an.opaque()  # whatever it was, it may have written rows
            else:
                an.feed(node, src)
    an.commit()
    return files
