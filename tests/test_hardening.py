"""The outside review's findings (issue 9), each as the attack that worked before the fix.

Each test runs the attack as the app role that owns its tables and, where a superuser could make
the same mistake, as a careless superuser; the data must survive and the refusal must say why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from guardhelp import assert_intact, b64url, snapshot
from psycopg import sql

from pgguard import keys, keystore
from pgguard.errors import GuardRefused
from pgguard.health import status
from pgguard.installer import install
from pgguard.token import issue_token

Conn = psycopg.Connection[Any]


@pytest.fixture
def key(guarded_admin: Conn) -> Any:
    k = keys.generate_private_key(2048)
    keystore.add_keys(guarded_admin, [keys.public_numbers_for_db(k.public_key())])
    return k


@pytest.fixture(params=["app", "superuser"])
def who(request: pytest.FixtureRequest, guarded_admin: Conn, app_role: Any) -> Conn:
    """The attacker: the app role owning its tables, or a careless superuser."""
    conn: Conn = app_role.connect() if request.param == "app" else guarded_admin
    conn.execute("CREATE TABLE victim (id int, c text); INSERT INTO victim VALUES (1, 'a')")
    return conn


def present(conn: Conn, token: str) -> None:
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


def token_then_later(key: Any, **kw: Any) -> str:
    """A token issued now; what the test does next happens in a later second."""
    token = issue_token(key, **kw)
    time.sleep(1.1)
    return token


def refused(conn: Conn, stmt: str, *, sqlstates: tuple[str, ...] = ("PGG01",)) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(stmt)  # type: ignore[arg-type]
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    assert caught.value.sqlstate in sqlstates, caught.value
    return caught.value


def victim_rows(admin: Conn, table: str = "public.victim") -> list[tuple[Any, ...]]:
    return admin.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # type: ignore[arg-type]


# --- 1. one statement removing both sets of guard functions ------------------------------------

BOTH_SETS = [
    "DROP SCHEMA app, pgguard, pgguard_sentinel CASCADE",
    "DROP SCHEMA pgguard, pgguard_sentinel CASCADE",
    "DROP SCHEMA pgguard, pgguard_sentinel, pgguard_watch CASCADE",
    "DROP SCHEMA pgguard_watch CASCADE",
    "DROP FUNCTION pgguard.on_sql_drop(), pgguard_sentinel.on_sql_drop() CASCADE",
    "DROP FUNCTION pgguard.on_sql_drop(), pgguard_sentinel.on_sql_drop(),"
    " pgguard_watch.at_commit(), pgguard_watch.on_ddl_start() CASCADE",
    "DROP EXTENSION plpgsql CASCADE",
]


@pytest.mark.parametrize("stmt", BOTH_SETS)
def test_one_statement_cannot_remove_both_guards(guarded_admin: Conn, stmt: str) -> None:
    guarded_admin.execute("CREATE SCHEMA app; CREATE TABLE app.ledger AS SELECT 1 AS id")
    before = snapshot(guarded_admin)
    # PGG01 where a guard survives to say so; 55006 (a table with pending trigger events
    # cannot be dropped) where the statement takes every guard function with it
    refused(guarded_admin, stmt, sqlstates=("PGG01", "55006"))
    assert_intact(guarded_admin, before)
    assert status(guarded_admin).healthy


def test_removal_is_refused_at_commit_even_with_constraints_immediate(
    guarded_admin: Conn,
) -> None:
    before = snapshot(guarded_admin)
    guarded_admin.execute("BEGIN")
    guarded_admin.execute("SET CONSTRAINTS ALL IMMEDIATE")
    guarded_admin.execute(
        "DROP FUNCTION pgguard.on_sql_drop(), pgguard_sentinel.on_sql_drop() CASCADE"
    )
    err = refused(guarded_admin, "COMMIT")
    assert err.diag.constraint_name == "op=uninstall"
    assert "pgguard_sql_drop" in (err.diag.message_detail or "")
    assert_intact(guarded_admin, before)


def test_drop_owned_by_a_superuser_installer(pg_server: Any, make_db: Callable[..., str]) -> None:
    """On RDS-like setups the installer is not the bootstrap superuser, so DROP OWNED BY it
    reaches the event triggers and the sentinel."""
    name, password = pg_server.make_role("inst", superuser=True)
    db = make_db()
    with psycopg.connect(pg_server.dsn(db, name, password)) as conn:
        install(conn)
    with psycopg.connect(pg_server.dsn(db, name, password), autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger AS SELECT 1 AS id")
        before = snapshot(conn)
        refused(conn, f'DROP OWNED BY "{name}"', sqlstates=("PGG01", "55006"))
        assert_intact(conn, before)
    with pg_server.connect(db) as admin:
        refused(admin, f'DROP OWNED BY "{name}" CASCADE', sqlstates=("PGG01", "55006"))
        assert admin.execute("SELECT id FROM public.ledger").fetchall() == [(1,)]
    pg_server.drop_database(db)


# --- 6. check_override and truncate_check are not for sessions ---------------------------------


def test_sessions_cannot_write_override_rows(guarded_admin: Conn, app_role: Any, key: Any) -> None:
    app: Conn = app_role.connect()
    app.execute("CREATE TABLE other (id int); CREATE TABLE ledger (id int)")
    present(app, issue_token(key, ops=["drop_table", "truncate", "uninstall"],
                             objects=["public.other"]))  # fmt: skip
    for call in (
        "SELECT pgguard.check_override('drop_table', ARRAY['public.ledger'], 'x', NULL,"
        " ARRAY['public.other'])",
        "SELECT pgguard.truncate_check('public.other'::regclass, 'public', 'ledger')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(call)  # type: ignore[arg-type]
    # the one door left finds the tampering itself: with nothing tampered, nothing is written
    app.execute("SELECT pgguard.tamper_override('public.ledger'::regclass, 'x')")
    app.execute("SELECT pgguard.tamper_override(NULL, 'x')")
    rows = guarded_admin.execute("SELECT op, object FROM pgguard.audit").fetchall()
    assert rows == []
    app.execute("TRUNCATE other")  # the token still works for what it covers
    assert guarded_admin.execute("SELECT op, object FROM pgguard.audit").fetchall() == [
        ("truncate", "public.other")
    ]


# --- 2. renames under any tag --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "rename", "stmt", "pattern", "op"),
    [
        ("", "ALTER INDEX victim RENAME TO tmp_victim", "DROP TABLE tmp_victim",
         "public.tmp_*", "drop_table"),
        ("", "ALTER INDEX victim RENAME TO tmp_victim", "TRUNCATE tmp_victim",
         "public.tmp_*", "truncate"),
        ("", "ALTER MATERIALIZED VIEW victim RENAME COLUMN c TO legacy_c",
         "ALTER TABLE victim DROP COLUMN legacy_c", "public.victim.legacy_*", "drop_column"),
        ("", "ALTER FOREIGN TABLE victim RENAME COLUMN c TO legacy_c",
         "ALTER TABLE victim DROP COLUMN legacy_c", "public.victim.legacy_*", "drop_column"),
        ("", "ALTER VIEW victim RENAME COLUMN c TO legacy_c",
         "ALTER TABLE victim DROP COLUMN legacy_c", "public.victim.legacy_*", "drop_column"),
        ("CREATE TYPE comp AS (a int, b text); CREATE TABLE typed OF comp;"
         " INSERT INTO typed VALUES (1, 'x')",
         "ALTER TYPE comp RENAME ATTRIBUTE b TO legacy_b CASCADE",
         "ALTER TYPE comp DROP ATTRIBUTE legacy_b CASCADE", "public.typed.legacy_*",
         "drop_column"),
        ("CREATE TABLE par (id int, c text); CREATE TABLE kid () INHERITS (par);"
         " INSERT INTO kid VALUES (1, 'x')",
         "ALTER TABLE par RENAME COLUMN c TO legacy_c",
         "ALTER TABLE par DROP COLUMN legacy_c", "public.*.legacy_*", "drop_column"),
    ],
    ids=["index-drop", "index-truncate", "matview-column", "foreign-table-column", "view-column",
         "type-attribute", "inherited-column"],
)  # fmt: skip
def test_renaming_by_any_command_does_not_stretch_a_token(
    who: Conn, guarded_admin: Conn, key: Any,
    setup: str, rename: str, stmt: str, pattern: str, op: str,
) -> None:  # fmt: skip
    if setup:
        who.execute(setup)  # type: ignore[arg-type]
    before = snapshot(guarded_admin)
    present(who, token_then_later(key, ops=[op], objects=[pattern]))
    who.execute(rename)  # type: ignore[arg-type]
    err = refused(who, stmt)
    assert "got its current name at" in (err.diag.message_detail or ""), err
    after = snapshot(guarded_admin)
    assert [v["rows"] for k, v in sorted(after.items()) if k != "<pgguard>"] == [
        v["rows"] for k, v in sorted(before.items()) if k != "<pgguard>"
    ]


# --- 3. a partition or child truncated through a renamed parent ----------------------------------


@pytest.mark.parametrize("kind", ["partition", "inheritance"])
def test_truncating_a_child_through_a_renamed_parent(
    who: Conn, guarded_admin: Conn, key: Any, kind: str
) -> None:
    if kind == "partition":
        who.execute(
            "CREATE TABLE events (id int) PARTITION BY RANGE (id);"
            " CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM (0) TO (100);"
            " INSERT INTO events VALUES (1)"
        )
    else:
        who.execute(
            "CREATE TABLE events (id int); CREATE TABLE events_2026 () INHERITS (events);"
            " INSERT INTO events_2026 VALUES (1)"
        )
    time.sleep(1.1)  # the link is older than the token (iat is whole seconds)
    present(who, token_then_later(key, ops=["truncate"], objects=["public.tmp_*"]))
    who.execute("ALTER TABLE events RENAME TO tmp_events")
    refused(who, "TRUNCATE events_2026")
    refused(who, "TRUNCATE tmp_events")
    assert victim_rows(guarded_admin, "public.events_2026") == [(1,)]


# --- 4. rename checks for attached tables and guard drops -----------------------------------------


def test_attaching_a_renamed_table_under_a_fresh_parent(
    who: Conn, guarded_admin: Conn, key: Any
) -> None:
    present(who, token_then_later(key, ops=["drop_table"], objects=["public.tmp_*"]))
    who.execute("CREATE TABLE tmp_p (id int, c text) PARTITION BY RANGE (id)")
    who.execute("ALTER TABLE victim RENAME TO tmp_victim")
    who.execute("ALTER TABLE tmp_p ATTACH PARTITION tmp_victim FOR VALUES FROM (0) TO (10)")
    err = refused(who, "DROP TABLE tmp_p")
    assert "tmp_victim" in str(err)
    assert victim_rows(guarded_admin, "public.tmp_victim") == [(1, "a")]


def test_dropping_the_guard_of_a_renamed_table_under_an_uninstall_token(
    who: Conn, guarded_admin: Conn, key: Any
) -> None:
    present(who, token_then_later(key, ops=["uninstall"], objects=["public.tmp_*"]))
    who.execute("ALTER TABLE victim RENAME TO tmp_victim")
    err = refused(who, "DROP TRIGGER pgguard_truncate_guard ON tmp_victim")
    assert "got its current name at" in (err.diag.message_detail or "")
    refused(who, "TRUNCATE tmp_victim")
    assert victim_rows(guarded_admin, "public.tmp_victim") == [(1, "a")]


# --- 5. a token from the future --------------------------------------------------------------


@pytest.mark.parametrize("how", ["rename", "attach"])
def test_a_future_iat_does_not_move_the_cutoff(
    who: Conn, guarded_admin: Conn, key: Any, how: str
) -> None:
    who.execute("CREATE TABLE tmp_p (id int, c text) PARTITION BY RANGE (id)")
    time.sleep(1.1)
    # accepted (the server allows 60 s of clock skew), but it must not cover what changes now
    present(who, issue_token(key, ops=["drop_table"], objects=["public.tmp_*"],
                             now=time.time() + 50))  # fmt: skip
    if how == "rename":
        who.execute("ALTER TABLE victim RENAME TO tmp_victim")
        stmt = "DROP TABLE tmp_victim"
    else:
        who.execute("ALTER TABLE tmp_p ATTACH PARTITION victim FOR VALUES FROM (0) TO (10)")
        stmt = "DROP TABLE tmp_p"
    refused(who, stmt)
    table = "public.tmp_victim" if how == "rename" else "public.victim"
    assert victim_rows(guarded_admin, table) == [(1, "a")]


# --- 7. a signed token holding \u0000 ------------------------------------------------------------


@pytest.mark.parametrize("claim", ["why", "jti", "sub"])
def test_a_token_holding_nul_is_refused_as_malformed(
    who: Conn, guarded_admin: Conn, key: Any, pg_server: Any, claim: str
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    kid = keys.kid(key)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iat": now, "exp": now + 600, "jti": "j1", "ops": ["truncate"], "obj": ["*"],
        "once": False, "sub": "s", "why": "w",
    }  # fmt: skip
    claims[claim] = "a\x00b"
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"pgg1.{kid}.{payload}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    present(who, f"{signing_input}.{b64url(sig)}")
    offset = pg_server.log_path.stat().st_size if pg_server.log_path else 0
    err = refused(who, "TRUNCATE victim")
    assert (err.diag.message_detail or "").startswith("the override token is malformed"), err
    assert victim_rows(guarded_admin) == [(1, "a")]
    if pg_server.log_path is not None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = pg_server.log_path.read_text(errors="replace")[offset:]
            if "pgguard-refusal" in text and '"malformed"' in text:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no refusal line in the server log")


# --- 8. SET UNLOGGED --------------------------------------------------------------------------


def test_set_unlogged_needs_a_token(who: Conn, guarded_admin: Conn, key: Any) -> None:
    err = refused(who, "ALTER TABLE victim SET UNLOGGED")
    assert err.diag.constraint_name == "op=unlogged"
    assert err.diag.message_primary == 'pgguard: refusing to make unlogged table "public.victim"'
    assert "--op unlogged --object public.victim" in (err.diag.message_hint or "")
    persistence = "SELECT relpersistence FROM pg_class WHERE oid = 'public.victim'::regclass"
    assert guarded_admin.execute(persistence).fetchone() == ("p",)
    # a token for another op does not do
    present(who, issue_token(key, ops=["drop_table", "truncate"], objects=["*"]))
    refused(who, "ALTER TABLE victim SET UNLOGGED")
    present(who, issue_token(key, ops=["unlogged"], objects=["public.victim"]))
    who.execute("ALTER TABLE victim SET UNLOGGED")
    assert guarded_admin.execute(persistence).fetchone() == ("u",)
    assert victim_rows(guarded_admin) == [(1, "a")]
    # going back, and tables made in this transaction or unlogged from birth, need nothing
    present(who, "")
    who.execute("ALTER TABLE victim SET LOGGED")
    with who.transaction():
        who.execute("CREATE TABLE fresh (id int); ALTER TABLE fresh SET UNLOGGED")
    who.execute("CREATE UNLOGGED TABLE scratch (id int)")
    who.execute("ALTER TABLE scratch ADD COLUMN v float DEFAULT random()")


def test_set_unlogged_of_a_renamed_table_is_not_covered(who: Conn, key: Any) -> None:
    present(who, token_then_later(key, ops=["unlogged"], objects=["public.tmp_*"]))
    who.execute("ALTER TABLE victim RENAME TO tmp_victim")
    err = refused(who, "ALTER TABLE tmp_victim SET UNLOGGED")
    assert "got its current name at" in (err.diag.message_detail or "")


# --- 9. install --exclude-schema over protected tables ----------------------------------------


def test_excluding_a_schema_with_protected_tables_needs_an_uninstall_token(
    guarded_admin: Conn, guarded_db_dsn: str, key: Any
) -> None:
    guarded_admin.execute("CREATE SCHEMA app; CREATE TABLE app.ledger AS SELECT 1 AS id")
    with psycopg.connect(guarded_db_dsn) as conn, pytest.raises(GuardRefused) as caught:
        install(conn, exclude_schemas=["app"])
    assert caught.value.op == "uninstall"
    assert "--op uninstall --object app.ledger" in (caught.value.hint or "")
    st = status(guarded_admin)
    assert st.excluded_schemas == () and st.healthy
    token = issue_token(key, ops=["uninstall"], objects=["app.*"])
    opts = f"-c pgguard.token={token}"
    with psycopg.connect(guarded_db_dsn, options=opts) as conn:
        report = install(conn, exclude_schemas=["app"])
    assert report.excluded_schemas == ("app",)
    # an empty schema, or one already excluded, needs nothing
    with psycopg.connect(guarded_db_dsn) as conn:
        install(conn, exclude_schemas=["app", "nothing_here"])


# --- 10. what status did not see ------------------------------------------------------------


def test_status_sees_membership_in_the_protected_role(guarded_admin: Conn, app_role: Any) -> None:
    guarded_admin.execute(
        sql.SQL("GRANT pgguard_owner TO {}").format(sql.Identifier(app_role.name))
    )
    st = status(guarded_admin)
    assert not st.healthy
    assert any("pgguard_owner" in p and app_role.name in p for p in st.problems), st.problems


@pytest.mark.parametrize("how", ["role", "role-in-db", "database", "grant"])
def test_status_sees_event_triggers_switched_off(
    guarded_admin: Conn, app_role: Any, pg_server: Any, how: str
) -> None:
    if pg_server.major < 17:
        pytest.skip("event_triggers is a setting from PostgreSQL 17 on")
    role, db = sql.Identifier(app_role.name), sql.Identifier(guarded_admin.info.dbname)
    stmt = {
        "role": sql.SQL("ALTER ROLE {} SET event_triggers = off").format(role),
        "role-in-db": sql.SQL("ALTER ROLE {} IN DATABASE {} SET event_triggers = off").format(
            role, db
        ),
        "database": sql.SQL("ALTER DATABASE {} SET event_triggers = off").format(db),
        "grant": sql.SQL("GRANT SET ON PARAMETER event_triggers TO {}").format(role),
    }[how]
    guarded_admin.execute(stmt)
    try:
        st = status(guarded_admin)
        assert not st.healthy
        assert any("event_triggers" in p for p in st.problems), st.problems
    finally:
        if how == "grant":
            guarded_admin.execute(
                sql.SQL("REVOKE SET ON PARAMETER event_triggers FROM {}").format(role)
            )
        elif how == "database":
            guarded_admin.execute(sql.SQL("ALTER DATABASE {} RESET event_triggers").format(db))
        else:
            guarded_admin.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))


# --- 11. bookkeeping keyed by oid ------------------------------------------------------------


def test_bookkeeping_of_dropped_fresh_tables_is_forgotten(who: Conn, guarded_admin: Conn) -> None:
    with who.transaction():
        who.execute("CREATE TABLE p (id int) PARTITION BY RANGE (id)")
        who.execute("CREATE TABLE c PARTITION OF p FOR VALUES FROM (0) TO (10)")
        who.execute("ALTER TABLE c RENAME TO c2; ALTER TABLE p RENAME COLUMN id TO id2")
        oids = [r[0] for r in who.execute("SELECT oid FROM pg_class WHERE relname IN ('p', 'c2')")]
        who.execute("DROP TABLE p")  # fresh: no token needed, so the guard returned early
    for table in ("relation_names", "renames", "attachments"):
        left = guarded_admin.execute(
            f"SELECT count(*) FROM pgguard.{table} WHERE relid = ANY (%s::oid[])",  # type: ignore[arg-type]
            (oids,),
        ).fetchone()
        assert left == (0,), table
