"""Cost of the guard, side by side with the same work on an unguarded database.

Prints a table of ratios (guarded / plain), each the median of --repeat runs taken alternately
in one run on one server, so machine noise hits both sides alike. Also times `pgguard install`
on databases of 1,000 and 10,000 tables and a second (no-op) install.

    python bench/bench_guard.py                 # throwaway local server (PostgreSQL 15)
    python bench/bench_guard.py --pg 17 --tables 1000 --repeat 5
    python bench/bench_guard.py --dsn postgresql://postgres@host/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgguard import keys
from pgguard.installer import install
from pgguard.token import issue_token

Conn = psycopg.Connection[Any]


@contextlib.contextmanager
def server(dsn: str | None, major: int) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pgguard.localpg import LocalCluster

    with LocalCluster(major, settings={"max_locks_per_transaction": "1024"}) as c:
        yield c.dsn()


def db_dsn(admin_dsn: str, name: str) -> str:
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return make_conninfo("", **params)


def create_db(admin: Conn, admin_dsn: str) -> tuple[str, Conn]:
    name = f"pgguard_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, psycopg.connect(db_dsn(admin_dsn, name), autocommit=True)


def make_tables(conn: Conn, n: int, schema: str = "public", per_txn: int = 500) -> None:
    for start in range(0, n, per_txn):
        conn.execute(
            f"DO $$ BEGIN FOR i IN {start + 1}..{min(n, start + per_txn)} LOOP"
            f" EXECUTE format('CREATE TABLE {schema}.t%s (id int PRIMARY KEY, v text)', i);"
            " END LOOP; END $$"
        )


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_pair(
    name: str,
    plain: Conn,
    guarded: Conn,
    setup: Callable[[Conn], None],
    work: Callable[[Conn], None],
    repeat: int,
) -> tuple[str, float, float]:
    times: dict[str, list[float]] = {"plain": [], "guarded": []}
    for _ in range(repeat):
        for label, conn in (("plain", plain), ("guarded", guarded)):
            setup(conn)
            times[label].append(timed(lambda c=conn: work(c)))  # type: ignore[misc]
    return name, statistics.median(times["plain"]), statistics.median(times["guarded"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="superuser DSN of a server to use (default: throwaway)")
    ap.add_argument("--pg", type=int, default=15, help="major of the throwaway server")
    ap.add_argument("--tables", type=int, default=1000, help="tables per DROP/TRUNCATE run")
    ap.add_argument("--creates", type=int, default=500, help="CREATE TABLEs per run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--install-sizes", default="1000,10000", help="table counts for install")
    args = ap.parse_args()

    key = keys.generate_private_key(3072)
    row = keys.public_numbers_for_db(key.public_key())
    n = args.tables
    results: list[tuple[str, float, float]] = []
    install_rows: list[tuple[str, float]] = []
    with (
        server(args.dsn, args.pg) as admin_dsn,
        psycopg.connect(admin_dsn, autocommit=True) as admin,
    ):
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        made: list[str] = []
        try:
            plain_name, plain = create_db(admin, admin_dsn)
            guarded_name, guarded = create_db(admin, admin_dsn)
            made += [plain_name, guarded_name]
            install(guarded, public_keys=[row])
            plain.close()
            guarded.close()
            token = issue_token(key, ttl=3600, ops=["drop_table", "truncate"], objects=["*"])

            def sessions() -> tuple[Conn, Conn]:
                # fresh sessions per workload: a session's plpgsql caches grow with the tables
                # it has truncated (see README, Limits), which would tilt later rows
                p = psycopg.connect(db_dsn(admin_dsn, plain_name), autocommit=True)
                g = psycopg.connect(db_dsn(admin_dsn, guarded_name), autocommit=True)
                g.execute(sql.SQL("SET pgguard.token = {}").format(sql.Literal(token)))
                return p, g

            def fresh_schema(conn: Conn) -> None:
                conn.execute("DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench")
                make_tables(conn, n, "bench")

            def run(
                label: str, setup: Callable[[Conn], None], work: Callable[[Conn], None]
            ) -> None:
                p, g = sessions()
                try:
                    results.append(bench_pair(label, p, g, setup, work, args.repeat))
                finally:
                    p.close()
                    g.close()

            run(
                f"DROP SCHEMA … CASCADE, {n} tables (token)",
                fresh_schema,
                lambda c: c.execute("DROP SCHEMA bench CASCADE") and None,
            )
            truncate_all = "TRUNCATE " + ", ".join(f"bench.t{i}" for i in range(1, n + 1))
            run(
                f"TRUNCATE {n} tables in one statement (token)",
                fresh_schema,
                lambda c: c.execute(truncate_all) and None,  # type: ignore[arg-type]
            )
            m = args.creates
            run(
                f"CREATE TABLE × {m} (guard attached to each)",
                lambda c: c.execute("DROP SCHEMA IF EXISTS mk CASCADE; CREATE SCHEMA mk") and None,
                lambda c: make_tables(c, m, "mk", per_txn=m),
            )
            index_loop = (
                "DO $$ BEGIN FOR i IN 1..200 LOOP CREATE INDEX ix_a ON ix (a);"
                " DROP INDEX ix_a; END LOOP; END $$"
            )
            run(
                "CREATE INDEX + DROP INDEX × 200 (other DDL)",
                lambda c: (
                    c.execute("DROP TABLE IF EXISTS ix; CREATE TABLE ix (a int, b int)") and None
                ),
                lambda c: c.execute(index_loop) and None,  # type: ignore[arg-type]
            )

            def after_truncating(conn: Conn) -> None:
                fresh_schema(conn)
                conn.execute(truncate_all)  # type: ignore[arg-type]
                conn.execute("DROP TABLE IF EXISTS ix; CREATE TABLE ix (a int, b int)")

            run(
                f"the same DDL, in a session that truncated {n} tables",
                after_truncating,
                lambda c: c.execute(index_loop) and None,  # type: ignore[arg-type]
            )
            # one verification: a fresh token each time, so the cache cannot answer
            plain, guarded = sessions()
            ver: list[float] = []
            guarded.execute("CREATE TABLE IF NOT EXISTS v1 (id int)")
            for _ in range(max(5, args.repeat)):
                tok = issue_token(key, ttl=3600, ops=["truncate"], objects=["public.v1"])
                guarded.execute(sql.SQL("SET pgguard.token = {}").format(sql.Literal(tok)))
                ver.append(timed(lambda: guarded.execute("TRUNCATE v1") and None))
            plain.execute("CREATE TABLE IF NOT EXISTS v1 (id int)")
            base = statistics.median(
                [timed(lambda: plain.execute("TRUNCATE v1") and None) for _ in range(5)]
            )
            results.append(("TRUNCATE 1 table, fresh 3072-bit token", base, statistics.median(ver)))
            plain.close()
            guarded.close()

            for size in [int(s) for s in args.install_sizes.split(",") if s]:
                name, conn = create_db(admin, admin_dsn)
                made.append(name)
                make_tables(conn, size)
                first = timed(lambda c=conn: install(c) and None)  # type: ignore[misc]
                again = timed(lambda c=conn: install(c) and None)  # type: ignore[misc]
                install_rows.append((f"install on {size} tables", first))
                install_rows.append((f"second install on {size} tables (no-op)", again))
                conn.close()
        finally:
            for name in made:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    print(f"\npgguard guard cost on PostgreSQL {version} (median of {args.repeat})\n")
    print(f"{'workload':<52} {'plain s':>9} {'guarded s':>10} {'ratio':>7}")
    for label, p, g in results:
        print(f"{label:<52} {p:>9.4f} {g:>10.4f} {g / p:>6.2f}×")
    print(f"\n{'install':<52} {'seconds':>9}")
    for label, s in install_rows:
        print(f"{label:<52} {s:>9.2f}")


if __name__ == "__main__":
    main()
