"""Cost of a schema change through the privilege-mode executor, next to the same DDL run directly.

Two databases on one server, each with --tables existing tables in public: one plain (the DDL
runs directly as its owner), one with pgguard installed in privilege mode by a non-superuser
owner credential (the DDL runs as the app role through ``pgguard.run_ddl``). Each of --repeat
rounds runs the same --statements additive statements (CREATE TABLE, ADD COLUMN, CREATE INDEX,
in turn) on both sides alternately, one transaction each; the table shows the median
milliseconds per statement and the ratio.

    python bench/bench_privmode.py                      # throwaway local PostgreSQL 15
    python bench/bench_privmode.py --pg 17 --tables 1000 --statements 300
    python bench/bench_privmode.py --dsn postgresql://postgres@host/postgres   # a superuser DSN

Against --dsn it makes (and drops) two databases and three roles.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import pgguard  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from pgguard.installer import install  # noqa: E402

Conn = psycopg.Connection[Any]


@contextlib.contextmanager
def server(dsn: str | None, major: int) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pgguard.localpg import LocalCluster

    with LocalCluster(major, settings={"max_locks_per_transaction": "1024"}) as c:
        yield c.dsn()


def dsn_for(base: str, **kw: str) -> str:
    params = conninfo_to_dict(base)
    params.update(kw)
    return make_conninfo("", **params)


def statements(n: int, prefix: str) -> list[str]:
    out = []
    for i in range(n):
        k = i % 3
        if k == 0:
            out.append(f"CREATE TABLE public.{prefix}{i} (id int PRIMARY KEY, v text)")
        elif k == 1:
            out.append(f"ALTER TABLE public.{prefix}{i - 1} ADD COLUMN c{i} int")
        else:
            out.append(f"CREATE INDEX ON public.{prefix}{i - 2} (v)")
    return out


def timed(conn: Conn, stmts: list[str], through_executor: bool) -> list[float]:
    """Milliseconds of each statement (its own transaction, commit included)."""
    out = []
    for s in stmts:
        started = time.perf_counter()
        with conn.transaction():
            if through_executor:
                conn.execute("SELECT pgguard.run_ddl(%s)", (s,))
            else:
                conn.execute(s.encode())
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="superuser DSN of an existing server")
    ap.add_argument("--pg", type=int, default=15, help="major of the throwaway server")
    ap.add_argument("--tables", type=int, default=100, help="existing tables in each database")
    ap.add_argument("--statements", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tag = uuid.uuid4().hex[:8]
    owner, app = f"bench_own_{tag}", f"bench_app_{tag}"
    dbs = [f"bench_plain_{tag}", f"bench_priv_{tag}"]
    with server(args.dsn, args.pg) as base, psycopg.connect(base, autocommit=True) as su:
        su.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'x'").format(sql.Identifier(owner))
        )
        try:
            for db in dbs:
                su.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(db), sql.Identifier(owner)
                    )
                )
                with psycopg.connect(dsn_for(base, dbname=db), autocommit=True) as c:
                    c.execute(
                        sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner))
                    )
                with psycopg.connect(
                    dsn_for(base, dbname=db, user=owner, password="x"), autocommit=True
                ) as c:
                    c.execute(
                        f"DO $$ BEGIN FOR i IN 1..{args.tables} LOOP EXECUTE format("
                        "'CREATE TABLE public.t%s (id int PRIMARY KEY, v text)', i); END LOOP;"
                        " END $$"
                    )
            with psycopg.connect(
                dsn_for(base, dbname=dbs[1], user=owner, password="x"), autocommit=True
            ) as c:
                report = install(c, mode="privileges", app_role=app)
            password = report.app_password or ""
            plain = psycopg.connect(
                dsn_for(base, dbname=dbs[0], user=owner, password="x"), autocommit=True
            )
            guarded = psycopg.connect(
                dsn_for(base, dbname=dbs[1], user=app, password=password), autocommit=True
            )
            direct, executor = [], []
            for r in range(args.repeat):
                stmts = statements(args.statements, f"b{r}_")
                direct.append(timed(plain, stmts, False))
                executor.append(timed(guarded, stmts, True))
            print(
                f"PostgreSQL {su.info.server_version // 10000}, {args.tables} existing tables,"
                f" {args.statements} statements x {args.repeat} rounds"
            )
            # on a shared machine the median carries other processes' load; the per-position
            # minimum over rounds is the cost with the least interference
            for label, pick in (("median", statistics.median), ("min", min)):
                d = statistics.mean(pick(r[i] for r in direct) for i in range(args.statements))
                e = statistics.mean(pick(r[i] for r in executor) for i in range(args.statements))
                print(
                    f"{label:<7} direct {d:7.2f} ms   run_ddl {e:7.2f} ms   ratio {e / d:5.2f}x"
                    f"   (+{e - d:.2f} ms per statement)"
                )
            plain.close()
            guarded.close()
        finally:
            for db in dbs:
                su.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
            for role in (app, owner):
                su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


if __name__ == "__main__":
    main()
