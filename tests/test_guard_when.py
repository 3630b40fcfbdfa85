"""The TRUNCATE guard's form: ``WHEN (pgguard.truncate_refused('schema.table'::regclass))``.

The decision is made in the trigger's WHEN clause, so the trigger function (compiled by plpgsql
once per trigger) never runs. Adversarial: a guard whose WHEN clause was replaced (always false,
another function, a look-alike found through search_path, another table's expression), whose
function changed, or that is not ENABLE ALWAYS is tampering, refused as op ``uninstall`` for the
app role that owns the table and for a careless superuser; a superuser's catalog edit is found
by ``status``. Renames, schema moves, partitions, inheritance and pg_dump/pg_restore keep the
guard in order. An install that finds guards of the earlier form (no WHEN clause) replaces them.
"""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING, Any

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
    claims,
    count,
    guard_state,
    make_table,
    payload_of,
    private_key,
    register_key,
    set_token,
    sign,
    snapshot,
)
from psycopg import sql

from pgguard.health import status
from pgguard.installer import EVENT_TRIGGERS, install

if TYPE_CHECKING:
    from conftest import AppRole, PgServer

GUARD_SQL = (
    "CREATE OR REPLACE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON {table}"
    " FOR EACH STATEMENT {when} EXECUTE FUNCTION {fn}"
)
OWN_WHEN = "WHEN (pgguard.truncate_refused('{table}'::regclass))"


def _token(conn: Conn, admin: Conn, **over: Any) -> str:
    key = private_key()
    kid = register_key(admin, key)
    token = sign(key, kid, payload_of(claims(**over)))
    set_token(conn, token)
    return token


def _states(admin: Conn) -> dict[str, str]:
    return {
        f"{s}.{t}": state
        for s, t, state in admin.execute(
            "SELECT schema_name, table_name, state FROM pgguard.table_guards()"
        )
    }


# --- the form ------------------------------------------------------------------------------------


def test_new_table_gets_the_when_form(actor: Conn) -> None:
    make_table(actor, "public.t")
    row = actor.execute(
        "SELECT pg_get_triggerdef(oid), tgenabled FROM pg_trigger"
        " WHERE tgrelid = 'public.t'::regclass AND tgname = 'pgguard_truncate_guard'"
    ).fetchone()
    assert row == (
        "CREATE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.t FOR EACH STATEMENT"
        " WHEN (pgguard.truncate_refused('t'::regclass))"
        " EXECUTE FUNCTION pgguard.truncate_guard()",
        "A",
    )


def test_trigger_function_does_not_run_for_a_truncate_with_a_token(
    guarded_admin: Conn, app_role: AppRole
) -> None:
    """The point of the WHEN clause: per table only truncate_refused runs, never the
    per-trigger-compiled trigger function (the TRUNCATE still audits every table)."""
    app = app_role.connect()
    names = [f"public.t{i}" for i in range(12)]
    for name in names:
        make_table(app, name, rows=1)
    token = _token(app, guarded_admin, ops=["truncate"], obj=["public.*"])
    # track_functions is a superuser's setting: for the database, then a new session
    guarded_admin.execute(
        sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(
            sql.Identifier(app.info.dbname)
        )
    )
    fresh = app_role.connect()
    set_token(fresh, token)
    with fresh.transaction():
        fresh.execute("TRUNCATE " + ", ".join(names))
        calls = fresh.execute(
            "SELECT pg_stat_get_xact_function_calls('pgguard.truncate_refused(regclass)'"
            "::regprocedure), pg_stat_get_xact_function_calls('pgguard.truncate_guard()'"
            "::regprocedure)"
        ).fetchone()
    assert calls == (len(names), None), calls
    assert all(count(fresh, n) == 0 for n in names)
    audited = guarded_admin.execute(
        "SELECT count(*) FROM pgguard.audit WHERE op = 'truncate' AND kind = 'override'"
    ).fetchone()
    assert audited == (len(names),)


@pytest.mark.parametrize(
    ("schema", "table"),
    [('We\'ird "S"', "Ta\\b'le"), ("sch", "UPPER")],
    ids=["quotes-backslash", "upper"],
)
def test_awkward_names_are_in_order(actor: Conn, schema: str, table: str) -> None:
    """The WHEN clause is compared as the server prints it: quoting must agree, also under
    standard_conforming_strings = off (backslashes doubled) and another search_path."""
    ident = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    actor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with actor.transaction():
        actor.execute(sql.SQL("CREATE TABLE {} (id int)").format(ident))
        actor.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(ident))
    name = actor.execute("SELECT %s::regclass::text", (ident.as_string(actor),)).fetchone()
    assert name is not None
    assert guard_state(actor, name[0]) == GOOD_GUARD
    for column, setting in (
        ("a", "SET standard_conforming_strings = off"),
        ("b", "SET search_path = pgguard, public"),
    ):
        actor.execute(setting)  # type: ignore[arg-type]
        actor.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} int").format(ident, sql.Identifier(column))
        )
        actor.execute("RESET ALL")
    err = pytest.raises(psycopg.Error, actor.execute, sql.SQL("TRUNCATE {}").format(ident))
    assert err.value.sqlstate == "PGG01"
    assert count(actor, ident.as_string(actor)) == 1


# --- tampering with the WHEN clause -------------------------------------------------------------

TAMPER_WHEN = {
    "always-false": ("WHEN (false)", "pgguard.truncate_guard()"),
    "and-false": (
        "WHEN (pgguard.truncate_refused('public.t'::regclass) AND false)",
        "pgguard.truncate_guard()",
    ),
    "not": (
        "WHEN (NOT pgguard.truncate_refused('public.t'::regclass))",
        "pgguard.truncate_guard()",
    ),
    "another-table": (
        "WHEN (pgguard.truncate_refused('public.other'::regclass))",
        "pgguard.truncate_guard()",
    ),
    "null-table": ("WHEN (pgguard.truncate_refused(NULL))", "pgguard.truncate_guard()"),
    "own-function": (
        "WHEN (public.truncate_refused('public.t'::regclass))",
        "pgguard.truncate_guard()",
    ),
    "own-function-by-search-path": (
        "WHEN (truncate_refused('public.t'::regclass))",
        "pgguard.truncate_guard()",
    ),
    "temp-function": (
        "WHEN (pg_temp.truncate_refused('public.t'::regclass))",
        "pgguard.truncate_guard()",
    ),
    "right-when-own-trigger-function": (OWN_WHEN.format(table="public.t"), "public.own_fn()"),
}


@pytest.mark.parametrize("case", list(TAMPER_WHEN))
def test_replacing_the_when_clause_is_refused(actor: Conn, guarded_admin: Conn, case: str) -> None:
    when, fn = TAMPER_WHEN[case]
    make_table(actor, "public.t")
    make_table(actor, "public.other")
    # look-alikes: the app's own function of the same name, first on its search_path, and one
    # in pg_temp; both say "not refused"
    actor.execute(
        "CREATE FUNCTION public.truncate_refused(regclass) RETURNS boolean LANGUAGE sql"
        " AS 'SELECT false';"
        "CREATE FUNCTION pg_temp.truncate_refused(regclass) RETURNS boolean LANGUAGE sql"
        " AS 'SELECT false';"
        "CREATE FUNCTION public.own_fn() RETURNS trigger LANGUAGE plpgsql"
        " AS $$BEGIN RETURN NULL; END$$;"
        "SET search_path = public, pgguard"
    )
    before = snapshot(guarded_admin)
    stmt = GUARD_SQL.format(table="public.t", when=when, fn=fn)
    assert_uninstall_refused(actor, stmt, mentions="public.t")
    actor.execute("RESET search_path")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.t")
    assert_guarded(actor, "public.other")


def test_recreating_the_guard_in_its_own_form_is_harmless(actor: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute(
        GUARD_SQL.format(
            table="public.t", when=OWN_WHEN.format(table="public.t"), fn="pgguard.truncate_guard()"
        )
    )
    assert_guarded(actor, "public.t")


@pytest.mark.parametrize(
    ("edit", "state"),
    [
        ("tgqual = (SELECT tgqual FROM pg_trigger WHERE tgrelid = 'public.other'::regclass"
         " AND tgname = 'pgguard_truncate_guard')", "replaced"),
        ("tgqual = NULL, tgfoid = 'pgguard.truncate_check(oid, text, text)'::regprocedure",
         "replaced"),
        ("tgtype = 2", "replaced"),
        ("tgenabled = 'O'", "not_always"),
    ],
    ids=["another-tables-when", "other-function", "not-truncate", "origin"],
)  # fmt: skip
def test_catalog_edit_by_superuser_is_found_by_status_and_refused_on_next_ddl(
    guarded_admin: Conn, app_role: AppRole, edit: str, state: str
) -> None:
    """A careless superuser edits pg_trigger directly (no event trigger sees catalog DML):
    status is degraded naming the table, and the next DDL on it is refused as tampering."""
    app = app_role.connect()
    make_table(app, "public.t")
    make_table(app, "public.other")
    guarded_admin.execute(
        f"UPDATE pg_trigger SET {edit} WHERE tgrelid = 'public.t'::regclass"  # type: ignore[arg-type]
        " AND tgname = 'pgguard_truncate_guard'"
    )
    report = status(guarded_admin)
    assert not report.healthy
    assert [(t.table, t.state) for t in report.tables_unprotected] == [("public.t", state)]
    assert _states(guarded_admin)["public.other"] == "ok"
    assert_uninstall_refused(app, "ALTER TABLE public.t ADD COLUMN z int", mentions="public.t")


REPLACE_DECISION = [
    "CREATE OR REPLACE FUNCTION pgguard.truncate_refused(rel regclass) RETURNS boolean"
    " LANGUAGE sql AS 'SELECT false'",
    "ALTER FUNCTION pgguard.truncate_refused(regclass) SECURITY INVOKER",
    "ALTER FUNCTION pgguard.truncate_refused(regclass) RENAME TO was_truncate_refused",
    "DROP FUNCTION pgguard.truncate_refused(regclass) CASCADE",
]


@pytest.mark.parametrize("stmt", REPLACE_DECISION)
def test_the_when_function_cannot_be_replaced(
    guarded_admin: Conn, app_role: AppRole, stmt: str
) -> None:
    """The decision lives in one function now: the superuser is refused, the app role denied."""
    app = app_role.connect()
    make_table(app, "public.t")
    before = snapshot(guarded_admin)
    assert_denied(app, stmt)
    assert_uninstall_refused(guarded_admin, stmt)
    assert_intact(guarded_admin, before)
    assert_guarded(app, "public.t")


# --- the table's identity: renames, schema moves, partitions, inheritance ---------------------


def test_renamed_and_moved_table_keeps_a_guard_in_order(
    actor: Conn, guarded_admin: Conn, app_role: AppRole
) -> None:
    """The regclass constant is the table's oid: it follows RENAME and SET SCHEMA."""
    make_table(actor, "public.t")
    actor.execute("CREATE SCHEMA elsewhere")
    actor.execute("ALTER TABLE public.t RENAME TO t2")
    assert guard_state(actor, "public.t2") == GOOD_GUARD
    actor.execute("ALTER TABLE public.t2 SET SCHEMA elsewhere")
    actor.execute("ALTER SCHEMA elsewhere RENAME TO moved")
    assert guard_state(actor, "moved.t2") == GOOD_GUARD
    assert _states(guarded_admin)["moved.t2"] == "ok"
    row = actor.execute(
        "SELECT pg_get_expr(tgqual, 0) FROM pg_trigger WHERE tgrelid = 'moved.t2'::regclass"
        " AND tgname = 'pgguard_truncate_guard'"
    ).fetchone()
    assert row == ("pgguard.truncate_refused('moved.t2'::regclass)",)
    assert_refused(actor, "TRUNCATE moved.t2", op="truncate", obj="moved.t2")
    assert count(actor, "moved.t2") == 3


def test_partitions_and_children_each_carry_their_own_when(
    actor: Conn, guarded_admin: Conn
) -> None:
    with actor.transaction():
        actor.execute("CREATE TABLE public.p (id int, c int) PARTITION BY RANGE (id)")
        actor.execute("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (1) TO (100)")
        actor.execute("CREATE TABLE public.parent (id int)")
        actor.execute("CREATE TABLE public.kid () INHERITS (public.parent)")
        actor.execute("INSERT INTO public.p VALUES (1, 1); INSERT INTO public.kid VALUES (1)")
    # attached later, with a guard of its own from before
    actor.execute("CREATE TABLE public.p2 (id int, c int)")
    actor.execute("ALTER TABLE public.p ATTACH PARTITION public.p2 FOR VALUES FROM (100) TO (200)")
    for name in ("public.p", "public.p1", "public.p2", "public.parent", "public.kid"):
        assert guard_state(actor, name) == GOOD_GUARD, name
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE public.p", op="truncate", obj="public.p")
    assert_refused(actor, "TRUNCATE public.parent", op="truncate", obj="public.parent")
    # a partition whose WHEN names its parent is a replaced guard
    assert_uninstall_refused(
        actor,
        GUARD_SQL.format(table="public.p1", when=OWN_WHEN.format(table="public.p"),
                         fn="pgguard.truncate_guard()"),
        mentions="public.p1",
    )  # fmt: skip
    assert_intact(guarded_admin, before)
    # issued a second ahead (accepted, and then trusted as is): later than the attachments above
    later = int(time.time()) + 1
    _token(actor, guarded_admin, ops=["truncate"], obj=["public.p", "public.parent"], iat=later)
    actor.execute("TRUNCATE public.p, public.parent")
    assert count(actor, "public.p") == 0 and count(actor, "public.parent") == 0


# --- calling the WHEN function by hand -----------------------------------------------------------


def test_calling_truncate_refused_by_hand(guarded_admin: Conn, app_role: AppRole) -> None:
    """Executable by PUBLIC (a WHEN clause runs in the truncating role's rights), it takes only
    the table: by hand it refuses what a TRUNCATE would be refused, and approves (and audits)
    only what the session's token already covers for that very table."""
    app = app_role.connect()
    make_table(app, "public.ledger")
    make_table(app, "public.other")
    err = pytest.raises(
        psycopg.Error, app.execute, "SELECT pgguard.truncate_refused('public.ledger')"
    )
    assert err.value.sqlstate == "PGG01"
    assert err.value.diag.message_detail == NO_TOKEN
    _token(app, guarded_admin, ops=["truncate"], obj=["public.other"])
    err = pytest.raises(
        psycopg.Error, app.execute, "SELECT pgguard.truncate_refused('public.ledger')"
    )
    assert err.value.sqlstate == "PGG01"
    assert guarded_admin.execute("SELECT count(*) FROM pgguard.audit").fetchone() == (0,)
    assert app.execute("SELECT pgguard.truncate_refused(0)").fetchone() == (False,)
    assert app.execute("SELECT pgguard.truncate_refused('public.other')").fetchone() == (False,)
    assert guarded_admin.execute("SELECT op, object FROM pgguard.audit").fetchall() == [
        ("truncate", "public.other")
    ]
    assert count(app, "public.other") == 3


# --- pg_dump / pg_restore ------------------------------------------------------------------------


def test_dump_and_restore_keep_the_when_form(
    pg_server: PgServer, guarded_admin: Conn, app_role: AppRole, make_db: Any, tmp_path: Any
) -> None:
    if pg_server.cluster is None:
        pytest.skip("pg_dump of the server's own version is known only for local servers")
    bindir = pg_server.cluster.binaries.bindir
    app = app_role.connect()
    make_table(app, "public.orders")
    plain = subprocess.run(
        [str(bindir / "pg_dump"), "-t", "public.orders", "-d", app_role.dsn],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        "CREATE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON public.orders FOR EACH STATEMENT"
        " WHEN (pgguard.truncate_refused('public.orders'::regclass))"
        " EXECUTE FUNCTION pgguard.truncate_guard();" in plain
    ), plain
    dump = tmp_path / "all.dump"
    subprocess.run(
        [str(bindir / "pg_dump"), "-Fc", "-f", str(dump), "-d", app_role.dsn], check=True
    )
    fresh = make_db()
    proc = subprocess.run(
        [str(bindir / "pg_restore"), "-d", pg_server.admin_dsn(fresh), str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_server.admin_dsn(fresh), autocommit=True) as conn:
        assert guard_state(conn, "public.orders") == GOOD_GUARD
        assert _states(conn) == {"public.orders": "ok"}
        assert status(conn).healthy, status(conn).problems
        assert_refused(conn, "TRUNCATE public.orders", op="truncate", obj="public.orders")
        conn.execute("ALTER TABLE public.orders ADD COLUMN z int")  # in order: not refused


# --- upgrade: guards of the earlier form --------------------------------------------------------


def _make_old_form_guards(admin: Conn, tables: list[str]) -> None:
    """Turn the tables' guards into the form pgguard attached before the WHEN clause, the way
    install finds them after a package upgrade (pgguard's event triggers are off meanwhile, as
    an older pgguard would not have looked at the new form)."""
    with admin.transaction():
        for name in EVENT_TRIGGERS:
            admin.execute(f"ALTER EVENT TRIGGER {name} DISABLE")  # type: ignore[arg-type]
        for table in tables:
            admin.execute(
                GUARD_SQL.format(table=table, when="", fn="pgguard.truncate_guard()")  # type: ignore[arg-type]
            )
            admin.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER pgguard_truncate_guard")  # type: ignore[arg-type]
        for name in EVENT_TRIGGERS:
            admin.execute(f"ALTER EVENT TRIGGER {name} ENABLE ALWAYS")  # type: ignore[arg-type]


def test_old_form_guards_protect_and_install_replaces_them(
    guarded_admin: Conn, guarded_db_dsn: str, app_role: AppRole
) -> None:
    app = app_role.connect()
    tables = [f"public.t{i}" for i in range(5)]
    for name in tables:
        make_table(app, name)
    _make_old_form_guards(guarded_admin, tables)
    assert set(_states(guarded_admin).values()) == {"outdated"}
    report = status(guarded_admin)
    assert report.healthy, report.problems  # they protect: a note, not a problem
    assert report.tables_protected == len(tables)
    assert any("earlier form" in n for n in report.notes), report.notes

    # meanwhile they refuse exactly as before, and tampering with them is tampering
    before = snapshot(guarded_admin)
    assert_refused(app, "TRUNCATE public.t0", op="truncate", obj="public.t0")
    assert_uninstall_refused(
        app, "ALTER TABLE public.t0 DISABLE TRIGGER pgguard_truncate_guard", mentions="public.t0"
    )
    assert_uninstall_refused(
        app,
        GUARD_SQL.format(table="public.t0", when="WHEN (false)", fn="pgguard.truncate_guard()"),
        mentions="public.t0",
    )
    assert_intact(guarded_admin, before)
    # DDL by the owner replaces its guard in place
    app.execute("ALTER TABLE public.t1 ADD COLUMN z int")
    assert guard_state(app, "public.t1") == GOOD_GUARD

    with psycopg.connect(guarded_db_dsn) as conn:
        done = install(conn)
    assert done.problems == ()
    assert done.tables_healed == len(tables) - 1
    assert set(_states(guarded_admin).values()) == {"ok"}
    for name in tables:
        assert_guarded(app, name)
    report = status(guarded_admin)
    assert report.healthy and not any("earlier form" in n for n in report.notes), report


def test_privilege_mode_replaces_old_form_guards(pg_server: PgServer, make_db: Any) -> None:
    """Privilege mode: the executor replaces an old-form guard it meets (as pgguard_owner, who
    owns the tables) - on a table its statement changes: it does not read every table's guard
    on every statement -, keeps refusing a replaced WHEN clause, and a re-install replaces the
    rest."""
    from privhelp import ddl_error, make_platform, run_ddl

    p = make_platform(pg_server, make_db)
    try:
        p.install()
        admin = p.admin()
        admin.autocommit = True
        for table in ("public.tenants", "billing.invoices"):
            admin.execute(GUARD_SQL.format(table=table, when="", fn="pgguard.truncate_guard()"))  # type: ignore[arg-type]
            admin.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER pgguard_truncate_guard")  # type: ignore[arg-type]
        states = _states(admin)
        assert states["public.tenants"] == states["billing.invoices"] == "outdated"
        app = p.connect("app")
        err = ddl_error(
            app,
            GUARD_SQL.format(
                table="public.orders", when="WHEN (false)", fn="pgguard.truncate_guard()"
            ),
        )
        assert err.sqlstate == "PGG01", err
        run_ddl(app, "ALTER TABLE public.orders ADD COLUMN note text")
        run_ddl(app, "ALTER TABLE public.tenants ADD COLUMN note text")
        assert guard_state(admin, "public.tenants") == GOOD_GUARD
        assert guard_state(admin, "public.orders") == GOOD_GUARD
        err = pytest.raises(psycopg.Error, app.execute, "TRUNCATE billing.invoices")
        assert err.value.sqlstate == "PGG01"  # the old form still refuses
        p.install()
        assert set(_states(admin).values()) == {"ok"}
    finally:
        p.close()
