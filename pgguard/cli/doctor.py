"""`pgguard doctor`: render :func:`pgguard.doctor.doctor` as a table or ``--json``."""

from __future__ import annotations

import sys

from rich.table import Table

from pgguard.cli import _connection, _emit_json, cli, dsn_option, err, json_option


@cli.command()
@dsn_option
@json_option
def doctor(dsn: str | None, as_json: bool) -> None:
    """The ways around the guard still open on this database, and how to close each.

    Run it with the application's own DSN: it reports what that role (and every other role)
    could do to get around pgguard. Exit 0 when nothing high-severity is open, 1 when something
    is, 3 when it cannot connect, 4 when pgguard is not installed.

    Example: pgguard doctor --dsn "$DATABASE_URL" --json
    """
    from pgguard.doctor import doctor as run_doctor

    with _connection(dsn) as conn:
        report = run_doctor(conn)
    if as_json:
        _emit_json(report.to_json())
    else:
        err.print(
            f"pgguard doctor: database {report.database}, connected as {report.role}, "
            f"{len(report.checks)} checks, {len(report.findings)} finding(s)"
        )
        if report.findings:
            table = Table("severity", "id", "evidence", "fix", show_lines=True)
            for f in report.findings:
                colour = {"high": "red", "medium": "yellow"}.get(f.severity, "white")
                table.add_row(f"[{colour}]{f.severity}[/]", f.id, f.evidence, f.fix)
            err.print(table)
        if report.row_limits:
            limits = Table("table", "op", "max rows", "max fraction", "enabled",
                           title="row-loss limits (pgguard protect-rows)")  # fmt: skip
            for lim in report.row_limits:
                limits.add_row(lim.table, lim.op, str(lim.max_rows), f"{lim.max_fraction:g}",
                               lim.enabled)  # fmt: skip
            err.print(limits)
    sys.exit(1 if report.open_high else 0)
