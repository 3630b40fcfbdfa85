"""Approval requests: `pgguard request` (no key) → `pgguard approve REQUEST` (the approver's
machine: shows what is asked, confirms, prints the token) → the server accepts the token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tokenhelp import Conn, approver_key, count, register, run_cli

from pgguard import errors, keys
from pgguard.requests import make_request, read_request, write_request
from pgguard.token import parse_token


def test_request_approve_round_trip(
    tmp_path: Path, guarded_admin: Conn, guarded_db_name: str, app_role: Any
) -> None:
    key = approver_key("a")
    register(guarded_admin, key)
    key_file = keys.write_private_key(tmp_path / "a.pem", key, passphrase=b"pa")
    req = tmp_path / "req.json"
    asked = run_cli(
        "request", "--op", "truncate", "--object", "public.t", "--once", "--ttl", "5m",
        "--db", guarded_db_name, "--reason", "JIRA-7", "--out", str(req),
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    data = json.loads(req.read_text())
    assert data["ops"] == ["truncate"] and data["objects"] == ["public.t"] and data["ttl"] == 300
    assert data["once"] is True and data["db"] == guarded_db_name and data["reason"] == "JIRA-7"

    env = {"PGGUARD_KEY_PASSPHRASE": "pa"}
    no_tty = run_cli("approve", str(req), "--key-file", str(key_file), env=env)
    assert no_tty.returncode == 2 and no_tty.stdout == ""
    assert "ops:      truncate" in no_tty.stderr and "JIRA-7" in no_tty.stderr
    assert "no terminal to confirm" in no_tty.stderr

    ok = run_cli("approve", str(req), "--key-file", str(key_file), "--yes", env=env)
    assert ok.returncode == 0, ok.stderr
    token = ok.stdout.strip()
    claims = parse_token(token).claims
    assert claims.ops == ("truncate",) and claims.obj == ("public.t",) and claims.once
    assert claims.db == guarded_db_name and claims.why == "JIRA-7"
    assert claims.exp - claims.iat == 300

    conn = app_role.connect()
    conn.execute("CREATE TABLE public.t (id int)")
    conn.execute("INSERT INTO public.t VALUES (1)")
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute("TRUNCATE public.t")
    assert count(conn, "SELECT count(*) FROM public.t") == 0


def test_request_to_stdout_and_from_check(tmp_path: Path) -> None:
    sql = tmp_path / "m.sql"
    sql.write_text("DROP TABLE app.old;\n")
    check = run_cli("check", str(sql), "--json", "--db", "shop")
    report = tmp_path / "check.json"
    report.write_text(check.stdout)
    proc = run_cli("request", "--from-check", str(report))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ops"] == ["drop_table"] and data["objects"] == ["app.old"]
    assert data["db"] == "shop"
    both = run_cli("request", "--from-check", str(report), "--op", "truncate")
    assert both.returncode == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ops": ["drop_everything"]}, "unknown op"),
        ({"objects": ["a..b"]}, "empty segment"),
        ({"objects": []}, "non-empty list"),
        ({"ttl": 10**9}, "ttl must be"),
        ({"ttl": "600"}, "ttl must be"),
        ({"once": "yes"}, "once must be"),
        ({"pgguard_request": 2}, "not a pgguard request"),
        ({"extra": 1}, "unknown field"),
        ({"reason": "a\u0000b"}, "NUL"),
    ],
)
def test_bad_request_files_sign_nothing(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write_request(tmp_path / "r.json", make_request(ops=["truncate"], objects=["a.b"]))
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))
    with pytest.raises(errors.UsageError, match=message):
        read_request(path)
    key_file = keys.write_private_key(tmp_path / "k.pem", approver_key("a"))
    proc = run_cli("approve", str(path), "--key-file", str(key_file), "--yes")
    assert proc.returncode == 2 and proc.stdout == "" and "nothing was signed" in proc.stderr


def test_request_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("keep")
    proc = run_cli("request", "--op", "truncate", "--out", str(path))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert path.read_text() == "keep"
