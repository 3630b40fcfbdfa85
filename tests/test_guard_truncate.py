"""Adversarial: TRUNCATE of a protected table is refused (op truncate, SQLSTATE PGG01) however it
is spelled, for the superuser and for the app role that owns the tables, and nothing is emptied;
every table created after install, by any route, gets its ENABLE ALWAYS guard."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from guardhelp import (
    GOOD_GUARD,
    Conn,
    assert_guarded,
    assert_intact,
    assert_refused,
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

if TYPE_CHECKING:
    from conftest import AppRole


def _partitioned(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("CREATE TABLE public.p (id int, c int) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (1) TO (100)")
        conn.execute("CREATE TABLE public.p2 PARTITION OF public.p FOR VALUES FROM (100) TO (200)")
        conn.execute("INSERT INTO public.p SELECT g, g FROM generate_series(1, 150) g")


@pytest.mark.parametrize(
    "stmt",
    [
        "TRUNCATE t",
        "TRUNCATE TABLE public.t",
        "TRUNCATE ONLY t",
        "TRUNCATE TABLE ONLY public.t",
        "TRUNCATE t *",
        "TRUNCATE t CASCADE",
        "TRUNCATE t RESTRICT",
        "TRUNCATE t CONTINUE IDENTITY",
    ],
)
def test_truncate_one_table(actor: Conn, guarded_admin: Conn, stmt: str) -> None:
    make_table(actor, "public.t")
    before = snapshot(guarded_admin)
    assert_refused(actor, stmt, op="truncate", obj="public.t")
    assert_intact(guarded_admin, before)
    assert count(actor, "public.t") == 3


def test_truncate_restart_identity(actor: Conn, guarded_admin: Conn) -> None:
    """The sequence is not reset either: the refusal undoes the whole statement."""
    with actor.transaction():
        actor.execute("CREATE TABLE public.t (id int GENERATED ALWAYS AS IDENTITY, v text)")
        actor.execute("INSERT INTO public.t (v) SELECT 'x' FROM generate_series(1, 5)")
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE public.t RESTART IDENTITY", op="truncate", obj="public.t")
    assert_intact(guarded_admin, before)
    actor.execute("INSERT INTO public.t (v) VALUES ('next')")
    assert actor.execute("SELECT max(id) FROM public.t").fetchone() == (6,)


def test_truncate_several_tables_at_once(actor: Conn, guarded_admin: Conn) -> None:
    """The whole statement is refused: not one of them is emptied."""
    for name in ("public.a", "public.b", "public.c"):
        make_table(actor, name)
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "TRUNCATE public.a, public.b, public.c",
        op="truncate",
        obj={"public.a", "public.b", "public.c"},
        hint_objs={"public.a", "public.b", "public.c"},
    )
    assert_intact(guarded_admin, before)


def test_truncate_hint_names_only_this_statements_tables(actor: Conn, guarded_admin: Conn) -> None:
    """The HINT approves this statement and nothing more: tables merely locked earlier in the
    same transaction (by unrelated DDL) are not part of it."""
    make_table(actor, "public.t")
    make_table(actor, "public.u")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("ALTER TABLE public.u ADD COLUMN z int")  # ACCESS EXCLUSIVE on u
    actor.execute("LOCK TABLE public.u IN ACCESS EXCLUSIVE MODE")
    assert_refused(actor, "TRUNCATE public.t", op="truncate", obj="public.t")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_truncate_fresh_and_old_table_together(actor: Conn, guarded_admin: Conn) -> None:
    """The fresh table is exempt, the old one is not: the statement fails, nothing is emptied."""
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.fresh (id int)")
    actor.execute("INSERT INTO public.fresh VALUES (1)")
    assert_refused(actor, "TRUNCATE public.fresh, public.old", op="truncate", obj="public.old")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_truncate_cascade_to_referencing_table(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.parent")
    make_table(actor, "public.child", extra=", pid int REFERENCES public.parent")
    actor.execute("UPDATE public.child SET pid = id")
    before = snapshot(guarded_admin)
    assert_refused(
        actor,
        "TRUNCATE public.parent CASCADE",
        op="truncate",
        obj={"public.parent", "public.child"},
        hint_objs={"public.parent", "public.child"},
    )
    assert_intact(guarded_admin, before)


def test_truncate_cascade_reaches_old_table_from_fresh_one(
    actor: Conn, guarded_admin: Conn
) -> None:
    """TRUNCATE of an exempt (fresh) table CASCADEs to an old one: the old one's guard fires."""
    make_table(actor, "public.child", extra=", pid int")
    actor.execute("UPDATE public.child SET pid = id")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.fresh (id int PRIMARY KEY)")
    actor.execute("INSERT INTO public.fresh SELECT generate_series(1, 3)")
    actor.execute("ALTER TABLE public.child ADD FOREIGN KEY (pid) REFERENCES public.fresh")
    assert_refused(actor, "TRUNCATE public.fresh CASCADE", op="truncate", obj="public.child")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


@pytest.mark.parametrize(
    ("stmt", "obj"),
    [
        ("TRUNCATE public.p", {"public.p"}),
        ("TRUNCATE public.p CASCADE", {"public.p"}),
        # the HINT names the parent only: a token for it covers its partitions
        ("TRUNCATE public.p1, public.p", {"public.p", "public.p1"}),
    ],
)
def test_truncate_partitioned_parent(
    actor: Conn, guarded_admin: Conn, stmt: str, obj: set[str]
) -> None:
    _partitioned(actor)
    before = snapshot(guarded_admin)
    assert_refused(actor, stmt, op="truncate", obj=obj, hint_objs={"public.p"})
    assert_intact(guarded_admin, before)
    assert count(actor, "public.p") == 150


def test_truncate_fresh_parent_of_old_partition(actor: Conn, guarded_admin: Conn) -> None:
    """The partitions' own guards fire under a parent that is itself exempt."""
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.np (id int, c int, d text) PARTITION BY RANGE (id)")
    actor.execute("ALTER TABLE public.np ATTACH PARTITION public.old FOR VALUES FROM (0) TO (1000)")
    assert_refused(actor, "TRUNCATE public.np", op="truncate", obj="public.old")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_truncate_partition_directly(actor: Conn, guarded_admin: Conn) -> None:
    _partitioned(actor)
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE public.p2", op="truncate", obj="public.p2")
    assert_refused(
        actor,
        "TRUNCATE public.p1, public.p2",
        op="truncate",
        obj={"public.p1", "public.p2"},
        hint_objs={"public.p1", "public.p2"},
    )
    assert_intact(guarded_admin, before)


def test_truncate_inheritance_parent_and_child(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.base")
    actor.execute("CREATE TABLE public.child (x int) INHERITS (public.base)")
    actor.execute("INSERT INTO public.child VALUES (100, 1, 'c', 7)")
    before = snapshot(guarded_admin)
    assert_refused(actor, "TRUNCATE public.child", op="truncate", obj="public.child")
    assert_refused(actor, "TRUNCATE public.base", op="truncate", obj="public.base")
    assert_refused(actor, "TRUNCATE ONLY public.base", op="truncate", obj="public.base")
    assert_intact(guarded_admin, before)


def test_truncate_fresh_inheritance_parent_of_old_child(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.old")
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    actor.execute("CREATE TABLE public.np (id int, c int, d text)")
    actor.execute("ALTER TABLE public.old INHERIT public.np")
    assert_refused(actor, "TRUNCATE public.np", op="truncate", obj="public.old")
    actor.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


def test_truncate_in_function_and_do_block(actor: Conn, guarded_admin: Conn) -> None:
    make_table(actor, "public.t")
    actor.execute(
        "CREATE FUNCTION public.wipe() RETURNS void LANGUAGE plpgsql AS"
        " $$BEGIN EXECUTE 'TRUNCATE public.t'; END$$"
    )
    before = snapshot(guarded_admin)
    assert_refused(actor, "SELECT public.wipe()", op="truncate", obj="public.t")
    assert_refused(actor, "DO $$BEGIN TRUNCATE public.t; END$$", op="truncate", obj="public.t")
    assert_intact(guarded_admin, before)


def test_truncate_unlogged_table(actor: Conn, guarded_admin: Conn) -> None:
    actor.execute("CREATE UNLOGGED TABLE public.u (id int)")
    actor.execute("INSERT INTO public.u VALUES (1)")
    assert_refused(actor, "TRUNCATE public.u", op="truncate", obj="public.u")
    assert count(actor, "public.u") == 1


def test_replica_mode_does_not_silence_truncate_guard(
    guarded_admin: Conn, app_role: AppRole
) -> None:
    """session_replication_role = replica skips ORIGIN triggers, not ENABLE ALWAYS ones."""
    make_table(app_role.connect(), "public.t")
    make_table(guarded_admin, "public.s")
    before = snapshot(guarded_admin)
    guarded_admin.execute("SET session_replication_role = replica")
    try:
        assert_refused(guarded_admin, "TRUNCATE public.t", op="truncate", obj="public.t")
        assert_refused(guarded_admin, "TRUNCATE public.s CASCADE", op="truncate", obj="public.s")
    finally:
        guarded_admin.execute("RESET session_replication_role")
    guarded_admin.execute("BEGIN")
    guarded_admin.execute("SET LOCAL session_replication_role = local")
    assert_refused(guarded_admin, "TRUNCATE public.t", op="truncate", obj="public.t")
    guarded_admin.execute("ROLLBACK")
    assert_intact(guarded_admin, before)


# --- tables created later get the guard --------------------------------------------------------


def _setup_for_routes(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("CREATE TABLE public.base (id int, v text)")
        conn.execute("CREATE TABLE public.parent (id int, v text) PARTITION BY RANGE (id)")
        conn.execute("CREATE TYPE public.rowt AS (id int, v text)")


ROUTES = {
    "create_table": (["CREATE TABLE public.n (id int, v text)"], "public.n"),
    "create_table_as": (["CREATE TABLE public.n AS SELECT 1 AS id, 'x'::text AS v"], "public.n"),
    "create_table_as_no_data": (
        ["CREATE TABLE public.n AS SELECT 1 AS id, 'x'::text AS v WITH NO DATA"],
        "public.n",
    ),
    "select_into": (["SELECT 1 AS id, 'x'::text AS v INTO public.n"], "public.n"),
    "partition_of": (
        ["CREATE TABLE public.n PARTITION OF public.parent FOR VALUES FROM (0) TO (10)"],
        "public.n",
    ),
    "default_partition": (["CREATE TABLE public.n PARTITION OF public.parent DEFAULT"], "public.n"),
    "like": (["CREATE TABLE public.n (LIKE public.base INCLUDING ALL)"], "public.n"),
    "of_type": (["CREATE TABLE public.n OF public.rowt"], "public.n"),
    "unlogged": (["CREATE UNLOGGED TABLE public.n (id int, v text)"], "public.n"),
    "inherits": (["CREATE TABLE public.n () INHERITS (public.base)"], "public.n"),
    "create_schema": (["CREATE SCHEMA s CREATE TABLE n (id int, v text)"], "s.n"),
    "do_block": (["DO $$BEGIN CREATE TABLE public.n (id int, v text); END$$"], "public.n"),
    "function": (
        [
            "CREATE FUNCTION public.mk() RETURNS void LANGUAGE plpgsql AS"
            " $$BEGIN EXECUTE 'CREATE TABLE public.n (id int, v text)'; END$$",
            "SELECT public.mk()",
        ],
        "public.n",
    ),
    "partitioned_parent": (
        ["CREATE TABLE public.n (id int, v text) PARTITION BY LIST (id)"],
        "public.n",
    ),
    "partition_of_partition": (
        [
            "CREATE TABLE public.n0 PARTITION OF public.parent FOR VALUES FROM (0) TO (10)"
            " PARTITION BY RANGE (id)",
            "CREATE TABLE public.n PARTITION OF public.n0 FOR VALUES FROM (0) TO (5)",
        ],
        "public.n",
    ),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_new_table_gets_guard(actor: Conn, guarded_admin: Conn, route: str) -> None:
    _setup_for_routes(actor)
    stmts, table = ROUTES[route]
    with actor.transaction():
        for stmt in stmts:
            actor.execute(stmt)  # type: ignore[arg-type]
    # a later transaction: no exemption any more
    if route != "partitioned_parent":
        actor.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'kept')")  # type: ignore[arg-type]
    rows = count(actor, table)
    assert guard_state(actor, table) == GOOD_GUARD
    assert_guarded(actor, table)
    assert count(actor, table) == rows


def _guardless_table(admin: Conn, owner: str, stmt: str) -> None:
    """Create a table the way one created before install would look: no guard at all."""
    with admin.transaction():
        admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end DISABLE")
        admin.execute(f'SET LOCAL ROLE "{owner}"')  # type: ignore[arg-type]
        admin.execute(stmt)  # type: ignore[arg-type]
        admin.execute("RESET ROLE")
        admin.execute("ALTER EVENT TRIGGER pgguard_ddl_end ENABLE ALWAYS")


@pytest.mark.parametrize("how", ["attach_partition", "inherit"])
def test_guardless_table_gets_guard_when_attached(
    actor: Conn, guarded_admin: Conn, how: str
) -> None:
    """ATTACH PARTITION reports only the parent; INHERIT only the child: both end up guarded."""
    with actor.transaction():
        actor.execute("CREATE TABLE public.parent (id int, v text) PARTITION BY RANGE (id)")
        actor.execute("CREATE TABLE public.base (id int, v text)")
    _guardless_table(guarded_admin, actor.info.user, "CREATE TABLE public.n (id int, v text)")
    actor.execute("INSERT INTO public.n VALUES (1, 'kept')")
    assert guard_state(actor, "public.n") is None
    if how == "attach_partition":
        actor.execute(
            "ALTER TABLE public.parent ATTACH PARTITION public.n FOR VALUES FROM (0) TO (10)"
        )
    else:
        actor.execute("ALTER TABLE public.n INHERIT public.base")
    assert_guarded(actor, "public.n")
    assert count(actor, "public.n") == 1


def test_detach_and_reattach_keeps_guard(actor: Conn, guarded_admin: Conn) -> None:
    _partitioned(actor)
    actor.execute("ALTER TABLE public.p DETACH PARTITION public.p1")
    assert_guarded(actor, "public.p1")
    actor.execute("ALTER TABLE public.p ATTACH PARTITION public.p1 FOR VALUES FROM (1) TO (100)")
    assert_guarded(actor, "public.p1")
    assert_refused(actor, "TRUNCATE public.p", op="truncate", obj="public.p")
    assert count(actor, "public.p") == 150


def test_any_ddl_heals_a_guardless_table(actor: Conn, guarded_admin: Conn) -> None:
    """A table that somehow lacks its guard gets one at its next ALTER TABLE."""
    _guardless_table(guarded_admin, actor.info.user, "CREATE TABLE public.n (id int, v text)")
    actor.execute("ALTER TABLE public.n ADD COLUMN w int")
    assert_guarded(actor, "public.n")


# --- a token's scope cannot be stretched by re-parenting ---------------------------------------


def _token_for(admin: Conn, dbname: str, ops: list[str], objs: list[str]) -> str:
    key = private_key(0)
    kid = register_key(admin, key)
    return sign(key, kid, payload_of(claims(ops=ops, obj=objs, db=dbname)))


@pytest.mark.parametrize("how", ["inherit", "attach_partition"])
def test_token_for_one_table_cannot_empty_another_attached_under_it(
    actor: Conn, guarded_admin: Conn, how: str
) -> None:
    """A token approving TRUNCATE of public.staging covers staging (and what was already under
    it), not a protected table the session re-parents under staging just before."""
    make_table(actor, "public.customers")
    with actor.transaction():
        if how == "inherit":
            actor.execute("CREATE TABLE public.staging (id int, c int, d text)")
        else:
            actor.execute(
                "CREATE TABLE public.staging (id int, c int, d text) PARTITION BY RANGE (id)"
            )
    token = _token_for(guarded_admin, actor.info.dbname, ["truncate"], ["public.staging"])
    set_token(actor, token)
    actor.execute("TRUNCATE public.staging")  # the control: the token itself is good
    before = snapshot(guarded_admin)
    actor.execute("BEGIN")
    if how == "inherit":
        actor.execute("ALTER TABLE public.customers INHERIT public.staging")
    else:
        actor.execute(
            "ALTER TABLE public.staging ATTACH PARTITION public.customers"
            " FOR VALUES FROM (0) TO (1000)"
        )
    assert_refused(
        actor,
        "TRUNCATE public.staging",
        op="truncate",
        obj="public.customers",
        detail_prefix='the override token does not cover "public.customers"',
        hint_objs={"public.customers", "public.staging"},
    )
    actor.execute("ROLLBACK")
    actor.execute("RESET pgguard.token")
    assert_intact(guarded_admin, before)
