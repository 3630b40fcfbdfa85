"""The "after" half of the deploy loop: what the deploy removed, and whether it was approved.

Compares the database with a :class:`~pgguard.snapshot.Snapshot`: tables and columns gone (each
either approved, with the override that approved it, or not), row counts that fell (exact
tables counted again exactly, the others estimated again), tables renamed and new. The report
knows its exit code: 1 when anything was lost without approval or rows fell beyond the row-loss
limit, else the command's.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .errors import UsageError
from .snapshot import RestorePoint, Snapshot, count_rows, estimate_rows

#: Default row-loss limit for tables whose rows were estimated (counted tables: any row).
DEFAULT_ESTIMATE_FRACTION = 0.10


@dataclass(frozen=True)
class RowLossLimit:
    """How many rows a table may lose in a deploy without failing it.

    ``rows``/``fraction`` None: the default, i.e. no row at all for a counted table and 10 % for
    an estimated one (an estimate moves without anything being deleted).
    """

    rows: int | None = None
    fraction: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> RowLossLimit:
        """``None`` (default), ``"100"`` (rows) or ``"5%"`` (of the table's rows)."""
        if text is None:
            return cls()
        m = re.fullmatch(r"\s*(\d+)\s*(%?)\s*", text)
        if not m:
            raise UsageError(
                f"--max-row-loss {text!r}: give a row count (100) or a percentage (5%)"
            )
        if m.group(2):
            return cls(fraction=int(m.group(1)) / 100)
        return cls(rows=int(m.group(1)))

    def allows(self, lost: int, before: int, exact: bool) -> bool:
        """Whether losing ``lost`` of ``before`` rows stays within the limit."""
        if self.rows is not None:
            return lost <= self.rows
        fraction = self.fraction
        if fraction is None:
            if exact:
                return lost <= 0
            fraction = DEFAULT_ESTIMATE_FRACTION
        return lost <= fraction * before

    def describe(self) -> str:
        """For reports: the limit in words."""
        if self.rows is not None:
            return f"{self.rows} rows per table"
        if self.fraction is not None:
            return f"{self.fraction * 100:g}% per table"
        return "no row of a counted table, 10% of an estimated one"


@dataclass(frozen=True)
class Approval:
    """The override (a row of pgguard.audit) that let something through."""

    at: dt.datetime
    op: str
    object: str
    session_user: str
    jti: str | None
    sub: str | None
    why: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "at": self.at.isoformat(),
            "op": self.op,
            "object": self.object,
            "session_user": self.session_user,
            "jti": self.jti,
            "sub": self.sub,
            "why": self.why,
        }


@dataclass(frozen=True)
class Gone:
    """A table or column that existed before and does not now."""

    object: str
    rows: int | None  # tables: rows it held at the snapshot
    approval: Approval | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "object": self.object,
            "rows": self.rows,
            "approved": self.approval is not None,
            "approval": self.approval.to_json() if self.approval else None,
        }


@dataclass(frozen=True)
class RowLoss:
    """A table whose row count fell."""

    table: str
    before: int
    after: int
    exact: bool
    approval: Approval | None
    within_limit: bool

    @property
    def lost(self) -> int:
        """Rows fewer than before."""
        return self.before - self.after

    @property
    def ok(self) -> bool:
        """Approved, or within the row-loss limit."""
        return self.approval is not None or self.within_limit

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "table": self.table,
            "before": self.before,
            "after": self.after,
            "lost": self.lost,
            "exact": self.exact,
            "within_limit": self.within_limit,
            "approved": self.approval is not None,
            "approval": self.approval.to_json() if self.approval else None,
        }


@dataclass(frozen=True)
class DeployReport:
    """What a deploy changed, and what the deploy loop makes of it."""

    database: str
    deploy_id: int | None
    restore_point: RestorePoint
    command: str | None
    command_exit: int | None  # None: `verify` (no command was run by pgguard)
    tables_gone: tuple[Gone, ...]
    columns_gone: tuple[Gone, ...]
    rows_fell: tuple[RowLoss, ...]
    tables_new: tuple[str, ...]
    renamed: tuple[tuple[str, str], ...]  # (before, now), tables and columns
    row_loss_limit: str
    snapshot_seconds: float
    verify_seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def unapproved(self) -> tuple[str, ...]:
        """Each loss that fails the deploy, in words."""
        out = [f"table {g.object}" for g in self.tables_gone if g.approval is None]
        out += [f"column {g.object}" for g in self.columns_gone if g.approval is None]
        out += [
            f"{r.lost} rows of {r.table} ({'counted' if r.exact else 'estimated'})"
            for r in self.rows_fell
            if not r.ok
        ]
        return tuple(out)

    @property
    def lost_anything(self) -> bool:
        """Any table, column or row gone (approved or not)."""
        return bool(self.tables_gone or self.columns_gone or self.rows_fell)

    @property
    def outcome(self) -> str:
        """``loss`` (unapproved), ``failed`` (the command failed), or ``ok``."""
        if self.unapproved:
            return "loss"
        if self.command_exit:
            return "failed"
        return "ok"

    @property
    def exit_code(self) -> int:
        """1 on unapproved loss, else the command's exit code (0 for `verify`)."""
        if self.unapproved:
            return 1
        return self.command_exit or 0

    def summary(self) -> dict[str, Any]:
        """Counts, as recorded in pgguard.deploys."""
        return {
            "tables_gone": len(self.tables_gone),
            "columns_gone": len(self.columns_gone),
            "rows_fell": len(self.rows_fell),
            "rows_lost": sum(r.lost for r in self.rows_fell),
            "tables_new": len(self.tables_new),
            "unapproved": list(self.unapproved),
        }

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape (README, "The deploy loop")."""
        return {
            "database": self.database,
            "deploy_id": self.deploy_id,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "command": self.command,
            "command_exit": self.command_exit,
            "restore_point": {
                **self.restore_point.to_json(),
                "platforms": self.restore_point.platform_lines(),
            },
            "tables_gone": [g.to_json() for g in self.tables_gone],
            "columns_gone": [g.to_json() for g in self.columns_gone],
            "rows_fell": [r.to_json() for r in self.rows_fell],
            "tables_new": list(self.tables_new),
            "renamed": [{"before": a, "now": b} for a, b in self.renamed],
            "unapproved": list(self.unapproved),
            "row_loss_limit": self.row_loss_limit,
            "snapshot_seconds": round(self.snapshot_seconds, 3),
            "verify_seconds": round(self.verify_seconds, 3),
            "notes": list(self.notes),
        }


def _approvals(conn: psycopg.Connection[Any], deploy_id: int | None) -> list[Approval]:
    if deploy_id is None:
        return []
    return [
        Approval(*r)
        for r in conn.execute(
            "SELECT at, op, object, session_user_name, jti, sub, why"
            " FROM pgguard.deploy_approvals(%s)",
            (deploy_id,),
        )
    ]


def _find(approvals: list[Approval], ops: tuple[str, ...], obj: str) -> Approval | None:
    for a in approvals:
        if a.op in ops and a.object == obj:
            return a
    return None


def verify(
    conn: psycopg.Connection[Any],
    snap: Snapshot,
    *,
    limit: RowLossLimit | None = None,
    command: str | None = None,
    command_exit: int | None = None,
    record: bool = True,
) -> DeployReport:
    """Compare the database with ``snap``; with ``record``, finish its pgguard.deploys row."""
    import time

    started = time.monotonic()
    limit = limit or RowLossLimit()
    if not conn.autocommit:
        conn.rollback()
    conn.autocommit = True
    db = conn.execute("SELECT current_database()").fetchone()
    assert db is not None
    if db[0] != snap.database:
        raise UsageError(
            f'the snapshot is of database "{snap.database}", not "{db[0]}"',
            hint="connect to the database the snapshot was taken in",
        )
    notes: list[str] = []
    before = {t.relid: t for t in snap.tables}
    now_rows = conn.execute(
        "SELECT c.oid::bigint, pgguard.ident_path(n.nspname, c.relname)"
        "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = ANY (%s::oid[]) AND c.relkind IN ('r', 'p')",
        (list(before),),
    ).fetchall()
    exists = {int(r[0]): r[1] for r in now_rows}
    guarded_now = {
        int(r[0]): r[1]
        for r in conn.execute(
            "SELECT relid::bigint, pgguard.ident_path(schema_name, table_name)"
            " FROM pgguard.table_guards()"
        )
    }
    columns_now: dict[int, dict[int, str]] = {r: {} for r in exists}
    for relid, attnum, name in conn.execute(
        "SELECT attrelid::bigint, attnum, attname::text FROM pg_catalog.pg_attribute"
        " WHERE attrelid = ANY (%s::oid[]) AND attnum > 0 AND NOT attisdropped",
        (list(exists),),
    ):
        columns_now[int(relid)][int(attnum)] = name
    approvals = _approvals(conn, snap.deploy_id)

    tables_gone: list[Gone] = []
    renamed: list[tuple[str, str]] = []
    dropped_cols: list[tuple[str, str]] = []  # (table path, column name)
    for relid, t in before.items():
        if relid not in exists:
            tables_gone.append(Gone(t.name, t.rows, _find(approvals, ("drop_table",), t.name)))
            continue
        if exists[relid] != t.name:
            renamed.append((t.name, exists[relid]))
        cols = columns_now[relid]
        for attnum, col in t.columns:
            if attnum not in cols:
                dropped_cols.append((t.name, col))
            elif cols[attnum] != col:
                renamed.append((f"{t.name}.{col}", f"{exists[relid]}.{cols[attnum]}"))
    columns_gone: list[Gone] = []
    if dropped_cols:
        paths = conn.execute(
            "SELECT pgguard.ident_path(VARIADIC (parse_ident(t) || c))"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY u(t, c, o) ORDER BY o",
            ([t for t, _ in dropped_cols], [c for _, c in dropped_cols]),
        ).fetchall()
        columns_gone = [Gone(p[0], None, _find(approvals, ("drop_column",), p[0])) for p in paths]

    still = [t for t in snap.tables if t.relid in exists and t.rows is not None]
    exact_after = count_rows(conn, [t.relid for t in still if t.exact])
    estimated = [t.relid for t in still if not t.exact]
    est_after = estimate_rows(conn, estimated) if estimated else {}
    if estimated:
        notes.append(
            f"{len(estimated)} table(s) estimated, not counted: the estimates come from the "
            "server's statistics (give --exact TABLE to count one)"
        )
    rows_fell: list[RowLoss] = []
    for t in still:
        assert t.rows is not None
        after = exact_after.get(t.relid) if t.exact else est_after.get(t.relid)
        if after is None or after >= t.rows:
            continue
        name = exists[t.relid]
        approval = _find(approvals, ("delete_rows", "truncate"), name) or _find(
            approvals, ("delete_rows", "truncate"), t.name
        )
        rows_fell.append(
            RowLoss(
                table=name,
                before=t.rows,
                after=after,
                exact=t.exact,
                approval=approval,
                within_limit=limit.allows(t.rows - after, t.rows, t.exact),
            )
        )
    tables_new = tuple(sorted(name for relid, name in guarded_now.items() if relid not in before))
    report = DeployReport(
        database=snap.database,
        deploy_id=snap.deploy_id,
        restore_point=snap.restore_point,
        command=command,
        command_exit=command_exit,
        tables_gone=tuple(sorted(tables_gone, key=lambda g: g.object)),
        columns_gone=tuple(sorted(columns_gone, key=lambda g: g.object)),
        rows_fell=tuple(sorted(rows_fell, key=lambda r: r.table)),
        tables_new=tables_new,
        renamed=tuple(sorted(renamed)),
        row_loss_limit=limit.describe(),
        snapshot_seconds=snap.seconds,
        verify_seconds=time.monotonic() - started,
        notes=tuple(notes),
    )
    if record and snap.deploy_id is not None:
        import json

        done = conn.execute(
            "SELECT pgguard.deploy_end(%s, %s, %s, %s::jsonb)",
            (
                snap.deploy_id,
                report.outcome,
                report.exit_code,
                json.dumps(report.summary()),
            ),
        ).fetchone()
        if not done or not done[0]:
            notes.append(
                f"deploy record {snap.deploy_id} was not updated: already verified, or begun "
                "by another role"
            )
            report = _with_notes(report, notes)
    return report


def _with_notes(report: DeployReport, notes: list[str]) -> DeployReport:
    from dataclasses import replace

    return replace(report, notes=tuple(notes))
