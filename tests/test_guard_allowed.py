"""What the guard must let through without any token: temporary tables, tables created earlier in
the same transaction, schemas excluded at install, and everything that is not a table or column
drop or a TRUNCATE (views, indexes, sequences, ADD COLUMN, renames, type changes, all DML). And
the limits of each exemption: a table created in an earlier transaction is protected again, and
an excluded schema exempts only what lives in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest
from guardhelp import (
    Conn,
    assert_guarded,
    assert_intact,
    assert_refused,
    count,
    guard_state,
    install_excluding,
    make_table,
    snapshot,
)

if TYPE_CHECKING:
    from conftest import AppRole, PgServer


@pytest.fixture
def app(app_role: AppRole, guarded_admin: Conn) -> Conn:
    """The app role, connected to the guarded database."""
    return app_role.connect()


# --- temporary tables ----------------------------------------------------------------------------


def test_temporary_tables(actor: Conn) -> None:
    actor.execute("CREATE TEMP TABLE tt (id int, c int, d text)")
    actor.execute("INSERT INTO tt SELECT g, g, 'x' FROM generate_series(1, 10) g")
    assert actor.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tt'::regclass"
    ).fetchone() == (0,)
    actor.execute("TRUNCATE tt")
    actor.execute("INSERT INTO tt VALUES (1, 1, 'y')")
    actor.execute("TRUNCATE pg_temp.tt RESTART IDENTITY CASCADE")
    actor.execute("ALTER TABLE tt DROP COLUMN c")
    actor.execute("ALTER TABLE tt DROP COLUMN IF EXISTS d CASCADE")
    actor.execute("DROP TABLE tt")
    assert actor.execute("SELECT to_regclass('pg_temp.tt')").fetchone() == (None,)


def test_temporary_table_variants(actor: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("CREATE TEMP TABLE copy AS SELECT * FROM public.t")
    actor.execute("CREATE TEMP TABLE tp (id int) PARTITION BY RANGE (id)")
    actor.execute("CREATE TEMP TABLE tp1 PARTITION OF tp FOR VALUES FROM (0) TO (10)")
    actor.execute("INSERT INTO tp VALUES (1)")
    actor.execute("TRUNCATE copy, tp")
    actor.execute("DROP TABLE copy, tp")
    with actor.transaction():
        actor.execute("CREATE TEMP TABLE gone (id int) ON COMMIT DROP")
        actor.execute("INSERT INTO gone VALUES (1)")
    with actor.transaction():
        actor.execute("CREATE TEMP TABLE emptied (id int) ON COMMIT DELETE ROWS")
        actor.execute("INSERT INTO emptied VALUES (1)")
    assert count(actor, "emptied") == 0
    actor.execute("DROP TABLE emptied")
    assert count(actor, "public.t") == 3


# --- created earlier in the same transaction ------------------------------------------------------

FRESH = {
    "create_table": ("CREATE TABLE public.n (id int, c int, d text)", "public.n"),
    "create_table_as": ("CREATE TABLE public.n AS SELECT 1 AS id, 2 AS c, 'x' AS d", "public.n"),
    "select_into": ("SELECT 1 AS id, 2 AS c, 'x'::text AS d INTO public.n", "public.n"),
    "like": ("CREATE TABLE public.n (LIKE public.t INCLUDING ALL)", "public.n"),
    "partition_of_old_parent": (
        "CREATE TABLE public.n PARTITION OF public.p FOR VALUES FROM (100) TO (200)",
        "public.n",
    ),
    "unlogged": ("CREATE UNLOGGED TABLE public.n (id int, c int, d text)", "public.n"),
    "inherits_old": ("CREATE TABLE public.n () INHERITS (public.t)", "public.n"),
    "create_schema": ("CREATE SCHEMA s CREATE TABLE n (id int, c int, d text)", "s.n"),
    "do_block": ("DO $$BEGIN CREATE TABLE public.n (id int, c int, d text); END$$", "public.n"),
}


def _old_tables(conn: Conn) -> None:
    make_table(conn, "public.t")
    with conn.transaction():
        conn.execute("CREATE TABLE public.p (id int, c int, d text) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE public.p0 PARTITION OF public.p FOR VALUES FROM (0) TO (100)")
        conn.execute("INSERT INTO public.p VALUES (1, 1, 'old')")


@pytest.mark.parametrize("route", list(FRESH))
def test_fresh_table_can_be_truncated_altered_dropped(
    actor: Conn, guarded_admin: Conn, route: str
) -> None:
    _old_tables(actor)
    before = snapshot(guarded_admin)
    create, table = FRESH[route]
    with actor.transaction():
        actor.execute(create)  # type: ignore[arg-type]
        actor.execute(f"INSERT INTO {table} (id, c, d) VALUES (150, 1, 'new')")  # type: ignore[arg-type]
        actor.execute(f"TRUNCATE {table}")  # type: ignore[arg-type]
        assert count(actor, table) == 0
        if route not in ("partition_of_old_parent", "inherits_old"):  # inherited: cannot
            actor.execute(f"ALTER TABLE {table} DROP COLUMN c")  # type: ignore[arg-type]
        actor.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]
    assert_intact(guarded_admin, before)


def test_fresh_schema_can_be_dropped_cascade(actor: Conn, guarded_admin: Conn) -> None:
    _old_tables(actor)
    before = snapshot(guarded_admin)
    with actor.transaction():
        actor.execute("CREATE SCHEMA s")
        actor.execute("CREATE TABLE s.a (id int)")
        actor.execute("CREATE TABLE s.b (id int) PARTITION BY LIST (id)")
        actor.execute("CREATE TABLE s.b1 PARTITION OF s.b FOR VALUES IN (1)")
        actor.execute("DROP SCHEMA s CASCADE")
    assert_intact(guarded_admin, before)


def test_fresh_partitioned_tree(actor: Conn, guarded_admin: Conn) -> None:
    _old_tables(actor)
    before = snapshot(guarded_admin)
    with actor.transaction():
        actor.execute("CREATE TABLE public.np (id int, c int) PARTITION BY RANGE (id)")
        actor.execute("CREATE TABLE public.np1 PARTITION OF public.np FOR VALUES FROM (0) TO (10)")
        actor.execute("CREATE TABLE public.np2 PARTITION OF public.np FOR VALUES FROM (10) TO (20)")
        actor.execute("INSERT INTO public.np VALUES (1, 1), (11, 2)")
        actor.execute("TRUNCATE public.np")
        actor.execute("TRUNCATE public.np1")
        actor.execute("ALTER TABLE public.np DROP COLUMN c")
        actor.execute("DROP TABLE public.np2")
        actor.execute("DROP TABLE public.np")
    assert_intact(guarded_admin, before)


def test_fresh_table_created_in_savepoint(actor: Conn, guarded_admin: Conn) -> None:
    _old_tables(actor)
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("SAVEPOINT a")
    actor.execute("SAVEPOINT a2")
    actor.execute("CREATE TABLE public.n (id int, c int)")
    actor.execute("RELEASE SAVEPOINT a2")
    actor.execute("RELEASE SAVEPOINT a")
    actor.execute("INSERT INTO public.n VALUES (1, 1)")
    actor.execute("SAVEPOINT b")
    actor.execute("TRUNCATE public.n")
    actor.execute("ROLLBACK TO SAVEPOINT b")
    assert count(actor, "public.n") == 1
    actor.execute("SAVEPOINT c")
    actor.execute("ALTER TABLE public.n DROP COLUMN c")
    actor.execute("DROP TABLE public.n")
    actor.execute("RELEASE SAVEPOINT c")
    actor.execute("COMMIT")
    assert_intact(guarded_admin, before)


def test_fresh_table_created_in_savepoint_still_open(actor: Conn, guarded_admin: Conn) -> None:
    """Created and dropped inside the same (unreleased) savepoint, then released."""
    _old_tables(actor)
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("SAVEPOINT a")
    actor.execute("CREATE TABLE public.n (id int)")
    actor.execute("INSERT INTO public.n VALUES (1)")
    actor.execute("TRUNCATE public.n")
    actor.execute("DROP TABLE public.n")
    actor.execute("RELEASE SAVEPOINT a")
    actor.execute("COMMIT")
    assert_intact(guarded_admin, before)


def test_fresh_table_committed_then_dropped_later_is_refused(
    actor: Conn, guarded_admin: Conn
) -> None:
    """The exemption ends with the transaction: the next one sees a protected table."""
    with actor.transaction():
        actor.execute("CREATE TABLE public.n (id int, c int)")
        actor.execute("INSERT INTO public.n VALUES (1, 1)")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TABLE public.n", op="drop_table", obj="public.n")
    assert_refused(actor, "TRUNCATE public.n", op="truncate", obj="public.n")
    assert_refused(actor, "ALTER TABLE public.n DROP COLUMN c", op="drop_column", obj="public.n.c")
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.other (id int)")  # a fresh table in this one changes nothing
    assert_refused(actor, "DROP TABLE public.n", op="drop_table", obj="public.n")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.n")


def test_commit_inside_procedure_ends_the_exemption(actor: Conn, guarded_admin: Conn) -> None:
    """A procedure that COMMITs between CREATE and DROP spans two transactions."""
    actor.execute(
        "CREATE PROCEDURE public.mk_then_drop() LANGUAGE plpgsql AS $$BEGIN"
        " CREATE TABLE public.n (id int); INSERT INTO public.n VALUES (1); COMMIT;"
        " DROP TABLE public.n; END$$"
    )
    assert_refused(actor, "CALL public.mk_then_drop()", op="drop_table", obj="public.n")
    assert count(actor, "public.n") == 1
    assert_guarded(actor, "public.n")


def test_autocommit_create_then_drop_is_refused(actor: Conn, guarded_admin: Conn) -> None:
    """Two autocommit statements are two transactions."""
    actor.execute("CREATE TABLE public.n (id int)")
    assert_refused(actor, "DROP TABLE public.n", op="drop_table", obj="public.n")


def test_rolled_back_savepoint_forgets_the_exemption_of_nothing(
    actor: Conn, guarded_admin: Conn
) -> None:
    """A table created in a rolled-back savepoint is gone; the old one stays protected."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("SAVEPOINT a")
    actor.execute("CREATE TABLE public.n (id int)")
    actor.execute("ROLLBACK TO SAVEPOINT a")
    assert_refused(actor, "TRUNCATE public.t", op="truncate", obj="public.t")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


# --- not a table or column drop: allowed ----------------------------------------------------------

ALLOWED_DDL = [
    "CREATE VIEW public.v AS SELECT * FROM public.t",
    "DROP VIEW public.v",
    "CREATE VIEW public.v AS SELECT id FROM public.t",
    "CREATE VIEW public.v2 AS SELECT * FROM public.v",
    "DROP VIEW public.v CASCADE",
    "CREATE MATERIALIZED VIEW public.mv AS SELECT * FROM public.t",
    "REFRESH MATERIALIZED VIEW public.mv",
    "CREATE UNIQUE INDEX ON public.mv (id)",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY public.mv",
    "DROP MATERIALIZED VIEW public.mv",
    "CREATE INDEX t_c_idx ON public.t (c)",
    "REINDEX INDEX public.t_c_idx",
    "DROP INDEX public.t_c_idx",
    "CREATE SEQUENCE public.seq",
    "SELECT nextval('public.seq')",
    "ALTER SEQUENCE public.seq OWNED BY public.t.c",
    "ALTER SEQUENCE public.seq OWNED BY NONE",
    "DROP SEQUENCE public.seq",
    "CREATE TYPE public.mood AS ENUM ('a', 'b')",
    "DROP TYPE public.mood",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP FUNCTION public.f()",
    "CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
    "CREATE TRIGGER own_trigger BEFORE INSERT ON public.t FOR EACH ROW"
    " EXECUTE FUNCTION public.trg()",
    "ALTER TABLE public.t DISABLE TRIGGER own_trigger",
    "ALTER TABLE public.t ENABLE TRIGGER own_trigger",
    "DROP TRIGGER own_trigger ON public.t",
    "CREATE TRIGGER own_truncate BEFORE TRUNCATE ON public.t FOR EACH STATEMENT"
    " EXECUTE FUNCTION public.trg()",
    "DROP TRIGGER own_truncate ON public.t",
    "DROP FUNCTION public.trg()",
    "ALTER TABLE public.t ADD COLUMN e int DEFAULT 5",
    "ALTER TABLE public.t ADD COLUMN IF NOT EXISTS e int",
    "ALTER TABLE public.t RENAME COLUMN e TO e2",
    "ALTER TABLE public.t ALTER COLUMN e2 TYPE bigint",
    "ALTER TABLE public.t ALTER COLUMN c TYPE text USING c::text",
    "ALTER TABLE public.t ALTER COLUMN c SET DEFAULT '0'",
    "ALTER TABLE public.t ALTER COLUMN c DROP DEFAULT",
    "ALTER TABLE public.t ALTER COLUMN c SET NOT NULL",
    "ALTER TABLE public.t ALTER COLUMN c DROP NOT NULL",
    "ALTER TABLE public.t ALTER COLUMN c SET STATISTICS 200",
    "ALTER TABLE public.t ADD CONSTRAINT c_len CHECK (length(c) < 100)",
    "ALTER TABLE public.t DROP CONSTRAINT c_len",
    "ALTER TABLE public.t ADD COLUMN gen int GENERATED ALWAYS AS (id * 2) STORED",
    "ALTER TABLE public.t ALTER COLUMN gen DROP EXPRESSION",
    "ALTER TABLE public.t ADD COLUMN ident int GENERATED BY DEFAULT AS IDENTITY",
    "ALTER TABLE public.t ALTER COLUMN ident DROP IDENTITY",
    "ALTER TABLE public.t RENAME TO t2",
    "ALTER TABLE public.t2 RENAME TO t",
    # SET UNLOGGED needs a token (op unlogged: tests/test_hardening.py); SET LOGGED does not
    "ALTER TABLE public.t SET LOGGED",
    "ALTER TABLE public.t SET (fillfactor = 90)",
    "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY pol ON public.t USING (true)",
    "DROP POLICY pol ON public.t",
    "ALTER TABLE public.t DISABLE ROW LEVEL SECURITY",
    "CREATE RULE r AS ON UPDATE TO public.t DO ALSO NOTIFY t",
    "DROP RULE r ON public.t",
    "COMMENT ON TABLE public.t IS 'kept'",
    "CLUSTER public.t USING t_pkey",
    "VACUUM FULL public.t",
    "ANALYZE public.t",
    "DROP TABLE IF EXISTS public.nosuch",
    "ALTER TABLE public.t DROP COLUMN IF EXISTS nosuch",
    "ALTER TABLE public.t ALTER COLUMN ident SET NOT NULL",
]


def test_allowed_ddl_one_transaction_each(actor: Conn) -> None:
    """Each in its own transaction (autocommit): no exemption is in play."""
    make_table(actor, "public.t")
    for stmt in ALLOWED_DDL:
        try:
            actor.execute(stmt)  # type: ignore[arg-type]
        except psycopg.Error as e:
            pytest.fail(f"{stmt!r} was refused: {e.sqlstate} {e}", pytrace=False)
    assert count(actor, "public.t") == 3
    cols = actor.execute(
        "SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchone()
    assert cols == (["id", "c", "d", "e2", "gen", "ident"],)
    assert_guarded(actor, "public.t")


def test_alter_type_add_and_rename_value(actor: Conn) -> None:
    actor.execute("CREATE TYPE public.mood AS ENUM ('a', 'b')")
    make_table(actor, "public.t", extra=", m public.mood")
    actor.execute("ALTER TYPE public.mood ADD VALUE 'c'")
    actor.execute("ALTER TYPE public.mood RENAME VALUE 'a' TO 'aa'")
    actor.execute("CREATE TYPE public.pair AS (x int, y int)")
    actor.execute("ALTER TYPE public.pair ADD ATTRIBUTE z int")
    actor.execute("ALTER TYPE public.pair DROP ATTRIBUTE z")  # no table uses it
    assert_guarded(actor, "public.t")


def test_dml(actor: Conn) -> None:
    make_table(actor, "public.t", rows=10)
    actor.execute("INSERT INTO public.t VALUES (100, 1, 'new')")
    actor.execute("UPDATE public.t SET c = c + 1")
    actor.execute("DELETE FROM public.t WHERE id > 5")
    with actor.cursor().copy("COPY public.t (id, c, d) FROM STDIN") as copy:
        copy.write_row((200, 2, "copied"))
    actor.execute("INSERT INTO public.t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET c = 0")
    assert count(actor, "public.t") == 6
    actor.execute("DELETE FROM public.t")  # every row, but it is DML
    assert count(actor, "public.t") == 0
    assert_guarded(actor, "public.t")


def test_merge(pg_server: PgServer, actor: Conn) -> None:
    if pg_server.major < 15:
        pytest.skip("MERGE is PostgreSQL 15+")
    make_table(actor, "public.t")
    actor.execute(
        "MERGE INTO public.t USING (SELECT 1 AS id) s ON t.id = s.id"
        " WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0, 'm')"
    )
    assert count(actor, "public.t") == 2


def test_detach_and_attach_are_not_drops(actor: Conn, guarded_admin: Conn) -> None:
    _old_tables(actor)
    actor.execute("ALTER TABLE public.p DETACH PARTITION public.p0")
    actor.execute("ALTER TABLE public.p ATTACH PARTITION public.p0 FOR VALUES FROM (0) TO (100)")
    actor.execute("ALTER TABLE public.t SET SCHEMA public")
    assert count(actor, "public.p") == 1
    assert_guarded(actor, "public.p0")


# --- excluded schemas -----------------------------------------------------------------------------


@pytest.fixture
def scratch(guarded_db_dsn: str, guarded_admin: Conn, app_role: AppRole) -> str:
    """pgguard re-installed with exclude_schemas=['scratch']; scratch exists, owned by the app."""
    install_excluding(guarded_db_dsn, ["scratch"])
    return app_role.create_schema("scratch")


def test_excluded_schema_tables_are_free(actor: Conn, guarded_admin: Conn, scratch: str) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    make_table(actor, "scratch.x")
    make_table(actor, "scratch.y")
    assert guard_state(actor, "scratch.x") is None
    actor.execute("TRUNCATE scratch.x")
    actor.execute("TRUNCATE scratch.x, scratch.y RESTART IDENTITY CASCADE")
    actor.execute("ALTER TABLE scratch.x DROP COLUMN c")
    actor.execute("DROP TABLE scratch.x")
    actor.execute("DROP TABLE scratch.y CASCADE")
    with actor.transaction():
        actor.execute("CREATE TABLE scratch.p (id int) PARTITION BY LIST (id)")
        actor.execute("CREATE TABLE scratch.p1 PARTITION OF scratch.p FOR VALUES IN (1)")
    actor.execute("INSERT INTO scratch.p VALUES (1)")
    actor.execute("TRUNCATE scratch.p")
    actor.execute("DROP TABLE scratch.p")
    make_table(actor, "scratch.z")
    snap = snapshot(guarded_admin)
    del snap["scratch.z"]
    assert snap == before
    assert_guarded(actor, "public.t")


def test_excluded_schema_dropped_cascade(
    actor: Conn, guarded_admin: Conn, scratch: str, app_role: AppRole
) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    make_table(actor, "scratch.x")
    make_table(actor, "scratch.y")
    target = actor if actor.info.user == app_role.name else app_role.connect()
    target.execute("DROP SCHEMA scratch CASCADE")
    assert_intact(guarded_admin, before)


def test_table_moved_out_of_excluded_schema_gets_guard(
    actor: Conn, guarded_admin: Conn, scratch: str
) -> None:
    make_table(actor, "scratch.x")
    actor.execute("ALTER TABLE scratch.x SET SCHEMA public")
    assert_guarded(actor, "public.x")
    assert_refused(actor, "DROP TABLE public.x", op="drop_table", obj="public.x")


def test_table_renamed_out_of_excluded_schema_gets_guard(
    actor: Conn, guarded_admin: Conn, guarded_db_dsn: str
) -> None:
    """The excluded schema renamed to a protected name: its tables are protected tables now."""
    install_excluding(guarded_db_dsn, ["scratch"])
    actor.execute("CREATE SCHEMA scratch")
    make_table(actor, "scratch.x")
    actor.execute("ALTER SCHEMA scratch RENAME TO prod")
    assert_guarded(actor, "prod.x")


def test_excluded_parent_does_not_exempt_protected_partition(
    actor: Conn, guarded_admin: Conn, scratch: str
) -> None:
    with actor.transaction():
        actor.execute("CREATE TABLE scratch.p (id int, c int) PARTITION BY LIST (id)")
        actor.execute("CREATE TABLE public.p1 PARTITION OF scratch.p FOR VALUES IN (1)")
        actor.execute("INSERT INTO scratch.p VALUES (1, 1)")
    assert guard_state(actor, "scratch.p") is None
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE scratch.p", op="truncate", obj="public.p1")
    assert_refused(actor, "DROP TABLE scratch.p", op="drop_table", obj="public.p1")
    assert_refused(
        actor, "ALTER TABLE scratch.p DROP COLUMN c", op="drop_column", obj="public.p1.c"
    )
    assert_intact(guarded_admin, before)


def test_excluded_table_does_not_exempt_referencing_protected_table(
    actor: Conn, guarded_admin: Conn, scratch: str
) -> None:
    make_table(actor, "scratch.parent")
    make_table(actor, "public.child", extra=", pid int REFERENCES scratch.parent")
    actor.execute("UPDATE public.child SET pid = id")
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE scratch.parent CASCADE", op="truncate", obj="public.child")
    assert_intact(guarded_admin, before)


def test_excluded_schema_types_do_not_exempt_protected_columns(
    actor: Conn, guarded_admin: Conn, scratch: str, app_role: AppRole
) -> None:
    actor.execute("CREATE TYPE scratch.mood AS ENUM ('a', 'b')")
    make_table(actor, "public.t", extra=", m scratch.mood")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TYPE scratch.mood CASCADE", op="drop_column", obj="public.t.m")
    owner = actor if actor.info.user == app_role.name else app_role.connect()
    if owner is actor:
        assert_refused(actor, "DROP SCHEMA scratch CASCADE", op="drop_column", obj="public.t.m")
    assert_intact(guarded_admin, before)


def test_inheritance_child_in_excluded_schema(
    actor: Conn, guarded_admin: Conn, scratch: str
) -> None:
    """A child living in the excluded schema is free; its protected parent is not."""
    make_table(actor, "public.base")
    actor.execute("CREATE TABLE scratch.child () INHERITS (public.base)")
    actor.execute("INSERT INTO scratch.child VALUES (100, 1, 'c')")
    assert guard_state(actor, "scratch.child") is None
    actor.execute("TRUNCATE scratch.child")
    actor.execute("DROP TABLE scratch.child")
    assert_refused(actor, "TRUNCATE public.base", op="truncate", obj="public.base")
    assert count(actor, "public.base") == 3
