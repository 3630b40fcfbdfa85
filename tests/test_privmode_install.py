"""Privilege mode, installed by a platform's non-superuser credential (see privhelp).

What the app role and the installing credential can no longer do; what uninstall gives back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from guardhelp import claims, payload_of, private_key, register_key, set_token, sign
from privhelp import Platform, error_of, guard_enabled, make_platform, owner_of, run_ddl

from pgguard.health import status


@pytest.fixture
def platform(pg_server: Any, make_db: Any) -> Iterator[Platform]:
    p = make_platform(pg_server, make_db)
    yield p
    p.close()


@pytest.fixture
def installed(platform: Platform) -> Platform:
    report = platform.install()
    assert report.mode == "privileges"
    assert report.action == "installed"
    assert report.app_password  # created by install, shown once
    return platform


def test_install_moves_ownership_and_leaves_installer_outside(installed: Platform) -> None:
    own = installed.connect("owner")
    for rel in (
        "public.tenants",
        "public.orders",
        "public.big_orders",
        "billing.invoices",
        "public.tenants_id_seq",
    ):
        assert owner_of(own, rel) == "pgguard_owner", rel
    schemas = dict(
        own.execute(
            "SELECT nspname::text, nspowner::regrole::text FROM pg_namespace"
            " WHERE nspname IN ('public', 'billing', 'pgguard')"
        ).fetchall()
    )
    assert schemas == {
        "public": "pgguard_owner",
        "billing": "pgguard_owner",
        "pgguard": "pgguard_owner",
    }
    fn = own.execute("SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'tenant_name'")
    assert fn.fetchone() == ("pgguard_owner",)
    assert own.execute("SELECT pg_has_role(current_user, 'pgguard_owner', 'USAGE')").fetchone() == (
        False,
    )
    assert guard_enabled(own, "public.tenants") == "A"
    assert guard_enabled(own, "billing.invoices") == "A"
    st = status(own)
    assert st.mode == "privileges"
    assert st.healthy, st.problems
    assert st.to_json()["mode"] == "privileges"


def test_app_role_gets_data_not_structure(installed: Platform) -> None:
    app = installed.connect("app")
    app.execute("INSERT INTO public.tenants (name) VALUES ('new')")
    app.execute("UPDATE public.orders SET total = total + 1")
    assert app.execute("SELECT count(*) FROM public.big_orders").fetchone() == (1,)
    assert app.execute("SELECT public.tenant_name(1)").fetchone() == ("t1",)
    for stmt in (
        "DROP TABLE public.tenants CASCADE",
        "DROP SCHEMA public CASCADE",
        "ALTER TABLE public.tenants DROP COLUMN legacy",
        "ALTER TABLE public.tenants DISABLE TRIGGER pgguard_truncate_guard",
        "ALTER TABLE public.tenants OWNER TO CURRENT_USER",
        "DROP TRIGGER pgguard_truncate_guard ON public.tenants",
        "CREATE TABLE public.mine (a int)",
    ):
        e = error_of(app, stmt)
        assert e.sqlstate == "42501", (stmt, e)  # insufficient_privilege: not the owner
    e = error_of(app, "TRUNCATE public.orders")
    assert e.sqlstate == "PGG01"
    assert e.diag.message_hint and "pgguard allow --op truncate" in e.diag.message_hint
    assert app.execute("SELECT count(*) FROM public.tenants").fetchone() == (6,)


def test_installing_credential_accidents_refused(installed: Platform) -> None:
    own = installed.connect("owner")
    for stmt in (
        "DROP TABLE public.orders",
        "DROP SCHEMA public CASCADE",
        "TRUNCATE public.orders",
        "ALTER TABLE public.orders DROP COLUMN total",
    ):
        e = error_of(own, stmt)
        assert e.sqlstate == "42501", (stmt, e)
    assert installed.admin().execute("SELECT count(*) FROM public.orders").fetchone() == (2,)


def test_second_install_is_a_noop(installed: Platform) -> None:
    own = installed.connect("owner")
    before = own.execute("SELECT xmin::text FROM pgguard.installation").fetchone()
    report = installed.install()
    assert report.action == "unchanged"
    assert report.app_password is None
    assert own.execute("SELECT xmin::text FROM pgguard.installation").fetchone() == before
    assert own.execute("SELECT pg_has_role(current_user, 'pgguard_owner', 'USAGE')").fetchone() == (
        False,
    )


def test_status_degraded_on_drift(installed: Platform) -> None:
    admin = installed.admin()
    admin.execute(f'ALTER TABLE public.orders OWNER TO "{installed.owner}"')
    admin.execute("ALTER TABLE public.tenants ENABLE TRIGGER pgguard_truncate_guard")
    st = status(installed.connect("owner"))
    assert not st.healthy
    text = " ".join(st.problems)
    assert "not owned by pgguard_owner" in text and "public.orders" in text
    assert "TRUNCATE guard" in text
    admin.execute(f'GRANT pgguard_owner TO "{installed.app}"')
    st = status(installed.connect("owner"))
    assert any("path to pgguard_owner" in p for p in st.problems)
    admin.execute(f'REVOKE pgguard_owner FROM "{installed.app}"')


def test_uninstall_restores_owners(installed: Platform) -> None:
    from pgguard.removal import uninstall

    key = private_key(0)
    admin = installed.admin()
    kid = register_key(admin, key)
    app = installed.connect("app")
    run_ddl(app, "CREATE TABLE public.later (a int)")
    tok = sign(key, kid, payload_of(claims(ops=["uninstall"], obj=["pgguard"])))
    with psycopg.connect(
        installed.server.dsn(installed.dbname, installed.owner, installed.owner_password),
        autocommit=True,
    ) as own:
        uninstall(own, token=tok)
        assert own.execute("SELECT to_regnamespace('pgguard')").fetchone() == (None,)
        for rel in (
            "public.tenants",
            "public.orders",
            "billing.invoices",
            "public.later",
            "public.big_orders",
        ):
            assert owner_of(own, rel) == installed.owner, rel
        expected_public = "pg_database_owner" if installed.server.major >= 15 else installed.owner
        assert own.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
        ).fetchone() == (expected_public,)
        assert own.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'pgguard_truncate_guard'"
        ).fetchone() == (0,)
        assert own.execute("SELECT count(*) FROM public.orders").fetchone() == (2,)
        own.execute("DROP TABLE public.later")  # the owner's own table again
    # the app keeps its data privileges
    set_token(app, "")
    assert app.execute("SELECT count(*) FROM public.tenants").fetchone() == (5,)
