"""``python -m bench``: the guard's cost, side by side, on throwaway PostgreSQL 15 and 18.

For each server version: a throwaway cluster (pgguard.localpg), a plain and a guarded database
on it, every case run interleaved (unguarded, guarded, guarded, unguarded, ...) ``--repeat``
times; then ``bench/RESULTS.md`` and ``bench/results.json``.

    python -m bench                          # PostgreSQL 15 and 18, 5 runs per side
    python -m bench --pg 17 --cases mix_autocommit,create_table --repeat 3
    python -m bench --quick                  # a handful of statements: does the bench work?
    python -m bench --dsn postgresql://postgres@host/postgres   # an existing server
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pgguard import keys, localpg
from pgguard.installer import install
from pgguard.token import issue_token

from . import report
from .cases import CASES
from .lab import GUARDED, PLAIN, Lab, Row

HERE = Path(__file__).resolve().parent
SERVER_SETTINGS = {"max_locks_per_transaction": "1024"}


@contextmanager
def server(dsn: str | None, major: int) -> Iterator[tuple[str, localpg.Binaries | None]]:
    """An admin DSN: ``dsn`` itself, or a throwaway cluster of ``major``."""
    if dsn:
        with psycopg.connect(dsn) as c:
            num = int(c.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        try:
            binaries: localpg.Binaries | None = localpg.find_binaries(num // 10000, download=False)
        except localpg.LocalPgError:
            binaries = None
        yield dsn, binaries
        return
    with localpg.LocalCluster(major, settings=SERVER_SETTINGS) as cluster:
        yield cluster.dsn(), cluster.binaries


def run_server(
    admin_dsn: str,
    binaries: localpg.Binaries | None,
    names: list[str],
    repeat: int,
    quick: bool,
) -> tuple[str, list[Row]]:
    """Every case in ``names`` on one server; (server version, rows)."""
    key = keys.generate_private_key(3072)
    token = issue_token(
        key,
        ttl=24 * 3600,
        ops=["drop_table", "drop_column", "truncate", "delete_rows", "update_rows"],
        objects=["*"],
        reason="bench",
    )
    rows: list[Row] = []
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        major = int(admin.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
        lab = Lab(
            admin=admin,
            admin_dsn=admin_dsn,
            version=version,
            major=major,
            token=token,
            repeat=repeat,
            quick=quick,
            bindir=binaries.bindir if binaries else None,
            libdir=binaries.libdir if binaries else None,
            install_public_key=keys.public_numbers_for_db(key.public_key()),
        )
        try:
            lab.dbs[PLAIN] = lab.create_db()
            lab.dbs[GUARDED] = lab.create_db()
            with lab.connect_db(lab.dbs[GUARDED]) as g:
                install(g, public_keys=[lab.install_public_key])
            for name in names:
                t = time.perf_counter()
                print(f"  PostgreSQL {version}: {name} ...", end="", flush=True, file=sys.stderr)
                got = CASES[name](lab)
                for r in got:
                    r.pg = version
                rows += got
                print(f" {time.perf_counter() - t:.0f} s", file=sys.stderr)
        finally:
            for db in list(lab.made):
                lab.drop_db(db)
    return version, rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="cases: " + ", ".join(CASES),
    )
    ap.add_argument("--pg", default="15,18", help="majors of the throwaway servers (15,18)")
    ap.add_argument("--dsn", help="superuser DSN of an existing server to use instead")
    ap.add_argument("--repeat", type=int, default=None, help="runs per side (5; --quick 2)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case ids")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where results go (bench/)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    repeat = args.repeat or (2 if args.quick else 5)
    majors = [int(m) for m in args.pg.split(",") if m.strip()]
    meta = {
        "command": "python -m bench "
        + " ".join(
            shlex.quote(a) for a in (argv or sys.argv[1:]) if "://" not in a and "=" not in a
        ),
        "repeat": repeat,
        "quick": args.quick,
        "machine": report.machine(),
        "started_at": report.now(),
    }
    results: dict[str, list[Row]] = {}
    stem = "RESULTS-quick" if args.quick else "RESULTS"
    for major in [0] if args.dsn else majors:
        with server(args.dsn, major) as (admin_dsn, binaries):
            version, rows = run_server(admin_dsn, binaries, names, repeat, args.quick)
            results[version] = rows
            print("\n".join(report.table(rows)), file=sys.stderr)
        # written after each server, so a long run interrupted later keeps what it measured
        meta["finished_at"] = report.now()
        meta["versions"] = list(results)
        md, js = report.write(args.out_dir, stem, results, meta)
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
