"""Adversarial: every way to drop a protected table or column is refused (op drop_table /
drop_column, SQLSTATE PGG01), for the superuser and for the app role that owns the tables, and
afterwards nothing is lost: tables, columns, rows and guards are as they were."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest
from guardhelp import (
    Conn,
    assert_guarded,
    assert_intact,
    assert_refused,
    claims,
    count,
    make_table,
    payload_of,
    private_key,
    register_key,
    set_token,
    sign,
    snapshot,
)

if TYPE_CHECKING:
    from conftest import AppRole


def _partitioned(conn: Conn, parent: str = "public.p") -> None:
    """``parent`` (range on id) with partitions ``<parent>1`` (1..100) and ``<parent>2``."""
    with conn.transaction():
        conn.execute(f"CREATE TABLE {parent} (id int, c int, d text) PARTITION BY RANGE (id)")  # type: ignore[arg-type]
        conn.execute(f"CREATE TABLE {parent}1 PARTITION OF {parent} FOR VALUES FROM (1) TO (100)")  # type: ignore[arg-type]
        conn.execute(
            f"CREATE TABLE {parent}2 PARTITION OF {parent} FOR VALUES FROM (100) TO (200)"  # type: ignore[arg-type]
        )
        conn.execute(f"INSERT INTO {parent} SELECT g, g, 'x' FROM generate_series(1, 150) g")  # type: ignore[arg-type]


# --- DROP TABLE --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stmt",
    [
        "DROP TABLE t",
        "DROP TABLE public.t",
        "DROP TABLE IF EXISTS t",
        "DROP TABLE t CASCADE",
        "DROP TABLE IF EXISTS public.t RESTRICT",
        "DROP TABLE IF EXISTS nosuch, t",
    ],
)
def test_drop_table(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, stmt, op="drop_table", obj="public.t")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.t")


def test_drop_table_with_dependent_view_cascade(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("CREATE VIEW public.v AS SELECT * FROM public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TABLE t CASCADE", op="drop_table", obj="public.t")
    assert_intact(guarded_admin, before)
    assert count(actor, "public.v") == 3


def test_drop_several_tables_at_once(actor: Conn, guarded_admin: Conn) -> None:
    for name in ("public.t1", "public.t2", "public.t3"):
        make_table(actor, name)
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "DROP TABLE t1, t2, t3",
        op="drop_table",
        obj={"public.t1", "public.t2", "public.t3"},
        more=2,
    )
    assert_intact(guarded_admin, before)


def test_drop_fresh_and_old_table_together(actor: Conn, guarded_admin: Conn) -> None:
    """The fresh table's exemption does not carry the old one: only the old one is named."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.fresh (id int)")
    assert_refused(actor, "DROP TABLE public.fresh, public.t", op="drop_table", obj="public.t")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_drop_partition_directly(actor: Conn, guarded_admin: Conn) -> None:
    _partitioned(actor)
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TABLE public.p1", op="drop_table", obj="public.p1")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.p1")


@pytest.mark.parametrize("stmt", ["DROP TABLE public.p", "DROP TABLE public.p CASCADE"])
def test_drop_partitioned_parent(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    """The message names the parent only; the partitions survive with it."""
    _partitioned(actor)
    before = snapshot(guarded_admin)
    assert_refused(actor, stmt, op="drop_table", obj="public.p")
    assert_intact(guarded_admin, before)
    assert count(actor, "public.p") == 150
    for part in ("public.p1", "public.p2"):
        assert_guarded(actor, part)


def test_drop_inheritance_parent_cascade(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.base")
    actor.execute("CREATE TABLE public.child (x int) INHERITS (public.base)")
    actor.execute("INSERT INTO public.child VALUES (100, 1, 'c', 7)")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "DROP TABLE public.base CASCADE",
        op="drop_table",
        obj={"public.base", "public.child"},
        more=1,
    )
    assert_intact(guarded_admin, before)


def test_drop_schema_cascade(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE SCHEMA s")
    make_table(actor, "s.a")
    make_table(actor, "s.b")
    actor.execute("CREATE VIEW s.v AS SELECT 1 AS one")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP SCHEMA s CASCADE", op="drop_table", obj={"s.a", "s.b"}, more=1)
    assert_intact(guarded_admin, before)
    assert actor.execute("SELECT count(*) FROM s.v").fetchone() == (1,)


def test_drop_owned_by_app_role(actor: Conn, guarded_admin: Conn, app_role: AppRole) -> None:
    """``DROP OWNED BY <app role>``, run by the superuser or by the app role itself."""
    app = actor if actor.info.user == app_role.name else app_role.connect()
    make_table(app, "public.t")
    make_table(app, "public.u")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        f'DROP OWNED BY "{app_role.name}"',
        op="drop_table",
        obj={"public.t", "public.u"},
        more=1,
    )
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.t")


def test_drop_owned_by_cascade(actor: Conn, guarded_admin: Conn, app_role: AppRole) -> None:
    app = actor if actor.info.user == app_role.name else app_role.connect()
    make_table(app, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(
        actor, f'DROP OWNED BY "{app_role.name}" CASCADE', op="drop_table", obj="public.t"
    )
    assert_intact(guarded_admin, before)


# --- drops by cascade from types, domains, extensions ------------------------------------------


def test_drop_enum_type_cascade_drops_column(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE TYPE public.mood AS ENUM ('ok', 'sad')")
    make_table(actor, "public.t", extra=", m public.mood DEFAULT 'ok'")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TYPE public.mood CASCADE", op="drop_column", obj="public.t.m")
    assert_intact(guarded_admin, before)


def test_drop_domain_cascade_drops_column(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE DOMAIN public.posint AS int CHECK (VALUE > 0)")
    make_table(actor, "public.t", extra=", n public.posint DEFAULT 1")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP DOMAIN public.posint CASCADE", op="drop_column", obj="public.t.n")
    assert_intact(guarded_admin, before)


def test_drop_composite_type_cascade_drops_typed_table(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE TYPE public.pair AS (x int, y int)")
    actor.execute("CREATE TABLE public.tt OF public.pair")
    actor.execute("INSERT INTO public.tt VALUES (1, 2), (3, 4)")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP TYPE public.pair CASCADE", op="drop_table", obj="public.tt")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.tt")


def test_drop_composite_type_cascade_drops_column_and_table(
    actor: Conn, guarded_admin: Conn
) -> None:
    """Both kinds at once: the HINT asks for both ops."""
    actor.execute("CREATE TYPE public.pair AS (x int, y int)")
    actor.execute("CREATE TABLE public.tt OF public.pair")
    make_table(actor, "public.t", extra=", p public.pair")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "DROP TYPE public.pair CASCADE",
        op="drop_table",
        obj="public.tt",
        hint_ops=["drop_table", "drop_column"],
        hint_objs=["public.tt", "public.t.p"],
    )
    assert_intact(guarded_admin, before)


def test_alter_type_drop_attribute_cascade_drops_typed_table_column(
    actor: Conn, guarded_admin: Conn
) -> None:
    actor.execute("CREATE TYPE public.pair AS (x int, y int)")
    actor.execute("CREATE TABLE public.tt OF public.pair")
    actor.execute("INSERT INTO public.tt VALUES (1, 2)")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "ALTER TYPE public.pair DROP ATTRIBUTE y CASCADE",
        op="drop_column",
        obj="public.tt.y",
    )
    assert_intact(guarded_admin, before)


def test_drop_function_cascade_drops_generated_column(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute(
        "CREATE FUNCTION public.twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2'"
    )
    make_table(actor, "public.t", extra=", g int GENERATED ALWAYS AS (public.twice(id)) STORED")
    before = snapshot(guarded_admin)
    assert_refused(
        actor, "DROP FUNCTION public.twice(int) CASCADE", op="drop_column", obj="public.t.g"
    )
    assert_intact(guarded_admin, before)


def test_drop_collation_cascade_drops_column(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute('CREATE COLLATION public.mine FROM "C"')
    make_table(actor, "public.t", extra=", name text COLLATE public.mine")
    before = snapshot(guarded_admin)
    assert_refused(
        actor, "DROP COLLATION public.mine CASCADE", op="drop_column", obj="public.t.name"
    )
    assert_intact(guarded_admin, before)


def test_drop_view_cascade_drops_column_of_its_row_type(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE VIEW public.v AS SELECT 1 AS x")
    make_table(actor, "public.t", extra=", r public.v")
    before = snapshot(guarded_admin)
    assert_refused(actor, "DROP VIEW public.v CASCADE", op="drop_column", obj="public.t.r")
    assert_intact(guarded_admin, before)


def _contrib_extension(conn: Conn) -> str:
    row = conn.execute(
        "SELECT name FROM pg_available_extensions WHERE name IN ('citext', 'hstore')"
        " ORDER BY name LIMIT 1"
    ).fetchone()
    if row is None:
        pytest.skip("neither citext nor hstore is available on this server")
    return str(row[0])


def test_drop_extension_cascade_drops_column(actor: Conn, guarded_admin: Conn) -> None:
    ext = _contrib_extension(actor)
    actor.execute(f"CREATE EXTENSION {ext} SCHEMA public")  # type: ignore[arg-type]
    value = "'Hello'" if ext == "citext" else "'a=>1'"
    make_table(actor, "public.t", extra=f", e public.{ext} DEFAULT {value}")
    before = snapshot(guarded_admin)
    assert_refused(actor, f"DROP EXTENSION {ext} CASCADE", op="drop_column", obj="public.t.e")  # type: ignore[arg-type]
    assert_intact(guarded_admin, before)


def test_drop_extension_with_member_table(actor: Conn, guarded_admin: Conn) -> None:
    """A table made a member of an extension goes with it: still a drop_table."""
    ext = _contrib_extension(actor)
    actor.execute(f"CREATE EXTENSION {ext} SCHEMA public")  # type: ignore[arg-type]
    make_table(actor, "public.t")
    actor.execute(f"ALTER EXTENSION {ext} ADD TABLE public.t")  # type: ignore[arg-type]
    before = snapshot(guarded_admin)
    assert_refused(actor, f"DROP EXTENSION {ext}", op="drop_table", obj="public.t")  # type: ignore[arg-type]
    assert_intact(guarded_admin, before)


# --- DROP COLUMN -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stmt",
    [
        "ALTER TABLE t DROP COLUMN c",
        "ALTER TABLE public.t DROP c",
        "ALTER TABLE t DROP COLUMN IF EXISTS c",
        "ALTER TABLE IF EXISTS t DROP COLUMN c RESTRICT",
        "ALTER TABLE t DROP COLUMN c CASCADE",
        "ALTER TABLE ONLY t DROP COLUMN c",
        "ALTER TABLE t ADD COLUMN z int, DROP COLUMN c",
        "ALTER TABLE t DROP COLUMN IF EXISTS nosuch, DROP COLUMN c",
    ],
)
def test_drop_column(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, stmt, op="drop_column", obj="public.t.c")
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.t")


def test_drop_column_cascade_with_dependent_view(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("CREATE VIEW public.v AS SELECT c FROM public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, "ALTER TABLE t DROP COLUMN c CASCADE", op="drop_column", obj="public.t.c")
    assert_intact(guarded_admin, before)
    assert count(actor, "public.v") == 3


def test_drop_two_columns(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "ALTER TABLE t DROP COLUMN c, DROP COLUMN d",
        op="drop_column",
        obj={"public.t.c", "public.t.d"},
        more=1,
    )
    assert_intact(guarded_admin, before)


def test_drop_column_of_partitioned_parent(actor: Conn, guarded_admin: Conn) -> None:
    """The column goes from every partition too: all of them are named."""
    _partitioned(actor)
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "ALTER TABLE public.p DROP COLUMN d",
        op="drop_column",
        obj={"public.p.d", "public.p1.d", "public.p2.d"},
        more=2,
    )
    assert_intact(guarded_admin, before)


def test_drop_column_of_inheritance_parent(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.base")
    actor.execute("CREATE TABLE public.child () INHERITS (public.base)")
    actor.execute("INSERT INTO public.child VALUES (100, 1, 'c')")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "ALTER TABLE public.base DROP COLUMN d",
        op="drop_column",
        obj={"public.base.d", "public.child.d"},
        more=1,
    )
    assert_intact(guarded_admin, before)


# --- drops disguised: rename, detach, fresh parents --------------------------------------------


def test_rename_then_drop(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("ALTER TABLE public.t RENAME TO t_old")
    assert_refused(actor, "DROP TABLE public.t_old", op="drop_table", obj="public.t_old")
    assert count(actor, "public.t_old") == 3


def test_rename_then_drop_in_one_transaction(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("ALTER TABLE public.t RENAME TO t_old")
    actor.execute("ALTER TABLE public.t_old RENAME COLUMN c TO c_old")
    assert_refused(actor, "DROP TABLE public.t_old", op="drop_table", obj="public.t_old")
    actor.execute("ROLLBACK")
    actor.execute("BEGIN")
    actor.execute("ALTER TABLE public.t RENAME COLUMN c TO c_old")
    assert_refused(
        actor, "ALTER TABLE public.t DROP COLUMN c_old", op="drop_column", obj="public.t.c_old"
    )
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_set_schema_then_drop(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("CREATE SCHEMA other")
    actor.execute("ALTER TABLE public.t SET SCHEMA other")
    assert_refused(actor, "DROP TABLE other.t", op="drop_table", obj="other.t")
    assert_guarded(actor, "other.t")


@pytest.mark.parametrize("same_transaction", [False, True])
def test_detach_partition_then_drop(
    actor: Conn, guarded_admin: Conn, same_transaction: bool
) -> None:
    _partitioned(actor)
    before = snapshot(guarded_admin)
    if same_transaction:
        actor.execute("BEGIN")
    actor.execute("ALTER TABLE public.p DETACH PARTITION public.p1")
    assert_refused(actor, "DROP TABLE public.p1", op="drop_table", obj="public.p1")
    if same_transaction:
        actor.execute("ROLLBACK")
        assert_intact(guarded_admin, before)
    else:
        assert count(actor, "public.p1") == 99
        assert_guarded(actor, "public.p1")


def test_fresh_parent_does_not_exempt_attached_old_partition(
    actor: Conn, guarded_admin: Conn
) -> None:
    """Attach an old table to a parent created in this transaction, then drop the parent."""
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.np (id int, c int, d text) PARTITION BY RANGE (id)")
    actor.execute("ALTER TABLE public.np ATTACH PARTITION public.old FOR VALUES FROM (0) TO (1000)")
    assert_refused(actor, "DROP TABLE public.np", op="drop_table", obj="public.old")
    actor.execute("ROLLBACK")
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.np (id int, c int, d text) PARTITION BY RANGE (id)")
    actor.execute("ALTER TABLE public.np ATTACH PARTITION public.old FOR VALUES FROM (0) TO (1000)")
    # attached columns are inherited: dropping one from the fresh parent drops it from old too
    assert_refused(
        actor, "ALTER TABLE public.np DROP COLUMN d", op="drop_column", obj="public.old.d"
    )
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_fresh_parent_does_not_exempt_inheriting_old_child(
    actor: Conn, guarded_admin: Conn
) -> None:
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.np (id int, c int, d text)")
    actor.execute("ALTER TABLE public.old INHERIT public.np")
    assert_refused(actor, "DROP TABLE public.np CASCADE", op="drop_table", obj="public.old")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_drop_table_of_the_row_type_of_another_table(actor: Conn, guarded_admin: Conn) -> None:
    """A column typed by another table's row type goes with that table (CASCADE)."""
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.rowtype (x int, y int)")
    actor.execute("COMMIT")
    make_table(actor, "public.t", extra=", r public.rowtype")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "DROP TABLE public.rowtype CASCADE",
        op="drop_table",
        obj="public.rowtype",
        hint_ops=["drop_table", "drop_column"],
        hint_objs=["public.rowtype", "public.t.r"],
    )
    assert_intact(guarded_admin, before)


# --- where the DDL runs: functions, DO, savepoints, replica mode --------------------------------


def test_drop_inside_plpgsql_function(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute(
        "CREATE FUNCTION public.zap(tbl text) RETURNS void LANGUAGE plpgsql AS"
        " $$BEGIN EXECUTE format('DROP TABLE %s', tbl); END$$"
    )
    actor.execute(
        "CREATE FUNCTION public.zap_col() RETURNS void LANGUAGE plpgsql AS"
        " $$BEGIN ALTER TABLE public.t DROP COLUMN c; END$$"
    )
    before = snapshot(guarded_admin)
    assert_refused(actor, "SELECT public.zap('public.t')", op="drop_table", obj="public.t")
    assert_refused(actor, "SELECT public.zap_col()", op="drop_column", obj="public.t.c")
    assert_intact(guarded_admin, before)


def test_drop_inside_sql_function(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute("CREATE PROCEDURE public.zap() LANGUAGE sql AS $$DROP TABLE public.t$$")
    before = snapshot(guarded_admin)
    assert_refused(actor, "CALL public.zap()", op="drop_table", obj="public.t")
    assert_intact(guarded_admin, before)


@pytest.mark.parametrize(
    ("body", "op", "obj"),
    [
        ("DROP TABLE public.t", "drop_table", "public.t"),
        ("ALTER TABLE public.t DROP COLUMN c", "drop_column", "public.t.c"),
        ("EXECUTE 'DROP TABLE public.t'", "drop_table", "public.t"),
    ],
)
def test_drop_inside_do_block(
    actor: Conn, guarded_admin: Conn, body: str, op: str, obj: str
) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, f"DO $$BEGIN {body}; END$$", op=op, obj=obj)
    assert_intact(guarded_admin, before)


def test_swallowed_refusal_in_do_block_undoes_the_drop(actor: Conn, guarded_admin: Conn) -> None:
    """Catching the error (a subtransaction) cannot keep the drop: it is rolled back."""
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    actor.execute(
        "DO $$BEGIN DROP TABLE public.t; EXCEPTION WHEN others THEN"
        " RAISE NOTICE 'swallowed: %', SQLERRM; END$$"
    )
    assert_intact(guarded_admin, before)
    assert_guarded(actor, "public.t")


def test_refusal_inside_savepoint_undoes_only_the_savepoint(
    actor: Conn, guarded_admin: Conn
) -> None:
    make_table(actor, "public.t")
    make_table(actor, "public.log", rows=0)
    actor.execute("BEGIN")
    actor.execute("INSERT INTO public.log VALUES (1, 1, 'before')")
    actor.execute("SAVEPOINT s")
    actor.execute("INSERT INTO public.log VALUES (2, 2, 'inside')")
    assert_refused(actor, "DROP TABLE public.t", op="drop_table", obj="public.t")
    actor.execute("ROLLBACK TO SAVEPOINT s")
    actor.execute("INSERT INTO public.log VALUES (3, 3, 'after')")
    # conn.transaction() inside a transaction is a savepoint: the refusal raises out of it
    with pytest.raises(psycopg.Error) as info, actor.transaction():
        actor.execute("ALTER TABLE public.t DROP COLUMN c")
    assert info.value.sqlstate == "PGG01"
    actor.execute("COMMIT")
    rows = actor.execute("SELECT d FROM public.log ORDER BY id").fetchall()
    assert rows == [("before",), ("after",)]
    assert count(actor, "public.t") == 3
    assert_guarded(actor, "public.t")


def test_replica_mode_does_not_silence_drop_guard(guarded_admin: Conn, app_role: AppRole) -> None:
    """session_replication_role = replica (superuser only): event triggers are ENABLE ALWAYS."""
    app = app_role.connect()
    make_table(app, "public.t")
    make_table(guarded_admin, "public.s")
    before = snapshot(guarded_admin)
    guarded_admin.execute("SET session_replication_role = replica")
    try:
        assert_refused(guarded_admin, "DROP TABLE public.t", op="drop_table", obj="public.t")
        assert_refused(guarded_admin, "DROP TABLE public.s", op="drop_table", obj="public.s")
        assert_refused(
            guarded_admin, "ALTER TABLE public.s DROP COLUMN c", op="drop_column", obj="public.s.c"
        )
    finally:
        guarded_admin.execute("RESET session_replication_role")
    assert_intact(guarded_admin, before)


def test_superuser_drops_app_table(guarded_admin: Conn, app_role: AppRole) -> None:
    """The superuser is refused on tables it does not own, as on its own."""
    make_table(app_role.connect(), "public.t")
    before = snapshot(guarded_admin)
    assert_refused(guarded_admin, "DROP TABLE public.t", op="drop_table", obj="public.t")
    assert_refused(
        guarded_admin, "ALTER TABLE public.t DROP COLUMN d", op="drop_column", obj="public.t.d"
    )
    assert_intact(guarded_admin, before)


def test_unrelated_drop_in_same_statement_is_refused_whole(
    actor: Conn, guarded_admin: Conn
) -> None:
    """A view dropped next to a table goes nowhere either: the statement is one unit."""
    make_table(actor, "public.t")
    actor.execute("CREATE VIEW public.v AS SELECT 1 AS one")
    before = snapshot(guarded_admin)
    with pytest.raises(psycopg.Error):
        actor.execute("DROP VIEW public.v; DROP TABLE public.t")
    assert_intact(guarded_admin, before)
    assert actor.execute("SELECT count(*) FROM public.v").fetchone() == (1,)


# --- a token's scope cannot be stretched by re-parenting -------------------------------------


def test_token_for_one_table_cannot_drop_another_attached_under_it(
    actor: Conn, guarded_admin: Conn
) -> None:
    """A token approving DROP of public.staging covers its partitions, not a protected table
    the session attaches as a partition just before."""
    make_table(actor, "public.customers")
    actor.execute("CREATE TABLE public.staging (id int, c int, d text) PARTITION BY RANGE (id)")
    key = private_key(0)
    kid = register_key(guarded_admin, key)
    token = sign(
        key,
        kid,
        payload_of(claims(ops=["drop_table"], obj=["public.staging"], db=actor.info.dbname)),
    )
    set_token(actor, token)
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute(
        "ALTER TABLE public.staging ATTACH PARTITION public.customers FOR VALUES FROM (0) TO (1000)"
    )
    try:
        actor.execute("DROP TABLE public.staging")
    except psycopg.Error as e:
        assert e.sqlstate == "PGG01", e
        assert "public.customers" in (e.diag.message_primary or ""), e
    else:
        pytest.fail(
            "DROP TABLE public.staging with a token for public.staging only also dropped"
            " public.customers, attached under it in the same transaction",
            pytrace=False,
        )
    finally:
        actor.execute("ROLLBACK")
        actor.execute("RESET pgguard.token")
    assert_intact(guarded_admin, before)
    set_token(actor, token)
    actor.execute("DROP TABLE public.staging")  # nothing under it: the token is good
