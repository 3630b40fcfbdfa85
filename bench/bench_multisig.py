"""Cost of the server's token check with one signature (pgg1) and two (pgg2, two-person rule).

Times ``pgguard.presented_token()`` inside the server for fresh tokens (every signature
verified) and for a token seen before (the cached verification), 3072-bit keys:

    python bench/bench_multisig.py                 # throwaway local PostgreSQL 15
    python bench/bench_multisig.py --major 17 --runs 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

try:
    import pgguard  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from pgguard import keys, keystore  # noqa: E402
from pgguard.installer import install  # noqa: E402
from pgguard.multisig import cosign  # noqa: E402
from pgguard.signers.keyfile import KeySigner  # noqa: E402
from pgguard.token import issue_token  # noqa: E402

# server-side time of one presented_token() call (no network round trip counted)
TIMED = """
DO $$
DECLARE t0 timestamptz; r text;
BEGIN
    t0 := clock_timestamp();
    r := (pgguard.presented_token()).reason;
    IF r IS NOT NULL THEN RAISE EXCEPTION 'token refused: %', r; END IF;
    PERFORM set_config('bench.ms', (extract(epoch FROM clock_timestamp() - t0) * 1000)::text,
                       false);
END
$$
"""


def _ms(conn: psycopg.Connection[Any], token: str) -> float:
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute(TIMED)
    row = conn.execute("SELECT current_setting('bench.ms')::float8").fetchone()
    assert row is not None
    return float(row[0])


def run(dsn: str, runs: int) -> str:
    """Median server milliseconds per check, first sight and cached, for 1 and 2 signatures."""
    a, b = keys.generate_private_key(3072), keys.generate_private_key(3072)
    with psycopg.connect(dsn, autocommit=True) as conn:
        install(conn)
        keystore.add_keys(conn, [keys.public_numbers_for_db(a), keys.public_numbers_for_db(b)])
        lines = [f"median of {runs} runs, 3072-bit keys, server time of presented_token()"]
        for label, make in (
            ("1 signature (pgg1)", lambda: issue_token(a)),
            ("2 signatures (pgg2)", lambda: cosign(issue_token(a), KeySigner(b))),
        ):
            tokens = [make() for _ in range(runs)]
            first = statistics.median(_ms(conn, t) for t in tokens)
            cached = statistics.median(_ms(conn, tokens[0]) for _ in range(runs))
            lines.append(f"{label:>20}: first check {first:7.2f} ms, cached {cached:5.2f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--major", type=int, default=15, help="local cluster major (default 15)")
    parser.add_argument("--runs", type=int, default=30, help="tokens per case (default 30)")
    args = parser.parse_args(argv)
    from pgguard.localpg import LocalCluster

    with LocalCluster(major=args.major) as cluster:
        print(run(cluster.dsn(), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
