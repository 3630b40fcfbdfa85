"""The ddl_command_end guard's one-pass dispatch (sql/060 on_ddl_end + note_ddl), adversarially.

on_ddl_end reads pg_event_trigger_ddl_commands() once and calls the SECURITY DEFINER
bookkeeping (pgguard.note_ddl) only when the command reports a relation, type, schema or
extension; a command that reports only triggers (the guard's own nested CREATE TRIGGER) goes
straight to the per-table judgement. These tests try to use that: a session calling note_ddl
itself, a look-alike guard created in the same statement as its table, and renames hidden behind
column additions on a wide table.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.guardhelp import (
    assert_guarded,
    assert_intact,
    assert_refused,
    failure,
    make_table,
    refusal,
    snapshot,
)

Conn = psycopg.Connection[Any]

NOOP = (
    "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$"
)


def test_note_ddl_outside_event_trigger(guarded_admin: Conn, app_role: Any) -> None:
    app = app_role.connect()
    make_table(app, "public.t")
    before = snapshot(guarded_admin)
    err = failure(app, "SELECT pgguard.note_ddl()")
    assert err.sqlstate not in ("PGG01", None), err
    assert "event trigger" in str(err), err
    app.execute("BEGIN")
    with pytest.raises(psycopg.Error), app.transaction():
        app.execute("SELECT pgguard.note_ddl()")
    assert_refused(app, "DROP TABLE public.t", op="drop_table", obj="public.t")
    app.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


@pytest.mark.parametrize(
    "setup",
    [
        "CREATE TABLE public.x AS SELECT 1 AS one FROM (SELECT pgguard.note_ddl()) s",
        "CREATE INDEX ON public.t (public.mark(id))",
        "ALTER TABLE public.t ADD COLUMN z int DEFAULT public.mark(1)",
        "CREATE TABLE public.x (LIKE public.t); CREATE INDEX ON public.t (public.mark(id))",
        "CREATE TABLE public.x AS SELECT public.mark(1) AS one",
    ],
)
def test_note_ddl_called_during_ddl(guarded_admin: Conn, app_role: Any, setup: str) -> None:
    """Called from inside other DDL, where an event-trigger state exists, it still cannot mark
    an old table as created in this transaction (nor make its links or names newer than
    they are: it records only what the commands report)."""
    app = app_role.connect()
    make_table(app, "public.t")
    app.execute(
        "CREATE FUNCTION public.mark(v int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM pgguard.note_ddl(); RETURN v; END$$"
    )
    before = snapshot(guarded_admin)
    app.execute("BEGIN")
    try:
        for stmt in setup.split("; "):
            app.execute(stmt)  # type: ignore[arg-type]
    except psycopg.Error:
        app.execute("ROLLBACK")
        assert_intact(guarded_admin, before)
        return
    app.execute("SAVEPOINT s")
    assert_refused(app, "TRUNCATE public.t", op="truncate", obj="public.t")
    app.execute("ROLLBACK TO SAVEPOINT s")
    assert_refused(app, "DROP TABLE public.t", op="drop_table", obj="public.t")
    app.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


LOOKALIKES = {
    # another function under the guard's name
    "function": "CREATE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON t FOR EACH STATEMENT"
    " EXECUTE FUNCTION public.noop()",
    # the guard's function that never runs
    "when": "CREATE TRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON t FOR EACH STATEMENT"
    " WHEN (false) EXECUTE FUNCTION pgguard.truncate_guard()",
    # the guard's function, after the fact
    "after": "CREATE TRIGGER pgguard_truncate_guard AFTER TRUNCATE ON t FOR EACH STATEMENT"
    " EXECUTE FUNCTION pgguard.truncate_guard()",
    # the guard's function under another name
    "name": "CREATE TRIGGER not_the_guard BEFORE TRUNCATE ON t FOR EACH STATEMENT"
    " EXECUTE FUNCTION pgguard.truncate_guard()",
}


@pytest.mark.parametrize("kind", sorted(LOOKALIKES))
def test_lookalike_guard_in_the_creating_statement(
    actor: Conn, guarded_admin: Conn, kind: str
) -> None:
    """A table and a look-alike of its guard made by one statement (CREATE SCHEMA ... CREATE
    TABLE ... CREATE TRIGGER): the trigger-only fast path must not let it pass as the guard."""
    actor.execute(NOOP)
    before = snapshot(guarded_admin)
    stmt = f"CREATE SCHEMA lookalike CREATE TABLE t (id int) {LOOKALIKES[kind]}"
    diag = refusal(actor, stmt)
    assert diag.message_primary is not None
    assert "TRUNCATE guard" in diag.message_primary, diag.message_primary
    assert actor.execute("SELECT to_regnamespace('lookalike')").fetchone() == (None,)
    assert_intact(guarded_admin, before)


@pytest.mark.parametrize("kind", sorted(set(LOOKALIKES) - {"name"}))
def test_lookalike_guard_next_to_other_ddl(actor: Conn, guarded_admin: Conn, kind: str) -> None:
    """The same inside one transaction with other DDL, on a table created in it and on an old
    table: never a table left with a look-alike instead of its guard."""
    actor.execute(NOOP)
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    for table in ("public.t", "public.old"):
        actor.execute("BEGIN")
        if table == "public.t":
            actor.execute("CREATE TABLE public.t (id int)")
        actor.execute("CREATE INDEX ON public.old (id)")
        stmt = LOOKALIKES[kind].replace(" ON t ", f" ON {table} ")
        # the guard is there already: its name is taken, and replacing it is refused
        actor.execute("SAVEPOINT s")
        failure(actor, stmt)
        actor.execute("ROLLBACK TO SAVEPOINT s")
        refusal(actor, stmt.replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1))
        actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)
    assert_guarded(guarded_admin, "public.old")


def test_guard_attached_once_per_new_table(actor: Conn, guarded_admin: Conn) -> None:
    """The nested CREATE TRIGGER / ENABLE ALWAYS of the guard still end in one correct,
    ENABLE ALWAYS guard, for every way of making tables, in and out of a transaction."""
    actor.execute("CREATE TABLE public.a (id int)")
    actor.execute("CREATE TABLE public.p (id int) PARTITION BY RANGE (id)")
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (0) TO (10)")
    actor.execute("CREATE TABLE public.b AS SELECT 1 AS id")
    actor.execute("CREATE TABLE public.c (LIKE public.a)")
    actor.execute("COMMIT")
    for t in ("public.a", "public.p", "public.p1", "public.b", "public.c"):
        assert_guarded(guarded_admin, t)
        n = guarded_admin.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass", (t,)
        ).fetchone()
        assert n == (1,), (t, n)


def test_renames_on_a_wide_table(guarded_admin: Conn, app_role: Any) -> None:
    """Columns added (the old names a prefix of the new) rename nothing; a rename among many
    columns, and of the table, is recorded - as the per-column comparison did."""
    app = app_role.connect()
    cols = ", ".join(f"c{i} int" for i in range(300))
    app.execute(f"CREATE TABLE public.w ({cols})")  # type: ignore[arg-type]
    relid = guarded_admin.execute("SELECT 'public.w'::regclass::oid").fetchone()

    def renames() -> list[tuple[int, ...]]:
        return guarded_admin.execute(
            "SELECT attnum FROM pgguard.renames WHERE relid = %s ORDER BY 1", relid
        ).fetchall()

    for i in range(3):
        app.execute(f"ALTER TABLE public.w ADD COLUMN n{i} int")  # type: ignore[arg-type]
    assert renames() == []
    app.execute("ALTER TABLE public.w RENAME COLUMN c250 TO moved")
    assert renames() == [(251,)]
    app.execute("ALTER TABLE public.w RENAME TO w2")
    assert renames() == [(0,), (251,)]
    names = guarded_admin.execute(
        "SELECT path, cols[251], cardinality(cols) FROM pgguard.relation_names WHERE relid = %s",
        relid,
    ).fetchone()
    assert names == ("public.w2", "moved", 303), names


def test_drop_forgets_bookkeeping(guarded_admin: Conn, app_role: Any) -> None:
    """Dropped tables leave no names, renames or links behind (their oids may come back), also
    when a whole schema of them goes at once. (One transaction: tables created in it go
    without a token; pgguard's tables are readable by anyone.)"""
    app = app_role.connect()
    app.execute("BEGIN")
    app.execute("CREATE SCHEMA s")
    app.execute("CREATE TABLE s.p (id int) PARTITION BY RANGE (id)")
    app.execute("CREATE TABLE s.p1 PARTITION OF s.p FOR VALUES FROM (0) TO (10)")
    app.execute("CREATE TABLE s.plain (id int, c int)")
    app.execute("ALTER TABLE s.plain RENAME COLUMN c TO d")
    oids = [
        r[0]
        for r in app.execute(
            "SELECT c.oid FROM pg_class c WHERE c.relnamespace = 's'::regnamespace"
            " AND c.relkind IN ('r', 'p')"
        )
    ]

    def left() -> tuple[Any, ...] | None:
        return app.execute(
            "SELECT (SELECT count(*) FROM pgguard.relation_names WHERE relid = ANY (%(o)s)),"
            " (SELECT count(*) FROM pgguard.renames WHERE relid = ANY (%(o)s)),"
            " (SELECT count(*) FROM pgguard.attachments"
            "   WHERE relid = ANY (%(o)s) OR parent = ANY (%(o)s))",
            {"o": oids},
        ).fetchone()

    assert left() == (3, 1, 1)
    app.execute("DROP SCHEMA s CASCADE")
    assert left() == (0, 0, 0)
    app.execute("COMMIT")


# --- install: the attach batches switch ddl_command_end off in their own transaction only ---------


def _ddl_end_states(conn: Conn) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT evtname, evtenabled FROM pg_event_trigger"
        " WHERE evtname IN ('pgguard_ddl_end', 'pgguard_ddl_check') ORDER BY 1"
    ).fetchall()


def test_install_batch_quiet_only_inside_its_transaction(
    guarded_admin: Conn, guarded_db_dsn: str, app_role: Any
) -> None:
    """While an attach batch has the ddl_command_end triggers disabled in its transaction,
    every other session is still judged by them; a failed batch leaves them enabled."""
    from pgguard import installer

    app = app_role.connect()
    make_table(app, "public.t")
    with psycopg.connect(guarded_db_dsn) as inst:  # not autocommit: one open transaction
        assert installer._may_quiet_ddl_end(inst)
        installer._set_ddl_end(inst, "DISABLE")
        assert _ddl_end_states(inst) == [("pgguard_ddl_check", "D"), ("pgguard_ddl_end", "D")]
        # the app role and a careless superuser, in their own sessions: still refused
        refusal(app, "ALTER TABLE public.t DISABLE TRIGGER pgguard_truncate_guard")
        refusal(guarded_admin, "ALTER TABLE public.t ENABLE TRIGGER pgguard_truncate_guard")
        app.execute("CREATE TABLE public.fresh (id int)")
        assert_guarded(guarded_admin, "public.fresh")
        inst.rollback()
    assert _ddl_end_states(guarded_admin) == [("pgguard_ddl_check", "A"), ("pgguard_ddl_end", "A")]
    assert_guarded(guarded_admin, "public.t")


def test_install_leaves_ddl_end_enabled_and_every_guard_always(
    guarded_admin: Conn, guarded_db_dsn: str
) -> None:
    from pgguard.installer import install

    guarded_admin.execute("CREATE SCHEMA many")
    guarded_admin.execute("CREATE TABLE many.p (id int) PARTITION BY RANGE (id)")
    guarded_admin.execute("CREATE TABLE many.p1 PARTITION OF many.p FOR VALUES FROM (0) TO (10)")
    for i in range(5):
        guarded_admin.execute(f"CREATE TABLE many.t{i} (id int)")  # type: ignore[arg-type]
    # guards lost while pgguard was away (uninstall-free way: the event triggers off, as a
    # superuser could; install must put every guard back through the quiet batches)
    for name in ("pgguard_sql_drop", "pgguard_ddl_end", "pgguard_drop_check", "pgguard_ddl_check"):
        guarded_admin.execute(f"ALTER EVENT TRIGGER {name} DISABLE")  # type: ignore[arg-type]
    for t in ("many.p", "many.p1", "many.t0", "many.t3"):
        guarded_admin.execute(f"DROP TRIGGER pgguard_truncate_guard ON {t}")  # type: ignore[arg-type]
    guarded_admin.execute("ALTER TABLE many.t1 ENABLE TRIGGER pgguard_truncate_guard")
    for name in ("pgguard_sql_drop", "pgguard_ddl_end", "pgguard_drop_check", "pgguard_ddl_check"):
        guarded_admin.execute(f"ALTER EVENT TRIGGER {name} ENABLE ALWAYS")  # type: ignore[arg-type]
    with psycopg.connect(guarded_db_dsn) as c:
        report = install(c, batch_size=3)
    assert report.problems == ()
    assert _ddl_end_states(guarded_admin) == [("pgguard_ddl_check", "A"), ("pgguard_ddl_end", "A")]
    for t in ("many.p", "many.p1", *(f"many.t{i}" for i in range(5))):
        assert_guarded(guarded_admin, t)
