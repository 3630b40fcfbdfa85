"""Cost of the deploy loop and of row-loss limits, measured side by side in one run.

1. pgbench tpcb-like on two databases with pgguard installed, one with every pgbench table
   under `protect-rows` (default limits): ratio of median tps, protected / unprotected, runs
   taken alternately so machine noise hits both sides alike (target: >= 0.98).
2. A 100,000-row DELETE approved by a token on a protected table against the same DELETE on an
   unprotected one: ratio of median times (target: <= 1.5).
3. `pgguard deploy`'s snapshot and verify on databases of 1,000 and 10,000 guarded tables
   (one row each; every table small enough to be counted exactly), and with estimates only.

    python bench/bench_deploy.py                       # throwaway local server (PostgreSQL 15)
    python bench/bench_deploy.py --pg 17 --repeat 5 --seconds 10 --tables 1000,10000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgguard import keys, keystore
from pgguard.installer import install
from pgguard.rowlimits import protect_rows
from pgguard.snapshot import take_snapshot
from pgguard.token import issue_token
from pgguard.verify import verify

Conn = psycopg.Connection[Any]


@contextlib.contextmanager
def server(major: int) -> Iterator[tuple[str, Path, dict[str, str]]]:
    from pgguard.localpg import LocalCluster

    with LocalCluster(major, settings={"max_locks_per_transaction": "1024"}) as c:
        env = dict(os.environ)
        if c.binaries.libdir is not None:
            env["LD_LIBRARY_PATH"] = str(c.binaries.libdir)
        yield c.dsn(), c.binaries.bindir, env


def db_dsn(admin_dsn: str, name: str) -> str:
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return make_conninfo("", **params)


def create_db(admin: Conn, admin_dsn: str) -> str:
    name = f"pgguard_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return db_dsn(admin_dsn, name)


def pgbench_tps(bindir: Path, env: dict[str, str], dsn: str, seconds: int) -> float:
    out = subprocess.run(
        [str(bindir / "pgbench"), "-n", "-c", "1", "-T", str(seconds), "-M", "prepared", dsn],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"tps = ([0-9.]+)", out)
    assert m, out
    return float(m.group(1))


def bench_pgbench(admin: Conn, admin_dsn: str, bindir: Path, env: dict[str, str],
                  repeat: int, seconds: int) -> None:  # fmt: skip
    sides: dict[str, str] = {}
    for side in ("unprotected", "protected", "deletes only"):
        dsn = create_db(admin, admin_dsn)
        # pgbench -i truncates its tables: initialise before pgguard is installed
        subprocess.run([str(bindir / "pgbench"), "-i", "-q", "-s", "1", dsn], env=env,
                       check=True, capture_output=True)  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as conn:
            install(conn)
            if side != "unprotected":
                ops = ["delete_rows"] if side == "deletes only" else ["delete_rows", "update_rows"]
                report = protect_rows(conn, all_tables=True, ops=ops)
                assert len(report.protected) == 4, report
        sides[side] = dsn
    tps: dict[str, list[float]] = {s: [] for s in sides}
    for _ in range(repeat):
        for side, dsn in sides.items():
            tps[side].append(pgbench_tps(bindir, env, dsn, seconds))
    med = {s: statistics.median(v) for s, v in tps.items()}
    print(f"pgbench tpcb-like, 1 client, {seconds}s x {repeat} alternating runs:")
    for side, values in tps.items():
        print(f"  {side:13s} median {med[side]:8.1f} tps  runs {[round(v) for v in values]}")
    for side in ("protected", "deletes only"):
        print(f"  ratio {side}/unprotected: {med[side] / med['unprotected']:.3f}")


def bench_delete(admin: Conn, admin_dsn: str, repeat: int, rows: int) -> None:
    key = keys.generate_private_key(3072)
    token = issue_token(key, ttl=3600, ops=["delete_rows"], objects=["public.big"])
    conns: dict[str, Conn] = {}
    for side in ("unprotected", "protected+token"):
        conn = psycopg.connect(create_db(admin, admin_dsn), autocommit=True)
        install(conn)
        keystore.add_keys(conn, [keys.public_numbers_for_db(key.public_key())])
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, tenant int, note text)")
        if side != "unprotected":
            protect_rows(conn, ["public.big"])
            conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
        conns[side] = conn
    times: dict[str, list[float]] = {s: [] for s in conns}
    for _ in range(repeat):
        for side, conn in conns.items():
            conn.execute(
                "INSERT INTO big SELECT g, g %% 100, md5(g::text) FROM generate_series(1, %s) g",
                (rows,),
            )
            conn.execute("VACUUM ANALYZE big")
            t = time.perf_counter()
            conn.execute("DELETE FROM big")
            times[side].append(time.perf_counter() - t)
            assert conn.execute("SELECT count(*) FROM big").fetchone() == (0,)
    med = {s: statistics.median(v) for s, v in times.items()}
    print(f"DELETE of {rows:,} rows in one statement, {repeat} alternating runs:")
    for side, values in times.items():
        print(
            f"  {side:16s} median {med[side] * 1000:8.1f} ms"
            f"  runs {[round(v * 1000) for v in values]}"
        )
    print(f"  ratio: {med['protected+token'] / med['unprotected']:.2f}")
    for conn in conns.values():
        conn.close()


def bench_snapshot(admin: Conn, admin_dsn: str, n: int) -> None:
    with psycopg.connect(create_db(admin, admin_dsn), autocommit=True) as conn:
        for start in range(0, n, 500):
            conn.execute(
                f"DO $$ BEGIN FOR i IN {start + 1}..{min(n, start + 500)} LOOP"
                " EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY, v text);"
                " INSERT INTO public.t%s VALUES (1, ''x'')', i, i);"
                " END LOOP; END $$"
            )
        t = time.perf_counter()
        install(conn)
        installed = time.perf_counter() - t
        for label, max_bytes in (("counted", 16 * 1024 * 1024), ("estimated", -1)):
            snap = take_snapshot(conn, command="bench", exact_max_bytes=max_bytes)
            assert len(snap.tables) == n
            t = time.perf_counter()
            report = verify(conn, snap)
            v = time.perf_counter() - t
            assert not report.lost_anything
            print(
                f"  {n:6,} tables, rows {label:9s}: snapshot {snap.seconds:6.2f}s, "
                f"verify {v:6.2f}s  (install took {installed:.1f}s)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", type=int, default=15, help="major of the throwaway server")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10, help="pgbench run length")
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the approved DELETE")
    ap.add_argument("--tables", default="1000,10000", help="table counts for the snapshot")
    ap.add_argument("--only", choices=["pgbench", "delete", "snapshot"], help="one part only")
    args = ap.parse_args()
    with server(args.pg) as (admin_dsn, bindir, env):
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            version = admin.execute("SHOW server_version").fetchone()
            print(f"PostgreSQL {version[0] if version else '?'}")
            if args.only in (None, "pgbench"):
                bench_pgbench(admin, admin_dsn, bindir, env, args.repeat, args.seconds)
            if args.only in (None, "delete"):
                bench_delete(admin, admin_dsn, args.repeat, args.rows)
            if args.only in (None, "snapshot"):
                print("deploy snapshot and verify:")
                for n in (int(x) for x in args.tables.split(",")):
                    bench_snapshot(admin, admin_dsn, n)


if __name__ == "__main__":
    main()
