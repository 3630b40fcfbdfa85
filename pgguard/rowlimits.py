"""`pgguard protect-rows`: opt-in row-loss limits on tables (sql/075_row_limits.sql).

A protected table carries two statement-level AFTER triggers, ``pgguard_row_limit_delete`` and
``pgguard_row_limit_update`` (``ENABLE ALWAYS``), whose arguments are the limits. A transaction
that deletes (updates) more rows of the table than ``max_rows``, or more than one row and more
than ``max_fraction`` of the rows it had, is refused with PGG01 unless the session's token
covers op ``delete_rows`` (``update_rows``) on the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .errors import NotInstalled, PrivilegeError, UsageError
from .privmode import MODE_PRIVILEGES, installed_mode

DEFAULT_MAX_ROWS = 1000
DEFAULT_MAX_FRACTION = 0.5
TRIGGERS = {"DELETE": "pgguard_row_limit_delete", "UPDATE": "pgguard_row_limit_update"}
OPS = {"DELETE": "delete_rows", "UPDATE": "update_rows"}


@dataclass(frozen=True)
class RowLimit:
    """One table's limit for one op, as its trigger has it."""

    table: str
    op: str  # "delete_rows" | "update_rows"
    max_rows: int
    max_fraction: float
    enabled: str  # "always" | "origin" | "replica" | "disabled"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "table": self.table,
            "op": self.op,
            "max_rows": self.max_rows,
            "max_fraction": self.max_fraction,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class ProtectReport:
    """What `protect_rows` did."""

    protected: tuple[str, ...]
    removed: tuple[str, ...]
    limits: tuple[RowLimit, ...]


def _require(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SELECT to_regprocedure('pgguard.row_limit_guard()')").fetchone()
    if row is None or row[0] is None:
        raise NotInstalled(
            f'pgguard (with row-loss limits) is not installed in database "{conn.info.dbname}"',
            hint="run pgguard install (again, to upgrade)",
        )


def list_row_limits(conn: psycopg.Connection[Any]) -> tuple[RowLimit, ...]:
    """Every table with a row-loss limit, per op."""
    _require(conn)
    return tuple(
        RowLimit(r[0], r[1], int(r[2]), float(r[3]), r[4])
        for r in conn.execute(
            "SELECT pgguard.ident_path(schema_name, table_name), op, max_rows, max_fraction,"
            " enabled FROM pgguard.row_limits() ORDER BY 1, 2"
        )
    )


def row_limits_if_installed(conn: psycopg.Connection[Any]) -> tuple[RowLimit, ...]:
    """Like :func:`list_row_limits`, but empty where pgguard predates row-loss limits."""
    row = conn.execute("SELECT to_regprocedure('pgguard.row_limits()')").fetchone()
    return () if row is None or row[0] is None else list_row_limits(conn)


def missing_row_limits(conn: psycopg.Connection[Any]) -> tuple[tuple[str, str], ...]:
    """(table, op) of limits `protect-rows` recorded whose trigger is gone."""
    row = conn.execute("SELECT to_regprocedure('pgguard.row_limits_missing()')").fetchone()
    if row is None or row[0] is None:
        return ()
    return tuple(
        (r[0], r[1])
        for r in conn.execute(
            "SELECT pgguard.ident_path(schema_name, table_name), op"
            " FROM pgguard.row_limits_missing() ORDER BY 1, 2"
        )
    )


def _resolve(conn: psycopg.Connection[Any], tables: Iterable[str], all_tables: bool) -> list[str]:
    """Regclass texts of the tables to act on."""
    out: list[str] = []
    if all_tables:
        out += [
            r[0]
            for r in conn.execute(
                "SELECT relid::regclass::text FROM pgguard.table_guards()"
                " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i"
                "                    WHERE i.inhrelid = relid)"
                " ORDER BY 1"
            )
        ]
    for name in tables:
        try:
            row = conn.execute(
                "SELECT c.oid::regclass::text, c.relkind::text FROM pg_catalog.pg_class c"
                " WHERE c.oid = to_regclass(%s)",
                (name,),
            ).fetchone()
        except psycopg.Error as e:
            raise UsageError(f"{name!r}: {e.diag.message_primary or e}") from e
        if row is None:
            raise UsageError(f"no such table: {name}")
        if row[1] not in ("r", "p"):
            raise UsageError(f"{name} is not a table")
        if row[0] not in out:
            out.append(row[0])
    return out


def protect_rows(
    conn: psycopg.Connection[Any],
    tables: Iterable[str] = (),
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_fraction: float = DEFAULT_MAX_FRACTION,
    all_tables: bool = False,
    remove: bool = False,
    ops: Iterable[str] = ("delete_rows", "update_rows"),
) -> ProtectReport:
    """Put (or with ``remove``, take off) row-loss limits on tables, in one transaction.

    ``all_tables``: every table pgguard guards (a partitioned parent's trigger sees its
    partitions' rows, so partitions themselves are left out). Re-running changes the limits.
    ``ops`` picks what is limited: ``delete_rows``, ``update_rows`` or both (the limit on updates
    costs every UPDATE statement a trigger call; see the README's costs).
    """
    wanted = set(ops)
    if not wanted or wanted - set(OPS.values()):
        raise UsageError("--op must be delete_rows or update_rows")
    if max_rows < 0:
        raise UsageError("--max-rows must be 0 or more")
    if not 0 < max_fraction <= 1:
        raise UsageError("--max-fraction must be above 0 and at most 1 (1 turns it off)")
    _require(conn)
    names = _resolve(conn, tables, all_tables)
    if not names:
        raise UsageError("no table given: name tables, or pass --all")
    args = [sql.Literal(str(max_rows)), sql.Literal(repr(float(max_fraction)))]
    try:
        if installed_mode(conn) == MODE_PRIVILEGES:
            # the tables belong to pgguard_owner: pgguard's function makes its own triggers
            with conn.transaction():
                conn.execute(
                    "SELECT pgguard.protect_rows_owned("
                    " ARRAY(SELECT to_regclass(x)::oid FROM unnest(%s::text[]) x),"
                    " %s::text[], %s, %s::numeric, %s)",
                    (names, sorted(wanted), max_rows, repr(float(max_fraction)), remove),
                )
            return ProtectReport(
                protected=() if remove else tuple(names),
                removed=tuple(names) if remove else (),
                limits=list_row_limits(conn),
            )
        with conn.transaction():
            # recorded first: taking a limit away needs a token (the record is what lets
            # `status` notice a trigger dropped behind pgguard's back)
            conn.execute(
                "SELECT pgguard.record_row_limits("
                " ARRAY(SELECT to_regclass(x)::oid FROM unnest(%s::text[]) x), %s::text[], %s,"
                " %s, %s::numeric)",
                (names, sorted(wanted), remove, max_rows, repr(float(max_fraction))),
            )
            for name in names:
                table = sql.SQL(name)  # a regclass rendering: quoted where it must be
                for event, trigger in TRIGGERS.items():
                    if remove or OPS[event] not in wanted:
                        # the guard refuses this DROP without the uninstall token that
                        # record_row_limits has just asked for
                        conn.execute(
                            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                                sql.Identifier(trigger), table
                            )
                        )
                        continue
                    # replaced in place: dropping it (even to re-create it) would take the
                    # limit away, which the guard refuses without a token
                    conn.execute(
                        sql.SQL(
                            "CREATE OR REPLACE TRIGGER {} AFTER {} ON {} REFERENCING OLD TABLE AS"
                            " pgguard_changed FOR EACH STATEMENT"
                            " EXECUTE FUNCTION pgguard.row_limit_guard({})"
                        ).format(
                            sql.Identifier(trigger), sql.SQL(event), table, sql.SQL(", ").join(args)
                        )
                    )
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(
                            table, sql.Identifier(trigger)
                        )
                    )
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            f"cannot change the row-loss limits: {e.diag.message_primary}",
            hint="run protect-rows as the tables' owner or the installing role",
        ) from e
    limits = list_row_limits(conn)
    return ProtectReport(
        protected=() if remove else tuple(names),
        removed=tuple(names) if remove else (),
        limits=limits,
    )
