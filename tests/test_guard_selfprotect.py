"""Adversarial: the guard defends itself. Switching off, replacing, renaming or moving a table's
TRUNCATE guard, or dropping/altering pgguard's own objects, is refused as op ``uninstall``; the
app role cannot reach pgguard's tables, event triggers or replication role at all; no string in
``pgguard.token`` that lacks a valid signature passes. After every attempt the guards still work.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
import pytest
from guardhelp import (
    GOOD_GUARD,
    NO_TOKEN,
    Conn,
    assert_denied,
    assert_guarded,
    assert_intact,
    assert_refused,
    assert_uninstall_refused,
    b64url,
    claims,
    count,
    failure,
    guard_state,
    install_excluding,
    kid_of,
    make_table,
    payload_of,
    private_key,
    register_key,
    set_token,
    sign,
    snapshot,
)

if TYPE_CHECKING:
    from conftest import AppRole, PgServer


def _still_guarded(conn: Conn, table: str = "public.t") -> None:
    """The guard is intact and both kinds of refusal still happen."""
    assert_guarded(conn, table)
    assert_refused(conn, f"DROP TABLE {table}", op="drop_table", obj=table)


# --- the TRUNCATE guard on a user table --------------------------------------------------------

TAMPER = [
    "DROP TRIGGER pgguard_truncate_guard ON public.t",
    "DROP TRIGGER IF EXISTS pgguard_truncate_guard ON public.t CASCADE",
    "ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard",
    "ALTER TABLE public.t DISABLE TRIGGER USER",
    "ALTER TABLE public.t DISABLE TRIGGER ALL",
    "ALTER TABLE public.t ENABLE TRIGGER pgguard_truncate_guard",
    "ALTER TABLE public.t ENABLE TRIGGER USER",
    "ALTER TABLE public.t ENABLE TRIGGER ALL",
    "ALTER TABLE public.t ENABLE REPLICA TRIGGER pgguard_truncate_guard",
    "ALTER TABLE public.t ENABLE REPLICA TRIGGER pgguard_truncate_guard, ADD COLUMN z int",
    "ALTER TABLE public.t ADD COLUMN z int, DISABLE TRIGGER pgguard_truncate_guard",
    "ALTER TRIGGER pgguard_truncate_guard ON public.t RENAME TO not_the_guard",
    "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.t"
    " FOR EACH STATEMENT EXECUTE FUNCTION public.own_fn()",
    "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.t"
    " FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION pgguard.truncate_guard()",
    "CREATE OR REPLACE TRIGGER pgguard_truncate_guard AFTER TRUNCATE ON public.t"
    " FOR EACH STATEMENT EXECUTE FUNCTION pgguard.truncate_guard()",
    "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE OR INSERT ON public.t"
    " FOR EACH STATEMENT EXECUTE FUNCTION pgguard.truncate_guard()",
    "DO $$BEGIN ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard; END$$",
    "DO $$BEGIN EXECUTE 'DROP TRIGGER pgguard_truncate_guard ON public.t'; END$$",
]


def _own_fn(conn: Conn) -> None:
    conn.execute(
        "CREATE FUNCTION public.own_fn() RETURNS trigger LANGUAGE plpgsql"
        " AS $$BEGIN RETURN NULL; END$$"
    )


@pytest.mark.parametrize("stmt", TAMPER)
def test_tamper_with_guard(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    make_table(actor, "public.t")
    _own_fn(actor)
    before = snapshot(guarded_admin)
    assert_uninstall_refused(actor, stmt, mentions="public.t")
    assert_intact(guarded_admin, before)
    _still_guarded(actor)


@pytest.mark.parametrize(
    "stmt",
    [
        "ALTER TABLE public.p1 DISABLE TRIGGER pgguard_truncate_guard",
        "ALTER TABLE public.p DISABLE TRIGGER pgguard_truncate_guard",
        "ALTER TABLE public.p DISABLE TRIGGER ALL",
        "DROP TRIGGER pgguard_truncate_guard ON public.p1",
        "DROP TRIGGER pgguard_truncate_guard ON public.p",
    ],
)
def test_tamper_with_partition_guards(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    with actor.transaction():
        actor.execute("CREATE TABLE public.p (id int, c int) PARTITION BY RANGE (id)")
        actor.execute("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (1) TO (100)")
        actor.execute("INSERT INTO public.p SELECT g, g FROM generate_series(1, 50) g")
    before = snapshot(guarded_admin)
    assert_uninstall_refused(actor, stmt, mentions="public.p")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.p")
    assert_guarded(actor, "public.p1")


def test_guard_tampered_with_in_savepoint_then_truncate(actor: Conn, guarded_admin: Conn) -> None:
    """Catch the refusal in a savepoint and go on: the guard is back, TRUNCATE still refused."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("SAVEPOINT s")
    assert_uninstall_refused(
        actor, "ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard", mentions="public.t"
    )
    actor.execute("ROLLBACK TO SAVEPOINT s")
    assert_refused(actor, "TRUNCATE public.t", op="truncate", obj="public.t")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_recreating_the_identical_guard_is_harmless(actor: Conn, guarded_admin: Conn) -> None:
    """CREATE OR REPLACE with the guard's own definition is allowed and ends up ALWAYS again."""
    make_table(actor, "public.t")
    actor.execute(
        "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.t"
        " FOR EACH STATEMENT EXECUTE FUNCTION pgguard.truncate_guard()"
    )
    actor.execute("ALTER TABLE public.t ENABLE ALWAYS TRIGGER pgguard_truncate_guard")
    _still_guarded(actor)


@pytest.mark.parametrize(
    "stmt",
    [
        "DROP TRIGGER pgguard_truncate_guard ON public.f",
        "ALTER TABLE public.f DISABLE TRIGGER pgguard_truncate_guard",
        "ALTER TABLE public.f ENABLE REPLICA TRIGGER pgguard_truncate_guard",
        "ALTER TRIGGER pgguard_truncate_guard ON public.f RENAME TO not_the_guard",
        "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.f"
        " FOR EACH STATEMENT EXECUTE FUNCTION public.own_fn()",
    ],
)
def test_guard_removed_in_creating_transaction_is_back_after_commit(
    actor: Conn, guarded_admin: Conn, stmt: str
) -> None:
    """A table may be dropped or emptied in the transaction that created it, but it must not
    come out of that transaction without its guard: afterwards it is a protected table."""
    _own_fn(actor)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.f (id int)")
    try:
        actor.execute(stmt)  # type: ignore[arg-type]
    except psycopg.Error as e:  # refusing it is fine too
        assert e.sqlstate == "PGG01", e
        actor.execute("ROLLBACK")
        return
    actor.execute("COMMIT")
    actor.execute("INSERT INTO public.f VALUES (1), (2)")
    state = guard_state(actor, "public.f")
    try:
        actor.execute("TRUNCATE public.f")
    except psycopg.Error as e:
        assert e.sqlstate == "PGG01", e
    else:
        pytest.fail(
            f"{stmt!r} in the creating transaction left public.f unguarded after COMMIT "
            f"(guard now {state!r}): a later TRUNCATE emptied it without a token",
            pytrace=False,
        )
    assert state == GOOD_GUARD
    assert count(actor, "public.f") == 2


# --- moving protected tables out of protection ---------------------------------------------------


@pytest.fixture
def scratch_excluded(guarded_db_dsn: str, guarded_admin: Conn, app_role: AppRole) -> str:
    """Install again with exclude_schemas=['scratch']; schema scratch exists, owned by the app."""
    install_excluding(guarded_db_dsn, ["scratch"])
    return app_role.create_schema("scratch")


@pytest.mark.parametrize(
    ("stmt", "moved"),
    [
        ("ALTER TABLE public.t SET SCHEMA scratch", "public.t"),
        ("ALTER TABLE IF EXISTS public.t SET SCHEMA scratch", "public.t"),
        ("ALTER TABLE public.p1 SET SCHEMA scratch", "public.p1"),
        ("ALTER TABLE public.p SET SCHEMA scratch", "public.p"),
    ],
)
def test_move_protected_table_into_excluded_schema(
    actor: Conn, guarded_admin: Conn, scratch_excluded: str, stmt: str, moved: str
) -> None:
    make_table(actor, "public.t")
    with actor.transaction():
        actor.execute("CREATE TABLE public.p (id int, c int) PARTITION BY RANGE (id)")
        actor.execute("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (1) TO (100)")
        actor.execute("INSERT INTO public.p SELECT g, g FROM generate_series(1, 50) g")
    before = snapshot(guarded_admin)
    assert_uninstall_refused(actor, stmt, mentions="scratch")
    assert_intact(guarded_admin, before)
    _still_guarded(actor, moved)


@pytest.mark.parametrize(
    "stmt",
    [
        "ALTER VIEW public.t SET SCHEMA scratch",
        "ALTER MATERIALIZED VIEW public.t SET SCHEMA scratch",
        "ALTER FOREIGN TABLE public.t SET SCHEMA scratch",
        "ALTER SEQUENCE public.t SET SCHEMA scratch",
        "ALTER INDEX public.t SET SCHEMA scratch",
        "ALTER TYPE public.t SET SCHEMA scratch",
    ],
)
def test_move_into_excluded_schema_by_other_spellings(
    actor: Conn, guarded_admin: Conn, scratch_excluded: str, stmt: str
) -> None:
    """Other ALTER … SET SCHEMA spellings aimed at a table fail one way or another."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    failure(actor, stmt)
    assert_intact(guarded_admin, before)
    _still_guarded(actor)


def test_drop_guard_with_exclusions_configured(
    actor: Conn, guarded_admin: Conn, scratch_excluded: str
) -> None:
    """Exclusions do not weaken the guards outside the excluded schemas."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_uninstall_refused(
        actor, "DROP TRIGGER pgguard_truncate_guard ON public.t", mentions="public.t"
    )
    assert_uninstall_refused(
        actor, "ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard", mentions="public.t"
    )
    assert_intact(guarded_admin, before)
    _still_guarded(actor)


def test_rename_schema_to_excluded_name(
    actor: Conn, guarded_admin: Conn, guarded_db_dsn: str, app_role: AppRole
) -> None:
    """A protected schema renamed to an excluded schema's name must not lose its protection:
    either the rename is refused, or its tables stay protected under the new name."""
    install_excluding(guarded_db_dsn, ["scratch"])  # scratch does not exist (yet)
    actor.execute("CREATE SCHEMA appdata")
    make_table(actor, "appdata.t")
    before = snapshot(guarded_admin)
    try:
        actor.execute("ALTER SCHEMA appdata RENAME TO scratch")
    except psycopg.Error as e:
        assert e.sqlstate == "PGG01", e
        assert_intact(guarded_admin, before)
        return
    # the rename went through: the data must still be guarded
    assert_refused(actor, "TRUNCATE scratch.t", op="truncate", obj="scratch.t")
    assert_refused(actor, "DROP TABLE scratch.t", op="drop_table", obj="scratch.t")
    assert count(actor, "scratch.t") == 3


def test_superuser_moves_extension_with_member_table_into_excluded_schema(
    guarded_admin: Conn, guarded_db_dsn: str, app_role: AppRole
) -> None:
    """ALTER EXTENSION … SET SCHEMA moves member tables too: same rule as ALTER TABLE."""
    install_excluding(guarded_db_dsn, ["scratch"])
    row = guarded_admin.execute(
        "SELECT name FROM pg_available_extensions WHERE name IN ('hstore', 'citext')"
        " ORDER BY name DESC LIMIT 1"
    ).fetchone()
    if row is None:
        pytest.skip("neither hstore nor citext is available")
    ext = str(row[0])
    guarded_admin.execute("CREATE SCHEMA scratch")
    guarded_admin.execute(f"CREATE EXTENSION {ext} SCHEMA public")  # type: ignore[arg-type]
    make_table(guarded_admin, "public.t")
    guarded_admin.execute(f"ALTER EXTENSION {ext} ADD TABLE public.t")  # type: ignore[arg-type]
    before = snapshot(guarded_admin)
    try:
        guarded_admin.execute(f"ALTER EXTENSION {ext} SET SCHEMA scratch")  # type: ignore[arg-type]
    except psycopg.Error as e:
        assert e.sqlstate == "PGG01", e
        assert_intact(guarded_admin, before)
        return
    assert_refused(guarded_admin, "TRUNCATE scratch.t", op="truncate", obj="scratch.t")


# --- pgguard's own objects: the superuser is refused ---------------------------------------------

SUPERUSER_UNINSTALL = [
    "DROP FUNCTION pgguard.truncate_guard() CASCADE",
    "DROP FUNCTION pgguard.on_sql_drop() CASCADE",
    "DROP FUNCTION pgguard.on_ddl_end() CASCADE",
    "DROP FUNCTION pgguard.ensure_guard(oid, text) CASCADE",
    "DROP FUNCTION pgguard.check_override(text, text[], text, text, text[], text) CASCADE",
    "DROP SCHEMA pgguard CASCADE",
    "ALTER FUNCTION pgguard.on_sql_drop() SECURITY INVOKER",
    "ALTER FUNCTION pgguard.on_sql_drop() RENAME TO on_sql_drop_old",
    "ALTER FUNCTION pgguard.on_sql_drop() OWNER TO CURRENT_USER",
    "ALTER FUNCTION pgguard.truncate_guard() SET search_path = public",
    "ALTER FUNCTION pgguard.truncate_guard() SET SCHEMA public",
    "CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN RETURN NULL; END$$",
    "CREATE OR REPLACE FUNCTION pgguard.excluded_schemas() RETURNS text[] LANGUAGE sql"
    " AS $$SELECT ARRAY['public']$$",
    "CREATE OR REPLACE FUNCTION pgguard.check_override(op text, objs text[], command_tag text,"
    " hint text DEFAULT NULL, covering text[] DEFAULT '{}', message text DEFAULT NULL)"
    " RETURNS void LANGUAGE plpgsql AS $$BEGIN END$$",
    "CREATE OR REPLACE FUNCTION pgguard.refuse(op text, objs text[], detail text, hint text,"
    " command_tag text, message text DEFAULT NULL, reason text DEFAULT NULL,"
    " token_claims jsonb DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $$BEGIN END$$",
    "CREATE FUNCTION pgguard.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP TABLE pgguard.keys",
    "DROP TABLE pgguard.created_tables",
    "DROP TABLE pgguard.settings CASCADE",
    "ALTER TABLE pgguard.keys SET SCHEMA public",
    "ALTER TABLE pgguard.settings ADD COLUMN x int",
    "ALTER TABLE pgguard.created_tables RENAME TO created_tables_old",
    "CREATE TABLE pgguard.evil (id int)",
    "CREATE INDEX ON pgguard.audit (op)",
    "CREATE TRIGGER evil BEFORE UPDATE ON pgguard.keys FOR EACH ROW"
    " EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "ALTER SCHEMA pgguard RENAME TO pgguard_old",
    "ALTER SCHEMA pgguard OWNER TO CURRENT_USER",
    "DROP OWNED BY pgguard_owner CASCADE",
    "DROP FUNCTION pgguard_sentinel.on_sql_drop() CASCADE",
    "DROP SCHEMA pgguard_sentinel CASCADE",
    "CREATE OR REPLACE FUNCTION pgguard_sentinel.on_sql_drop() RETURNS event_trigger"
    " LANGUAGE plpgsql AS $$BEGIN END$$",
    "GRANT INSERT ON pgguard.created_tables TO PUBLIC",
    "GRANT ALL ON ALL TABLES IN SCHEMA pgguard TO PUBLIC",
]


@pytest.mark.parametrize("stmt", SUPERUSER_UNINSTALL)
def test_superuser_cannot_change_pgguard(guarded_admin: Conn, app_role: AppRole, stmt: str) -> None:
    if "pgguard_sentinel" in stmt and guarded_admin.execute(
        "SELECT to_regnamespace('pgguard_sentinel')"
    ).fetchone() == (None,):
        pytest.skip("this pgguard has no schema pgguard_sentinel")
    app = app_role.connect()
    make_table(app, "public.t")
    before = snapshot(guarded_admin)
    assert_uninstall_refused(guarded_admin, stmt)
    assert_intact(guarded_admin, before)
    _still_guarded(app)
    _still_guarded(guarded_admin)


# --- pgguard's own objects: the app role cannot even try ------------------------------------------

APP_DENIED = [
    "DROP FUNCTION pgguard.truncate_guard() CASCADE",
    "DROP FUNCTION pgguard.on_sql_drop() CASCADE",
    "DROP SCHEMA pgguard CASCADE",
    "ALTER FUNCTION pgguard.on_sql_drop() SECURITY INVOKER",
    "ALTER FUNCTION pgguard.truncate_guard() RENAME TO x",
    "CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN RETURN NULL; END$$",
    "CREATE FUNCTION pgguard.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TABLE pgguard.evil (id int)",
    "DROP TABLE pgguard.keys",
    "DROP TABLE pgguard.created_tables",
    "ALTER TABLE pgguard.keys ADD COLUMN x int",
    "TRUNCATE pgguard.spent_tokens",
    "TRUNCATE pgguard.audit",
    "ALTER SCHEMA pgguard RENAME TO mine",
    "ALTER EVENT TRIGGER pgguard_sql_drop DISABLE",
    "ALTER EVENT TRIGGER pgguard_ddl_end ENABLE REPLICA",
    "ALTER EVENT TRIGGER pgguard_sql_drop RENAME TO x",
    "DROP EVENT TRIGGER pgguard_sql_drop",
    "DROP EVENT TRIGGER pgguard_ddl_end",
    "CREATE EVENT TRIGGER mine ON sql_drop EXECUTE FUNCTION pgguard.on_sql_drop()",
    "SET session_replication_role = replica",
    "SET LOCAL session_replication_role = replica",
    "SELECT set_config('session_replication_role', 'replica', false)",
    "SET ROLE pgguard_owner",
    "SET SESSION AUTHORIZATION pgguard_owner",
    "GRANT pgguard_owner TO CURRENT_USER",
    "ALTER ROLE pgguard_owner LOGIN",
    "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgname = 'pgguard_truncate_guard'",
    "INSERT INTO pgguard.created_tables (xid, relid)"
    " VALUES (pg_current_xact_id()::text::bigint, 'public.t'::regclass)",
    "INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)"
    " VALUES (sha256('x'), '0123456789abcdef', '{}', now() + interval '1 hour')",
    "INSERT INTO pgguard.spent_tokens (jti, kid, xid, exp)"
    " VALUES ('j', '0123456789abcdef', 1, now())",
    "DELETE FROM pgguard.spent_tokens",
    "INSERT INTO pgguard.audit (kind, op, object) VALUES ('override', 'truncate', 'public.t')",
    "DELETE FROM pgguard.audit",
    "UPDATE pgguard.settings SET value = '[\"public\"]'",
    "INSERT INTO pgguard.settings (name, value) VALUES ('exclude_schemas', '[\"public\"]')",
    "INSERT INTO pgguard.keys (kid, n, e, k, bits, public_pem)"
    " VALUES ('0123456789abcdef', 3, 65537, 256, 2048, 'x')",
    "UPDATE pgguard.keys SET revoked_at = NULL",
    "DELETE FROM pgguard.keys",
]


@pytest.mark.parametrize("stmt", APP_DENIED)
def test_app_role_cannot_touch_pgguard(guarded_admin: Conn, app_role: AppRole, stmt: str) -> None:
    app = app_role.connect()
    make_table(app, "public.t")
    before = snapshot(guarded_admin)
    if stmt.startswith("SET LOCAL"):
        app.execute("BEGIN")
        err = failure(app, stmt)
        app.execute("ROLLBACK")
        assert err.sqlstate == "42501", err
    else:
        assert_denied(app, stmt)
    assert_intact(guarded_admin, before)
    _still_guarded(app)


def test_app_role_cannot_set_event_triggers_off(
    pg_server: PgServer, guarded_admin: Conn, app_role: AppRole
) -> None:
    """PG 17+: ``event_triggers = off`` silences even ALWAYS triggers; superuser only."""
    if pg_server.major < 17:
        pytest.skip("event_triggers exists from PostgreSQL 17")
    app = app_role.connect()
    make_table(app, "public.t")
    assert_denied(app, "SET event_triggers = off")
    _still_guarded(app)


def test_plain_role_gets_permission_errors(
    guarded_admin: Conn, app_role: AppRole, make_app_role: Callable[..., AppRole]
) -> None:
    """A role that neither owns nor was granted anything: privilege errors, before any guard."""
    make_table(app_role.connect(), "public.t")
    plain = make_app_role(prefix="plain", grants=False).connect()
    before = snapshot(guarded_admin)
    for stmt in (
        "DROP TABLE public.t",
        "ALTER TABLE public.t DROP COLUMN c",
        "TRUNCATE public.t",
        "ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard",
        "DROP TRIGGER pgguard_truncate_guard ON public.t",
        "SET session_replication_role = replica",
    ):
        assert_denied(plain, stmt)
    assert_intact(guarded_admin, before)


# --- faking the "created in this transaction" exemption ------------------------------------------


@pytest.mark.parametrize(
    "create",
    [
        "CREATE TABLE IF NOT EXISTS public.t (id int)",
        "CREATE TABLE IF NOT EXISTS public.t AS SELECT 1 AS id",
        "CREATE TABLE IF NOT EXISTS public.t (LIKE public.other)",
        "CREATE TABLE IF NOT EXISTS public.t PARTITION OF public.pp DEFAULT",
        "CREATE UNLOGGED TABLE IF NOT EXISTS public.t (id int)",
    ],
)
def test_create_if_not_exists_on_existing_table_gives_no_exemption(
    actor: Conn, guarded_admin: Conn, create: str
) -> None:
    make_table(actor, "public.t")
    make_table(actor, "public.other", rows=0)
    actor.execute("CREATE TABLE public.pp (id int) PARTITION BY LIST (id)")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute(create)  # type: ignore[arg-type]
    actor.execute("SAVEPOINT s")
    assert_refused(actor, "DROP TABLE public.t", op="drop_table", obj="public.t")
    actor.execute("ROLLBACK TO SAVEPOINT s")
    assert_refused(actor, "TRUNCATE public.t", op="truncate", obj="public.t")
    actor.execute("ROLLBACK TO SAVEPOINT s")
    assert_refused(actor, "ALTER TABLE public.t DROP COLUMN c", op="drop_column", obj="public.t.c")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_drop_and_recreate_does_not_launder_old_table(actor: Conn, guarded_admin: Conn) -> None:
    """A fresh table under an old table's name exempts only itself, not the renamed old one."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("ALTER TABLE public.t RENAME TO t_moved")
    actor.execute("CREATE TABLE public.t (id int)")
    actor.execute("DROP TABLE public.t")  # the fresh one: allowed
    actor.execute("ALTER TABLE public.t_moved RENAME TO t")
    assert_refused(actor, "DROP TABLE public.t", op="drop_table", obj="public.t")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


# --- pgguard.token: nothing without a valid signature passes -------------------------------------


def _forged(admin: Conn) -> dict[str, tuple[str, str | tuple[str, ...]]]:
    """name -> (token, expected DETAIL prefix or prefixes). Key 0 is registered, key 1 is not."""
    good = private_key(0)
    kid = register_key(admin, good)
    other = private_key(1)
    db = admin.info.dbname
    pay = payload_of(claims(db=db))
    k = (good.public_key().key_size + 7) // 8
    n = good.public_key().public_numbers().n
    valid_for_other = sign(good, kid, payload_of(claims(obj=["public.other"], db=db)))
    tampered = valid_for_other.split(".")
    tampered[2] = pay
    bad_sig = "the override token's signature does not verify"
    all_ff = b64url(b"\xff" * k)
    zero_lead = b64url(b"\x00" + bytes(k))
    malformed = "the override token is malformed"
    return {
        "empty": ("", NO_TOKEN),
        "garbage": ("garbage", malformed),
        "uuid": ("0b5e2a9c-4c1e-4f55-9a52-6f1f0b4a7c11", malformed),
        "jwt-like": ("eyJhbGciOiJub25lIn0.eyJvcHMiOlsiKiJdfQ.", malformed),
        "wrong version": (f"pgg2.{kid}.{pay}.AAAA", malformed),
        "five parts": (f"pgg1.{kid}.{pay}.AAAA.AAAA", malformed),
        "uppercase kid": (f"pgg1.{kid.upper()}.{pay}.AAAA", malformed),
        "padding in payload": (f"pgg1.{kid}.{pay}==.AAAA", malformed),
        "empty json payload": (f"pgg1.{kid}.{b64url(b'{}')}.AAAA", malformed),
        "not json": (f"pgg1.{kid}.{b64url(b'not json')}.AAAA", malformed),
        "unknown op claim": (
            f"pgg1.{kid}.{payload_of(claims(ops=['everything']))}.AAAA",
            malformed,
        ),
        "unregistered kid": (
            f"pgg1.deadbeefdeadbeef.{pay}.AAAA",
            "the override token is signed by key deadbeefdeadbeef, which is not registered",
        ),
        "signed by an unregistered key under a registered kid": (sign(other, kid, pay), bad_sig),
        "signed by an unregistered key under its own kid": (
            sign(other, kid_of(other), pay),
            f"the override token is signed by key {kid_of(other)}, which is not registered",
        ),
        "payload swapped under a valid signature": (".".join(tampered), bad_sig),
        "zero signature": (f"pgg1.{kid}.{pay}.{b64url(bytes(k))}", bad_sig),
        "signature 1": (f"pgg1.{kid}.{pay}.{b64url((1).to_bytes(k, 'big'))}", bad_sig),
        "signature n-1": (f"pgg1.{kid}.{pay}.{b64url((n - 1).to_bytes(k, 'big'))}", bad_sig),
        "signature n": (f"pgg1.{kid}.{pay}.{b64url(n.to_bytes(k, 'big'))}", bad_sig),
        "signature all ff": (f"pgg1.{kid}.{pay}.{all_ff}", bad_sig),
        "signature too short": (sign(good, kid, pay)[:-8], (bad_sig, malformed)),
        "signature with leading zero byte": (
            f"pgg1.{kid}.{pay}.{zero_lead}",
            bad_sig,
        ),
        "signature shifted by n": (
            f"pgg1.{kid}.{pay}.{_sig_plus_n(sign(good, kid, pay), n, k)}",
            bad_sig,
        ),
        "valid but expired": (
            sign(good, kid, payload_of(claims(iat=1_000_000, exp=1_000_600, db=db))),
            "the override token expired at",
        ),
        "valid but issued in the future": (
            sign(good, kid, payload_of(claims(iat=4_000_000_000, exp=4_000_000_600, db=db))),
            "the override token was issued in the future",
        ),
        "valid but for another database": (
            sign(good, kid, payload_of(claims(db="some_other_db"))),
            'the override token is for database "some_other_db"',
        ),
        "valid but for another table": (
            valid_for_other,
            'the override token does not cover "public.t"',
        ),
        "valid but for another op": (
            sign(good, kid, payload_of(claims(ops=["truncate"], db=db))),
            "the override token does not cover op drop_table",
        ),
        "valid but for a column only": (
            sign(good, kid, payload_of(claims(obj=["public.t.c"], db=db))),
            'the override token does not cover "public.t"',
        ),
    }


def _sig_plus_n(token: str, n: int, k: int) -> str:
    """The same signature value plus n (another spelling of it mod n), if it fits in k bytes."""
    raw = token.split(".")[3]
    s = int.from_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), "big")
    t = s + n if s + n < 256**k else n + 1
    return b64url(t.to_bytes(k, "big"))


FORGED = [
    "empty",
    "garbage",
    "uuid",
    "jwt-like",
    "wrong version",
    "five parts",
    "uppercase kid",
    "padding in payload",
    "empty json payload",
    "not json",
    "unknown op claim",
    "unregistered kid",
    "signed by an unregistered key under a registered kid",
    "signed by an unregistered key under its own kid",
    "payload swapped under a valid signature",
    "zero signature",
    "signature 1",
    "signature n-1",
    "signature n",
    "signature all ff",
    "signature too short",
    "signature with leading zero byte",
    "signature shifted by n",
    "valid but expired",
    "valid but issued in the future",
    "valid but for another database",
    "valid but for another table",
    "valid but for another op",
    "valid but for a column only",
]


@pytest.mark.parametrize("name", FORGED)
def test_token_without_valid_signature_or_scope_is_refused(
    guarded_admin: Conn, app_role: AppRole, name: str
) -> None:
    app = app_role.connect()
    make_table(app, "public.t")
    token, detail = _forged(guarded_admin)[name]
    before = snapshot(guarded_admin)
    set_token(app, token)
    assert_refused(
        app, "DROP TABLE public.t", op="drop_table", obj="public.t", detail_prefix=detail
    )
    assert_intact(guarded_admin, before)
    app.execute("BEGIN")
    app.execute("SELECT set_config('pgguard.token', %s, true)", (token,))
    diag = failure(app, "DROP TABLE public.t").diag
    assert diag.sqlstate == "PGG01" and (diag.message_detail or "").startswith(detail), (
        diag.sqlstate,
        diag.message_detail,
    )
    app.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_valid_token_is_the_positive_control(guarded_admin: Conn, app_role: AppRole) -> None:
    """The forgeries above fail for their stated reason, not because the helpers are wrong:
    a properly signed token built the same way lets the drop through."""
    app = app_role.connect()
    make_table(app, "public.t")
    make_table(app, "public.u")
    key = private_key(0)
    kid = register_key(guarded_admin, key)
    token = sign(
        key, kid, payload_of(claims(ops=["drop_table"], obj=["public.t"], db=app.info.dbname))
    )
    set_token(app, token)
    assert_refused(
        app,
        "DROP TABLE public.u",
        op="drop_table",
        obj="public.u",
        detail_prefix='the override token does not cover "public.u"',
    )
    app.execute("DROP TABLE public.t")
    assert app.execute("SELECT to_regclass('public.t')").fetchone() == (None,)
    app.execute("RESET pgguard.token")
    assert_guarded(app, "public.u")


def test_app_role_cannot_persist_a_token(guarded_admin: Conn, app_role: AppRole) -> None:
    """Only a superuser can ALTER ROLE/DATABASE … SET the placeholder (PG-FACTS)."""
    app = app_role.connect()
    for stmt in (
        f"ALTER DATABASE \"{app.info.dbname}\" SET pgguard.token = 'garbage'",
        f"ALTER ROLE \"{app_role.name}\" SET pgguard.token = 'garbage'",
        f'ALTER ROLE "{app_role.name}" IN DATABASE "{app.info.dbname}"'
        " SET pgguard.token = 'garbage'",
    ):
        assert_denied(app, stmt)


def test_reassign_owned_is_reported_and_repaired(guarded_admin: Conn, guarded_db_dsn: str) -> None:
    """REASSIGN OWNED fires no event trigger, so it cannot be refused: status must report it,
    and install must hand everything back to pgguard_owner."""
    from pgguard.health import status
    from pgguard.installer import install

    guarded_admin.execute("REASSIGN OWNED BY pgguard_owner TO CURRENT_USER")
    st = status(guarded_admin)
    assert not st.healthy
    assert any("not owned by pgguard_owner" in p for p in st.problems), st.problems
    report = install(guarded_admin)
    assert report.action == "upgraded"
    assert status(guarded_admin).healthy
