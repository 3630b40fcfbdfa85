"""`pgguard check`: the statements the guard will refuse, found offline, and the allow line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from . import _emit_json, cli, err, json_option

EXAMPLES = """
\b
Examples:
  pgguard check migrations/                       # a directory of .sql files
  pgguard check alembic.ini --from ae1027a6acf    # an Alembic project, revisions after ae10…
  pgguard check manage.py --django-settings app.settings
  pgguard check migrations/ --json > check.json && pgguard allow --from-check check.json
"""


@cli.command(epilog=EXAMPLES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@click.option(
    "--exclude-schema",
    "exclude_schemas",
    multiple=True,
    metavar="NAME",
    help="a schema excluded at install (repeatable), as `install --exclude-schema`",
)
@click.option(
    "--protect-empty",
    is_flag=True,
    help="as `install --protect-empty`: tables holding no row are protected too",
)
@click.option(
    "--search-path",
    default="public",
    show_default=True,
    metavar="S1,S2",
    help="where unqualified table names resolve (the migrating session's search_path)",
)
@click.option("--from", "from_rev", metavar="REV", help="Alembic: render revisions after REV")
@click.option("--to", "to_rev", metavar="REV", help="Alembic: up to REV (default: heads)")
@click.option(
    "--downgrade",
    is_flag=True,
    help="Alembic: check the downgrade from --from to --to (default heads to base)",
)
@click.option(
    "--django-settings", metavar="MODULE", help="Django: settings module (default from manage.py)"
)
@click.option(
    "--django-target",
    "django_targets",
    multiple=True,
    metavar="'APP [NAME|zero]'",
    help="Django: migrate to this target, as `migrate APP NAME` (repeatable; default: all)",
)
@click.option(
    "--django-unapplied",
    is_flag=True,
    help="Django: only what the project's database has not applied (reads django_migrations)",
)
@click.option("--once", is_flag=True, help="the allow line asks for a single-use token")
@click.option("--db", metavar="NAME", help="the allow line names this database")
@click.option("--strict", is_flag=True, help="exit 1 also when a statement could not be checked")
def check(
    paths: tuple[Path, ...],
    as_json: bool,
    exclude_schemas: tuple[str, ...],
    protect_empty: bool,
    search_path: str,
    from_rev: str | None,
    to_rev: str | None,
    downgrade: bool,
    django_settings: str | None,
    django_targets: tuple[str, ...],
    django_unapplied: bool,
    once: bool,
    db: str | None,
    strict: bool,
) -> None:
    """Which statements the guard will refuse, before the deploy; offline, no database.

    PATHS are .sql files, directories of them (run in version order), an Alembic project
    (alembic.ini or its directory) or a Django project (manage.py or its directory). Prints each
    refused statement with file, line, op and object, what could not be checked, and the one
    `pgguard allow` line that approves exactly those. Exit 1 when anything would be refused, 0
    when nothing, 2 on usage errors.
    """
    from ..check import AlembicSource, CheckOptions, DjangoSource
    from ..check import check as run_check

    targets: list[tuple[str, str | None]] = []
    for t in django_targets:
        parts = t.split()
        if not 1 <= len(parts) <= 2:
            raise UsageError(f"--django-target takes 'APP' or 'APP NAME', not {t!r}")
        targets.append((parts[0], parts[1] if len(parts) == 2 else None))
    opts = CheckOptions(
        exclude_schemas=tuple(exclude_schemas),
        protect_empty=protect_empty,
        search_path=tuple(s.strip() for s in search_path.split(",") if s.strip()) or ("public",),
        once=once,
        db=db,
    )
    report = run_check(
        list(paths),
        opts,
        alembic=AlembicSource(from_rev, to_rev, downgrade),
        django=DjangoSource(django_settings, tuple(targets), django_unapplied),
    )
    if as_json:
        _emit_json(report.to_json())
    else:
        _render(report)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _annotate(report)
    failed = bool(report.refusals) or (strict and bool(report.unparsed))
    sys.exit(1 if failed else 0)


def _render(report: object) -> None:
    from ..check import CheckReport

    assert isinstance(report, CheckReport)
    out = Console(highlight=False, soft_wrap=False)
    if report.refusals:
        table = Table(title="the guard will refuse", title_justify="left")
        for col in ("file:line", "op", "object", "statement"):
            table.add_column(col, overflow="fold")
        for r in report.refusals:
            obj = r.object + (f"\n({r.note})" if r.note else "")
            table.add_row(f"{r.file}:{r.line}", r.op, obj, r.statement)
        out.print(table)
    if report.unparsed:
        table = Table(title="not checked", title_justify="left")
        table.add_column("file:line", overflow="fold")
        table.add_column("why", overflow="fold")
        for u in report.unparsed:
            table.add_row(f"{u.file}:{u.line}", u.error)
        out.print(table)
    out.print(
        f"{report.files} file(s), {report.statements} statement(s): "
        f"{len(report.refusals)} refusal(s), {len(report.unparsed)} not checked",
        markup=False,
    )
    if report.allow:
        out.print("to approve exactly these, run:", markup=False)
        click.echo(report.allow)
    else:
        out.print("nothing here will be refused", markup=False)


def _annotate(report: object) -> None:
    """GitHub Actions workflow commands: each refusal annotates its line in the pull request."""
    from ..check import CheckReport

    assert isinstance(report, CheckReport)
    for r in report.refusals:
        msg = f"pgguard will refuse {r.op} of {r.object}".replace("%", "%25").replace("\n", " ")
        err.file.write(f"::error file={r.file},line={r.line}::{msg}\n")
    for u in report.unparsed:
        err.file.write(f"::warning file={u.file},line={u.line}::pgguard check: {u.error}\n")
    if report.allow:
        err.file.write(f"::notice::to approve: {report.allow}\n")
