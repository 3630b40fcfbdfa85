"""The audit trail: overrides in pgguard.audit (only when the transaction commits), refusals in
the server log as ``pgguard-refusal: {json}`` lines, and ``pgguard audit`` showing both with
its ``sources``, readable by members of pgguard_auditor only.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql
from psycopg.conninfo import make_conninfo
from tokenhelp import (
    DETAIL_NONE,
    Conn,
    approver_key,
    count,
    detail_wrong_object,
    refused,
    register,
    run_cli,
)

from pgguard.audit import AuditEntry, parse_refusals, read_audit
from pgguard.token import issue_token, parse_token

APP_NAME = "pgg-audit-test"


@pytest.fixture(scope="session")
def key() -> rsa.RSAPrivateKey:
    return approver_key("a")


@pytest.fixture
def app(guarded_admin: Conn, app_role: Any, key: rsa.RSAPrivateKey) -> tuple[Conn, Any]:
    """The app role's connection (TCP, application_name set), key registered, table app.t."""
    register(guarded_admin, key)
    app_role.create_schema("app")
    conn = psycopg.connect(app_role.dsn, autocommit=True, application_name=APP_NAME)
    app_role._connections.append(conn)
    conn.execute("CREATE TABLE app.t (id int)")
    conn.execute("CREATE TABLE app.u (id int)")
    conn.execute("INSERT INTO app.t VALUES (1), (2)")
    return conn, app_role


def audit_rows(admin: Conn, jti: str) -> list[dict[str, Any]]:
    cur = admin.execute(
        "SELECT at, kind, op, object, command_tag, session_user_name, application_name,"
        " host(client_addr) AS client_addr, jti, kid, sub, why"
        " FROM pgguard.audit WHERE jti = %s ORDER BY id",
        (jti,),
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def wait_for_refusals(log: Path, offset: int, db: str, n: int = 1) -> list[AuditEntry]:
    """Refusals for ``db`` written to ``log`` after byte ``offset`` (polled briefly)."""
    deadline = time.monotonic() + 10
    while True:
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        found = parse_refusals(text.splitlines(), db=db)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_override_recorded_with_who_what_and_token(
    app: tuple[Conn, Any], guarded_admin: Conn, guarded_db_name: str, key: rsa.RSAPrivateKey
) -> None:
    conn, role = app
    token = issue_token(
        key, objects=["app.*"], reason="ticket OPS-42 cleanup", db=guarded_db_name, sub="alice@ci"
    )
    claims = parse_token(token).claims
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    before = dt.datetime.now(dt.timezone.utc)
    conn.execute("DROP TABLE app.t")
    conn.execute("TRUNCATE app.u")
    rows = audit_rows(guarded_admin, claims.jti)
    assert [(r["kind"], r["op"], r["object"], r["command_tag"]) for r in rows] == [
        ("override", "drop_table", "app.t", "DROP TABLE"),
        ("override", "truncate", "app.u", "TRUNCATE TABLE"),
    ]
    for r in rows:
        assert r["session_user_name"] == role.name
        assert r["application_name"] == APP_NAME
        assert r["client_addr"] == "127.0.0.1"
        assert (r["jti"], r["sub"], r["why"]) == (claims.jti, "alice@ci", "ticket OPS-42 cleanup")
        assert r["kid"] == parse_token(token).kid
        assert before - dt.timedelta(seconds=5) <= r["at"] <= before + dt.timedelta(seconds=60)


def test_override_not_recorded_when_rolled_back(
    app: tuple[Conn, Any], guarded_admin: Conn, key: rsa.RSAPrivateKey
) -> None:
    conn, _ = app
    token = issue_token(key, objects=["app.t"])
    jti = parse_token(token).claims.jti
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    with conn.transaction(force_rollback=True):
        conn.execute("DROP TABLE app.t")
        assert len(audit_rows(guarded_admin, jti)) == 0  # not visible before commit either
    assert audit_rows(guarded_admin, jti) == []
    # a refused statement leaves no audit row either
    conn.execute("SELECT set_config('pgguard.token', '', false)")
    refused(conn, "DROP TABLE app.t")
    assert count(guarded_admin, "SELECT count(*) FROM pgguard.audit") == 0
    # committed: recorded once
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute("DROP TABLE app.t")
    assert len(audit_rows(guarded_admin, jti)) == 1


def test_refusals_go_to_the_server_log(
    pg_server: Any, app: tuple[Conn, Any], guarded_db_name: str, key: rsa.RSAPrivateKey
) -> None:
    if pg_server.log_path is None:
        pytest.skip("the server log is only readable for a local cluster")
    conn, role = app
    offset = pg_server.log_path.stat().st_size
    refused(conn, "DROP TABLE app.t")
    token = issue_token(key, objects=["app.u"], sub="bob@laptop")
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    refused(conn, "TRUNCATE app.t")
    found = wait_for_refusals(pg_server.log_path, offset, guarded_db_name, n=2)
    assert len(found) == 2, found
    first, second = found
    assert (first.kind, first.op, first.object, first.command_tag) == (
        "refusal",
        "drop_table",
        "app.t",
        "DROP TABLE",
    )
    assert first.detail == DETAIL_NONE
    assert first.session_user == role.name
    assert first.application_name == APP_NAME
    assert first.client_addr == "127.0.0.1"
    assert first.jti is None and first.source == "server log"
    assert (second.op, second.object, second.command_tag) == ("truncate", "app.t", "TRUNCATE TABLE")
    assert second.detail == detail_wrong_object("app.t", ["app.u"])
    assert second.jti == parse_token(token).claims.jti
    assert second.sub == "bob@laptop"
    # other databases' refusals are not mixed in
    assert parse_refusals(pg_server.log_path.read_text().splitlines(), db="no_such_db") == []


def test_read_audit_api(
    pg_server: Any, app: tuple[Conn, Any], guarded_admin: Conn, key: rsa.RSAPrivateKey
) -> None:
    conn, _ = app
    refused(conn, "DROP TABLE app.u")
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (issue_token(key),))
    conn.execute("DROP TABLE app.t")
    report = read_audit(guarded_admin, since=dt.timedelta(hours=1), log_file=pg_server.log_path)
    assert report.sources["pgguard.audit"] == "read"
    kinds = {(e.kind, e.op, e.object) for e in report.entries}
    assert ("override", "drop_table", "app.t") in kinds
    if pg_server.log_path is not None:
        assert report.sources["server log"] == f"read {pg_server.log_path}"
        assert ("refusal", "drop_table", "app.u") in kinds
    assert [e.at for e in report.entries] == sorted(e.at for e in report.entries)


def test_cli_audit_json_shows_both(
    pg_server: Any,
    app: tuple[Conn, Any],
    guarded_db_dsn: str,
    guarded_db_name: str,
    key: rsa.RSAPrivateKey,
) -> None:
    if pg_server.log_path is None:
        pytest.skip("the server log is only readable for a local cluster")
    conn, role = app
    refused(conn, "TRUNCATE app.t")
    token = issue_token(key, objects=["app.t"], reason="audit cli test", sub="carol")
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute("DROP TABLE app.t")
    wait_for_refusals(pg_server.log_path, 0, guarded_db_name)
    proc = run_cli(
        "audit", "--json", "--since", "1h", "--log-file", str(pg_server.log_path),
        "--dsn", guarded_db_dsn,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["sources"] == {
        "pgguard.audit": "read",
        "server log": f"read {pg_server.log_path}",
        "refusal counter": "1 refusal(s) since install",
    }
    entries = data["entries"]
    overrides = [e for e in entries if e["kind"] == "override"]
    refusals = [e for e in entries if e["kind"] == "refusal"]
    assert len(overrides) == 1
    o = overrides[0]
    assert (o["op"], o["object"], o["command_tag"]) == ("drop_table", "app.t", "DROP TABLE")
    assert (o["jti"], o["sub"], o["why"]) == (
        parse_token(token).claims.jti,
        "carol",
        "audit cli test",
    )
    assert o["session_user"] == role.name and o["application_name"] == APP_NAME
    assert o["source"] == "pgguard.audit"
    assert len(refusals) == 1
    r = refusals[0]
    assert (r["op"], r["object"], r["detail"]) == ("truncate", "app.t", DETAIL_NONE)
    assert r["source"] == "server log" and r["session_user"] == role.name
    for e in entries:
        dt.datetime.fromisoformat(e["at"])


def test_cli_audit_says_where_it_could_not_read(guarded_db_dsn: str) -> None:
    # the local cluster logs to stderr (logging_collector off): no file the server can name
    proc = run_cli("audit", "--json", "--dsn", guarded_db_dsn)
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    assert sources["pgguard.audit"] == "read"
    assert sources["server log"].startswith("refusals not read: ")
    missing = run_cli(
        "audit", "--json", "--log-file", "/nonexistent/pg.log", "--dsn", guarded_db_dsn
    )
    assert missing.returncode == 0, missing.stderr
    assert json.loads(missing.stdout)["sources"]["server log"].startswith(
        "could not read /nonexistent/pg.log"
    )


def test_cli_audit_reads_overrides_for_any_role(
    pg_server: Any,
    guarded_admin: Conn,
    guarded_db_name: str,
    make_app_role: Any,
    key: rsa.RSAPrivateKey,
) -> None:
    # the audit trail is no secret, and pg_dump must read it: any role may see the overrides
    outsider = make_app_role(prefix="outsider", grants=False)
    proc = run_cli("audit", "--json", "--dsn", outsider.dsn)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout)["sources"]["pgguard.audit"] == "read"

    reader = make_app_role(prefix="reader", grants=False)
    guarded_admin.execute(
        sql.SQL("GRANT pgguard_auditor TO {}").format(sql.Identifier(reader.name))
    )
    # something to read: an override by the superuser
    guarded_admin.execute("CREATE TABLE public.x (id int)")
    register(guarded_admin, key)
    dsn = make_conninfo(
        pg_server.admin_dsn(guarded_db_name),
        options=f"-c pgguard.token={issue_token(key, objects=['public.x'], reason='r')}",
    )
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE public.x")
    proc = run_cli("audit", "--json", "--dsn", reader.dsn)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(e["kind"], e["object"], e["why"]) for e in data["entries"]] == [
        ("override", "public.x", "r")
    ]
    # not a superuser: the server log is out of reach, and the output says so
    assert data["sources"]["server log"].startswith("refusals not read: ")
    # the human output works too
    human = run_cli("audit", "--dsn", reader.dsn)
    assert human.returncode == 0, human.stderr
    assert "public.x" in human.stdout


def test_a_forged_refusal_line_is_flagged(
    pg_server: Any, app: tuple[Conn, Any], guarded_admin: Conn, guarded_db_name: str
) -> None:
    """Any role can RAISE LOG any text. A line it writes must not pass for the guard's own:
    without a drawn sequence number, or reusing one, it is shown as suspect."""
    if pg_server.log_path is None:
        pytest.skip("the server log is only readable for a local cluster")
    conn, role = app
    offset = pg_server.log_path.stat().st_size
    refused(conn, "DROP TABLE app.t")  # a real refusal draws seq n
    real = wait_for_refusals(pg_server.log_path, offset, guarded_db_name)
    assert len(real) == 1 and real[0].seq is not None

    def forge(**extra: Any) -> None:
        fake = {
            "at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "db": guarded_db_name,
            "op": "drop_table",
            "objects": ["public.payroll"],
            "command_tag": "DROP TABLE",
            "session_user": "postgres",
            "detail": "forged",
            **extra,
        }
        conn.execute(
            sql.SQL("DO $$ BEGIN RAISE LOG 'pgguard-refusal: %', {}; END $$").format(
                sql.Literal(json.dumps(fake))
            )
        )

    forge()  # no sequence number at all
    forge(seq=10_000)  # a number the server never drew
    forge(seq=real[0].seq)  # a copy of a real line's number
    wait_for_refusals(pg_server.log_path, offset, guarded_db_name, n=4)
    report = read_audit(guarded_admin, since=dt.timedelta(hours=1), log_file=pg_server.log_path)
    mine = [e for e in report.entries if e.kind == "refusal" and e.at >= real[0].at]
    forged = [e for e in mine if e.object == "public.payroll"]
    assert len(forged) == 3
    seq = real[0].seq
    assert [e.suspect for e in forged] == [
        "no sequence number: not written by pgguard",
        f"sequence number 10000 was never drawn (the counter is at {seq})",
        f"sequence number {seq} appears on more than one line",
    ]
    # the copied number casts doubt on the real line too: the reader cannot tell which is which
    genuine = [e for e in mine if e.object == "app.t"]
    assert genuine[0].suspect == f"sequence number {seq} appears on more than one line"
    assert "line(s) suspect" in report.sources["server log"]
    assert report.sources["refusal counter"] == f"{real[0].seq} refusal(s) since install"
