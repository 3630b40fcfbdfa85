"""`pgguard deploy`, `snapshot`, `verify`, `protect-rows`: the deploy loop on the command line."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import psycopg

from ..errors import GuardRefused
from . import F, _connection, _emit_json, cli, dsn_option, err, json_option

SIZE_UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def _parse_size(text: str) -> int:
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG][bB])?\s*", text)
    if not m:
        raise click.BadParameter(f"{text!r}: give bytes, or a size such as 64MB")
    return int(m.group(1)) * SIZE_UNITS[(m.group(2) or "").lower()]


def _exact_options(f: F) -> F:
    f = click.option(
        "--exact",
        "exact",
        multiple=True,
        metavar="TABLE",
        help="count this table's rows exactly whatever its size (repeatable)",
    )(f)
    f = click.option(
        "--exact-max-size",
        default="16MB",
        show_default=True,
        help="tables up to this size on disk are counted exactly; bigger ones are estimated",
    )(f)
    return f


def _limit_option(f: F) -> F:
    return click.option(
        "--max-row-loss",
        metavar="N|P%",
        help="rows a table may lose without failing: a count (100) or a share (5%); "
        "default: no row of a counted table, 10% of an estimated one",
    )(f)


def _print_restore_point(snap: object) -> None:
    from ..snapshot import Snapshot

    assert isinstance(snap, Snapshot)
    rp = snap.restore_point
    exact = sum(1 for t in snap.tables if t.exact)
    err.print(
        f"pgguard: restore point {rp.time.isoformat()} lsn {rp.lsn} txid {rp.txid}; "
        f"{len(snap.tables)} table(s) recorded ({exact} counted, "
        f"{len(snap.tables) - exact} estimated) in {snap.seconds:.2f}s",
        markup=False,
        soft_wrap=True,
    )


def _render(report: object, *, as_json: bool) -> None:
    from ..verify import DeployReport, Gone

    assert isinstance(report, DeployReport)
    if as_json:
        _emit_json(report.to_json())
        return

    def approval(g: Gone) -> str:
        a = g.approval
        if a is None:
            return "[red]NOT APPROVED[/]"
        who = a.sub or a.session_user
        return f"approved by {who} (token {a.jti}{', ' + a.why if a.why else ''})"

    say = err.print
    say("[bold]pgguard deploy report[/]")
    if report.command is not None:
        say(f"  command: {report.command} (exit code {report.command_exit})", markup=False)
    if not report.lost_anything:
        say("  nothing lost: no table, column or row is gone")
    for g in report.tables_gone:
        rows = f", held {g.rows} rows" if g.rows is not None else ""
        say(f"  table gone: {g.object}{rows}: {approval(g)}", soft_wrap=True)
    for g in report.columns_gone:
        say(f"  column gone: {g.object}: {approval(g)}", soft_wrap=True)
    for r in report.rows_fell:
        how = "counted" if r.exact else "estimated"
        if r.approval is not None:
            verdict = f"approved (token {r.approval.jti})"
        elif r.within_limit:
            verdict = "within the row-loss limit"
        else:
            verdict = "[red]NOT APPROVED[/]"
        say(
            f"  rows fell: {r.table}: {r.before} -> {r.after} ({r.lost} fewer, {how}): {verdict}",
            soft_wrap=True,
        )
    for before, now in report.renamed:
        say(f"  renamed: {before} -> {now}", markup=False)
    for name in report.tables_new:
        say(f"  new table: {name}", markup=False)
    for note in report.notes:
        say(f"  note: {note}", markup=False, soft_wrap=True)
    if report.lost_anything:
        say("  restore point (the state before the deploy):")
        for line in report.restore_point.platform_lines():
            say(f"    {line}", markup=False, soft_wrap=True)
    if report.unapproved:
        say(f"[red]data lost without approval:[/] {'; '.join(report.unapproved)}", soft_wrap=True)
    else:
        say(f"outcome: {report.outcome}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@dsn_option
@click.option("--allow-degraded", is_flag=True, help="deploy even when pgguard status is degraded")
@_exact_options
@_limit_option
@json_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def deploy(
    dsn: str | None,
    allow_degraded: bool,
    exact: Sequence[str],
    exact_max_size: str,
    max_row_loss: str | None,
    as_json: bool,
    command: Sequence[str],
) -> None:
    """Run a deploy command between a snapshot and a loss report.

    Refuses to start when pgguard is degraded; records the restore point (server time, WAL
    LSN, transaction id) and every guarded table's columns and rows; runs COMMAND (its output
    streams through); then reports tables, columns and rows gone, approved or not. Exit 1 on
    unapproved loss, else COMMAND's exit code. With --json, COMMAND's stdout goes to stderr.

    Example: pgguard allow --op drop_column --object public.t.old -- pgguard deploy -- python
    manage.py migrate
    """
    from ..deploy import deploy as do_deploy
    from ..verify import RowLossLimit

    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise click.UsageError("no command: pgguard deploy -- COMMAND ARGS…")
    limit = RowLossLimit.parse(max_row_loss)
    with _connection(dsn) as conn:
        report = do_deploy(
            conn,
            args,
            allow_degraded=allow_degraded,
            exact=exact,
            exact_max_bytes=_parse_size(exact_max_size),
            limit=limit,
            stdout=sys.stderr if as_json else None,
            on_snapshot=_print_restore_point,
        )
    _render(report, as_json=as_json)
    sys.exit(report.exit_code)


@cli.command()
@dsn_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the snapshot (JSON)",
)
@click.option("--allow-degraded", is_flag=True, help="take it even when pgguard is degraded")
@_exact_options
@click.option("--command", "command_text", help="what the deploy will run (recorded in audit)")
def snapshot(
    dsn: str | None,
    out: Path,
    allow_degraded: bool,
    exact: Sequence[str],
    exact_max_size: str,
    command_text: str | None,
) -> None:
    """The first half of deploy: health check, restore point, table snapshot to a file.

    Example: pgguard snapshot --out before.json && ./migrate.sh; pgguard verify before.json
    """
    from ..deploy import check_health
    from ..snapshot import take_snapshot

    with _connection(dsn) as conn:
        check_health(conn, allow_degraded=allow_degraded)
        snap = take_snapshot(
            conn,
            command=command_text,
            exact=exact,
            exact_max_bytes=_parse_size(exact_max_size),
        )
    snap.save(out)
    _print_restore_point(snap)
    err.print(f"wrote {out}", markup=False)


@cli.command()
@dsn_option
@_limit_option
@json_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(dsn: str | None, max_row_loss: str | None, as_json: bool, file: Path) -> None:
    """The second half of deploy: compare the database with a snapshot file and report.

    Exit 1 when a table, column or rows were lost without approval, else 0.

    Example: pgguard verify before.json --max-row-loss 5%
    """
    from ..snapshot import Snapshot
    from ..verify import RowLossLimit
    from ..verify import verify as do_verify

    limit = RowLossLimit.parse(max_row_loss)
    snap = Snapshot.load(file)
    with _connection(dsn) as conn:
        report = do_verify(conn, snap, limit=limit)
    _render(report, as_json=as_json)
    sys.exit(report.exit_code)


@cli.command("protect-rows")
@dsn_option
@click.argument("tables", nargs=-1, metavar="TABLE…")
@click.option("--max-rows", default=1000, show_default=True, help="rows per transaction")
@click.option(
    "--max-fraction",
    default=0.5,
    show_default=True,
    help="share of the table's rows per transaction (1 turns this rule off)",
)
@click.option(
    "--op",
    "ops",
    multiple=True,
    type=click.Choice(["delete_rows", "update_rows"]),
    help="what to limit (repeatable; default both); ops left out lose their limit",
)
@click.option("--all", "all_tables", is_flag=True, help="every table pgguard guards")
@click.option("--remove", is_flag=True, help="take the limits off these tables")
@click.option("--list", "list_only", is_flag=True, help="only list the tables with limits")
@json_option
def protect_rows(
    dsn: str | None,
    tables: Sequence[str],
    max_rows: int,
    max_fraction: float,
    ops: Sequence[str],
    all_tables: bool,
    remove: bool,
    list_only: bool,
    as_json: bool,
) -> None:
    """Refuse transactions that delete or update more of a table's rows than a limit.

    A transaction deleting (updating) more than --max-rows rows of a protected table, or more
    than one row and more than --max-fraction of its rows, is refused unless a token covers op
    delete_rows (update_rows) on it. Re-run to change the limits.

    Example: pgguard protect-rows public.tenants public.users --max-rows 100
    """
    from ..rowlimits import list_row_limits
    from ..rowlimits import protect_rows as do_protect

    with _connection(dsn) as conn:
        if list_only:
            limits = list_row_limits(conn)
        else:
            try:
                report = do_protect(
                    conn,
                    tables,
                    max_rows=max_rows,
                    max_fraction=max_fraction,
                    all_tables=all_tables,
                    remove=remove,
                    ops=ops or ("delete_rows", "update_rows"),
                )
            except psycopg.Error as e:
                refused = GuardRefused.from_diag(e)
                if refused is None or refused.op != "uninstall":
                    raise
                # the server's hint names the token; the command to run under it is ours
                rerun = ["pgguard", "protect-rows", *tables]
                rerun += ["--max-rows", str(max_rows), "--max-fraction", f"{max_fraction:g}"]
                rerun += [x for op in ops for x in ("--op", op)]
                rerun += ["--all"] * all_tables + ["--remove"] * remove
                refused.hint = (
                    "loosening or taking away a row-loss limit needs a token with op uninstall"
                    f" on the table; {refused.hint or 'pgguard allow --op uninstall'}"
                    f" -- {shlex.join(rerun)}"
                )
                raise refused from e
            limits = report.limits
            for name in report.protected:
                err.print(
                    f"row-loss limit on {name}: {max_rows} rows or {max_fraction:g} of the table"
                    " per transaction",
                    markup=False,
                )
            for name in report.removed:
                err.print(f"row-loss limit removed from {name}", markup=False)
    if as_json:
        _emit_json([lim.to_json() for lim in limits])
    elif list_only:
        for lim in limits:
            click.echo(
                f"{lim.table}\t{lim.op}\t{lim.max_rows}\t{lim.max_fraction:g}\t{lim.enabled}"
            )
