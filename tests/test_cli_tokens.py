"""The token commands end to end, as a user runs them: `pgguard keys create/add/list/revoke`,
`pgguard install --key-file`, `pgguard allow` (token alone on stdout, `$(…)`, `-- COMMAND`
with PGOPTIONS kept and the exit code passed through) and `pgguard uninstall` with and
without an uninstall token. Every command is a real subprocess (`python -m pgguard`), so stdout
and stderr are the process's own.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tokenhelp import (
    DETAIL_NONE,
    Conn,
    approver_key,
    clean_env,
    count,
    detail_revoked,
    detail_wrong_op,
    exists,
    refused,
    register,
    run_cli,
    text_of,
)

from pgguard import keys
from pgguard.token import DEFAULT_OPS, issue_token, parse_token

VENV_BIN = str(Path(sys.executable).parent)
PGGUARD = [sys.executable, "-m", "pgguard"]


@pytest.fixture(scope="session")
def approver() -> rsa.RSAPrivateKey:
    return approver_key("a")


@pytest.fixture
def key_file(tmp_path: Path, approver: rsa.RSAPrivateKey) -> Path:
    """The approver's private key as a file (mode 0600)."""
    return keys.write_private_key(tmp_path / "approver.pem", approver)


@pytest.fixture
def app(guarded_admin: Conn, app_role: Any, approver: rsa.RSAPrivateKey) -> Any:
    """Key registered; the app role owns public.t and public.u (3 rows each)."""
    register(guarded_admin, approver)
    conn = app_role.connect()
    for name in ("public.t", "public.u"):
        conn.execute(f"CREATE TABLE {name} (id int, note text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    return app_role


def shell(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script],
        env=clean_env({"PY": sys.executable, **env}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- keys ----------------------------------------------------------------------------------------


def test_keys_create(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    pub = tmp_path / "k.pub"
    proc = run_cli(
        "keys", "create", "--out", str(out), "--bits", "2048", "--public-out", str(pub),
        "--no-passphrase",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    private = keys.load_private_key(out)
    assert proc.stdout == keys.kid(private) + "\n"  # the kid, and only it, on stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert private.key_size == 2048
    assert keys.kid(keys.load_public_key(pub)) == keys.kid(private)
    assert "PRIVATE" not in pub.read_text()

    before = out.read_bytes()
    again = run_cli("keys", "create", "--out", str(out), "--bits", "2048")
    assert again.returncode == 2
    assert again.stdout == ""
    assert "refusing to overwrite" in again.stderr
    assert out.read_bytes() == before


def test_keys_create_defaults_to_3072_bits(tmp_path: Path) -> None:
    out = tmp_path / "d.pem"
    proc = run_cli("keys", "create", "--out", str(out), env={"PGGUARD_KEY_PASSPHRASE": "pw"})
    assert proc.returncode == 0, proc.stderr
    assert keys.load_private_key(out, b"pw").key_size == 3072
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keys_add_list_revoke(
    app: Any, guarded_db_dsn: str, tmp_path: Path, approver: rsa.RSAPrivateKey
) -> None:
    new = keys.generate_private_key(2048)
    pub = tmp_path / "new.pub"
    pub.write_text(keys.public_key_pem(new))
    kid = keys.kid(new)

    added = run_cli("keys", "add", str(pub), "--comment", "bob", "--dsn", guarded_db_dsn)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == kid
    assert f"registered key {kid}" in added.stderr
    again = run_cli("keys", "add", str(pub), "--dsn", guarded_db_dsn)
    assert again.returncode == 0 and "already registered" in again.stderr

    # the app role is not the installing role
    denied = run_cli("keys", "add", str(pub), "--dsn", app.dsn)
    assert denied.returncode == 3, denied.stderr

    listed = run_cli("keys", "list", "--json", "--dsn", guarded_db_dsn)
    assert listed.returncode == 0, listed.stderr
    by_kid = {k["kid"]: k for k in json.loads(listed.stdout)}
    assert set(by_kid) == {kid, keys.kid(approver)}
    assert by_kid[kid]["bits"] == 2048 and by_kid[kid]["comment"] == "bob"
    assert by_kid[kid]["revoked_at"] is None

    # a token from the new key works, until the key is revoked
    conn = app.connect()
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (issue_token(new),))
    conn.execute("TRUNCATE public.t")
    revoked = run_cli("keys", "revoke", kid, "--dsn", guarded_db_dsn)
    assert revoked.returncode == 0, revoked.stderr
    assert f"key {kid} revoked at" in revoked.stderr
    listed = run_cli("keys", "list", "--json", "--dsn", guarded_db_dsn)
    by_kid = {k["kid"]: k for k in json.loads(listed.stdout)}
    assert by_kid[kid]["revoked_at"] is not None
    assert by_kid[kid]["revoked_by"] == "postgres"
    assert by_kid[keys.kid(approver)]["revoked_at"] is None
    revoked_at = text_of(conn, "SELECT revoked_at::text FROM pgguard.keys WHERE kid = %s", [kid])
    r = refused(conn, "TRUNCATE public.u")
    assert r.detail == detail_revoked(kid, revoked_at)
    # re-adding never un-revokes
    run_cli("keys", "add", str(pub), "--dsn", guarded_db_dsn)
    r = refused(conn, "TRUNCATE public.u")
    assert r.detail == detail_revoked(kid, revoked_at)

    unknown = run_cli("keys", "revoke", "0123456789abcdef", "--dsn", guarded_db_dsn)
    assert unknown.returncode == 2
    assert "no key 0123456789abcdef" in unknown.stderr


def test_install_key_file_creates_missing_key(make_db: Any, pg_server: Any, tmp_path: Path) -> None:
    dsn = pg_server.admin_dsn(make_db())
    new = tmp_path / "new.pem"
    proc = run_cli("install", "--key-file", str(new), "--dsn", dsn, "--no-passphrase")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    kid = keys.kid(keys.load_private_key(new))
    assert f"created approver key {new}" in proc.stderr and kid in proc.stderr
    listed = json.loads(run_cli("keys", "list", "--json", "--dsn", dsn).stdout)
    assert [k["kid"] for k in listed] == [kid]
    # re-running with the existing file keeps it and registers nothing new
    before = new.read_bytes()
    again = run_cli("install", "--key-file", str(new), "--dsn", dsn)
    assert again.returncode == 0, again.stderr
    assert new.read_bytes() == before
    listed = json.loads(run_cli("keys", "list", "--json", "--dsn", dsn).stdout)
    assert [k["kid"] for k in listed] == [kid]


# --- allow -------------------------------------------------------------------------------------


def test_allow_prints_only_the_token(app: Any, key_file: Path, guarded_db_name: str) -> None:
    proc = run_cli(
        "allow", "--key-file", str(key_file), "--op", "drop_table", "--object", "public.t",
        "--reason", "JIRA-1", "--db", guarded_db_name, "--ttl", "90s", "--once",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stdout.endswith("\n")
    token = lines[0]
    parsed = parse_token(token)
    assert parsed.kid == keys.kid(keys.load_private_key(key_file))
    c = parsed.claims
    assert (c.ops, c.obj, c.db, c.why, c.once) == (
        ("drop_table",),
        ("public.t",),
        guarded_db_name,
        "JIRA-1",
        True,
    )
    assert c.exp - c.iat == 90
    assert "token for drop_table on public.t" in proc.stderr
    conn = app.connect()
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute("DROP TABLE public.t")
    assert not exists(conn, "public.t")


def test_allow_defaults(key_file: Path) -> None:
    proc = run_cli("allow", "--key-file", str(key_file))
    assert proc.returncode == 0, proc.stderr
    c = parse_token(proc.stdout.strip()).claims
    assert c.ops == DEFAULT_OPS and c.obj == ("*",)
    assert c.exp - c.iat == 600 and c.once is False and c.db is None and c.why is None
    # $PGGUARD_KEY_FILE works as --key-file
    env_proc = run_cli("allow", env={"PGGUARD_KEY_FILE": str(key_file)})
    assert env_proc.returncode == 0, env_proc.stderr
    parse_token(env_proc.stdout.strip())


def test_allow_in_command_substitution(app: Any, key_file: Path) -> None:
    script = (
        'PGOPTIONS="-c pgguard.token=$("$PY" -m pgguard allow --key-file "$KEY"'
        ' --op drop_table --object public.t)" psql "$DSN" -X -v ON_ERROR_STOP=1 -c "DROP TABLE t"'
        ' && psql "$DSN" -X -v ON_ERROR_STOP=1'
        ' -c "SET pgguard.token = \'$("$PY" -m pgguard allow --key-file "$KEY" --op truncate'
        ' --object public.u)\'" -c "TRUNCATE u"'
    )
    proc = shell(script, KEY=str(key_file), DSN=app.dsn)
    assert proc.returncode == 0, proc.stderr
    conn = app.connect()
    assert not exists(conn, "public.t")
    assert count(conn, "SELECT count(*) FROM public.u") == 0


def test_allow_runs_command_with_the_token(app: Any, key_file: Path) -> None:
    proc = subprocess.run(
        [*PGGUARD, "allow", "--key-file", str(key_file), "--op", "drop_table",
         "--object", "public.t", "--",
         "psql", app.dsn, "-v", "ON_ERROR_STOP=1", "-c", "DROP TABLE t"],
        env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "DROP TABLE"  # psql's output; no token printed
    conn = app.connect()
    assert not exists(conn, "public.t")
    assert count(conn, "SELECT count(*) FROM public.u") == 3


def test_allow_passes_the_exit_code_through(app: Any, key_file: Path) -> None:
    seven = run_cli("allow", "--key-file", str(key_file), "--", "sh", "-c", "exit 7")
    assert seven.returncode == 7
    assert seven.stdout == ""
    # a refused statement: psql's own exit code, the refusal on its stderr
    direct = subprocess.run(
        ["psql", app.dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c", "DROP TABLE u"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert direct.returncode != 0
    via = run_cli(
        "allow", "--key-file", str(key_file), "--op", "truncate", "--",
        "psql", app.dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c", "DROP TABLE u",
    )  # fmt: skip
    assert via.returncode == direct.returncode
    assert detail_wrong_op("drop_table", ["truncate"]) in via.stderr
    assert exists(app.connect(), "public.u")
    # COMMAND sees PGGUARD_TOKEN and PGOPTIONS
    env_dump = run_cli(
        "allow", "--key-file", str(key_file), "--", "sh", "-c",
        'printf "%s\\n%s\\n" "$PGGUARD_TOKEN" "$PGOPTIONS"',
    )  # fmt: skip
    assert env_dump.returncode == 0, env_dump.stderr
    token, options = env_dump.stdout.splitlines()
    parse_token(token)
    assert options == f"-c pgguard.token={token}"
    # a command that does not exist is a usage error
    missing = run_cli("allow", "--key-file", str(key_file), "--", "no-such-command-pgg")
    assert missing.returncode == 2
    assert "command not found" in missing.stderr


def test_allow_keeps_existing_pgoptions(app: Any, key_file: Path) -> None:
    proc = run_cli(
        "allow", "--key-file", str(key_file), "--",
        "psql", app.dsn, "-X", "-At", "-c", "SHOW statement_timeout", "-c", "SHOW pgguard.token",
        env={"PGOPTIONS": "-c statement_timeout=5000"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    timeout, token = proc.stdout.splitlines()
    assert timeout == "5s"
    parse_token(token)


def test_allow_without_usable_key(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    missing = run_cli("allow", "--key-file", str(tmp_path / "nope.pem"), "--", "touch", str(marker))
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert "nope.pem" in missing.stderr and "not found" in missing.stderr
    assert not marker.exists()
    none = run_cli("allow")
    assert none.returncode == 2
    assert "--key-file" in none.stderr and "PGGUARD_KEY_FILE" in none.stderr
    public = tmp_path / "pub.pem"
    public.write_text(keys.public_key_pem(approver_key("a")))
    wrong = run_cli("allow", "--key-file", str(public))
    assert wrong.returncode == 2
    assert "public key" in wrong.stderr


# --- uninstall -------------------------------------------------------------------------------


def pgguard_objects(conn: Conn) -> dict[str, int]:
    return {
        "schema": count(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgguard'"),
        "event_triggers": count(
            conn, "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgguard%'"
        ),
        "truncate_guards": count(
            conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'pgguard_truncate_guard'"
        ),
        "functions": count(
            conn,
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'pgguard'",
        ),
    }


def test_uninstall_needs_a_token(
    app: Any, key_file: Path, guarded_admin: Conn, guarded_db_dsn: str, guarded_db_name: str
) -> None:
    installed = pgguard_objects(guarded_admin)
    assert installed["schema"] == 1 and installed["event_triggers"] >= 1
    assert installed["truncate_guards"] == 2

    proc = run_cli("uninstall", "--dsn", guarded_db_dsn)
    assert proc.returncode == 1
    assert "refusing to uninstall pgguard" in proc.stderr
    assert DETAIL_NONE in proc.stderr
    assert f"pgguard allow --op uninstall --object pgguard --db {guarded_db_name}" in proc.stderr
    assert pgguard_objects(guarded_admin) == installed

    # a token for other ops does not do
    wrong = subprocess.run(
        [*PGGUARD, "allow", "--key-file", str(key_file), "--",
         *PGGUARD, "uninstall", "--dsn", guarded_db_dsn],
        env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert detail_wrong_op("uninstall", list(DEFAULT_OPS)) in wrong.stderr
    assert pgguard_objects(guarded_admin) == installed

    env = clean_env({"PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")})
    ok = subprocess.run(
        [*PGGUARD, "allow", "--key-file", str(key_file), "--op", "uninstall",
         "--object", "pgguard", "--", "pgguard", "uninstall", "--dsn", guarded_db_dsn],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "pgguard removed" in ok.stderr
    assert pgguard_objects(guarded_admin) == {
        "schema": 0,
        "event_triggers": 0,
        "truncate_guards": 0,
        "functions": 0,
    }
    # user tables and rows intact, and no longer guarded
    conn = app.connect()
    assert count(conn, "SELECT count(*) FROM public.t") == 3
    assert [r[0] for r in conn.execute("SELECT note FROM public.u ORDER BY id")] == ["a", "b", "c"]
    conn.execute("TRUNCATE public.u")
    conn.execute("DROP TABLE public.t")
    # running it again: not installed
    again = run_cli("uninstall", "--dsn", guarded_db_dsn)
    assert again.returncode == 4


def test_uninstall_refused_for_the_app_role_even_with_a_token(
    app: Any, key_file: Path, guarded_admin: Conn
) -> None:
    """The token approves; it does not grant privileges: the app role cannot drop event
    triggers, so it gets exit 3 and pgguard stays."""
    installed = pgguard_objects(guarded_admin)
    proc = subprocess.run(
        [*PGGUARD, "allow", "--key-file", str(key_file), "--op", "uninstall",
         "--object", "pgguard", "--", *PGGUARD, "uninstall", "--dsn", app.dsn],
        env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert pgguard_objects(guarded_admin) == installed
    with psycopg.connect(app.dsn, autocommit=True) as conn:
        refused(conn, "DROP TABLE public.t")
