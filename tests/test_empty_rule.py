"""The empty-table rule: a table that holds no row may be dropped, lose a column or be truncated
without a token (audited with reason 'empty'); one committed row anywhere in what the statement
removes, and it is refused. Decided by the server from the heap's size under the statement's
lock: nothing a session can set. Each case runs as the superuser and as the app role that owns
its tables (``actor``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from guardhelp import refusal

from pgguard.installer import install

Conn = psycopg.Connection[Any]


@pytest.fixture
def rule_on(guarded_db_dsn: str) -> None:
    """The guarded test template refuses empty tables; this database gets the default back."""
    with psycopg.connect(guarded_db_dsn) as conn:
        report = install(conn, protect_empty=False)
    assert report.protect_empty is False and report.action == "upgraded"


def audit_reasons(admin: Conn) -> list[tuple[str, str, str | None]]:
    return admin.execute("SELECT op, object, reason FROM pgguard.audit ORDER BY id").fetchall()  # type: ignore[return-value]


def test_empty_table_drop_column_truncate_allowed_and_audited(
    rule_on: None, actor: Conn, guarded_admin: Conn
) -> None:
    actor.execute("CREATE TABLE e1 (id int, c text); CREATE TABLE e2 (id int)")
    actor.execute("CREATE TABLE e3 (i int)")
    actor.execute("ALTER TABLE e1 DROP COLUMN c")
    actor.execute("TRUNCATE e2")
    actor.execute("DROP TABLE e3")
    assert audit_reasons(guarded_admin) == [
        ("drop_column", "public.e1.c", "empty"),
        ("truncate", "public.e2", "empty"),
        ("drop_table", "public.e3", "empty"),
    ]


@pytest.mark.parametrize(
    "stmt, op",
    [
        ("DROP TABLE t", "drop_table"),
        ("ALTER TABLE t DROP COLUMN c", "drop_column"),
        ("TRUNCATE t", "truncate"),
        ("DROP TABLE other, t", "drop_table"),
    ],
)
def test_one_committed_row_is_refused(
    rule_on: None, actor: Conn, guarded_admin: Conn, stmt: str, op: str
) -> None:
    actor.execute("CREATE TABLE t (id int, c text); CREATE TABLE other (id int)")
    actor.execute("INSERT INTO t VALUES (1, 'x')")
    diag = refusal(actor, stmt)
    assert diag.constraint_name == f"op={op}"
    assert guarded_admin.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_rows_deleted_count_until_vacuum_gives_the_pages_back(
    rule_on: None, actor: Conn, guarded_admin: Conn
) -> None:
    actor.execute("CREATE TABLE t (id int)")
    actor.execute("INSERT INTO t SELECT generate_series(1, 100)")
    actor.execute("DELETE FROM t")
    # dead rows still occupy the heap: the server cannot tell them from live ones cheaply
    refusal(actor, "DROP TABLE t")
    guarded_admin.execute("VACUUM t")
    assert guarded_admin.execute("SELECT pg_relation_size('t')").fetchone() == (0,)
    actor.execute("DROP TABLE t")


def test_partitions_answer_for_themselves(rule_on: None, actor: Conn, guarded_admin: Conn) -> None:
    actor.execute(
        "CREATE TABLE p (id int, c text) PARTITION BY RANGE (id);"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);"
        "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20)"
    )
    actor.execute("INSERT INTO p VALUES (15, 'x')")
    for stmt in ("DROP TABLE p", "ALTER TABLE p DROP COLUMN c", "TRUNCATE p"):
        refusal(actor, stmt)
    actor.execute("TRUNCATE p1")  # the empty partition alone
    assert guarded_admin.execute("SELECT count(*) FROM p").fetchone() == (1,)


def test_inheritance_child_with_rows_keeps_parent_column(
    rule_on: None, actor: Conn, guarded_admin: Conn
) -> None:
    actor.execute("CREATE TABLE parent (id int, c text); CREATE TABLE kid () INHERITS (parent)")
    actor.execute("INSERT INTO kid VALUES (1, 'x')")
    refusal(actor, "ALTER TABLE parent DROP COLUMN c")
    refusal(actor, "DROP TABLE parent CASCADE")
    assert guarded_admin.execute("SELECT c FROM kid").fetchone() == ("x",)


def test_schema_of_empty_tables_drops_like_a_failed_tenant(
    rule_on: None, guarded_admin: Conn, app_role: Any
) -> None:
    app_role.create_schema("tenant1")
    app = app_role.connect()
    app.execute("CREATE TABLE tenant1.a (id int); CREATE TABLE tenant1.b (id int)")
    app.execute("DROP SCHEMA tenant1 CASCADE")
    assert {r[1] for r in audit_reasons(guarded_admin)} == {"tenant1.a", "tenant1.b"}


def test_protect_empty_refuses_them(guarded_db_dsn: str, actor: Conn) -> None:
    # the template was installed with protect_empty=True; saying it again changes nothing
    with psycopg.connect(guarded_db_dsn) as conn:
        assert install(conn, protect_empty=True).action == "unchanged"
    actor.execute("CREATE TABLE e (id int, c text)")
    for stmt in ("DROP TABLE e", "ALTER TABLE e DROP COLUMN c", "TRUNCATE e"):
        refusal(actor, stmt)


def test_another_access_method_is_never_taken_for_empty(rule_on: None, guarded_admin: Conn) -> None:
    # a table access method could keep its rows anywhere: only heap's size is evidence
    guarded_admin.execute("CREATE ACCESS METHOD heap_alias TYPE TABLE HANDLER heap_tableam_handler")
    guarded_admin.execute("CREATE TABLE odd (id int) USING heap_alias")
    refusal(guarded_admin, "TRUNCATE odd")
    refusal(guarded_admin, "DROP TABLE odd")


def test_the_records_cannot_be_forged(rule_on: None, guarded_admin: Conn, app_role: Any) -> None:
    app = app_role.connect()
    app.execute("CREATE TABLE t (id int)")
    app.execute("INSERT INTO t VALUES (1)")
    oid = app.execute("SELECT 't'::regclass::oid").fetchone()[0]  # type: ignore[index]
    for stmt in (
        "SELECT pgguard.on_ddl_start()",
        f"INSERT INTO pgguard.empty_at_start VALUES (pgguard.current_xid(), 'DROP TABLE', {oid})",
        "SELECT pgguard.note_empty_allowed('drop_table', ARRAY['public.t'], 'DROP TABLE')",
        "INSERT INTO pgguard.settings VALUES ('protect_empty', 'false')",
    ):
        with pytest.raises(psycopg.Error):
            app.execute(stmt)
    refusal(app, "DROP TABLE t")


def test_a_rewrite_in_flight_is_not_taken_for_empty(
    rule_on: None, guarded_db_dsn: str, guarded_admin: Conn, app_role: Any
) -> None:
    """Another transaction truncated the empty table (new storage, allowed) and filled it, not
    yet committed: the drop's start sees the old, empty storage, but must not trust it."""
    app = app_role.connect()
    app.execute("CREATE TABLE t (id int)")
    writer = app_role.connect()
    writer.execute("BEGIN")
    writer.execute("TRUNCATE t")
    writer.execute("INSERT INTO t SELECT generate_series(1, 10)")
    outcome: dict[str, Any] = {}

    def drop() -> None:
        try:
            with psycopg.connect(app_role.dsn, autocommit=True) as c:
                c.execute("DROP TABLE t")
            outcome["result"] = "dropped"
        except psycopg.Error as e:
            outcome["result"] = e.sqlstate

    th = threading.Thread(target=drop)
    th.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until the DROP queues behind the writer's lock
        waiting = guarded_admin.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 't'::regclass"
        ).fetchone()
        if waiting and waiting[0]:
            break
        time.sleep(0.02)
    writer.execute("COMMIT")
    th.join(timeout=30)
    assert outcome["result"] == "PGG01"
    assert guarded_admin.execute("SELECT count(*) FROM t").fetchone() == (10,)
