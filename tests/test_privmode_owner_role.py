"""Privilege mode with an owner role of any name (``--owner-role``), as on Heroku Standard: the
protected owner is a pre-made LOGIN credential the installing credential holds ADMIN on, and no
role called pgguard_owner is involved. Install, status, doctor, the executor and uninstall all
follow the recorded owner.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from guardhelp import claims, payload_of, private_key, register_key, sign
from privhelp import ddl_error, error_of, guard_enabled, make_platform, owner_of, run_ddl
from psycopg import sql

from pgguard.doctor import doctor
from pgguard.errors import UsageError
from pgguard.health import status
from pgguard.removal import uninstall


def test_owner_role_of_another_name(pg_server: Any, make_db: Any) -> None:
    p = make_platform(pg_server, make_db, heroku=True)
    cred, _ = pg_server.make_role("heroku_cred")  # a credential made outside SQL: LOGIN
    try:
        with pg_server.connect() as su:
            grant = "GRANT {} TO {} WITH " + (
                "ADMIN TRUE, INHERIT FALSE, SET FALSE" if pg_server.major >= 16 else "ADMIN OPTION"
            )
            su.execute(sql.SQL(grant).format(sql.Identifier(cred), sql.Identifier(p.owner)))
        report = p.install(owner_role=cred)
        assert report.mode == "privileges"
        own = p.connect("owner")
        for rel in ("public.tenants", "public.orders", "billing.invoices"):
            assert owner_of(own, rel) == cred
        assert own.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname IN ('pgguard',"
            " 'public', 'billing') GROUP BY 1"
        ).fetchall() == [(cred,)]
        assert own.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = to_regrole('pgguard_owner')"
            " AND relnamespace = 'pgguard'::regnamespace"
        ).fetchone() == (0,)
        st = status(own)
        assert st.healthy, st.problems

        # the executor runs as the credential and judges as before
        app = p.connect("app", autocommit=False)
        run_ddl(app, "CREATE TABLE public.items (id int PRIMARY KEY)")
        app.commit()
        assert owner_of(app, "public.items") == cred
        assert guard_enabled(app, "public.items") == "A"
        e = ddl_error(app, "DROP TABLE public.orders CASCADE")
        assert e.sqlstate == "PGG01" and 'drop table "public.orders"' in str(e)
        e = ddl_error(app, f'ALTER TABLE public.tenants OWNER TO "{p.app}"')
        assert e.sqlstate == "42501"  # the credential cannot become the app role
        e = error_of(app, "DROP TABLE public.orders")
        assert e.sqlstate == "42501"  # directly: not the owner
        app.rollback()

        # a path from the app role to the credential is found, under its own name
        with pg_server.connect() as su:
            su.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(cred), sql.Identifier(p.app))
            )
        st = status(own)
        assert any(f"path to {cred}" in x for x in st.problems), st.problems
        ids = {f.id: f.severity for f in doctor(own).findings}
        assert ids.get("privileges.app_takeover") == "high"
        with pg_server.connect() as su:
            su.execute(
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(cred), sql.Identifier(p.app))
            )

        # a second install is a no-op; another owner role needs an uninstall first
        assert p.install(owner_role=cred).action == "unchanged"
        with pytest.raises(UsageError, match=f"installed here with owner role {cred}"):
            p.install(owner_role="pgguard_owner")

        # uninstall gives everything back and leaves the credential alone
        admin = p.admin()
        key = private_key(0)
        kid = register_key(admin, key)
        tok = sign(key, kid, payload_of(claims(ops=["uninstall"], obj=["pgguard"])))
        with psycopg.connect(
            pg_server.dsn(p.dbname, p.owner, p.owner_password), autocommit=True
        ) as conn:
            done = uninstall(conn, token=tok)
            assert cred in done.roles_kept
            assert conn.execute("SELECT to_regnamespace('pgguard')").fetchone() == (None,)
            for rel in ("public.tenants", "billing.invoices", "public.items"):
                assert owner_of(conn, rel) == p.owner, rel
        with pg_server.connect() as su:
            assert su.execute("SELECT to_regrole(%s) IS NOT NULL", (cred,)).fetchone() == (True,)
    finally:
        p.close()
        pg_server.drop_role(cred)
