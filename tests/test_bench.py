"""The bench runner works (tiny sizes, one run per side): not a benchmark, no timing asserted.

``python -m bench`` itself is run by hand (see README, Development); CI only checks that the
one command still runs end to end and writes its two files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import PgServer

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_runs_and_writes_results(pg_server: PgServer, tmp_path: Path) -> None:
    cases = "mix_autocommit,truncate_many,session_growth"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--repeat",
            "1",
            "--cases",
            cases,
            "--dsn",
            pg_server.admin_dsn(),
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "RESULTS-quick.json").read_text())
    rows = data["results"][pg_server.version]
    assert [r["case"] for r in rows] == cases.split(",")
    for r in rows:
        assert len(r["a"]["samples"]) == len(r["b"]["samples"]) == 1
        assert r["ratio"] > 0 and r["goal"]
        if pg_server.cluster is not None:  # a server on this machine: its CPU time is read too
            assert r["cpu_ratio"] > 0, r
    md = (tmp_path / "RESULTS-quick.md").read_text()
    assert f"## PostgreSQL {pg_server.version}" in md
    assert "migration mix, 30 statements, autocommit" in md
    # nothing left behind on the server
    with pg_server.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgguard_bench%'"
        ).fetchone()
    assert left == (0,)


def test_bench_rejects_unknown_case() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--cases", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "unknown case(s) nope" in out.stderr
