"""`pgguard restore`: pg_restore into a guarded database, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ..connect import resolve_dsn
from . import cli, dsn_option, err


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@dsn_option
@click.option(
    "--pg-restore",
    "pg_restore",
    default="pg_restore",
    show_default=True,
    metavar="PATH",
    help="the pg_restore program (as new as the server that made the dump)",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def restore(dsn: str | None, pg_restore: str, args: Sequence[str]) -> None:
    """Restore a dump into a guarded database: exactly, or not at all.

    ARGS are pg_restore options (--clean, --if-exists, --no-owner, …) followed by the archive
    (pg_dump -Fc, -Fd or -Ft). It runs in one transaction and stops at the first error, and
    leaves pgguard's own objects in the archive out (the database keeps its own guard). Without
    a token the first refused DROP undoes everything; approve with `pgguard allow`.

    \b
    Example:
      pgguard allow --op drop_table --object 'public.*' --once -- \\
          pgguard restore --clean --if-exists app.dump
    """
    from ..restore import restore as do_restore

    *options, dump = args
    report = do_restore(
        resolve_dsn(dsn), Path(dump), options, pg_restore=pg_restore, stderr=err.out
    )
    err.print(
        f"restored {report.entries} archive entries in one transaction; "
        f"left pgguard's own {len(report.left_out)} to the database's guard"
    )
