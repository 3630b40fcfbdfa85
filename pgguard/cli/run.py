"""`pgguard run`: a migration script through the privilege-mode executor."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..runner import run as run_script
from . import _connection, _emit_json, cli, dsn_option, err, json_option


@cli.command()
@dsn_option
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="the SQL script (- for stdin)",
)
@click.option(
    "--no-transaction",
    is_flag=True,
    help="commit each statement on its own instead of running the script in one transaction",
)
@json_option
def run(dsn: str | None, path: Path, no_transaction: bool, as_json: bool) -> None:
    """Run a migration script in privilege mode: each schema change through pgguard.run_ddl.

    The script is split with PostgreSQL's own parser and checked whole first: statements
    that cannot run inside a function (VACUUM, CREATE INDEX CONCURRENTLY) are listed with
    their line, and nothing runs. Data statements and SET run directly. Destructive changes
    need a token, as everywhere:

    \b
      pgguard run --dsn "$APP_DSN" -f migrations/0042.sql
      pgguard allow --op drop_column --object public.users.legacy -- \\
          pgguard run --dsn "$APP_DSN" -f migrations/0043_drop_legacy.sql
    """
    if str(path) == "-":
        text = sys.stdin.read()
    else:
        text = path.read_text()
    with _connection(dsn) as conn:
        report = run_script(conn, text, single_transaction=not no_transaction)
    if as_json:
        _emit_json(
            {
                "statements": report.statements,
                "through_executor": report.through_executor,
                "direct": report.direct,
                "skipped": report.skipped,
                "tags": list(report.tags),
                "seconds": round(report.seconds, 3),
            }
        )
        return
    err.print(
        f"ran {report.statements} statement(s): {report.through_executor} through the executor,"
        f" {report.direct} directly, {report.skipped} skipped (BEGIN/COMMIT)"
    )
