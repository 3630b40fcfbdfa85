"""Cost of verifying a token signature in SQL, next to Python's ``cryptography``.

Prints, for 2048/3072/4096-bit keys, the median milliseconds one call of
``pgguard.rsa_verify_pkcs1_sha256`` takes inside the server (timed with ``clock_timestamp()``
in a plpgsql loop, so no network round trip is counted), the same for
``cryptography``'s RSA verify in this process, and their ratio.

    python bench/bench_verify.py                  # throwaway local PostgreSQL 15
    python bench/bench_verify.py --major 17 --runs 200
    python bench/bench_verify.py --dsn postgresql://postgres@host/db

Against ``--dsn`` nothing is left behind: the primitives are (re)loaded and timed inside one
transaction that is rolled back (needs a role that may create schema ``pgguard`` or replace its
functions; ``--use-installed`` times the functions already installed instead).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

try:
    import pgguard  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from pgguard import keys  # noqa: E402
from pgguard.resources import sql_dir  # noqa: E402

SQL_FILES = ("020_b64url.sql", "030_rsa_verify.sql")
MSG = b"pgg1.0123456789abcdef.eyJiZW5jaCI6dHJ1ZX0"

TIMER = """
CREATE FUNCTION pg_temp.pgguard_bench(n numeric, k integer, msg bytea, sig bytea, runs integer)
RETURNS SETOF double precision
LANGUAGE plpgsql AS $fn$
DECLARE
    t0 timestamptz;
    ok boolean;
BEGIN
    FOR i IN 1 .. runs LOOP
        t0 := clock_timestamp();
        ok := pgguard.rsa_verify_pkcs1_sha256(n, k, msg, sig);
        RETURN NEXT extract(epoch FROM clock_timestamp() - t0) * 1000;
        IF NOT ok THEN
            RAISE EXCEPTION 'benchmark signature did not verify';
        END IF;
    END LOOP;
END
$fn$
"""


def python_ms(key: rsa.RSAPrivateKey, sig: bytes, runs: int) -> float:
    """Median milliseconds of one ``cryptography`` verification."""
    pub = key.public_key()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pub.verify(sig, MSG, padding.PKCS1v15(), hashes.SHA256())
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def sql_ms(conn: psycopg.Connection[Any], key: rsa.RSAPrivateKey, sig: bytes, runs: int) -> float:
    """Median milliseconds of one SQL verification, timed inside the server."""
    row = keys.public_numbers_for_db(key)
    conn.execute(
        "SELECT count(*) FROM pg_temp.pgguard_bench(%s::numeric, %s, %s, %s, 3)",
        (row.n, row.k, MSG, sig),
    )  # warm-up: plan caches, function lookups
    samples = [
        float(r[0])
        for r in conn.execute(
            "SELECT * FROM pg_temp.pgguard_bench(%s::numeric, %s, %s, %s, %s)",
            (row.n, row.k, MSG, sig, runs),
        ).fetchall()
    ]
    return statistics.median(samples)


def run(dsn: str, bits_list: list[int], runs: int, use_installed: bool) -> str:
    """Benchmark against ``dsn``; returns the printed table."""
    with psycopg.connect(dsn) as conn:  # one transaction, rolled back at the end
        version = conn.execute("SHOW server_version").fetchone()
        if not use_installed:
            conn.execute("CREATE SCHEMA IF NOT EXISTS pgguard")
            for name in SQL_FILES:
                conn.execute((sql_dir() / name).read_text())
        conn.execute(TIMER)
        lines = [
            f"PostgreSQL {version[0] if version else '?'}; median of {runs} runs each",
            f"{'key':>9} | {'SQL (ms)':>9} | {'Python (ms)':>11} | {'SQL/Python':>10}",
            f"{'-' * 9}-+-{'-' * 9}-+-{'-' * 11}-+-{'-' * 10}",
        ]
        for bits in bits_list:
            key = keys.generate_private_key(bits)
            sig = key.sign(MSG, padding.PKCS1v15(), hashes.SHA256())
            s = sql_ms(conn, key, sig, runs)
            p = python_ms(key, sig, runs)
            lines.append(f"{bits:>5} bit | {s:>9.3f} | {p:>11.4f} | {s / p:>9.0f}x")
        conn.rollback()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="server to measure (default: a throwaway local cluster)")
    parser.add_argument("--major", type=int, default=15, help="local cluster major (default 15)")
    parser.add_argument("--runs", type=int, default=100, help="runs per key size (default 100)")
    parser.add_argument("--bits", type=int, nargs="+", default=[2048, 3072, 4096], help="key sizes")
    parser.add_argument(
        "--use-installed", action="store_true", help="time the installed pgguard functions"
    )
    args = parser.parse_args(argv)
    if args.dsn:
        print(run(args.dsn, args.bits, args.runs, args.use_installed))
        return 0
    from pgguard.localpg import LocalCluster

    with LocalCluster(major=args.major) as cluster:
        print(run(cluster.dsn(), args.bits, args.runs, args.use_installed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
