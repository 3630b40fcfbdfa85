"""`pgguard demo --dsn`: the whole story on a scratch database, and nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def test_demo_against_a_server_leaves_nothing_behind(pg_server: Any) -> None:
    def leftovers() -> set[str]:
        with pg_server.connect() as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'pgguard\\_demo\\_%'"
                    " UNION ALL"
                    " SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgguard\\_demo\\_%'"
                )
            }

    before = leftovers()
    proc = subprocess.run(
        [sys.executable, "-m", "pgguard", "demo", "--dsn", pg_server.admin_dsn()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for step in ("pgguard install", "refusing to drop table", "already used", "healthy"):
        assert step in proc.stderr, step
    assert "was NOT refused" not in proc.stderr
    assert leftovers() == before
