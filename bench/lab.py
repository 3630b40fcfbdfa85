"""The bench's machinery: two databases on one server, sessions, interleaved A/B timing.

A :class:`Lab` holds a plain database and a guarded one (``pgguard.install`` ran there) on the
same server, a token that approves everything in the guarded one, and helpers that run a
workload on both sides alternately (ABBA order), so machine noise hits both sides alike.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

Conn = psycopg.Connection[Any]
PLAIN = "unguarded"
GUARDED = "guarded"


@dataclass
class Row:
    """One measured line of the results table."""

    case: str
    label: str
    unit: str  # "s" (lower is better) or "tps" (higher is better)
    a_name: str
    b_name: str
    a: list[float]
    b: list[float]
    goal: str
    #: ratio -> met?; None when the row has no goal of its own
    check: Callable[[float], bool] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    pg: str = ""
    #: the verdict of a row judged otherwise than by its ratio (install times)
    verdict: bool | None = None
    #: seconds of CPU the session's server process used (local servers; see backend_cpu)
    cpu_a: list[float] = field(default_factory=list)
    cpu_b: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """b / a of the medians (for tps: b's throughput over a's)."""
        if not self.a or not self.b:
            return None
        a, b = statistics.median(self.a), statistics.median(self.b)
        return b / a if a else None

    @property
    def cpu_ratio(self) -> float | None:
        """b / a of the medians of the server processes' CPU time, when measured."""
        if not self.cpu_a or not self.cpu_b:
            return None
        a, b = statistics.median(self.cpu_a), statistics.median(self.cpu_b)
        return b / a if a else None

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (None: no goal to judge)."""
        r = self.ratio
        if self.check is None or r is None:
            return self.verdict
        return self.check(r)

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON data."""

        def stats(xs: list[float]) -> dict[str, Any] | None:
            if not xs:
                return None
            return {
                "median": statistics.median(xs),
                "min": min(xs),
                "max": max(xs),
                "samples": xs,
            }

        return {
            "case": self.case,
            "label": self.label,
            "pg": self.pg,
            "unit": self.unit,
            "a_name": self.a_name,
            "b_name": self.b_name,
            "a": stats(self.a),
            "b": stats(self.b),
            "ratio": self.ratio,
            "cpu_a": stats(self.cpu_a),
            "cpu_b": stats(self.cpu_b),
            "cpu_ratio": self.cpu_ratio,
            "goal": self.goal,
            "met": self.met,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def backend_cpu(conn: Conn) -> float | None:
    """CPU seconds the session's server process has used so far, or None when unknown.

    Read from /proc/<pid>/schedstat (time on a CPU, in ns), so only for a server on this
    machine. Unlike wall-clock time it does not grow when other processes take the CPU: on a
    shared machine it is the steadier measure of the guard's own work (the client's round
    trips are not in it).
    """
    try:
        with open(f"/proc/{conn.info.backend_pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class Timings(dict[str, list[float]]):
    """Wall-clock seconds per side, and (``cpu``) the server process's CPU seconds per side."""

    def __init__(self, sides: tuple[str, ...]) -> None:
        super().__init__({s: [] for s in sides})
        self.cpu: dict[str, list[float]] = {s: [] for s in sides}


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_tables(conn: Conn, schema: str, n: int, per_stmt: int = 500) -> None:
    """Create ``schema.t1 … tN`` (id int PRIMARY KEY, v text), ``per_stmt`` per transaction."""
    for start in range(0, n, per_stmt):
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN FOR i IN {}..{} LOOP EXECUTE pg_catalog.format("
                "'CREATE TABLE %I.%I (id int PRIMARY KEY, v text)', {}, 't' || i);"
                " END LOOP; END $$"
            ).format(
                sql.Literal(start + 1), sql.Literal(min(n, start + per_stmt)), sql.Literal(schema)
            )
        )


def fresh_schema(conn: Conn, schema: str, tables: int = 0, *, rows: bool = False) -> None:
    """Drop ``schema`` (with everything in it) and create it again, with ``tables`` tables.

    ``rows``: one row in each table, so that dropping or truncating them takes the token path
    (a table holding no row may go without one: the empty-table rule).
    """
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    if tables:
        make_tables(conn, schema, tables)
    if tables and rows:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN FOR i IN 1..{} LOOP EXECUTE pg_catalog.format("
                "'INSERT INTO %I.%I VALUES (1, ''x'')', {}, 't' || i); END LOOP; END $$"
            ).format(sql.Literal(tables), sql.Literal(schema))
        )


@dataclass
class Lab:
    """A server with a plain and a guarded database, and what the cases need to use them."""

    admin: Conn
    admin_dsn: str
    version: str
    major: int
    token: str
    repeat: int
    quick: bool
    bindir: Path | None
    libdir: Path | None
    install_public_key: Any
    dbs: dict[str, str] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)

    def dsn(self, dbname: str) -> str:
        """DSN of database ``dbname`` on this server."""
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = dbname
        return make_conninfo("", **params)

    def create_db(self, prefix: str = "pgguard_bench") -> str:
        """A new empty database, dropped when the lab closes."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.made.append(name)
        return name

    def drop_db(self, name: str) -> None:
        """Drop a database made by :meth:`create_db` now."""
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if name in self.made:
            self.made.remove(name)

    def connect_db(self, dbname: str) -> Conn:
        """An autocommit superuser session on database ``dbname``."""
        return psycopg.connect(self.dsn(dbname), autocommit=True)

    def connect(self, side: str, *, token: bool = False) -> Conn:
        """A fresh autocommit session on side ``side``; with the approving token if asked."""
        conn = psycopg.connect(self.dsn(self.dbs[side]), autocommit=True)
        if token:
            conn.execute(sql.SQL("SET pgguard.token = {}").format(sql.Literal(self.token)))
        return conn

    @contextmanager
    def session(self, side: str, *, token: bool = False) -> Iterator[Conn]:
        """:meth:`connect` as a context manager."""
        conn = self.connect(side, token=token)
        try:
            yield conn
        finally:
            conn.close()

    def ab(
        self,
        work: Callable[[Conn], object],
        *,
        setup: Callable[[Conn], object] | None = None,
        prepare: Callable[[Conn], object] | None = None,
        token: bool = False,
        sides: tuple[str, str] = (PLAIN, GUARDED),
        repeat: int | None = None,
    ) -> Timings:
        """Time ``work`` on both sides, alternating which goes first (ABBA...).

        Per run: ``setup`` in a session holding the token (untimed), then a fresh session
        (with the token if ``token``), ``prepare`` in it (untimed), and ``work`` timed.
        Returns the seconds per side.
        """
        out = Timings(sides)
        for r in range(repeat or self.repeat):
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                if setup is not None:
                    with self.session(side, token=True) as s:
                        setup(s)
                with self.session(side, token=token) as conn:
                    if prepare is not None:
                        prepare(conn)
                    cpu = backend_cpu(conn)
                    out[side].append(timed(lambda c=conn: work(c)))  # type: ignore[misc]
                    after = backend_cpu(conn)
                    if cpu is not None and after is not None:
                        out.cpu[side].append(after - cpu)
        return out
