"""`pgguard doctor`: each way around the guard it knows, opened on purpose, then found."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgguard.doctor import Context, Finding, doctor

Conn = psycopg.Connection[Any]


def ids(conn: Conn) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in doctor(conn).findings:
        out.setdefault(f.id, []).append(f)
    return out


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgguard", "doctor", "--dsn", dsn, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_clean_app_role_has_nothing_high(guarded_admin: Conn, app_role: Any) -> None:
    app = app_role.connect()
    report = doctor(app)
    assert not report.open_high, report.findings
    assert "function_integrity" in report.checks
    done = run_cli(app_role.dsn, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"findings", "checks", "database", "role", "high"}
    assert data["high"] == 0


def test_superuser_dsn_is_high_and_exits_1(guarded_db_dsn: str) -> None:
    done = run_cli(guarded_db_dsn, "--json")
    assert done.returncode == 1, done.stderr
    found = {f["id"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["dsn.superuser"]["severity"] == "high"
    assert found["dsn.database_owner"]["severity"] == "high"
    assert set(found["dsn.superuser"]) == {"id", "severity", "evidence", "fix"}


def test_members_of_the_protected_role(guarded_admin: Conn, app_role: Any) -> None:
    guarded_admin.execute(
        sql.SQL("GRANT pgguard_owner TO {}").format(sql.Identifier(app_role.name))
    )
    found = ids(app_role.connect())["role.pgguard_owner_member"]
    assert app_role.name in found[0].evidence and "REVOKE" in found[0].fix


def test_write_all_data_and_persisted_token(guarded_admin: Conn, app_role: Any) -> None:
    role = sql.Identifier(app_role.name)
    guarded_admin.execute(sql.SQL("GRANT pg_write_all_data TO {}").format(role))
    guarded_admin.execute(sql.SQL("ALTER ROLE {} SET pgguard.token = 'x'").format(role))
    try:
        found = ids(guarded_admin)
        assert any(app_role.name in f.evidence for f in found["role.pg_write_all_data"])
        assert any(app_role.name in f.evidence for f in found["setting.persisted_token"])
    finally:
        guarded_admin.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))


def test_event_triggers_and_changed_functions(guarded_admin: Conn) -> None:
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_check DISABLE")
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end DISABLE")
    guarded_admin.execute(
        "CREATE OR REPLACE FUNCTION pgguard.shell_quote(word text) RETURNS text"
        " LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$ SELECT word $$"
    )
    found = ids(guarded_admin)
    assert {f.evidence for f in found["guard.event_trigger_not_always"]} == {
        "event trigger pgguard_ddl_check is disabled",
        "event trigger pgguard_ddl_end is disabled",
    }
    assert "pgguard.shell_quote" in found["guard.functions_changed"][0].evidence


def test_unguarded_table(guarded_admin: Conn) -> None:
    guarded_admin.execute("CREATE TABLE t (id int)")
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end DISABLE")
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_ddl_check DISABLE")
    guarded_admin.execute("ALTER TABLE t DISABLE TRIGGER pgguard_truncate_guard")
    assert "public.t (disabled)" in ids(guarded_admin)["guard.tables_unguarded"][0].evidence


@pytest.mark.parametrize("how", ["createrole", "event_triggers", "grant"])
def test_version_dependent_findings(
    guarded_admin: Conn, app_role: Any, pg_server: Any, how: str
) -> None:
    role = sql.Identifier(app_role.name)
    if how == "createrole":
        guarded_admin.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(role))
        expected = "role.createrole" if pg_server.major < 16 else None
    elif how == "event_triggers":
        if pg_server.major < 17:
            pytest.skip("event_triggers is a setting from PostgreSQL 17 on")
        guarded_admin.execute(sql.SQL("ALTER ROLE {} SET event_triggers = off").format(role))
        expected = "setting.event_triggers_off"
    else:
        if pg_server.major < 15:
            pytest.skip("GRANT SET ON PARAMETER is PostgreSQL 15+")
        guarded_admin.execute(
            sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(role)
        )
        expected = "grant.set_session_replication_role"
    try:
        found = ids(guarded_admin)
        if expected is None:
            assert "role.createrole" not in found
        else:
            assert any(app_role.name in f.evidence for f in found[expected]), found
    finally:
        guarded_admin.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))
        guarded_admin.execute(sql.SQL("ALTER ROLE {} NOCREATEROLE").format(role))
        if how == "grant":
            guarded_admin.execute(
                sql.SQL("REVOKE SET ON PARAMETER session_replication_role FROM {}").format(role)
            )


def test_other_modules_add_checks(guarded_admin: Conn) -> None:
    def extra(ctx: Context) -> Iterator[Finding]:
        yield Finding("extra.demo", "medium", f"seen {ctx.database}", "nothing")

    def broken(ctx: Context) -> Iterator[Finding]:
        ctx.rows("SELECT * FROM no_such_table")
        yield from ()

    report = doctor(guarded_admin, checks=[extra, broken])
    assert [f.id for f in report.findings] == ["extra.demo", "check_failed.broken"]
    assert report.checks == ("extra", "broken")


def test_not_installed_exits_4(db_dsn: str) -> None:
    assert run_cli(db_dsn).returncode == 4
