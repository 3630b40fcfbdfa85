"""The "before" half of the deploy loop: a restore point and what every guarded table holds.

A :class:`Snapshot` records the server's time, WAL position and next transaction id (where to
recover to if the deploy loses data), and for every table pgguard guards its columns and its
rows: counted exactly where that is cheap (a table up to ``exact_max_bytes`` on disk, or one
named in ``exact``), else the server's own estimate, each labelled which. It is written as JSON
(``pgguard snapshot --out FILE``) and compared by :mod:`pgguard.verify`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ._version import __version__
from .errors import NotInstalled, UsageError

FORMAT = "pgguard-snapshot/1"
#: Tables at most this big on disk are counted exactly by default (a count(*) of 16 MB takes a
#: few milliseconds); bigger ones get the server's estimate unless named with ``exact``.
DEFAULT_EXACT_MAX_BYTES = 16 * 1024 * 1024
#: Tables counted per query: one round trip per batch, not per table.
COUNT_BATCH = 200


@dataclass(frozen=True)
class RestorePoint:
    """Where to recover to: the state just before the deploy's command ran."""

    time: dt.datetime  # server clock (clock_timestamp()), UTC
    lsn: str  # pg_current_wal_lsn()
    txid: int  # the next transaction id: the deploy's transactions come at or after it
    timeline: int | None = None
    system_identifier: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "time": self.time.isoformat(),
            "lsn": self.lsn,
            "txid": self.txid,
            "timeline": self.timeline,
            "system_identifier": self.system_identifier,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RestorePoint:
        """Inverse of :meth:`to_json`."""
        return cls(
            time=dt.datetime.fromisoformat(data["time"]),
            lsn=str(data["lsn"]),
            txid=int(data["txid"]),
            timeline=data.get("timeline"),
            system_identifier=data.get("system_identifier"),
        )

    def recovery_settings(self) -> dict[str, str]:
        """``postgresql.conf`` settings that recover to this point (self-hosted PITR)."""
        return {
            "recovery_target_lsn": self.lsn,
            "recovery_target_inclusive": "false",
        }

    def platform_lines(self) -> list[str]:
        """The restore point in the forms managed platforms and tools ask for."""
        utc = self.time.astimezone(dt.timezone.utc)
        z = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        # point-in-time restores on platforms have one-second resolution: the second *before*
        # the restore point is the last one that certainly holds no change of the deploy
        before = utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [
            f"recovery_target_lsn = '{self.lsn}'  (self-hosted PITR, most exact)",
            f"recovery_target_time = '{utc.isoformat()}'",
            f"recovery_target_xid = '{self.txid}'  (with recovery_target_inclusive = false)",
            f"Render, Heroku, RDS, Cloud SQL, Azure, Supabase, Crunchy Bridge: restore to {before}",
            f"Neon: branch from LSN {self.lsn} (or time {z})",
        ]


@dataclass(frozen=True)
class TableSnapshot:
    """One guarded table before the deploy."""

    relid: int
    name: str  # schema.table, quoted where it must be (as in refusals and tokens)
    columns: tuple[tuple[int, str], ...]  # (attnum, name), dropped columns left out
    rows: int | None  # None: a partitioned parent (its partitions are counted)
    exact: bool  # rows counted, or the server's estimate

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "relid": self.relid,
            "name": self.name,
            "columns": [[n, c] for n, c in self.columns],
            "rows": self.rows,
            "rows_exact": self.exact,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableSnapshot:
        """Inverse of :meth:`to_json`."""
        return cls(
            relid=int(data["relid"]),
            name=str(data["name"]),
            columns=tuple((int(n), str(c)) for n, c in data["columns"]),
            rows=None if data["rows"] is None else int(data["rows"]),
            exact=bool(data["rows_exact"]),
        )


@dataclass(frozen=True)
class Snapshot:
    """Restore point and table inventory taken before a deploy."""

    database: str
    server_version: str
    pgguard_version: str
    restore_point: RestorePoint
    tables: tuple[TableSnapshot, ...]
    deploy_id: int | None  # the pgguard.deploys row this snapshot began
    seconds: float  # how long taking it took

    def to_json(self) -> dict[str, Any]:
        """The file format of ``pgguard snapshot --out`` (README, "The deploy loop")."""
        return {
            "format": FORMAT,
            "database": self.database,
            "server_version": self.server_version,
            "pgguard_version": self.pgguard_version,
            "restore_point": self.restore_point.to_json(),
            "deploy_id": self.deploy_id,
            "seconds": round(self.seconds, 3),
            "tables": [t.to_json() for t in self.tables],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        """Inverse of :meth:`to_json`; raises :class:`UsageError` on anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f"not a pgguard snapshot (expected format {FORMAT!r})")
        try:
            return cls(
                database=str(data["database"]),
                server_version=str(data["server_version"]),
                pgguard_version=str(data["pgguard_version"]),
                restore_point=RestorePoint.from_json(data["restore_point"]),
                tables=tuple(TableSnapshot.from_json(t) for t in data["tables"]),
                deploy_id=None if data.get("deploy_id") is None else int(data["deploy_id"]),
                seconds=float(data.get("seconds", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"the snapshot file is damaged: {e!r}") from e

    def save(self, path: Path) -> None:
        """Write the snapshot as JSON (a new file, or replacing one)."""
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """Read a snapshot written by :meth:`save`."""
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise UsageError(f"cannot read snapshot {path}: {e.strerror}") from e
        except ValueError as e:
            raise UsageError(f"{path} is not JSON: {e}") from e
        return cls.from_json(data)


def _require_installed(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "SELECT to_regprocedure('pgguard.deploy_begin(text,timestamptz,pg_lsn,bigint)')"
    ).fetchone()
    if row is None or row[0] is None:
        raise NotInstalled(
            f'pgguard (with the deploy loop) is not installed in database "{conn.info.dbname}"',
            hint="run pgguard install (again, to upgrade)",
        )


def read_restore_point(conn: psycopg.Connection[Any]) -> RestorePoint:
    """The server's time, WAL position and next transaction id, read in one statement."""
    row = conn.execute(
        """
        SELECT clock_timestamp(), pg_current_wal_lsn()::text,
               pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
               (SELECT timeline_id FROM pg_control_checkpoint()),
               (SELECT system_identifier::text FROM pg_control_system())
        """
    ).fetchone()
    assert row is not None
    return RestorePoint(row[0], row[1], row[2], row[3], row[4])


def _inventory(conn: psycopg.Connection[Any]) -> list[tuple[int, str, str, int, float]]:
    """(relid, name, relkind, size in bytes or -1 when unreadable, estimated rows) of every
    guarded table."""
    return [
        (int(r[0]), r[1], r[2], int(r[3]), float(r[4]))
        for r in conn.execute(
            """
            SELECT g.relid::bigint, pgguard.ident_path(g.schema_name, g.table_name),
                   g.relkind::text,
                   -- a table this role may not read is estimated, never counted
                   CASE WHEN g.relkind <> 'r' THEN 0
                        WHEN NOT has_table_privilege(g.relid, 'SELECT') THEN -1
                        ELSE pg_relation_size(g.relid) END,
                   COALESCE(CASE WHEN s.n_live_tup > 0 OR s.n_dead_tup > 0
                                   OR s.n_tup_ins > 0 OR s.last_analyze IS NOT NULL
                                   OR s.last_autoanalyze IS NOT NULL
                                 THEN s.n_live_tup END,
                            GREATEST(c.reltuples, 0))
              FROM pgguard.table_guards() g
              JOIN pg_catalog.pg_class c ON c.oid = g.relid
              LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = g.relid
             ORDER BY 2
            """
        )
    ]


def _columns(conn: psycopg.Connection[Any], relids: list[int]) -> dict[int, list[tuple[int, str]]]:
    out: dict[int, list[tuple[int, str]]] = {r: [] for r in relids}
    for relid, attnum, name in conn.execute(
        "SELECT attrelid::bigint, attnum, attname::text FROM pg_catalog.pg_attribute"
        " WHERE attrelid = ANY (%s::oid[]) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attrelid, attnum",
        (relids,),
    ):
        out[int(relid)].append((int(attnum), name))
    return out


def count_rows(conn: psycopg.Connection[Any], relids: Sequence[int]) -> dict[int, int]:
    """Exact ``count(*)`` of each table (``ONLY``: a parent's partitions count for themselves),
    a batch of tables per query."""
    out: dict[int, int] = {}
    ids = list(relids)
    for start in range(0, len(ids), COUNT_BATCH):
        batch = ids[start : start + COUNT_BATCH]
        names = dict(
            conn.execute(
                "SELECT oid::bigint, oid::regclass::text FROM pg_catalog.pg_class"
                " WHERE oid = ANY (%s::oid[])",
                (batch,),
            ).fetchall()
        )
        parts = [
            sql.SQL("SELECT {}::bigint, count(*) FROM ONLY {}").format(
                sql.Literal(relid), sql.SQL(names[relid])
            )
            for relid in batch
            if relid in names  # dropped meanwhile: counted as gone by the caller
        ]
        if not parts:
            continue
        for relid, n in conn.execute(sql.SQL(" UNION ALL ").join(parts)):
            out[int(relid)] = int(n)
    return out


def estimate_rows(conn: psycopg.Connection[Any], relids: Sequence[int]) -> dict[int, int]:
    """The server's estimate of each table's rows: the statistics' live tuples when the
    statistics have seen the table, else ``pg_class.reltuples`` (0 when never analysed)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return {
        int(r[0]): int(r[1])
        for r in conn.execute(
            """
            SELECT c.oid::bigint,
                   COALESCE(CASE WHEN s.n_live_tup > 0 OR s.n_dead_tup > 0 OR s.n_tup_ins > 0
                                   OR s.last_analyze IS NOT NULL
                                   OR s.last_autoanalyze IS NOT NULL
                                 THEN s.n_live_tup END,
                            GREATEST(c.reltuples, 0))::bigint
              FROM pg_catalog.pg_class c
              LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
             WHERE c.oid = ANY (%s::oid[])
            """,
            (list(relids),),
        )
    }


def _resolve_exact(conn: psycopg.Connection[Any], names: Iterable[str]) -> set[int]:
    out: set[int] = set()
    for name in names:
        try:
            row = conn.execute("SELECT to_regclass(%s)::oid::bigint", (name,)).fetchone()
        except psycopg.Error as e:
            raise UsageError(f"--exact {name!r}: {e.diag.message_primary or e}") from e
        if row is None or row[0] is None:
            raise UsageError(f"--exact {name!r}: no such table")
        out.add(int(row[0]))
    return out


def take_snapshot(
    conn: psycopg.Connection[Any],
    *,
    command: str | None = None,
    exact: Iterable[str] = (),
    exact_max_bytes: int = DEFAULT_EXACT_MAX_BYTES,
) -> Snapshot:
    """Record the restore point, begin a deploy record and inventory every guarded table.

    ``exact`` names tables (``schema.table``) to count exactly whatever their size;
    ``exact_max_bytes`` is the size up to which tables are counted exactly anyway.
    The inventory is read in one REPEATABLE READ transaction, so every count and column list is
    of the same moment, the restore point's.
    """
    import time

    started = time.monotonic()
    if not conn.autocommit:
        conn.rollback()
    conn.autocommit = True
    _require_installed(conn)
    insist = _resolve_exact(conn, exact)
    meta = conn.execute("SELECT current_database(), current_setting('server_version')").fetchone()
    assert meta is not None
    point = read_restore_point(conn)
    deploy_id_row = conn.execute(
        "SELECT pgguard.deploy_begin(%s, %s, %s::pg_lsn, %s)",
        (command, point.time, point.lsn, point.txid),
    ).fetchone()
    assert deploy_id_row is not None
    conn.autocommit = False
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        inventory = _inventory(conn)
        relids = [r[0] for r in inventory]
        columns = _columns(conn, relids)
        to_count = [
            relid
            for relid, _name, kind, size, _est in inventory
            if kind == "r" and size >= 0 and (size <= exact_max_bytes or relid in insist)
        ]
        counted = count_rows(conn, to_count)
    finally:
        conn.rollback()
        conn.autocommit = True
    tables = tuple(
        TableSnapshot(
            relid=relid,
            name=name,
            columns=tuple(columns.get(relid, ())),
            rows=None if kind == "p" else counted.get(relid, int(est)),
            exact=kind != "p" and relid in counted,
        )
        for relid, name, kind, _size, est in inventory
    )
    return Snapshot(
        database=meta[0],
        server_version=meta[1],
        pgguard_version=__version__,
        restore_point=point,
        tables=tables,
        deploy_id=int(deploy_id_row[0]),
        seconds=time.monotonic() - started,
    )
