"""Bypasses found by red-team review, kept as regression tests (all as the app role)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgguard import keys, keystore
from pgguard.installer import install
from pgguard.token import issue_token

Conn = psycopg.Connection[Any]


@pytest.fixture
def key(guarded_admin: Conn) -> Any:
    k = keys.generate_private_key(2048)
    keystore.add_keys(guarded_admin, [keys.public_numbers_for_db(k.public_key())])
    return k


@pytest.fixture
def app(app_role: Any) -> Conn:
    conn: Conn = app_role.connect()
    conn.execute("CREATE TABLE victim (id int, c text); INSERT INTO victim VALUES (1, 'a')")
    return conn


def present(conn: Conn, token: str) -> None:
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


def later_token(key: Any, **kw: Any) -> str:
    """A token issued after the schema it approves (iat is whole seconds)."""
    return issue_token(key, now=time.time() + 1, **kw)


def refused(conn: Conn, stmt: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(stmt)  # type: ignore[arg-type]
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    assert caught.value.sqlstate == "PGG01", caught.value
    return caught.value


def victim_intact(admin: Conn) -> None:
    assert admin.execute("SELECT id, c FROM public.victim").fetchall() == [(1, "a")]


def test_hostile_search_path_cannot_run_code_inside_the_verifier(
    app: Conn, guarded_admin: Conn, key: Any
) -> None:
    """A domain named text in public, compiled into an unpinned helper, once ran the session's
    function as pgguard_owner: it forged a wildcard token into the verification cache."""
    row = guarded_admin.execute("SELECT kid FROM pgguard.keys").fetchone()
    assert row is not None
    app.execute(
        sql.SQL(
            """
            CREATE FUNCTION public.evil(v pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN
              IF current_user = 'pgguard_owner' THEN
                INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)
                VALUES (pg_catalog.sha256(pg_catalog.convert_to('forged', 'UTF8')), {kid},
                  '{{"iat":1,"exp":253402300000,"jti":"x","ops":["drop_table","drop_column",
                    "truncate","uninstall"],"obj":["*"],"once":false}}', 'infinity');
              END IF;
              RETURN true;
            END $f$;
            CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.evil(VALUE));
            """
        ).format(kid=sql.Literal(row[0]))
    )
    app.execute("CREATE TABLE other (id int)")
    app.execute("SET search_path = public, pg_catalog")
    for call in (
        "SELECT pgguard.claims_cover('{}', 'x', 'y')",
        "SELECT pgguard.claims_cover('{}', 'x' COLLATE \"C\", 'y' COLLATE \"C\")",
        "SELECT pgguard.check_override('truncate', ARRAY['public.other'], 'x')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(call)
    present(app, later_token(key, ops=["truncate"], objects=["public.other"]))
    app.execute("TRUNCATE public.other")  # the real token still works for what it covers
    app.execute("RESET search_path")
    assert guarded_admin.execute(
        "SELECT count(*) FROM pgguard.verified_tokens"
        " WHERE token_sha256 = sha256(convert_to('forged', 'UTF8'))"
    ).fetchone() == (0,)
    present(app, "forged")
    refused(app, "TRUNCATE public.victim")
    refused(app, "ALTER TABLE public.victim DROP COLUMN c")
    refused(app, "DROP TABLE public.victim")
    victim_intact(guarded_admin)


@pytest.mark.parametrize("op", ["truncate", "drop_table"])
def test_an_old_detached_link_does_not_stretch_a_parent_token(
    app: Conn, guarded_admin: Conn, key: Any, op: str
) -> None:
    app.execute("CREATE TABLE p (id int, c text) PARTITION BY RANGE (id)")
    app.execute("ALTER TABLE p ATTACH PARTITION victim FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
    app.execute("ALTER TABLE p DETACH PARTITION victim")
    token = later_token(key, ops=[op], objects=["public.p"], once=True)  # p is empty now
    time.sleep(1.1)  # the re-attach comes after the token, in a later second
    app.execute("ALTER TABLE p ATTACH PARTITION victim FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
    present(app, token)
    err = refused(app, "TRUNCATE p" if op == "truncate" else "DROP TABLE p")
    assert "public.victim" in str(err)
    victim_intact(guarded_admin)


def test_a_token_for_one_dropped_table_does_not_cover_a_partition_of_another(
    app: Conn, guarded_admin: Conn, guarded_db_dsn: str, key: Any, app_role: Any
) -> None:
    with psycopg.connect(guarded_db_dsn) as conn:
        install(conn, exclude_schemas=["scratch"])
    app_role.create_schema("scratch")
    app.execute("CREATE TABLE scratch.p (id int, c text) PARTITION BY RANGE (id)")
    app.execute(
        "ALTER TABLE scratch.p ATTACH PARTITION victim FOR VALUES FROM (MINVALUE) TO (MAXVALUE)"
    )
    app.execute("CREATE TABLE other (id int)")
    present(app, later_token(key, ops=["drop_table"], objects=["public.other"]))
    err = refused(app, "DROP TABLE scratch.p, public.other")
    assert "public.victim" in str(err)
    victim_intact(guarded_admin)


def test_a_token_for_one_extension_member_does_not_cover_another(
    app: Conn, guarded_admin: Conn, key: Any
) -> None:
    if (
        guarded_admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
        ).fetchone()
        is None
    ):
        pytest.skip("pg_trgm is not available on this server")
    app.execute("CREATE EXTENSION pg_trgm")  # trusted: the app role may create it
    app.execute("CREATE TYPE comp AS (a int); ALTER EXTENSION pg_trgm ADD TYPE comp")
    app.execute("CREATE TABLE other OF comp")
    app.execute("ALTER EXTENSION pg_trgm ADD TABLE victim")
    present(app, later_token(key, ops=["drop_table"], objects=["public.other"]))
    refused(app, "DROP EXTENSION pg_trgm CASCADE")
    victim_intact(guarded_admin)


@pytest.mark.parametrize(
    ("rename", "stmt", "pattern", "ops"),
    [
        (
            "ALTER TABLE victim RENAME TO tmp_victim",
            "DROP TABLE tmp_victim",
            "public.tmp_*",
            ["drop_table"],
        ),
        (
            "ALTER TABLE victim RENAME TO tmp_victim",
            "TRUNCATE tmp_victim",
            "public.tmp_*",
            ["truncate"],
        ),
        (
            "ALTER TABLE victim RENAME COLUMN c TO legacy_c",
            "ALTER TABLE victim DROP COLUMN legacy_c",
            "public.victim.legacy_*",
            ["drop_column"],
        ),
        (
            "ALTER TABLE victim SET SCHEMA scratch",
            "DROP TABLE scratch.victim",
            "scratch.*",
            ["drop_table"],
        ),
    ],
    ids=["rename-drop", "rename-truncate", "rename-column", "set-schema"],
)
def test_renaming_into_an_approved_glob_does_not_stretch_the_token(
    app: Conn, guarded_admin: Conn, key: Any, app_role: Any,
    rename: str, stmt: str, pattern: str, ops: list[str],
) -> None:  # fmt: skip
    app_role.create_schema("scratch")
    present(app, later_token(key, ops=ops, objects=[pattern]))
    time.sleep(1.1)  # the rename comes after the token, in a later second
    app.execute(rename)  # type: ignore[arg-type]
    err = refused(app, stmt)
    assert "got its current name at" in (err.diag.message_detail or "")
    # a token issued after the rename is an approval of the new name
    present(app, later_token(key, ops=ops, objects=[pattern]))
    app.execute(stmt)  # type: ignore[arg-type]


def test_allow_runs_the_command_in_its_own_place(tmp_path: Any) -> None:
    """exec, not a child: Ctrl-C reaches the command alone, and no parent can die and leave it
    running with the token; the exit code is the command's by construction."""
    import subprocess
    import sys

    key_file = tmp_path / "k.pem"
    keys.write_private_key(key_file, keys.generate_private_key(2048))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgguard", "allow", "--key-file", str(key_file), "--",
         "sh", "-c", "echo $$; exit 9"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 9
    assert out.strip() == str(proc.pid)


def test_sessions_sharing_a_token_do_not_wait_on_each_other(
    pg_server: Any, guarded_admin: Conn, guarded_db_name: str, key: Any
) -> None:
    guarded_admin.execute("CREATE TABLE ta (id int); CREATE TABLE tb (id int)")
    token = later_token(key, ops=["truncate"], objects=["public.*"])
    with pg_server.connect(guarded_db_name) as one, pg_server.connect(guarded_db_name) as two:
        one.execute("BEGIN")
        present(one, token)
        one.execute("TRUNCATE ta")  # its cache row stays uncommitted
        two.execute("SET lock_timeout = '2s'")
        present(two, token)
        two.execute("TRUNCATE tb")  # must not wait for `one`
        one.execute("COMMIT")
        # REPEATABLE READ whose snapshot predates another session's cache row: no 40001
        other = later_token(key, ops=["truncate"], objects=["public.*"], jti="second")
        two.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        two.execute("SELECT 1")
        present(one, other)
        one.execute("TRUNCATE ta")
        present(two, other)
        two.execute("TRUNCATE tb")
        two.execute("COMMIT")


def test_keys_create_never_writes_through_a_planted_public_path(tmp_path: Any) -> None:
    import subprocess
    import sys

    victim = tmp_path / "victim.txt"
    victim.write_text("DATA")
    (tmp_path / "pub.pem").symlink_to(victim)

    def create(out: str, pub: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pgguard", "keys", "create", "--bits", "2048", "--no-passphrase",
             "--out", str(tmp_path / out), "--public-out", pub],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    planted = create("a.pem", str(tmp_path / "pub.pem"))
    assert planted.returncode == 2 and "refusing to overwrite" in planted.stderr
    assert victim.read_text() == "DATA"
    missing_dir = create("b.pem", str(tmp_path / "no" / "x.pub"))
    assert missing_dir.returncode == 2 and "cannot create it" in missing_dir.stderr
    # neither failure left a private key behind
    assert not (tmp_path / "a.pem").exists() and not (tmp_path / "b.pem").exists()
