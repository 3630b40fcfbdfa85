"""Row-loss limits (`pgguard protect-rows`): mass DELETE and UPDATE refused per transaction.

Each case runs as the superuser and as an app role owning its tables (``actor``): the limit
counts rows per transaction (Django deletes in batches of 100 rows per statement), sees DML
inside functions and DO blocks, and cascaded deletes; INSERT and COPY are never counted; a
token for ``delete_rows`` / ``update_rows`` on the table lets the transaction through and is
recorded in the audit trail.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tokenhelp import (
    DETAIL_NONE,
    Conn,
    approver_key,
    count,
    hint_for,
    refused,
    register,
    run_cli,
)

from pgguard.doctor import doctor
from pgguard.errors import NotInstalled, UsageError
from pgguard.health import status
from pgguard.restore import restore
from pgguard.rowlimits import list_row_limits, protect_rows
from pgguard.token import issue_token


@pytest.fixture(scope="module")
def approver() -> rsa.RSAPrivateKey:
    return approver_key("rows")


@pytest.fixture
def tenants(guarded_admin: Conn, actor: Conn, approver: rsa.RSAPrivateKey) -> Conn:
    """``tenants`` (10 rows) and ``members`` (3 per tenant, ON DELETE CASCADE), created by
    the actor, protected with the defaults (1,000 rows, half the table)."""
    register(guarded_admin, approver)
    actor.execute("CREATE TABLE tenants (id int PRIMARY KEY, plan text)")
    actor.execute(
        "CREATE TABLE members (id serial PRIMARY KEY,"
        " tenant int REFERENCES tenants ON DELETE CASCADE, name text)"
    )
    actor.execute("INSERT INTO tenants SELECT g, 'free' FROM generate_series(1, 10) g")
    actor.execute("INSERT INTO members (tenant, name) SELECT t, 'm' FROM generate_series(1, 10) t,"
                  " generate_series(1, 3)")  # fmt: skip
    protect_rows(guarded_admin, ["public.tenants", "public.members"])
    return actor


def _limit_refusal(conn: Conn, stmt: str, *, verb: str, n: int, table: str, had: int | None,
                   detail: str = DETAIL_NONE, max_rows: int = 1000) -> None:  # fmt: skip
    r = refused(conn, stmt)
    op = f"{verb}_rows"
    assert r.message == f'pgguard: refusing to {verb} {n} rows of "{table}"'
    assert r.constraint == f"op={op}"
    why = (
        f'this transaction {verb}d {n} rows of "{table}"; the limit is {max_rows} rows'
        if had is None
        else f'this transaction {verb}d {n} rows of "{table}", which had {had}; the limit is '
        "50% of its rows"
    )
    assert r.detail == f"{why}; {detail}"
    assert r.hint == hint_for([op], [table], conn.info.dbname)


def test_delete_of_every_row_refused_one_row_passes(tenants: Conn) -> None:
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=10, table="public.tenants",
                   had=10)  # fmt: skip
    assert count(tenants, "SELECT count(*) FROM tenants") == 10
    tenants.execute("DELETE FROM tenants WHERE id = 1")  # one tenant, its 3 members cascade
    assert count(tenants, "SELECT count(*) FROM members") == 27


def test_batched_deletes_are_counted_per_transaction(tenants: Conn) -> None:
    # Django's collector: one statement per batch; each batch is small, the sum is not
    stmt = "DO $$ BEGIN FOR i IN 0..4 LOOP DELETE FROM tenants WHERE id IN (2*i+1, 2*i+2); END LOOP; END $$"  # noqa: E501
    _limit_refusal(tenants, stmt, verb="delete", n=6, table="public.tenants", had=10)
    with tenants.transaction():
        for i in range(1, 5):  # four of ten: under half
            tenants.execute("DELETE FROM tenants WHERE id = %s", (i,))
    assert count(tenants, "SELECT count(*) FROM tenants") == 6
    # a new transaction starts counting afresh: two more of six is fine
    tenants.execute("DELETE FROM tenants WHERE id IN (5, 6)")
    # a rolled-back savepoint takes its rows back with it
    with tenants.transaction():
        with pytest.raises(psycopg.errors.DivisionByZero), tenants.transaction():
            tenants.execute("DELETE FROM tenants WHERE id IN (7, 8)")
            tenants.execute("SELECT 1/0")
        tenants.execute("DELETE FROM tenants WHERE id = 7")
    assert count(tenants, "SELECT count(*) FROM tenants") == 3


def test_update_without_where_refused(tenants: Conn) -> None:
    _limit_refusal(tenants, "UPDATE tenants SET plan = NULL", verb="update", n=10,
                   table="public.tenants", had=10)  # fmt: skip
    assert count(tenants, "SELECT count(*) FROM tenants WHERE plan IS NULL") == 0
    tenants.execute("UPDATE tenants SET plan = 'pro' WHERE id IN (1, 2, 3)")


def _loosen(conn: Conn, approver: rsa.RSAPrivateKey, table: str, **limits: Any) -> None:
    """protect-rows with looser limits: that needs an uninstall token on the table."""
    _uninstall_token(conn, approver, table)
    try:
        protect_rows(conn, [table], **limits)
    finally:
        conn.execute("RESET pgguard.token")


def test_cascaded_delete_from_parent_counts_on_child(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    _loosen(guarded_admin, approver, "public.tenants", max_rows=1000, max_fraction=1)
    # 6 tenants may go now, but their 18 members are more than half of members
    _limit_refusal(tenants, "DELETE FROM tenants WHERE id <= 6", verb="delete", n=18,
                   table="public.members", had=30)  # fmt: skip
    assert count(tenants, "SELECT count(*) FROM members") == 30


def test_max_rows_limit(guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey) -> None:
    _loosen(guarded_admin, approver, "public.members", max_rows=5, max_fraction=1)
    _limit_refusal(tenants, "DELETE FROM members WHERE tenant <= 2", verb="delete", n=6,
                   table="public.members", had=None, max_rows=5)  # fmt: skip
    tenants.execute("DELETE FROM members WHERE id <= 5")


def test_insert_and_copy_are_not_counted(tenants: Conn) -> None:
    tenants.execute("INSERT INTO tenants SELECT g, 'x' FROM generate_series(11, 5000) g")
    with tenants.cursor().copy("COPY tenants FROM STDIN") as copy:
        for i in range(5001, 7001):
            copy.write_row((i, "copied"))
    assert count(tenants, "SELECT count(*) FROM tenants") == 7000


def test_dml_inside_function_is_counted(tenants: Conn) -> None:
    tenants.execute("CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS $$ DELETE FROM tenants $$")
    _limit_refusal(tenants, "SELECT wipe()", verb="delete", n=10, table="public.tenants",
                   had=10)  # fmt: skip
    tenants.execute(
        "CREATE FUNCTION wipe_definer() RETURNS void LANGUAGE plpgsql SECURITY DEFINER"
        " AS $$ BEGIN UPDATE tenants SET plan = 'gone'; END $$"
    )
    _limit_refusal(tenants, "SELECT wipe_definer()", verb="update", n=10,
                   table="public.tenants", had=10)  # fmt: skip


def test_token_lets_it_through_and_is_audited(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    wrong = issue_token(approver, ttl=300, ops=["delete_rows"], objects=["public.other"])
    tenants.execute("SELECT set_config('pgguard.token', %s, false)", (wrong,))
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=10, table="public.tenants",
                   had=10,
                   detail='the override token does not cover "public.tenants" (it covers: '
                   "public.other)")  # fmt: skip
    token = issue_token(
        approver, ttl=300, ops=["delete_rows"], objects=["public.tenants", "public.members"],
        once=True, reason="offboarding"
    )  # fmt: skip
    tenants.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    tenants.execute("DELETE FROM tenants")
    assert count(tenants, "SELECT count(*) FROM members") == 0
    rows = guarded_admin.execute(
        "SELECT op, object, why FROM pgguard.audit WHERE kind = 'override' ORDER BY object"
    ).fetchall()
    assert ("delete_rows", "public.tenants", "offboarding") in rows
    assert ("delete_rows", "public.members", "offboarding") in rows
    # a once token serves one transaction: the next mass delete is refused again
    tenants.execute("INSERT INTO tenants SELECT g, 'x' FROM generate_series(1, 4) g")
    r = refused(tenants, "UPDATE tenants SET plan = 'y'")
    assert r.constraint == "op=update_rows"  # not in the token's ops
    tenants.execute("RESET pgguard.token")


def test_session_cannot_fake_its_way_with_a_setting_of_another_table(tenants: Conn) -> None:
    # the count is per table and per op: a setting for another table does not reset it
    tenants.execute("SET pgguard.rows_delete_1 = '-1000000'")
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=10, table="public.tenants",
                   had=10)  # fmt: skip


def _uninstall_token(conn: Conn, approver: rsa.RSAPrivateKey, *objects: str) -> None:
    token = issue_token(approver, ttl=300, ops=["uninstall"], objects=list(objects))
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


def test_list_remove_and_bad_input(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    limits = list_row_limits(guarded_admin)
    assert {(lim.table, lim.op, lim.max_rows, lim.max_fraction, lim.enabled) for lim in limits} == {
        ("public.tenants", "delete_rows", 1000, 0.5, "always"),
        ("public.tenants", "update_rows", 1000, 0.5, "always"),
        ("public.members", "delete_rows", 1000, 0.5, "always"),
        ("public.members", "update_rows", 1000, 0.5, "always"),
    }
    with pytest.raises(UsageError):
        protect_rows(guarded_admin, ["public.nope"])
    with pytest.raises(UsageError):
        protect_rows(guarded_admin, ["public.tenants"], max_fraction=0)
    with pytest.raises(UsageError):
        protect_rows(guarded_admin, [])
    with pytest.raises(psycopg.Error) as info:  # taking a limit away needs a token
        protect_rows(guarded_admin, ["public.tenants"], remove=True)
    assert info.value.sqlstate == "PGG01"
    assert info.value.diag.message_primary == (
        "pgguard: refusing to remove the row-loss limit (delete_rows, update_rows) of "
        '"public.tenants"'
    )
    _uninstall_token(guarded_admin, approver, "public.tenants", "public.members")
    report = protect_rows(guarded_admin, ["public.tenants"], remove=True)
    assert report.removed == ("tenants",)
    assert {lim.table for lim in report.limits} == {"public.members"}
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=30, table="public.members",
                   had=30)  # fmt: skip
    assert protect_rows(guarded_admin, ["public.members"], remove=True).limits == ()
    tenants.execute("DELETE FROM tenants")  # no limit left


def test_protect_rows_not_installed(admin: Conn) -> None:
    with pytest.raises(NotInstalled):
        protect_rows(admin, ["public.t"])


def test_all_tables_skips_partitions(guarded_admin: Conn) -> None:
    guarded_admin.execute("CREATE TABLE p (id int, v text) PARTITION BY RANGE (id)")
    guarded_admin.execute("CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100)")
    guarded_admin.execute("CREATE TABLE plain (id int)")
    guarded_admin.execute("INSERT INTO p SELECT g, 'v' FROM generate_series(0, 9) g")
    report = protect_rows(guarded_admin, all_tables=True)
    assert set(report.protected) == {"p", "plain"}
    r = refused(guarded_admin, "DELETE FROM p")  # the parent's trigger sees its partitions
    assert r.message == 'pgguard: refusing to delete 10 rows of "public.p"'


def test_status_lists_limits_and_reports_a_disabled_one(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    st = status(guarded_admin)
    assert st.healthy
    assert {(r.table, r.op, r.max_rows, r.enabled) for r in st.row_limits} >= {
        ("public.tenants", "delete_rows", 1000, "always"),
        ("public.tenants", "update_rows", 1000, "always"),
    }
    assert st.to_json()["row_limits"][0]["table"] == "public.members"
    # disabling it needs an uninstall token (see test_row_limit_triggers_resist_tampering)
    _uninstall_token(guarded_admin, approver, "public.tenants")
    guarded_admin.execute("ALTER TABLE tenants DISABLE TRIGGER pgguard_row_limit_delete")
    guarded_admin.execute("RESET pgguard.token")
    st = status(guarded_admin)
    assert not st.healthy
    assert (
        "the row-loss limit (delete_rows) on public.tenants is disabled, not enabled always"
        in st.problems
    )


def test_deletes_only(guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey) -> None:
    _uninstall_token(guarded_admin, approver, "public.tenants")  # update_rows goes away
    report = protect_rows(guarded_admin, ["public.tenants"], ops=["delete_rows"])
    assert {(lim.table, lim.op) for lim in report.limits if lim.table == "public.tenants"} == {
        ("public.tenants", "delete_rows")
    }
    tenants.execute("UPDATE tenants SET plan = NULL")  # updates are no longer limited
    assert refused(tenants, "DELETE FROM tenants").constraint == "op=delete_rows"
    with pytest.raises(UsageError):
        protect_rows(guarded_admin, ["public.tenants"], ops=["drop_table"])


def test_dropped_trigger_shows_in_status_and_record_needs_a_token(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    # dropping the trigger needs an uninstall token on the table...
    _uninstall_token(tenants, approver, "public.tenants")
    tenants.execute("DROP TRIGGER pgguard_row_limit_delete ON tenants")
    tenants.execute("RESET pgguard.token")
    st = status(guarded_admin)
    assert not st.healthy
    assert st.problems == (
        "the row-loss limit (delete_rows) on public.tenants is missing: its trigger was dropped"
        " (pgguard protect-rows puts it back)",
    )
    # ...and so does clearing the record that betrays it
    r = refused(tenants, "SELECT pgguard.record_row_limits(ARRAY['tenants'::regclass::oid],"
                         " '{}', true, NULL, NULL)")  # fmt: skip
    assert r.constraint == "op=uninstall"
    assert r.message == (
        "pgguard: refusing to remove the row-loss limit (delete_rows, update_rows) of "
        '"public.tenants"'
    )
    # nor add records for tables it does not own
    guarded_admin.execute("CREATE TABLE admin_only (id int)")
    if tenants.info.user != guarded_admin.info.user:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenants.execute(
                "SELECT pgguard.record_row_limits("
                "ARRAY['admin_only'::regclass::oid], '{delete_rows}', false, 10, 0.5)"
            )
    # re-running protect-rows puts it back; status is healthy again
    protect_rows(guarded_admin, ["public.tenants"])
    assert status(guarded_admin).healthy
    _uninstall_token(tenants, approver, "public.tenants")
    tenants.execute(
        "SELECT pgguard.record_row_limits(ARRAY['tenants'::regclass::oid], '{}', true, NULL, NULL)"
    )
    tenants.execute("RESET pgguard.token")


# Each way the owner of a table (app role or superuser) could take a row-loss limit away
# without `protect-rows --remove`: every one is refused unless an uninstall token covers it.
TAMPERING = [
    ("drop", "DROP TRIGGER pgguard_row_limit_delete ON tenants"),
    ("disable", "ALTER TABLE tenants DISABLE TRIGGER pgguard_row_limit_update"),
    ("disable", "ALTER TABLE tenants DISABLE TRIGGER ALL"),
    ("disable", "ALTER TABLE tenants DISABLE TRIGGER USER"),
    ("disable", "ALTER TABLE tenants ENABLE TRIGGER pgguard_row_limit_delete"),  # ORIGIN only
    ("disable", "ALTER TABLE tenants ENABLE REPLICA TRIGGER pgguard_row_limit_delete"),
    ("rename", "ALTER TRIGGER pgguard_row_limit_delete ON tenants RENAME TO old_limit"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
                " FOR EACH STATEMENT EXECUTE FUNCTION noop()"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
                " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT WHEN (false)"
                " EXECUTE FUNCTION pgguard.row_limit_guard('1000', '0.5')"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_update AFTER UPDATE OF id ON tenants"
                " FOR EACH STATEMENT"
                " EXECUTE FUNCTION pgguard.row_limit_guard('1000', '0.5')"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_update AFTER INSERT ON tenants"
                " REFERENCING NEW TABLE AS pgguard_changed FOR EACH STATEMENT"
                " EXECUTE FUNCTION pgguard.row_limit_guard('1000', '0.5')"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "stmt"), TAMPERING)
def test_row_limit_triggers_resist_tampering(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey, what: str, stmt: str
) -> None:
    tenants.execute(
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$"
    )
    before = list_row_limits(guarded_admin)
    if stmt.endswith("ALL") and tenants.info.user != guarded_admin.info.user:
        # tenants' foreign-key triggers already keep a non-superuser from disabling them all
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenants.execute(stmt)
        assert list_row_limits(guarded_admin) == before
        return
    r = refused(tenants, stmt)
    assert r.constraint == "op=uninstall"
    if "ALL" not in stmt and "USER" not in stmt:  # the TRUNCATE guard may speak first there
        trigger = stmt.split("TRIGGER ")[1].split()[0]
        if trigger in ("ALL", "USER", "REPLICA"):
            trigger = stmt.split("TRIGGER ")[2].split()[0]
        assert r.message == (
            f'pgguard: refusing to {what} the row-loss limit "{trigger}" of "public.tenants"'
        )
        assert "uninstall" in (r.hint or "")
    assert list_row_limits(guarded_admin) == before
    assert status(guarded_admin).healthy
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=10, table="public.tenants",
                   had=10)  # fmt: skip
    # an uninstall token on the table approves it, and the override is audited
    _uninstall_token(tenants, approver, "public.tenants")
    tenants.execute(stmt)
    tenants.execute("RESET pgguard.token")
    audited = "SELECT count(*) FROM pgguard.audit WHERE op = 'uninstall' AND object = %s"
    assert count(guarded_admin, audited, ["public.tenants"]) >= 1


def test_protect_rows_again_changes_limits_without_a_token(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    # replaced in place, never dropped: no token needed to tighten a limit
    protect_rows(guarded_admin, ["public.tenants"], max_rows=3, max_fraction=0.5)
    assert {(lim.op, lim.max_rows, lim.enabled) for lim in list_row_limits(guarded_admin)
            if lim.table == "public.tenants"} == {("delete_rows", 3, "always"),
                                                   ("update_rows", 3, "always")}  # fmt: skip
    _limit_refusal(tenants, "UPDATE tenants SET plan = 'x' WHERE id <= 4", verb="update", n=4,
                   table="public.tenants", had=None, max_rows=3)  # fmt: skip
    # dropped with its table, the table's drop is what is judged (drop_table, no uninstall)
    tenants.execute("CREATE TABLE scratch (id int)")
    protect_rows(guarded_admin, ["public.scratch"])
    token = issue_token(approver, ttl=300, ops=["drop_table"], objects=["public.scratch"])
    tenants.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    tenants.execute("DROP TABLE scratch")
    tenants.execute("RESET pgguard.token")


def test_doctor_lists_limits_and_flags_disabled_and_missing(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey, guarded_db_dsn: str
) -> None:
    report = doctor(tenants)
    assert {(lim.table, lim.op, lim.max_rows, lim.max_fraction, lim.enabled)
            for lim in report.row_limits} == {
        ("public.tenants", "delete_rows", 1000, 0.5, "always"),
        ("public.tenants", "update_rows", 1000, 0.5, "always"),
        ("public.members", "delete_rows", 1000, 0.5, "always"),
        ("public.members", "update_rows", 1000, 0.5, "always"),
    }  # fmt: skip
    assert "row_limit_triggers" in report.checks
    assert not [f for f in report.findings if f.id.startswith("row_limits.")]
    _uninstall_token(guarded_admin, approver, "public.tenants", "public.members")
    guarded_admin.execute("ALTER TABLE tenants DISABLE TRIGGER pgguard_row_limit_update")
    guarded_admin.execute("DROP TRIGGER pgguard_row_limit_delete ON members")
    guarded_admin.execute("RESET pgguard.token")
    found = {(f.id, f.severity, f.evidence) for f in doctor(tenants).findings
             if f.id.startswith("row_limits.")}  # fmt: skip
    assert found == {
        ("row_limits.disabled", "high",
         "the row-loss limit (update_rows) on public.tenants is disabled, not enabled always:"
         " no session is limited"),
        ("row_limits.missing", "high",
         "the row-loss limit (delete_rows) on public.members is missing: its trigger was dropped"),
    }  # fmt: skip
    done = run_cli("doctor", "--dsn", guarded_db_dsn, "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert {"table": "public.tenants", "op": "update_rows", "max_rows": 1000,
            "max_fraction": 0.5, "enabled": "disabled"} in data["row_limits"]  # fmt: skip
    assert {f["id"] for f in data["findings"]} >= {"row_limits.disabled", "row_limits.missing"}
    text = run_cli("doctor", "--dsn", guarded_db_dsn)
    assert "row-loss limits" in text.stderr and "public.tenants" in text.stderr


HOSTILE = """
CREATE SCHEMA evil;
CREATE FUNCTION evil.yes_ti(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.yes_bi(bigint, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.zero(bigint, bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.yes_bi);
CREATE OPERATOR evil.< (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.yes_bi);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.yes_ti);
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.zero);
CREATE FUNCTION evil.z(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
CREATE AGGREGATE evil.count(*) (SFUNC = evil.z, STYPE = bigint, INITCOND = '0');
CREATE TABLE evil.pgguard_changed (id int);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
"""


def test_hostile_search_path_cannot_slip_a_mass_delete_past(
    guarded_admin: Conn, tenants: Conn
) -> None:
    # Operators that say "no rows" or "below the limit", a count() that says 0 and a table named
    # like the transition table, all earlier on the session's search_path, must change nothing
    # (the trigger runs as the invoker; an unpinned, unqualified body lets this delete through).
    guarded_admin.execute(HOSTILE)
    tenants.execute("SET search_path = evil, pg_catalog, public")
    _limit_refusal(tenants, "DELETE FROM public.tenants", verb="delete", n=10,
                   table="public.tenants", had=10)  # fmt: skip
    _limit_refusal(tenants, "UPDATE public.tenants SET plan = NULL", verb="update", n=10,
                   table="public.tenants", had=10)  # fmt: skip
    tenants.execute("BEGIN")
    tenants.execute("DELETE FROM public.tenants WHERE id = 1")  # one row passes
    _limit_refusal(tenants, "DELETE FROM public.tenants WHERE id IN (2, 3, 4, 5, 6)",
                   verb="delete", n=6, table="public.tenants", had=10)  # fmt: skip
    tenants.execute("ROLLBACK")
    tenants.execute("RESET search_path")
    assert count(tenants, "SELECT count(*) FROM tenants") == 10


def test_uninstall_takes_the_limits_with_it(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    from pgguard.removal import uninstall

    uninstall(guarded_admin, token=issue_token(approver, ops=["uninstall"], objects=["pgguard"]))
    assert (
        count(guarded_admin, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgguard\\_%'") == 0
    )
    tenants.execute("DELETE FROM members")  # unlimited again


def test_restore_over_protected_tables_needs_only_drop_table(
    pg_server: Any, guarded_admin: Conn, guarded_db_dsn: str, approver: rsa.RSAPrivateKey,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # pg_restore --clean drops each table's triggers before the table: a token that may drop
    # the table covers its row-limit triggers, and the restored tables keep their limits
    if pg_server.cluster is None:
        pytest.skip("pg_dump of the server's own version is known only for local servers")
    bindir = pg_server.cluster.binaries.bindir
    register(guarded_admin, approver)
    guarded_admin.execute("CREATE TABLE kept (id int PRIMARY KEY)")
    guarded_admin.execute("INSERT INTO kept SELECT generate_series(1, 10)")
    protect_rows(guarded_admin, ["public.kept"])
    dump = tmp_path / "db.dump"
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-f", str(dump), "-d", guarded_db_dsn],
                   check=True, capture_output=True)  # fmt: skip
    token = issue_token(approver, ttl=300, ops=["drop_table"], objects=["public.kept"])
    monkeypatch.setenv("PGOPTIONS", f"-c pgguard.token={token}")
    restore(guarded_db_dsn, dump, ["--clean", "--if-exists"],
            pg_restore=str(bindir / "pg_restore"))  # fmt: skip
    assert count(guarded_admin, "SELECT count(*) FROM kept") == 10
    assert {(lim.table, lim.enabled) for lim in list_row_limits(guarded_admin)} == {
        ("public.kept", "always")
    }
    assert status(guarded_admin).healthy
    monkeypatch.delenv("PGOPTIONS")
    # the recreated table (a new oid) is recorded with its limits, the old oid is gone, so
    # loosening the restored limit needs the token as before
    recorded = guarded_admin.execute(
        "SELECT value FROM pgguard.settings WHERE name = 'row_limits'"
    ).fetchone()
    assert recorded is not None
    kept = count(guarded_admin, "SELECT 'public.kept'::regclass::oid::bigint")
    limits = {"max_rows": 1000, "max_fraction": 0.5}
    assert recorded[0] == {str(kept): {"delete_rows": limits, "update_rows": limits}}
    with pytest.raises(psycopg.Error) as info:
        protect_rows(guarded_admin, ["public.kept"], max_fraction=1)
    assert info.value.diag.constraint_name == "op=uninstall"


# Each way the owner of a table (app role or superuser) could loosen a row-loss limit in place
# and then mass-delete: refused unless an uninstall token covers the table.
LOOSENING = [
    ("loosen", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
               " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
               " EXECUTE FUNCTION pgguard.row_limit_guard('1000000', '1')"),
    ("loosen", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
               " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
               " EXECUTE FUNCTION pgguard.row_limit_guard('1000', 'NaN')"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
                " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
                " EXECUTE FUNCTION pgguard.row_limit_guard('1000')"),
    ("replace", "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
                " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
                " EXECUTE FUNCTION pgguard.row_limit_guard('many', '0.5')"),
    ("drop", "DROP TRIGGER pgguard_row_limit_delete ON tenants;"
             " CREATE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
             " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
             " EXECUTE FUNCTION pgguard.row_limit_guard('1000000', '1')"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "stmt"), LOOSENING)
def test_loosening_a_limit_in_place_needs_a_token(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey, what: str, stmt: str
) -> None:
    before = list_row_limits(guarded_admin)
    r = refused(tenants, stmt)
    assert r.constraint == "op=uninstall"
    assert r.message.startswith(
        f'pgguard: refusing to {what} the row-loss limit "pgguard_row_limit_delete" of'
        ' "public.tenants"'
    )
    if what == "loosen":
        assert "(delete_rows: max_rows 1000 → " in r.message
    assert list_row_limits(guarded_admin) == before
    _limit_refusal(tenants, "DELETE FROM tenants", verb="delete", n=10, table="public.tenants",
                   had=10)  # fmt: skip
    # with an uninstall token it goes through, is audited, and becomes the recorded limit
    _uninstall_token(tenants, approver, "public.tenants")
    tenants.execute(stmt)
    tenants.execute("RESET pgguard.token")
    audited = "SELECT count(*) FROM pgguard.audit WHERE op = 'uninstall' AND object = %s"
    assert count(guarded_admin, audited, ["public.tenants"]) >= 1
    if what == "loosen":
        tenants.execute(stmt)  # the same limits again: nothing looser than the record
        assert status(guarded_admin).healthy


def test_protect_rows_loosening_needs_a_token_tightening_does_not(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    owner = tenants  # the app role owns the table (or is the superuser)
    for limits in ({"max_rows": 1_000_000, "max_fraction": 1}, {"max_rows": 1001},
                   {"max_fraction": 0.51}, {"ops": ["delete_rows"]}):  # fmt: skip
        with pytest.raises(psycopg.Error) as info:
            protect_rows(owner, ["public.tenants"], **limits)
        assert info.value.diag.sqlstate == "PGG01", limits
        assert info.value.diag.constraint_name == "op=uninstall"
    assert {(lim.op, lim.max_rows, lim.max_fraction) for lim in list_row_limits(owner)
            if lim.table == "public.tenants"} == {("delete_rows", 1000, 0.5),
                                                   ("update_rows", 1000, 0.5)}  # fmt: skip
    # nor by writing the record first: record_row_limits judges it, the table is not writable
    r = refused(owner, "SELECT pgguard.record_row_limits(ARRAY['tenants'::regclass::oid],"
                       " '{delete_rows,update_rows}', false, 1000000, 1)")  # fmt: skip
    assert r.message == (
        'pgguard: refusing to loosen the row-loss limit of "public.tenants" (delete_rows:'
        " max_rows 1000 → 1000000, max_fraction 0.5 → 1; update_rows: max_rows 1000 → 1000000,"
        " max_fraction 0.5 → 1)"
    )
    if owner.info.user != guarded_admin.info.user:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute("UPDATE pgguard.settings SET value = '{}' WHERE name = 'row_limits'")
    # tightening and re-applying are free, by protect-rows or by hand; the record follows
    protect_rows(owner, ["public.tenants"], max_rows=800, max_fraction=0.4)
    protect_rows(owner, ["public.tenants"], max_rows=800, max_fraction=0.4)
    owner.execute("CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON tenants"
                  " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
                  " EXECUTE FUNCTION pgguard.row_limit_guard('5', '0.4')")  # fmt: skip
    with pytest.raises(psycopg.Error) as info:  # back up to 800 is loosening now
        protect_rows(owner, ["public.tenants"], max_rows=800, max_fraction=0.4)
    assert info.value.diag.constraint_name == "op=uninstall"
    # with the token, loosening goes through and is audited
    _loosen(owner, approver, "public.tenants", max_rows=1_000_000, max_fraction=1)
    assert {(lim.max_rows, lim.max_fraction) for lim in list_row_limits(owner)
            if lim.table == "public.tenants"} == {(1_000_000, 1)}  # fmt: skip
    audited = "SELECT count(*) FROM pgguard.audit WHERE op = 'uninstall' AND object = %s"
    assert count(guarded_admin, audited, ["public.tenants"]) >= 1


def test_cli_loosening_names_the_line_to_run(
    guarded_admin: Conn, guarded_db_dsn: str, approver: rsa.RSAPrivateKey
) -> None:
    register(guarded_admin, approver)
    guarded_admin.execute("CREATE TABLE accounts (id int)")
    protect_rows(guarded_admin, ["public.accounts"], max_rows=10)
    proc = run_cli("protect-rows", "--dsn", guarded_db_dsn, "public.accounts",
                   "--max-rows", "100000", "--max-fraction", "1")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "refusing to loosen the row-loss limit of" in proc.stderr
    assert (
        f"pgguard allow --op uninstall --object public.accounts --db {guarded_admin.info.dbname}"
        " -- pgguard protect-rows public.accounts --max-rows 100000 --max-fraction 1"
    ) in " ".join(proc.stderr.split())
    # the same limits again need nothing
    proc = run_cli("protect-rows", "--dsn", guarded_db_dsn, "public.accounts", "--max-rows", "10")
    assert proc.returncode == 0, proc.stderr


def test_row_limit_check_is_for_the_trigger_alone(
    guarded_admin: Conn, tenants: Conn, approver: rsa.RSAPrivateKey
) -> None:
    # a session holding a once token for members tries to spend it, and write an override,
    # without deleting a row of members
    token = issue_token(approver, ttl=300, ops=["delete_rows"], objects=["public.members"],
                        once=True)  # fmt: skip
    tenants.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    audited = "SELECT count(*) FROM pgguard.audit WHERE op = 'delete_rows' AND object = %s"
    call = ("pgguard.row_limit_check('members'::regclass, 'public', 'members', 'DELETE', 2000,"
            " 1000, 0.5, NULL)")  # fmt: skip
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        tenants.execute(f"SELECT {call}")
    # nor from a trigger of its own, on a table whose rows it did change
    tenants.execute("CREATE TABLE scratch (id int)")
    tenants.execute("INSERT INTO scratch VALUES (1)")
    tenants.execute(f"CREATE FUNCTION sneak() RETURNS trigger LANGUAGE plpgsql AS"
                    f" $$BEGIN PERFORM {call}; RETURN NULL; END$$")  # fmt: skip
    tenants.execute("CREATE TRIGGER sneak AFTER DELETE ON scratch FOR EACH STATEMENT"
                    " EXECUTE FUNCTION sneak()")  # fmt: skip
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        tenants.execute("DELETE FROM scratch")
    assert count(guarded_admin, audited, ["public.members"]) == 0
    # the token is unspent: the real mass delete of members goes through with it, once
    tenants.execute("DELETE FROM members WHERE tenant <= 8")
    assert count(guarded_admin, audited, ["public.members"]) == 1
    tenants.execute("RESET pgguard.token")


def test_reinstall_fills_in_a_record_from_before_limits_were_kept(
    guarded_admin: Conn, tenants: Conn
) -> None:
    from pgguard.installer import install

    # a record as protect-rows kept it before: relid -> list of ops
    rel = count(guarded_admin, "SELECT 'public.tenants'::regclass::oid::bigint")
    guarded_admin.execute(
        "UPDATE pgguard.settings SET value = %s::jsonb WHERE name = 'row_limits'",
        (json.dumps({str(rel): ["delete_rows", "update_rows"]}),),
    )
    # as if upgrading from that version: step 1 (sql/) runs again
    guarded_admin.execute("UPDATE pgguard.installation SET sql_sha256 = 'older'")
    assert install(guarded_admin).action == "upgraded"
    recorded = guarded_admin.execute(
        "SELECT value -> %s FROM pgguard.settings WHERE name = 'row_limits'", (str(rel),)
    ).fetchone()
    limits = {"max_rows": 1000, "max_fraction": 0.5}
    assert recorded == ({"delete_rows": limits, "update_rows": limits},)
    with pytest.raises(psycopg.Error) as info:
        protect_rows(tenants, ["public.tenants"], max_rows=5000)
    assert info.value.diag.constraint_name == "op=uninstall"
