"""The executor, pgguard.run_ddl(), attacked by the app role of a privilege-mode install.

The attacker holds the app role and wants the protected owner's power (or a table without a
token). Each attempt runs inside a transaction that is rolled back afterwards, on one shared
install per server, and must leave pgguard, the ownership and the data exactly as they were.
``U&"pgguar\\0064"`` spells schema pgguard so that no word-level check sees it: those attempts
prove the catalog checks that judge a statement's effects, not its text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from guardhelp import claims, payload_of, private_key, register_key, set_token, sign
from privhelp import (
    Platform,
    ddl_error,
    error_of,
    guard_enabled,
    make_platform,
    owner_of,
    run_ddl,
)

PGGUARD = 'U&"pgguar\\0064"'  # schema pgguard, hidden from the statement's words
IMM = "CREATE FUNCTION public.imm(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1'"
WRITES = (
    "CREATE FUNCTION public.w() RETURNS int LANGUAGE sql AS $$ INSERT INTO "
    + PGGUARD
    + ".settings VALUES ('exclude_schemas', '[\"public\"]') ON CONFLICT (name) DO UPDATE"
    " SET value = excluded.value RETURNING 1 $$"
)
IMM_WRITES = (
    "CREATE FUNCTION public.imm_w(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS"
    " $$ BEGIN PERFORM public.w(); RETURN $1; END $$"
)


@pytest.fixture(scope="module")
def shared(pg_server: Any) -> Iterator[Platform]:
    dbs: list[str] = []

    def make_db() -> str:
        dbs.append(pg_server.create_database())
        return dbs[-1]

    p = make_platform(pg_server, make_db)
    p.install()
    admin = p.admin()
    kid = register_key(admin, private_key(0))
    p.kid = kid  # type: ignore[attr-defined]
    yield p
    p.close()
    for name in dbs:
        pg_server.drop_database(name)


@pytest.fixture
def app(shared: Platform) -> Iterator[psycopg.Connection[Any]]:
    conn = shared.connect("app", autocommit=False)
    before = _invariants(shared)
    yield conn
    conn.rollback()
    conn.close()
    assert _invariants(shared) == before


def _invariants(p: Platform) -> tuple[Any, ...]:
    with p.server.connect(p.dbname) as admin:
        return (
            admin.execute("SELECT pgguard.self_digest()").fetchone(),
            admin.execute(
                "SELECT array_agg(s ORDER BY s::text) FROM pgguard.settings s"
            ).fetchone(),
            admin.execute("SELECT count(*) FROM pgguard.keys").fetchone(),
            admin.execute("SELECT count(*) FROM pgguard.ownership_drift()").fetchone(),
            admin.execute(
                "SELECT count(*) FROM pgguard.table_guards() WHERE state <> 'ok'"
            ).fetchone(),
            admin.execute("SELECT count(*), sum(total) FROM public.orders").fetchone(),
            admin.execute("SELECT count(*) FROM public.tenants").fetchone(),
            admin.execute(
                "SELECT count(*) FROM pg_auth_members WHERE roleid = 'pgguard_owner'::regrole"
            ).fetchone(),
            admin.execute(
                "SELECT count(*) FROM pg_proc WHERE prosecdef"
                " AND proowner = 'pgguard_owner'::regrole"
            ).fetchone(),
        )


def token(p: Platform, **kw: Any) -> str:
    return sign(private_key(0), p.kid, payload_of(claims(**kw)))  # type: ignore[attr-defined]


# (id, setup statements through the executor, attack, expected SQLSTATE, text in the message)
ATTACKS: list[tuple[str, list[str], str, str, str]] = [
    (
        "two_statements",
        [],
        "CREATE TABLE public.a1 (x int); DROP TABLE public.tenants CASCADE",
        "PGG01",
        "exactly one statement",
    ),
    (
        "statement_after_comment",
        [],
        "CREATE TABLE public.a1 (x int) -- c\n; DROP TABLE public.orders",
        "PGG01",
        "exactly one statement",
    ),
    (
        "quote_backslash_trick",
        [],
        "COMMENT ON TABLE public.tenants IS 'a\\'; DROP TABLE public.orders; --'",
        "PGG01",
        "exactly one statement",
    ),
    ("do_block", [], "DO $$BEGIN EXECUTE 'DROP TABLE public.orders'; END$$", "PGG01", "DO"),
    ("set_role", [], "SET ROLE pgguard_owner", "PGG01", "SET"),
    ("set_session_authorization", [], "SET SESSION AUTHORIZATION DEFAULT", "PGG01", "SET"),
    ("reset_role", [], "RESET ROLE", "PGG01", "RESET"),
    ("transaction_control", [], "COMMIT", "PGG01", "COMMIT"),
    ("grant_role", [], "GRANT pgguard_owner TO PUBLIC", "PGG01", "GRANT"),
    ("grant_table", [], "GRANT ALL ON public.tenants TO PUBLIC", "PGG01", "GRANT"),
    (
        "alter_default_privileges",
        [],
        "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC",
        "PGG01",
        "DEFAULT",
    ),
    (
        "security_definer_function",
        [],
        "CREATE FUNCTION public.sd() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
        "PGG01",
        "SECURITY DEFINER",
    ),
    (
        "alter_function_security_definer",
        ["CREATE FUNCTION public.sd2() RETURNS int LANGUAGE sql AS 'SELECT 1'"],
        "ALTER FUNCTION public.sd2() SECURITY DEFINER",
        "PGG01",
        "SECURITY DEFINER",
    ),
    ("alter_function_owner", [IMM], "ALTER FUNCTION public.imm(int) OWNER TO {app}", "42501", ""),
    ("alter_table_owner_to_app", [], "ALTER TABLE public.tenants OWNER TO {app}", "42501", ""),
    ("alter_schema_owner_to_app", [], "ALTER SCHEMA public OWNER TO {app}", "42501", ""),
    ("create_schema_for_app", [], "CREATE SCHEMA evil AUTHORIZATION {app}", "42501", ""),
    (
        "create_event_trigger",
        [],
        "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()",
        "PGG01",
        "EVENT",
    ),
    ("copy_to_program", [], "COPY (SELECT 1) TO PROGRAM 'id'", "PGG01", "COPY"),
    ("alter_system", [], "ALTER SYSTEM SET work_mem = '1GB'", "PGG01", "SYSTEM"),
    ("load", [], "LOAD 'auto_explain'", "PGG01", "LOAD"),
    ("create_extension", [], "CREATE EXTENSION pgcrypto", "PGG01", "EXTENSION"),
    ("security_label", [], "SECURITY LABEL ON TABLE public.tenants IS 'x'", "PGG01", "SECURITY"),
    (
        "create_rule",
        [],
        "CREATE RULE r AS ON INSERT TO public.tenants DO ALSO DELETE FROM public.orders",
        "PGG01",
        "RULE",
    ),
    ("create_role", [], "CREATE ROLE evil SUPERUSER", "PGG01", "ROLE"),
    ("alter_role", [], "ALTER ROLE {app} CREATEROLE", "PGG01", "ROLE"),
    ("reassign_owned", [], "REASSIGN OWNED BY pgguard_owner TO {app}", "PGG01", "REASSIGN"),
    ("drop_owned", [], "DROP OWNED BY pgguard_owner", "PGG01", "OWNED"),
    (
        "cte_delete",
        [],
        "WITH d AS (DELETE FROM public.orders RETURNING *) SELECT * FROM d",
        "PGG01",
        "WITH",
    ),
    ("truncate", [], "TRUNCATE public.orders", "PGG01", "TRUNCATE"),
    ("vacuum", [], "VACUUM public.orders", "PGG01", "break-glass"),
    (
        "create_index_concurrently",
        [],
        "CREATE INDEX CONCURRENTLY oi ON public.orders (total)",
        "PGG01",
        "CONCURRENTLY",
    ),
    (
        "names_pgguard",
        [],
        "CREATE VIEW public.v2 AS SELECT * FROM pgguard.keys",
        "PGG01",
        "schema pgguard",
    ),
    (
        "names_quoted_pgguard",
        [],
        'CREATE VIEW public.v3 AS SELECT * FROM "pgguard".keys',
        "PGG01",
        "schema pgguard",
    ),
    # past the word checks: the catalog checks decide
    (
        "updatable_view_on_pgguard",
        [],
        "CREATE VIEW public.vt AS SELECT * FROM " + PGGUARD + ".verified_tokens",
        "PGG01",
        "depends on pgguard",
    ),
    (
        "inherit_pgguard_table",
        [],
        "CREATE TABLE public.x () INHERITS (" + PGGUARD + ".keys)",
        "PGG01",
        "pgguard's own objects",
    ),
    (
        "policy_reading_pgguard",
        [],
        "CREATE POLICY p ON public.tenants USING (EXISTS (SELECT FROM " + PGGUARD + ".keys))",
        "PGG01",
        "depends on pgguard",
    ),
    (
        "replace_pgguard_function",
        [],
        "CREATE OR REPLACE FUNCTION "
        + PGGUARD
        + ".claims_cover(claims jsonb, op text, obj text) RETURNS boolean LANGUAGE sql AS"
        " 'SELECT true'",
        "PGG01",
        "pgguard's own objects",
    ),
    (
        "alter_pgguard_table",
        [],
        "ALTER TABLE " + PGGUARD + ".keys ADD COLUMN z int",
        "PGG01",
        "pgguard's own objects",
    ),
    (
        "index_on_pgguard_table",
        [],
        "CREATE INDEX ON " + PGGUARD + ".keys (comment)",
        "PGG01",
        "pgguard's own objects",
    ),
    ("drop_schema_pgguard", [], "DROP SCHEMA " + PGGUARD + " CASCADE", "", ""),
    (
        "index_untrusted_function",
        [IMM],
        "CREATE INDEX ON public.tenants (public.imm(id))",
        "PGG01",
        "uses function",
    ),
    (
        "index_function_writes_pgguard",
        [WRITES, IMM_WRITES],
        "CREATE INDEX ON public.tenants (public.imm_w(id))",
        "PGG01",
        "wrote to pgguard",
    ),
    (
        "statistics_untrusted_function",
        [IMM],
        "CREATE STATISTICS public.st ON (public.imm(id)) FROM public.tenants",
        "PGG01",
        "uses function",
    ),
    (
        "operator_in_index",
        [
            "CREATE FUNCTION public.eqf(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS"
            " 'SELECT $1 = $2'",
            "CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.eqf)",
        ],
        "CREATE INDEX ON public.tenants ((id OPERATOR(public.===) 1))",
        "PGG01",
        "uses function",
    ),
    (
        "range_subtype_diff",
        [
            "CREATE FUNCTION public.sdf(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS"
            " 'SELECT $1 - $2'"
        ],
        "CREATE TYPE public.fr AS RANGE (subtype = float8, subtype_diff = public.sdf)",
        "PGG01",
        "public.sdf",
    ),
    (
        "replace_indexed_function",
        [],
        "CREATE OR REPLACE FUNCTION public.norm(text) RETURNS text LANGUAGE sql IMMUTABLE AS"
        " 'SELECT upper($1)'",
        "PGG01",
        "changed",
    ),
    (
        "alter_indexed_function",
        [],
        "ALTER FUNCTION public.norm(text) SET search_path = public",
        "PGG01",
        "changed",
    ),
    (
        "set_unlogged",
        [],
        "ALTER TABLE billing.invoices SET UNLOGGED",
        "PGG01",
        'make table "billing.invoices" unlogged',
    ),
    (
        "default_rewrite_writes_pgguard",
        [WRITES],
        "ALTER TABLE public.tenants ADD COLUMN c int DEFAULT public.w()",
        "PGG01",
        "wrote to pgguard",
    ),
    (
        "create_table_as_writes_pgguard",
        [WRITES],
        "CREATE TABLE public.ct AS SELECT public.w()",
        "PGG01",
        "wrote to pgguard",
    ),
    (
        "disable_guard",
        [],
        "ALTER TABLE public.tenants DISABLE TRIGGER pgguard_truncate_guard",
        "PGG01",
        "TRUNCATE guard",
    ),
    (
        "disable_all_triggers",
        [],
        "ALTER TABLE billing.invoices DISABLE TRIGGER ALL",
        "PGG01",
        "TRUNCATE guard",
    ),
    (
        "guard_to_origin",
        [],
        "ALTER TABLE public.tenants ENABLE TRIGGER pgguard_truncate_guard",
        "PGG01",
        "TRUNCATE guard",
    ),
    (
        "drop_guard",
        [],
        "DROP TRIGGER pgguard_truncate_guard ON public.tenants",
        "PGG01",
        "TRUNCATE guard",
    ),
    ("drop_table", [], "DROP TABLE public.orders CASCADE", "PGG01", 'drop table "public.orders"'),
    (
        "drop_column",
        [],
        "ALTER TABLE public.tenants DROP COLUMN legacy",
        "PGG01",
        'drop column "public.tenants.legacy"',
    ),
    (
        "drop_schema_cascade",
        [],
        "DROP SCHEMA billing CASCADE",
        "PGG01",
        'drop table "billing.invoices"',
    ),
    (
        "drop_type_cascade",
        ["CREATE DOMAIN public.dm AS text", "ALTER TABLE public.tenants ADD COLUMN dmc public.dm"],
        "DROP DOMAIN public.dm CASCADE",
        "PGG01",
        "drop column",
    ),
    ("move_table_out_of_guard", [], "ALTER TABLE public.orders SET SCHEMA pg_temp", "", ""),
]


@pytest.mark.parametrize(
    ("setup", "attack", "sqlstate", "text"),
    [pytest.param(s, a, st, t, id=i) for i, s, a, st, t in ATTACKS],
)
def test_escalation_refused(
    shared: Platform,
    app: psycopg.Connection[Any],
    setup: list[str],
    attack: str,
    sqlstate: str,
    text: str,
) -> None:
    for stmt in setup:
        run_ddl(app, stmt.replace("{app}", f'"{shared.app}"'))
    e = ddl_error(app, attack.replace("{app}", f'"{shared.app}"'))
    assert e.sqlstate and e.sqlstate.startswith(sqlstate), (e.sqlstate, str(e))
    assert text in str(e), str(e)


def test_temp_function_in_index_refused(shared: Platform, app: psycopg.Connection[Any]) -> None:
    app.execute("CREATE FUNCTION pg_temp.tf(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1'")
    e = ddl_error(app, "CREATE INDEX ON public.tenants (pg_temp.tf(id))")
    assert e.sqlstate == "PGG01" and "uses function" in str(e)


def test_temp_table_cannot_shadow(shared: Platform, app: psycopg.Connection[Any]) -> None:
    # the statement runs with pg_temp last: an unqualified name finds the guarded table
    app.execute("SET search_path = pg_temp, public")
    app.execute("CREATE TEMP TABLE tenants (x int)")
    e = ddl_error(app, "DROP TABLE tenants CASCADE")
    assert e.sqlstate == "PGG01" and 'drop table "public.tenants"' in str(e)


def test_additive_ddl_needs_no_token(shared: Platform, app: psycopg.Connection[Any]) -> None:
    stmts = [
        "CREATE TABLE public.items (id serial PRIMARY KEY, name text)",
        "ALTER TABLE public.tenants ADD COLUMN note text",
        "CREATE INDEX tenants_lower ON public.tenants (lower(name))",
        "CREATE VIEW public.item_names AS SELECT name FROM public.items",
        "CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER items_touch BEFORE INSERT ON public.items FOR EACH ROW EXECUTE"
        " FUNCTION public.touch()",
        "COMMENT ON TABLE public.tenants IS E'it\\'s; DROP TABLE public.orders; --'",
        "COMMENT ON TABLE public.orders IS 'a;b' /* ; DROP TABLE public.orders */",
        "CREATE POLICY own_rows ON public.items USING (true)",
        "ALTER TABLE public.tenants RENAME COLUMN note TO remark",
        "CREATE SCHEMA tenant_x",
        "CREATE TABLE tenant_x.things (id int)",
    ]
    tags = [run_ddl(app, s) for s in stmts]
    assert tags[0] == "CREATE TABLE" and tags[1] == "ALTER TABLE"
    for rel in ("public.items", "tenant_x.things"):
        assert owner_of(app, rel) == "pgguard_owner"
        assert guard_enabled(app, rel) == "A"
    app.execute("INSERT INTO public.items (name) VALUES ('a')")
    app.execute("INSERT INTO tenant_x.things VALUES (1)")
    assert app.execute("SELECT count(*) FROM public.item_names").fetchone() == (1,)
    # made in this transaction: dropping or truncating loses nothing older than it
    app.execute("TRUNCATE public.items")
    run_ddl(app, "DROP TABLE public.items CASCADE")


def test_token_approves_drops(shared: Platform, app: psycopg.Connection[Any]) -> None:
    set_token(app, token(shared, ops=["drop_column"], obj=["public.tenants.legacy"]))
    assert run_ddl(app, "ALTER TABLE public.tenants DROP COLUMN legacy") == "ALTER TABLE"
    e = ddl_error(app, "DROP TABLE public.orders CASCADE")
    assert e.sqlstate == "PGG01"
    assert "does not cover op drop_table" in (e.diag.message_detail or "")


def test_token_scope_once_and_audit(shared: Platform) -> None:
    app = shared.connect("app")
    run_ddl(app, "CREATE TABLE public.audit_me (a int)")
    app.execute("INSERT INTO public.audit_me VALUES (1)")
    tok = token(shared, ops=["drop_table"], obj=["public.audit_*"], once=True, why="cleanup")
    set_token(app, tok)
    e = ddl_error(app, "DROP TABLE public.orders CASCADE")
    assert 'does not cover "public.orders"' in (e.diag.message_detail or "")
    assert run_ddl(app, "DROP TABLE public.audit_me") == "DROP TABLE"
    with shared.server.connect(shared.dbname) as admin:
        row = admin.execute(
            "SELECT kind, op, object, command_tag, why FROM pgguard.audit"
            " WHERE object = 'public.audit_me'"
        ).fetchone()
    assert row == ("override", "drop_table", "public.audit_me", "DROP TABLE", "cleanup")
    run_ddl(app, "CREATE TABLE public.audit_me2 (a int)")
    app.execute("INSERT INTO public.audit_me2 VALUES (1)")
    e = ddl_error(app, "DROP TABLE public.audit_me2")
    assert "already used" in (e.diag.message_detail or "")
    set_token(app, token(shared, ops=["drop_table"], obj=["public.audit_me2"]))
    run_ddl(app, "DROP TABLE public.audit_me2")


def test_token_does_not_follow_a_rename(shared: Platform, app: psycopg.Connection[Any]) -> None:
    set_token(app, token(shared, ops=["drop_table", "drop_column"], obj=["public.old_*"]))
    run_ddl(app, "ALTER TABLE public.orders RENAME TO old_orders")
    e = ddl_error(app, "DROP TABLE public.old_orders CASCADE")
    assert e.sqlstate == "PGG01"
    assert "got its current name at" in (e.diag.message_detail or "")
    app.rollback()
    set_token(app, token(shared, ops=["drop_column"], obj=["public.tenants.old_*"]))
    run_ddl(app, "ALTER TABLE public.tenants RENAME COLUMN legacy TO old_legacy")
    e = ddl_error(app, "ALTER TABLE public.tenants DROP COLUMN old_legacy")
    assert "got its current name at" in (e.diag.message_detail or "")


def test_empty_table_rule(shared: Platform) -> None:
    """A table holding no row may go without a token, measured before the statement runs
    (the rule of sql/047); one with rows, even deleted ones not yet vacuumed away, may not."""
    app = shared.connect("app")
    for name in ("vacant", "was_full"):
        run_ddl(app, f"CREATE TABLE public.{name} (a int, b int)")
    app.execute("INSERT INTO public.was_full VALUES (1, 1)")
    app.execute("DELETE FROM public.was_full")
    set_token(app, "")
    assert run_ddl(app, "ALTER TABLE public.vacant DROP COLUMN b") == "ALTER TABLE"
    assert run_ddl(app, "DROP TABLE public.vacant") == "DROP TABLE"
    e = ddl_error(app, "DROP TABLE public.was_full")
    assert e.sqlstate == "PGG01" and 'drop table "public.was_full"' in str(e)
    e = ddl_error(app, "ALTER TABLE public.was_full DROP COLUMN b")
    assert e.sqlstate == "PGG01"
    with shared.server.connect(shared.dbname) as admin:
        rows = admin.execute(
            "SELECT op, object, reason FROM pgguard.audit WHERE reason = 'empty'"
            " AND object LIKE 'public.vacant%' ORDER BY id"
        ).fetchall()
    assert rows == [
        ("drop_column", "public.vacant.b", "empty"),
        ("drop_table", "public.vacant", "empty"),
    ]
    set_token(app, token(shared, ops=["drop_table"], obj=["public.was_full"]))
    run_ddl(app, "DROP TABLE public.was_full")


def test_protect_empty_in_privilege_mode(pg_server: Any, make_db: Any) -> None:
    p = make_platform(pg_server, make_db)
    try:
        p.install(protect_empty=True)
        app = p.connect("app")
        run_ddl(app, "CREATE TABLE public.vacant (a int)")
        e = ddl_error(app, "DROP TABLE public.vacant")
        assert e.sqlstate == "PGG01"
    finally:
        p.close()


# The executor judges a statement by what it wrote (the catalogs' row counters) and what it
# locked, and reads the state from before it through a cursor opened before it ran. Code the
# statement runs as the owner (here: a function called by CREATE TABLE AS) is the way around
# each of those shortcuts; every attempt below must still be refused.
def _code(body: str) -> str:
    return (
        "CREATE FUNCTION public.sneak() RETURNS int LANGUAGE plpgsql AS $f$"
        f" DECLARE n text; names text[]; c refcursor; BEGIN {body}; RETURN 1; END $f$"
    )


SNEAKS: list[tuple[str, str, str]] = [
    ("drops_table", "EXECUTE 'DROP TABLE public.orders CASCADE'", 'drop table "public.orders"'),
    (
        "drops_column",
        "EXECUTE 'ALTER TABLE public.tenants DROP COLUMN legacy'",
        'drop column "public.tenants.legacy"',
    ),
    (
        "drops_schema",
        "EXECUTE 'DROP SCHEMA billing CASCADE'",
        'drop table "billing.invoices"',
    ),
    (
        "disables_guard",
        "EXECUTE 'ALTER TABLE public.tenants DISABLE TRIGGER pgguard_truncate_guard'",
        "TRUNCATE guard",
    ),
    (
        "makes_unlogged",
        "EXECUTE 'ALTER TABLE billing.invoices SET UNLOGGED'",
        "unlogged",
    ),
    # GRANT takes no lock: found through the catalog's row counters
    ("grants_trigger", "EXECUTE 'GRANT TRIGGER ON public.tenants TO PUBLIC'", "TRIGGER on"),
    (
        "grants_with_grant_option",
        "EXECUTE format('GRANT SELECT ON public.orders TO %I WITH GRANT OPTION', session_user)",
        "WITH GRANT OPTION",
    ),
    ("grants_on_pgguard_table", "EXECUTE 'GRANT ALL ON pgguard.keys TO PUBLIC'", "own objects"),
    (
        "grants_pgguard_column",
        "EXECUTE 'GRANT INSERT (kid) ON pgguard.keys TO PUBLIC'",
        "own objects",
    ),
    (
        "grants_pgguard_function",
        "EXECUTE 'GRANT EXECUTE ON FUNCTION pgguard.self_digest() TO PUBLIC'",
        "own objects",
    ),
    (
        "replaces_self_digest",
        "n := pgguard.self_digest(); EXECUTE format('CREATE OR REPLACE FUNCTION"
        " pgguard.self_digest() RETURNS text LANGUAGE sql AS %L', 'SELECT ' || quote_literal(n))",
        "own objects",
    ),
    (
        "adds_pgguard_overload",
        "EXECUTE 'CREATE FUNCTION pgguard.claims_cover(claims json, op text, obj text)"
        " RETURNS boolean LANGUAGE sql AS ''SELECT true'''",
        "own objects",
    ),
    (
        "drops_pgguard_function",
        "EXECUTE 'DROP FUNCTION pgguard.shell_quote(text)'",
        "own objects",
    ),
    ("moves_pgguard_table", "EXECUTE 'ALTER TABLE pgguard.keys SET SCHEMA public'", "own objects"),
    # (the executor's next call of a pgguard function fails first: refused all the same)
    ("renames_pgguard_schema", "EXECUTE 'ALTER SCHEMA pgguard RENAME TO pgguard_x'", ""),
    # the executor's own view of the past: closed and replaced by a cursor of the same name
    (
        "forges_prior_state",
        "names := ARRAY(SELECT name FROM pg_cursors); FOREACH n IN ARRAY names LOOP"
        " BEGIN c := n; CLOSE c; OPEN c FOR SELECT 'x|[]|' || repeat('0', 64)"
        " FROM generate_series(1, 9); EXCEPTION WHEN others THEN NULL; END; END LOOP;"
        " EXECUTE 'DROP TABLE public.orders CASCADE'",
        "",
    ),
]


@pytest.mark.parametrize(("body", "text"), [pytest.param(b, t, id=i) for i, b, t in SNEAKS])
def test_code_run_by_the_statement_is_judged(
    app: psycopg.Connection[Any], body: str, text: str
) -> None:
    run_ddl(app, _code(body))
    e = ddl_error(app, "CREATE TABLE public.cta AS SELECT public.sneak()")
    assert e.sqlstate == "PGG01" or not text, (e.sqlstate, str(e))
    assert text in str(e), str(e)


def test_inside_a_savepoint(app: psycopg.Connection[Any]) -> None:
    # the statement's writes are counted in a subtransaction of the caller's too
    app.execute("SAVEPOINT s1")
    run_ddl(app, _code("EXECUTE 'GRANT TRIGGER ON public.tenants TO PUBLIC'"))
    app.execute("SAVEPOINT s2")
    e = ddl_error(app, "CREATE TABLE public.cta AS SELECT public.sneak()")
    assert e.sqlstate == "PGG01" and "TRIGGER on" in str(e)
    app.execute("SAVEPOINT s3")
    e = ddl_error(app, "ALTER TABLE public.tenants DROP COLUMN legacy")
    assert e.sqlstate == "PGG01" and "drop column" in str(e)


def test_later_statement_of_a_long_transaction(app: psycopg.Connection[Any]) -> None:
    # the lock on tenants is already held from the first statement: still judged
    run_ddl(app, "ALTER TABLE public.tenants ADD COLUMN extra int")
    run_ddl(app, "CREATE INDEX ON public.tenants (extra)")
    run_ddl(app, "ALTER TABLE public.tenants RENAME COLUMN extra TO spare")
    e = ddl_error(app, "ALTER TABLE public.tenants DROP COLUMN legacy")
    assert e.sqlstate == "PGG01" and 'drop column "public.tenants.legacy"' in str(e)


def test_schema_rename_is_a_rename(shared: Platform, app: psycopg.Connection[Any]) -> None:
    # no table is locked by ALTER SCHEMA ... RENAME: the schema row's rewrite is the trace
    set_token(app, token(shared, ops=["drop_table"], obj=["billing2.*"]))
    run_ddl(app, "ALTER SCHEMA billing RENAME TO billing2")
    e = ddl_error(app, "DROP TABLE billing2.invoices")
    assert e.sqlstate == "PGG01"
    assert "got its current name at" in (e.diag.message_detail or "")


# The dependency check looks only at what hangs off the relations a statement locked unless
# the statement wrote functions, operators, ranges, statistics or standalone types: each side.
@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(
            "CREATE TABLE public.carrier (k " + PGGUARD + ".keys)", id="column_of_row_type"
        ),
        pytest.param(
            "ALTER TABLE public.tenants ADD COLUMN k " + PGGUARD + ".keys", id="added_column"
        ),
        pytest.param(
            "ALTER TABLE public.tenants ADD CONSTRAINT c CHECK ("
            + PGGUARD
            + ".shell_quote(name) IS NOT NULL)",
            id="check_constraint",
        ),
        pytest.param("CREATE DOMAIN public.kd AS " + PGGUARD + ".keys", id="domain"),
        pytest.param(
            "CREATE FUNCTION public.kf(k " + PGGUARD + ".keys) RETURNS int LANGUAGE sql"
            " AS 'SELECT 1'",
            id="function_argument",
        ),
    ],
)
def test_dependencies_on_pgguard_both_ways(app: psycopg.Connection[Any], attack: str) -> None:
    e = ddl_error(app, attack)
    assert e.sqlstate == "PGG01" and "depends on pgguard" in str(e), str(e)


def test_begin_atomic_body_is_one_statement(app: psycopg.Connection[Any]) -> None:
    run_ddl(
        app,
        "CREATE FUNCTION public.ba(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC"
        " SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; END",
    )
    run_ddl(
        app,
        "CREATE OR REPLACE PROCEDURE public.bp() LANGUAGE sql BEGIN ATOMIC"
        " INSERT INTO public.tenants (name) VALUES ('p'); SELECT 1; END",
    )
    assert app.execute("SELECT public.ba(5)").fetchone() == (1,)
    run_ddl(app, "CREATE VIEW public.v9 AS SELECT 1 AS atomic")  # a name, not a body


# (id, text): what follows a BEGIN ATOMIC body, or a keyword used as a name to make the
# lexer's CASE/END count disagree with the server's, is a second statement: refused
ATOMIC_ATTACKS = [
    (
        "statement_after_body",
        "CREATE FUNCTION public.a1() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;"
        " DROP TABLE public.orders CASCADE",
    ),
    (
        "case_as_a_label",
        "CREATE FUNCTION public.a2() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; END;"
        " DROP TABLE public.orders CASCADE; SELECT 1 AS end",
    ),
    (
        "end_as_a_label",
        "CREATE FUNCTION public.a3() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end;"
        " DROP TABLE public.orders CASCADE; END",
    ),
    (
        "end_after_a_dot",
        "CREATE FUNCTION public.a4() RETURNS int LANGUAGE sql BEGIN ATOMIC"
        " SELECT t.case FROM (SELECT 1 AS case) t; END; GRANT pgguard_owner TO PUBLIC;"
        " SELECT t.end FROM (SELECT 1 AS end) t",
    ),
    (
        "unterminated_body",
        "CREATE FUNCTION public.a5() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;",
    ),
]


@pytest.mark.parametrize("attack", [pytest.param(a, id=i) for i, a in ATOMIC_ATTACKS])
def test_begin_atomic_cannot_hide_a_statement(app: psycopg.Connection[Any], attack: str) -> None:
    e = ddl_error(app, attack)
    assert e.sqlstate == "PGG01" and "one statement" in str(e), (e.sqlstate, str(e))
    assert app.execute("SELECT count(*) FROM public.orders").fetchone() == (2,)


def test_begin_atomic_body_on_pgguard(app: psycopg.Connection[Any]) -> None:
    e = ddl_error(
        app,
        "CREATE FUNCTION public.bk() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*)"
        " FROM " + PGGUARD + ".keys; END",
    )
    assert e.sqlstate == "PGG01" and "depends on pgguard" in str(e), str(e)


def test_refuses_without_row_counters(shared: Platform) -> None:
    # only a superuser can turn them off; without them writes to pgguard's tables go unseen
    with shared.server.connect(shared.dbname) as su:
        su.execute("SET track_counts = off")
        e = error_of(su, "SELECT pgguard.run_ddl('CREATE TABLE public.tc (a int)')")
    assert e.sqlstate == "PGG01" and "track_counts" in str(e)
