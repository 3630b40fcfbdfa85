"""The deploy loop: `snapshot` → change → `verify`, and `pgguard deploy -- COMMAND` end to end.

Library functions are called directly for the comparisons (rows counted and estimated, tables
and columns gone with or without the override that approved them, renames, new tables); the CLI
runs as a real subprocess for exit codes, streamed output, `--json` and the audit trail.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tokenhelp import Conn, approver_key, count, register, run_cli

from pgguard import keys
from pgguard.deploy import DeployRefused, check_health, redact
from pgguard.errors import UsageError
from pgguard.snapshot import Snapshot, take_snapshot
from pgguard.token import issue_token
from pgguard.verify import RowLossLimit, verify


@pytest.fixture(scope="module")
def approver() -> rsa.RSAPrivateKey:
    return approver_key("deploy")


@pytest.fixture
def shop(guarded_admin: Conn, approver: rsa.RSAPrivateKey) -> Conn:
    """tenants (20 rows), orders (40 rows, a legacy column), a key registered."""
    register(guarded_admin, approver)
    guarded_admin.execute("CREATE TABLE tenants (id int PRIMARY KEY, name text)")
    guarded_admin.execute("CREATE TABLE orders (id int, tenant int, legacy text)")
    guarded_admin.execute("INSERT INTO tenants SELECT g, 't' || g FROM generate_series(1, 20) g")
    guarded_admin.execute("INSERT INTO orders SELECT g, g % 20, 'x' FROM generate_series(1, 40) g")
    return guarded_admin


def test_limit_parsing() -> None:
    default = RowLossLimit.parse(None)
    assert default.allows(0, 10, True) and not default.allows(1, 10, True)
    assert default.allows(10, 100, False) and not default.allows(11, 100, False)
    assert RowLossLimit.parse("5").allows(5, 5, True) and not RowLossLimit.parse("5").allows(
        6, 99, True
    )
    assert RowLossLimit.parse("10%").allows(1, 10, True)
    assert not RowLossLimit.parse("10%").allows(2, 10, True)
    with pytest.raises(UsageError):
        RowLossLimit.parse("lots")


def test_redact_hides_passwords() -> None:
    assert redact("psql postgresql://app:s3cret@db/shop") == "psql postgresql://app:***@db/shop"
    assert redact("psql 'host=db password=s3cret'") == "psql 'host=db password=***'"


def test_nothing_lost(shop: Conn) -> None:
    snap = take_snapshot(shop, command="migrate")
    assert {t.name: (t.rows, t.exact) for t in snap.tables} == {
        "public.orders": (40, True),
        "public.tenants": (20, True),
    }
    assert snap.restore_point.lsn and snap.restore_point.txid > 0
    shop.execute("ALTER TABLE tenants ADD COLUMN plan text")
    shop.execute("CREATE TABLE invoices (id int)")
    shop.execute("INSERT INTO tenants VALUES (21, 'new')")
    report = verify(shop, snap, command="migrate", command_exit=0)
    assert not report.lost_anything and report.exit_code == 0 and report.outcome == "ok"
    assert report.tables_new == ("public.invoices",)
    row = shop.execute(
        "SELECT outcome, exit_code, command, restore_lsn::text, summary FROM pgguard.deploys"
        " WHERE id = %s",
        (snap.deploy_id,),
    ).fetchone()
    assert row is not None
    assert row[:4] == ("ok", 0, "migrate", snap.restore_point.lsn)
    assert row[4]["tables_new"] == 1 and row[4]["unapproved"] == []


def test_unapproved_row_loss_fails_and_command_code_kept(shop: Conn) -> None:
    snap = take_snapshot(shop)
    shop.execute("DELETE FROM tenants WHERE id > 15")
    report = verify(shop, snap, command="x", command_exit=0)
    assert [(r.table, r.before, r.after, r.exact, r.ok) for r in report.rows_fell] == [
        ("public.tenants", 20, 15, True, False)
    ]
    assert report.unapproved == ("5 rows of public.tenants (counted)",)
    assert report.exit_code == 1 and report.outcome == "loss"
    # within a limit given by the caller: the command's own exit code comes through
    snap2 = take_snapshot(shop)
    shop.execute("DELETE FROM tenants WHERE id > 13")
    report2 = verify(shop, snap2, limit=RowLossLimit.parse("2"), command="x", command_exit=3)
    assert report2.rows_fell[0].within_limit and report2.exit_code == 3
    assert report2.outcome == "failed"


def test_approved_drops_report_their_override(shop: Conn, approver: rsa.RSAPrivateKey) -> None:
    snap = take_snapshot(shop)
    token = issue_token(
        approver, ttl=300, ops=["drop_column", "drop_table"],
        objects=["public.orders.legacy", "public.tenants"], reason="JIRA-1",
    )  # fmt: skip
    shop.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    shop.execute("ALTER TABLE orders DROP COLUMN legacy")
    shop.execute("DROP TABLE tenants")
    shop.execute("RESET pgguard.token")
    report = verify(shop, snap)
    assert [(g.object, g.rows) for g in report.tables_gone] == [("public.tenants", 20)]
    assert [g.object for g in report.columns_gone] == ["public.orders.legacy"]
    for g in (*report.tables_gone, *report.columns_gone):
        assert g.approval is not None and g.approval.why == "JIRA-1"
    assert report.unapproved == () and report.exit_code == 0
    data = report.to_json()
    assert data["columns_gone"][0]["approval"]["op"] == "drop_column"
    assert data["tables_gone"][0]["approved"] is True


def test_unapproved_drop_by_a_superuser_who_switched_the_guard_off(shop: Conn) -> None:
    snap = take_snapshot(shop)
    shop.execute("ALTER EVENT TRIGGER pgguard_sql_drop DISABLE")
    shop.execute("ALTER EVENT TRIGGER pgguard_drop_check DISABLE")
    shop.execute("ALTER TABLE orders DROP COLUMN legacy")
    shop.execute("ALTER TABLE orders RENAME TO orders_v2")
    shop.execute("ALTER EVENT TRIGGER pgguard_sql_drop ENABLE ALWAYS")
    shop.execute("ALTER EVENT TRIGGER pgguard_drop_check ENABLE ALWAYS")
    report = verify(shop, snap)
    assert [(g.object, g.approval) for g in report.columns_gone] == [("public.orders.legacy", None)]
    assert report.renamed == (("public.orders", "public.orders_v2"),)
    assert report.unapproved == ("column public.orders.legacy",)
    assert report.exit_code == 1


def _live_tuples_settle(conn: Conn, table: str, expected: int) -> None:
    """Wait until the statistics say ``expected`` live rows, twice in a row (PG 14's collector
    receives a session's counts up to 500 ms late)."""
    deadline = time.monotonic() + 20
    seen = last = None
    while time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        q = f"SELECT n_live_tup FROM pg_stat_all_tables WHERE relid = '{table}'::regclass"
        last, seen = seen, count(conn, q)
        if seen == expected == last:  # twice, 0.6 s apart: nothing still in flight
            return
        time.sleep(0.6)
    pytest.fail(f"the statistics never showed {expected} live rows in {table} (last: {seen})")


def test_estimated_tables(shop: Conn) -> None:
    # written and analysed by sessions that end: no count of ours still pending in `shop`
    for stmt in (
        "CREATE TABLE accounts (id int)",
        "INSERT INTO accounts SELECT generate_series(1, 20)",
        "ANALYZE accounts",
    ):
        with psycopg.connect(shop.info.dsn, autocommit=True) as other:
            other.execute(stmt)
    _live_tuples_settle(shop, "accounts", 20)
    snap = take_snapshot(shop, exact_max_bytes=0, exact=["public.orders"])
    assert {t.name: (t.rows, t.exact) for t in snap.tables if t.name != "public.tenants"} == {
        "public.orders": (40, True),
        "public.accounts": (20, False),
    }
    with psycopg.connect(shop.info.dsn, autocommit=True) as other:
        other.execute("DELETE FROM accounts WHERE id > 10")
    # the statistics catch up when the deleting session has gone
    _live_tuples_settle(shop, "accounts", 10)
    report = verify(shop, snap)
    assert [(r.table, r.before, r.after, r.exact, r.ok) for r in report.rows_fell] == [
        ("public.accounts", 20, 10, False, False)
    ]
    assert any("estimated" in n for n in report.notes)


def test_snapshot_file_round_trip_and_bad_files(shop: Conn, tmp_path: Path) -> None:
    snap = take_snapshot(shop)
    path = tmp_path / "before.json"
    snap.save(path)
    again = Snapshot.load(path)
    assert again.tables == snap.tables and again.restore_point == snap.restore_point
    assert again.deploy_id == snap.deploy_id and again.database == snap.database
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(UsageError, match="not a pgguard snapshot"):
        Snapshot.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UsageError, match="not JSON"):
        Snapshot.load(tmp_path / "broken.json")


def test_degraded_guard_refuses_to_deploy(shop: Conn) -> None:
    shop.execute("ALTER EVENT TRIGGER pgguard_ddl_end DISABLE")
    with pytest.raises(DeployRefused, match="degraded") as info:
        check_health(shop)
    assert info.value.exit_code == 1
    assert not check_health(shop, allow_degraded=True).healthy
    shop.execute("ALTER EVENT TRIGGER pgguard_ddl_end ENABLE ALWAYS")


def test_deploy_records_are_written_only_through_pgguard(
    shop: Conn, guarded_db_dsn: str, make_app_role: Any
) -> None:
    snap = take_snapshot(shop)
    app = make_app_role().connect()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("INSERT INTO pgguard.deploys (restore_time, outcome) VALUES (now(), 'ok')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("UPDATE pgguard.deploys SET outcome = 'ok'")
    # readable, like every pgguard table: a role's pg_dump of the database must read it
    app.execute("SELECT * FROM pgguard.deploys")
    # another role can neither finish this deploy nor read the overrides made during it
    assert app.execute(
        "SELECT pgguard.deploy_end(%s, 'ok', 0, '{}')", (snap.deploy_id,)
    ).fetchone() == (False,)  # noqa: E501
    assert app.execute(
        "SELECT count(*) FROM pgguard.deploy_approvals(%s)", (snap.deploy_id,)
    ).fetchone() == (0,)  # noqa: E501
    # but it can snapshot and verify its own
    mine = take_snapshot(app)
    assert verify(app, mine).exit_code == 0
    row = shop.execute(
        "SELECT session_user_name, outcome FROM pgguard.deploys WHERE id = %s", (mine.deploy_id,)
    ).fetchone()
    assert row == (app.info.user, "ok")


# --- the CLI -----------------------------------------------------------------------------------

PY = sys.executable


def test_cli_deploy_loss_exit_1_json_and_audit(shop: Conn, guarded_db_dsn: str) -> None:
    script = (
        "import psycopg, sys; c = psycopg.connect(sys.argv[1], autocommit=True);"
        " c.execute('DELETE FROM tenants WHERE id <= 3'); print('migrated 1 of 1')"
    )
    proc = run_cli("deploy", "--dsn", guarded_db_dsn, "--json", "--", PY, "-c", script,
                   guarded_db_dsn)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "migrated 1 of 1" in proc.stderr  # the command's stdout kept off our JSON
    data = json.loads(proc.stdout)
    assert data["outcome"] == "loss" and data["exit_code"] == 1 and data["command_exit"] == 0
    assert data["rows_fell"] == [
        {"table": "public.tenants", "before": 20, "after": 17, "lost": 3, "exact": True,
         "within_limit": False, "approved": False, "approval": None}
    ]  # fmt: skip
    assert data["unapproved"] == ["3 rows of public.tenants (counted)"]
    rp = data["restore_point"]
    assert set(rp) >= {"time", "lsn", "txid", "platforms"}
    assert any(line.startswith(f"recovery_target_lsn = '{rp['lsn']}'") for line in rp["platforms"])
    assert "restore point" in proc.stderr
    audit = run_cli("audit", "--dsn", guarded_db_dsn, "--json")
    deploys = [e for e in json.loads(audit.stdout)["entries"] if e["kind"] == "deploy"]
    assert len(deploys) == 1
    assert deploys[0]["deploy"]["outcome"] == "loss"
    assert deploys[0]["deploy"]["restore_point"]["lsn"] == rp["lsn"]
    assert deploys[0]["object"].startswith(PY)


def test_cli_deploy_passes_command_exit_code_and_output(shop: Conn, guarded_db_dsn: str) -> None:
    proc = run_cli("deploy", "--dsn", guarded_db_dsn, "--", PY, "-c",
                   "print('hello from the command'); raise SystemExit(7)")  # fmt: skip
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == "hello from the command"
    assert "nothing lost" in proc.stderr
    missing = run_cli("deploy", "--dsn", guarded_db_dsn, "--", "no-such-command-xyz")
    assert missing.returncode == 2 and "command not found" in missing.stderr
    nothing = run_cli("deploy", "--dsn", guarded_db_dsn)
    assert nothing.returncode == 2


def test_cli_token_passes_through_allow(
    shop: Conn, guarded_db_dsn: str, approver: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    key_file = keys.write_private_key(tmp_path / "approver.pem", approver)
    script = (
        "import psycopg, sys; c = psycopg.connect(sys.argv[1], autocommit=True);"
        " c.execute('ALTER TABLE orders DROP COLUMN legacy')"
    )
    deploy = [PY, "-m", "pgguard", "deploy", "--dsn", guarded_db_dsn]
    proc = run_cli("allow", "--key-file", str(key_file), "--op", "drop_column", "--object",
                   "public.orders.legacy", "--reason", "cleanup", "--", *deploy, "--", PY, "-c",
                   script, guarded_db_dsn)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "column gone: public.orders.legacy: approved by" in proc.stderr
    assert "cleanup" in proc.stderr


def test_cli_snapshot_and_verify(shop: Conn, guarded_db_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "before.json"
    proc = run_cli("snapshot", "--dsn", guarded_db_dsn, "--out", str(out), "--command", "make")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["format"] == "pgguard-snapshot/1"
    ok = run_cli("verify", "--dsn", guarded_db_dsn, str(out))
    assert ok.returncode == 0, ok.stderr
    out2 = tmp_path / "again.json"
    assert run_cli("snapshot", "--dsn", guarded_db_dsn, "--out", str(out2)).returncode == 0
    shop.execute("DELETE FROM orders WHERE id <= 4")
    bad = run_cli("verify", "--dsn", guarded_db_dsn, "--max-row-loss", "3", str(out2))
    assert bad.returncode == 1 and "4 rows of public.orders" in bad.stderr
    assert "recovery_target_lsn" in bad.stderr
    fine = run_cli("verify", "--dsn", guarded_db_dsn, "--max-row-loss", "10%", str(out2))
    assert fine.returncode == 0, fine.stderr
    damaged = tmp_path / "damaged.json"
    damaged.write_text("[]")
    assert run_cli("verify", "--dsn", guarded_db_dsn, str(damaged)).returncode == 2


def test_cli_protect_rows(shop: Conn, guarded_db_dsn: str) -> None:
    proc = run_cli("protect-rows", "--dsn", guarded_db_dsn, "public.tenants", "--max-rows", "5")
    assert proc.returncode == 0, proc.stderr
    listed = run_cli("protect-rows", "--dsn", guarded_db_dsn, "--list", "--json")
    assert {(x["table"], x["op"], x["max_rows"]) for x in json.loads(listed.stdout)} == {
        ("public.tenants", "delete_rows", 5),
        ("public.tenants", "update_rows", 5),
    }
    with pytest.raises(psycopg.Error) as info:
        shop.execute("DELETE FROM tenants WHERE id <= 6")
    assert info.value.sqlstate == "PGG01"
    assert run_cli("protect-rows", "--dsn", guarded_db_dsn, "nope").returncode == 2
