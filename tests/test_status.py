"""`pgguard status`: healthy, degraded (each way), not installed — and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from pgguard.errors import NotInstalled
from pgguard.health import status

Conn = psycopg.Connection[Any]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgguard", *args], capture_output=True, text=True, timeout=120
    )


def test_healthy_json_shape_and_exit_0(guarded_admin: Conn, guarded_db_dsn: str) -> None:
    guarded_admin.execute("CREATE TABLE a (id int); CREATE TABLE b (id int)")
    proc = run_cli("status", "--json", "--dsn", guarded_db_dsn)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["healthy"] is True
    assert data["tables_protected"] == 2 and data["tables_unprotected_count"] == 0
    assert {t["name"]: (t["enabled"], t["ok"]) for t in data["event_triggers"]} == {
        "pgguard_sql_drop": ("always", True),
        "pgguard_ddl_end": ("always", True),
        "pgguard_drop_check": ("always", True),
        "pgguard_ddl_check": ("always", True),
        "pgguard_ddl_start": ("always", True),
        "pgguard_watch_start": ("always", True),
        "pgguard_table_rewrite": ("always", True),
    }
    assert data["problems"] == [] and data["install_complete"] is True
    for key in (
        "installed_version",
        "package_version",
        "keys_live",
        "keys_revoked",
        "excluded_schemas",
        "overrides_24h",
        "refusals_total",
        "database",
    ):
        assert key in data


def test_any_role_that_can_connect_may_run_it(guarded_db_name: str, make_app_role: Any) -> None:
    plain = make_app_role(guarded_db_name, grants=False)
    with plain.connect() as conn:
        assert status(conn).healthy


@pytest.mark.parametrize("mode", ["DISABLE", "ENABLE", "ENABLE REPLICA"])
def test_event_trigger_not_always_is_degraded(
    guarded_admin: Conn, guarded_db_dsn: str, mode: str
) -> None:
    guarded_admin.execute(f"ALTER EVENT TRIGGER pgguard_sql_drop {mode}")
    st = status(guarded_admin)
    assert not st.healthy
    word = {"DISABLE": "disabled", "ENABLE": "origin", "ENABLE REPLICA": "replica"}[mode]
    assert st.problems == (f"event trigger pgguard_sql_drop is {word}, not enabled always",)
    assert run_cli("status", "--dsn", guarded_db_dsn).returncode == 1


def test_missing_event_trigger_is_degraded(guarded_admin: Conn) -> None:
    guarded_admin.execute("DROP EVENT TRIGGER pgguard_ddl_end")
    st = status(guarded_admin)
    assert "event trigger pgguard_ddl_end is missing" in st.problems


def test_unguarded_tables_are_listed(guarded_admin: Conn, guarded_db_dsn: str) -> None:
    # a superuser switching the event trigger off is exactly what status must catch
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end DISABLE")
    guarded_admin.execute("CREATE TABLE sneaked_in (id int)")
    guarded_admin.execute("CREATE TABLE p (id int) PARTITION BY LIST (id)")
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end ENABLE ALWAYS")
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_sql_drop DISABLE")
    guarded_admin.execute("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)")  # guarded
    st = status(guarded_admin)
    assert {(t.table, t.state) for t in st.tables_unprotected} == {
        ("public.sneaked_in", "missing"),
        ("public.p", "missing"),
    }
    proc = run_cli("status", "--dsn", guarded_db_dsn)
    assert proc.returncode == 1
    assert "public.sneaked_in: missing" in proc.stderr
    assert "2 table(s) without an enabled-always TRUNCATE guard" in proc.stderr


def test_not_installed_exits_4(admin: Conn, db_dsn: str) -> None:
    with pytest.raises(NotInstalled):
        status(admin)
    proc = run_cli("status", "--dsn", db_dsn)
    assert proc.returncode == 4
    assert "pgguard is not installed" in proc.stderr and "pgguard install" in proc.stderr


def test_cannot_connect_exits_3() -> None:
    proc = run_cli("status", "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2")
    assert proc.returncode == 3
    assert "cannot connect" in proc.stderr
