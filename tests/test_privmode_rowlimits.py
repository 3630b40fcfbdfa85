"""Row-loss limits in privilege mode: `protect-rows` run by the app role, whose tables belong to
pgguard_owner, gets pgguard's own triggers made with the owner's rights
(pgguard.protect_rows_owned), and neither the app role nor the executor can take them away
without an uninstall token on the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from guardhelp import claims, payload_of, private_key, register_key, set_token, sign
from privhelp import Platform, ddl_error, error_of, make_platform, run_ddl

from pgguard.doctor import doctor
from pgguard.rowlimits import list_row_limits, protect_rows

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def shared(pg_server: Any) -> Iterator[Platform]:
    dbs: list[str] = []

    def make_db() -> str:
        dbs.append(pg_server.create_database())
        return dbs[-1]

    p = make_platform(pg_server, make_db)
    p.install()
    p.kid = register_key(p.admin(), private_key(0))  # type: ignore[attr-defined]
    yield p
    p.close()
    for name in dbs:
        pg_server.drop_database(name)


def token(p: Platform, **kw: Any) -> str:
    return sign(private_key(0), p.kid, payload_of(claims(**kw)))  # type: ignore[attr-defined]


@pytest.fixture
def app(shared: Platform) -> Iterator[Conn]:
    """The app role, with `public.tenants` (5 rows) protected by the defaults."""
    conn = shared.connect("app")
    protect_rows(conn, ["public.tenants"])
    yield conn
    set_token(conn, token(shared, ops=["uninstall"], obj=["public.tenants"]))
    protect_rows(conn, ["public.tenants"], remove=True)
    conn.close()


def test_app_role_protects_its_tables(shared: Platform, app: Conn) -> None:
    limits = {(lim.table, lim.op, lim.max_rows, lim.enabled) for lim in list_row_limits(app)}
    assert limits == {
        ("public.tenants", "delete_rows", 1000, "always"),
        ("public.tenants", "update_rows", 1000, "always"),
    }
    e = error_of(app, "DELETE FROM public.tenants WHERE id > 2")  # 3 of 5 (orders keep 1, 2)
    assert e.diag.sqlstate == "PGG01"
    assert e.diag.message_primary == 'pgguard: refusing to delete 3 rows of "public.tenants"'
    app.execute("UPDATE public.tenants SET legacy = 'y' WHERE id = 1")  # one row passes
    # re-running tightens the limits in place, with no token; loosening needs one
    protect_rows(app, ["public.tenants"], max_rows=2)
    with pytest.raises(psycopg.Error) as info:
        protect_rows(app, ["public.tenants"], max_rows=2, max_fraction=1)
    assert info.value.diag.constraint_name == "op=uninstall"
    set_token(app, token(shared, ops=["uninstall"], obj=["public.tenants"]))
    protect_rows(app, ["public.tenants"], max_rows=2, max_fraction=1)
    app.execute("RESET pgguard.token")
    with pytest.raises(psycopg.Error) as info:
        protect_rows(app, ["public.tenants"], ops=["delete_rows"])  # drops update_rows
    assert info.value.diag.sqlstate == "PGG01"  # taking a limit away needs an uninstall token
    assert {(lim.op, lim.max_rows) for lim in list_row_limits(app)} == {
        ("delete_rows", 2),
        ("update_rows", 2),
    }
    assert doctor(app).row_limits == tuple(list_row_limits(app))


ATTACKS = [
    ("drop", "DROP TRIGGER pgguard_row_limit_delete ON public.tenants"),
    ("disable", "ALTER TABLE public.tenants DISABLE TRIGGER pgguard_row_limit_delete"),
    ("disable", "ALTER TABLE public.tenants DISABLE TRIGGER USER"),
    ("disable", "ALTER TABLE public.tenants ENABLE REPLICA TRIGGER pgguard_row_limit_update"),
    ("rename", "ALTER TRIGGER pgguard_row_limit_delete ON public.tenants RENAME TO x"),
]


@pytest.mark.parametrize(("what", "stmt"), ATTACKS)
def test_app_role_cannot_take_a_limit_away(
    shared: Platform, app: Conn, what: str, stmt: str
) -> None:
    before = list_row_limits(app)
    # directly: the app role owns nothing
    assert error_of(app, stmt).diag.sqlstate == "42501"
    # through the executor, which runs as the tables' owner
    e = ddl_error(app, stmt)
    assert e.diag.sqlstate == "PGG01", e
    assert e.diag.constraint_name == "op=uninstall"
    if "USER" not in stmt:  # the TRUNCATE guard may answer first there
        assert f"refusing to {what} the row-loss limit" in (e.diag.message_primary or "")
    # nor by making its own trigger of pgguard's function, or by hand-calling the helpers
    e = ddl_error(app, "CREATE OR REPLACE TRIGGER pgguard_row_limit_delete AFTER DELETE ON"
                       " public.tenants FOR EACH STATEMENT EXECUTE FUNCTION"
                       " pgguard.row_limit_guard('1000000', '1')")  # fmt: skip
    assert e.diag.sqlstate == "PGG01"
    # the executor's helpers are pgguard_owner's alone
    e = error_of(app, "SELECT pgguard.row_limits_after('{}', 'x')")
    assert e.diag.sqlstate == "42501"
    assert list_row_limits(app) == before
    # an uninstall token on the table approves it
    set_token(app, token(shared, ops=["uninstall"], obj=["public.tenants"]))
    run_ddl(app, stmt)
    app.execute("RESET pgguard.token")
    assert list_row_limits(app) != before
    # protect-rows puts it back (the fixture's removal needs the trigger names intact)
    if what == "rename":
        set_token(app, token(shared, ops=["uninstall"], obj=["public.tenants"]))
        run_ddl(app, "ALTER TRIGGER x ON public.tenants RENAME TO pgguard_row_limit_delete")
        app.execute("RESET pgguard.token")
    protect_rows(app, ["public.tenants"])
    assert {lim.enabled for lim in list_row_limits(app)} == {"always"}


def test_who_may_protect(shared: Platform, app: Conn) -> None:
    # a role that may not delete from the table may not set its limits
    reader, password = shared.server.make_role("rlread")
    try:
        with shared.server.connect(shared.dbname) as su:
            su.execute(f'GRANT SELECT ON public.orders TO "{reader}"')
        dsn = shared.server.dsn(shared.dbname, reader, password)
        with psycopg.connect(dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "SELECT pgguard.protect_rows_owned(ARRAY['public.orders'::regclass::oid],"
                    " '{delete_rows}', 10, 0.5, false)"
                )
    finally:
        shared.server.drop_role(reader)
    # the owner-rights function makes nothing but pgguard's trigger, with valid limits
    for bad in ("'{drop_table}'::text[], 10, 0.5, false", "'{delete_rows}', -1, 0.5, false",
                "'{delete_rows}', 10, 0, false"):  # fmt: skip
        e = error_of(app, "SELECT pgguard.protect_rows_owned("
                          f"ARRAY['public.orders'::regclass::oid], {bad})")  # fmt: skip
        assert e.diag.sqlstate == "22023"


def test_protect_rows_owned_refused_in_event_trigger_mode(guarded_admin: Conn) -> None:
    guarded_admin.execute("CREATE TABLE t (id int)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        guarded_admin.execute(
            "SELECT pgguard.protect_rows_owned("
            "ARRAY['t'::regclass::oid], '{delete_rows}', 10, 0.5, false)"
        )


def test_uninstall_takes_the_limits_with_it(pg_server: Any, make_db: Any) -> None:
    from pgguard.removal import uninstall

    p = make_platform(pg_server, make_db)
    try:
        p.install()
        kid = register_key(p.admin(), private_key(0))
        app = p.connect("app")
        protect_rows(app, ["public.tenants", "billing.invoices"])
        tok = sign(private_key(0), kid, payload_of(claims(ops=["uninstall"], obj=["pgguard"])))
        with psycopg.connect(
            p.server.dsn(p.dbname, p.owner, p.owner_password), autocommit=True
        ) as own:
            uninstall(own, token=tok)
            assert own.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgguard\\_%'"
            ).fetchone() == (0,)
            own.execute("DELETE FROM billing.invoices")  # the owner's tables, unlimited again
    finally:
        p.close()


LOOSER = [
    {"max_rows": 1_000_000, "max_fraction": 1},
    {"max_rows": 1001},
    {"max_fraction": 0.75},
]


@pytest.mark.parametrize("as_superuser", [False, True], ids=["app", "superuser"])
def test_loosening_needs_a_token_tightening_does_not(
    shared: Platform, app: Conn, as_superuser: bool
) -> None:
    conn = shared.admin() if as_superuser else app
    for limits in LOOSER:
        with pytest.raises(psycopg.Error) as info:
            protect_rows(conn, ["public.tenants"], **limits)
        assert info.value.diag.sqlstate == "PGG01", limits
        assert info.value.diag.constraint_name == "op=uninstall"
        assert "refusing to loosen the row-loss limit" in (info.value.diag.message_primary or "")
    # writing the record by hand is the same door, and the settings table is not writable
    e = error_of(app, "SELECT pgguard.record_row_limits(ARRAY['public.tenants'::regclass::oid],"
                      " '{delete_rows,update_rows}', false, 1000000, 1)")  # fmt: skip
    assert e.diag.sqlstate == "PGG01"
    e = error_of(app, "UPDATE pgguard.settings SET value = '{}' WHERE name = 'row_limits'")
    assert e.diag.sqlstate == "42501"
    # nor through the executor: a trigger of pgguard's function is refused there
    e = ddl_error(
        app,
        "CREATE OR REPLACE TRIGGER pgguard_row_limit_update AFTER UPDATE ON public.tenants"
        " REFERENCING OLD TABLE AS pgguard_changed FOR EACH STATEMENT"
        " EXECUTE FUNCTION pgguard.row_limit_guard('1000000', '1')",
    )
    assert e.diag.sqlstate == "PGG01"
    assert {(lim.op, lim.max_rows, lim.max_fraction) for lim in list_row_limits(app)} == {
        ("delete_rows", 1000, 0.5),
        ("update_rows", 1000, 0.5),
    }
    # tightening and the same limits again are free; the record follows the tighter limit
    protect_rows(conn, ["public.tenants"], max_rows=10, max_fraction=0.25)
    protect_rows(conn, ["public.tenants"], max_rows=10, max_fraction=0.25)
    with pytest.raises(psycopg.Error) as info:
        protect_rows(conn, ["public.tenants"], max_rows=11, max_fraction=0.25)
    assert info.value.diag.constraint_name == "op=uninstall"
    e = error_of(app, "DELETE FROM public.tenants WHERE id > 2")
    assert e.diag.sqlstate == "PGG01"
