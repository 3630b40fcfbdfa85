"""`pgguard install`: what it creates, re-runs, upgrades, refuses, and how it scales."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from pgguard import localpg
from pgguard.errors import NewerSchemaInstalled, PrivilegeError
from pgguard.health import status
from pgguard.installer import EVENT_TRIGGERS, install

Conn = psycopg.Connection[Any]


def make_tables(conn: Conn, n: int, schema: str = "public") -> None:
    conn.execute(
        f"DO $$ BEGIN FOR i IN 1..{n} LOOP"
        f" EXECUTE format('CREATE TABLE {schema}.t%s (id int PRIMARY KEY, v text)', i);"
        " END LOOP; END $$"
    )


def guard_states(conn: Conn) -> dict[str, str]:
    return {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT c.oid::regclass::text, t.tgenabled::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard'"
            " WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND n.nspname NOT IN"
            " ('pg_catalog', 'information_schema', 'pgguard', 'pgguard_watch')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
        )
    }


def catalog_signature(conn: Conn) -> list[tuple[Any, ...]]:
    """What install made, independent of oids: objects, owners, privileges, definitions."""
    return conn.execute(
        """
        SELECT 'function', p.oid::regprocedure::text, p.proowner::regrole::text,
               p.proacl::text, p.prosecdef, p.proconfig::text, md5(p.prosrc)
          FROM pg_proc p WHERE p.pronamespace = 'pgguard'::regnamespace
        UNION ALL
        SELECT 'relation', c.relname::text, c.relowner::regrole::text, c.relacl::text,
               false, c.relkind::text,
               (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                  ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)
          FROM pg_class c WHERE c.relnamespace = 'pgguard'::regnamespace
        UNION ALL
        SELECT 'event trigger', e.evtname::text, e.evtowner::regrole::text, e.evtenabled::text,
               false, e.evtevent::text, e.evtfoid::regproc::text
          FROM pg_event_trigger e
        ORDER BY 1, 2
        """
    ).fetchall()


def test_fresh_install_creates_everything(pg_server: Any, admin: Conn) -> None:
    admin.execute("CREATE TABLE plain (id int)")
    admin.execute("CREATE TABLE parent (id int) PARTITION BY RANGE (id)")
    admin.execute("CREATE TABLE part1 PARTITION OF parent FOR VALUES FROM (0) TO (10)")
    admin.execute("CREATE TABLE base (id int); CREATE TABLE child () INHERITS (base)")
    admin.execute("CREATE TEMP TABLE scratch (id int)")
    report = install(admin)
    assert report.action == "installed"
    assert report.migrations_applied == (_all_revisions()[-1],)
    assert report.complete and report.tables_total == 5 and report.tables_attached == 5
    assert guard_states(admin) == {
        "plain": "A",
        "parent": "A",
        "part1": "A",
        "base": "A",
        "child": "A",
    }
    roles = dict(
        admin.execute(
            "SELECT rolname, rolcanlogin FROM pg_roles"
            " WHERE rolname IN ('pgguard_owner', 'pgguard_auditor')"
        ).fetchall()
    )
    assert roles == {"pgguard_owner": False, "pgguard_auditor": False}
    owners = {
        r[0]
        for r in admin.execute(
            "SELECT proowner::regrole::text FROM pg_proc"
            " WHERE pronamespace = 'pgguard'::regnamespace"
            " UNION SELECT relowner::regrole::text FROM pg_class"
            " WHERE relnamespace = 'pgguard'::regnamespace"
            " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'pgguard'"
        )
    }
    assert owners == {"pgguard_owner"}
    assert dict(
        admin.execute("SELECT evtname::text, evtenabled::text FROM pg_event_trigger").fetchall()
    ) == {name: "A" for name in EVENT_TRIGGERS}
    # the version table lives in schema pgguard, never colliding with the app's
    assert admin.execute("SELECT to_regclass('public.alembic_version')").fetchone() == (None,)
    assert admin.execute("SELECT version_num FROM pgguard.alembic_version").fetchall() == [
        (_all_revisions()[-1],)
    ]
    assert status(admin).healthy


def test_second_install_is_a_no_op(guarded_admin: Conn) -> None:
    before = catalog_signature(guarded_admin)
    xmins = guarded_admin.execute(
        "SELECT xmin::text FROM pg_proc WHERE pronamespace = 'pgguard'::regnamespace ORDER BY oid"
    ).fetchall()
    inst = guarded_admin.execute("SELECT xmin::text FROM pgguard.installation").fetchall()
    report = install(guarded_admin)
    assert report.action == "unchanged"
    assert report.tables_total == 0 and report.migrations_applied == ()
    assert guarded_admin.execute("SELECT xmin::text FROM pgguard.installation").fetchall() == inst
    assert catalog_signature(guarded_admin) == before
    # nothing was rewritten: the functions' catalog rows are the very same tuples
    assert (
        guarded_admin.execute(
            "SELECT xmin::text FROM pg_proc WHERE pronamespace = 'pgguard'::regnamespace"
            " ORDER BY oid"
        ).fetchall()
        == xmins
    )


def test_upgraded_install_equals_fresh_install(guarded_admin: Conn, admin: Conn) -> None:
    # pretend the installed code is older: the next install must re-apply it in place
    with guarded_admin.transaction():
        guarded_admin.execute("DROP EVENT TRIGGER pgguard_ddl_end")  # as a partial old install
        guarded_admin.execute("UPDATE pgguard.installation SET sql_sha256 = 'older'")
    guarded_admin.execute("CREATE TABLE made_meanwhile (id int)")
    report = install(guarded_admin)
    assert report.action == "upgraded"
    install(admin)
    assert catalog_signature(guarded_admin) == catalog_signature(admin)
    assert guard_states(guarded_admin)["made_meanwhile"] == "A"
    assert status(guarded_admin).healthy


def test_install_keeps_keys_and_audit(guarded_admin: Conn) -> None:
    from pgguard import keys

    row = keys.public_numbers_for_db(keys.generate_private_key(2048).public_key())
    install(guarded_admin, public_keys=[row])
    guarded_admin.execute(
        "INSERT INTO pgguard.audit (kind, op, object) VALUES ('override', 'truncate', 'public.x')"
    )
    guarded_admin.execute("UPDATE pgguard.installation SET sql_sha256 = 'older'")
    assert install(guarded_admin).action == "upgraded"
    assert guarded_admin.execute("SELECT kid FROM pgguard.keys").fetchall() == [(row.kid,)]
    assert guarded_admin.execute("SELECT count(*) FROM pgguard.audit").fetchone() == (1,)


def test_newer_installed_schema_is_refused(guarded_admin: Conn) -> None:
    guarded_admin.execute("UPDATE pgguard.alembic_version SET version_num = '9999_future'")
    guarded_admin.execute("UPDATE pgguard.installation SET sql_sha256 = 'other'")
    before = catalog_signature(guarded_admin)
    with pytest.raises(NewerSchemaInstalled, match="9999_future.*upgrade the pgguard package"):
        install(guarded_admin)
    assert catalog_signature(guarded_admin) == before


def test_non_superuser_is_refused_with_the_privilege_named(
    pg_server: Any, guarded_db_name: str, make_app_role: Any
) -> None:
    role = make_app_role(guarded_db_name)
    with role.connect() as conn, pytest.raises(PrivilegeError) as caught:
        install(conn)
    assert caught.value.exit_code == 3
    assert "may not create event triggers" in caught.value.message
    for platform_role in ("rds_superuser", "cloudsqlsuperuser", "neon_superuser"):
        assert platform_role in caught.value.message


def test_busy_table_is_retried_then_reported(pg_server: Any, admin: Conn, db_name: str) -> None:
    make_tables(admin, 3)
    with psycopg.connect(pg_server.admin_dsn(db_name)) as holder:
        holder.execute("LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE")  # held until rollback
        report = install(admin, lock_timeout="50ms", retries=1)
        assert [p.table for p in report.problems] == ["public.t2"]
        assert "could not lock it" in report.problems[0].reason
        assert report.retries == 1
        st = status(admin)
        assert not st.healthy and "the last install did not finish" in st.problems
        holder.rollback()
    report = install(admin)
    assert report.complete and report.tables_attached == 1
    assert status(admin).healthy


def test_ten_thousand_locks_are_never_needed_at_once(pg_server: Any) -> None:
    """With a lock table far smaller than the table count, batches still get through."""
    if pg_server.cluster is None:
        pytest.skip("needs a local server it can start with small lock settings")
    # the shared lock table holds about max_locks_per_transaction * (connections + workers)
    settings = {"max_locks_per_transaction": "10", "max_connections": "5"}
    n = 1200
    with localpg.LocalCluster(pg_server.major, settings=settings) as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for start in range(0, n, 50):
                conn.execute(
                    f"DO $$ BEGIN FOR i IN {start + 1}..{start + 50} LOOP"
                    " EXECUTE format('CREATE TABLE public.t%s (id int)', i); END LOOP; END $$"
                )
            with pytest.raises(psycopg.errors.OutOfMemory):  # one transaction cannot do it
                conn.execute(
                    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT oid::regclass AS t"
                    " FROM pg_class WHERE relname ~ '^t[0-9]+$' LOOP"
                    " EXECUTE format('LOCK TABLE %s', r.t); END LOOP; END $$"
                )
            report = install(conn, batch_size=100)
            assert report.complete
            assert report.tables_attached == n
            assert report.batches == n // 100
            assert status(conn).healthy


def test_install_killed_half_way_is_finished_by_the_next_run(
    pg_server: Any, admin: Conn, db_dsn: str
) -> None:
    make_tables(admin, 1500)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgguard", "install", "--dsn", db_dsn, "--batch-size", "25"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        guarded = 0
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'pgguard_truncate_guard'"
            ).fetchone()
            guarded = row[0] if row else 0
            if guarded >= 100:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert 100 <= guarded < 1500, (
        "the install must be killed half-way for this test to mean anything"
    )
    st = status(admin)
    assert not st.healthy
    assert st.tables_unprotected_count > 0
    report = install(admin)
    assert report.action == "unchanged"  # the schema step had committed; only tables remained
    assert report.complete and report.tables_attached == st.tables_unprotected_count
    assert status(admin).healthy


def test_a_held_install_lock_gives_a_clear_error_not_a_hang(
    pg_server: Any, guarded_admin: Conn, guarded_db_name: str, make_app_role: Any
) -> None:
    from pgguard.errors import InstallError
    from pgguard.installer import ADVISORY_LOCK_KEY, take_install_lock

    role = make_app_role(guarded_db_name, grants=False)
    with role.connect() as holder:  # any role may take an advisory lock
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        started = time.monotonic()
        with pytest.raises(InstallError, match=f"install lock: pid \\d+ \\(role {role.name}"):
            with guarded_admin.transaction():
                take_install_lock(guarded_admin, wait="200ms")
        assert time.monotonic() - started < 10


def _all_revisions() -> tuple[str, ...]:
    """pgguard's own Alembic revisions, oldest first (a fresh install applies them all)."""
    from alembic.script import ScriptDirectory

    from pgguard import resources

    script = ScriptDirectory(str(resources.migrations_dir()))
    return tuple(reversed([r.revision for r in script.walk_revisions()]))
