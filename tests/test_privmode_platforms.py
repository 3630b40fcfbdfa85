"""Privilege mode on the platforms' role layouts: the capability probe and mode choice, a
Heroku-Standard-like credential without CREATEROLE, and Heroku Essential (one credential)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from privhelp import error_of, guard_enabled, make_platform, owner_of
from psycopg import sql

from pgguard.errors import PrivilegeError, UsageError
from pgguard.health import status
from pgguard.installer import install
from pgguard.privmode import probe


def test_probe_and_automatic_mode(pg_server: Any, make_db: Any) -> None:
    p = make_platform(pg_server, make_db)
    try:
        own = p.connect("owner")
        roles_before = own.execute("SELECT count(*) FROM pg_roles").fetchone()
        caps = probe(own)
        assert caps.mode == "privileges" and not caps.event_triggers and caps.createrole
        assert caps.owns_database and caps.owner_role_exists and caps.owner_admin
        assert not caps.blocked_schemas
        assert not caps.missing_for_privileges(app_role_exists=False)
        # the probe changes nothing
        assert own.execute("SELECT count(*) FROM pg_roles").fetchone() == roles_before
        assert own.execute("SELECT to_regnamespace('pgguard')").fetchone() == (None,)
        with pytest.raises(UsageError, match="--app-role"):
            install(own)
        report = install(own, app_role=p.app)  # no --mode: privileges, as events are forbidden
        assert report.mode == "privileges"
        with psycopg.connect(pg_server.admin_dsn(p.dbname), autocommit=True) as su:
            assert probe(su).mode == "event-triggers"
            with pytest.raises(UsageError, match="installed here in privileges mode"):
                install(su, mode="event-triggers")
    finally:
        p.close()


@pytest.mark.parametrize("flavour", ["heroku_standard"])
def test_heroku_standard_like(pg_server: Any, make_db: Any, flavour: str) -> None:
    """No CREATEROLE; pgguard_owner, pgguard_auditor and the app role are credentials made
    outside SQL; the default credential holds ADMIN on them."""
    p = make_platform(pg_server, make_db, heroku=True)
    try:
        own = p.connect("owner")
        assert not probe(own).createrole
        report = p.install(owner_role="pgguard_owner")
        assert report.mode == "privileges" and report.app_password is None
        assert owner_of(own, "public.tenants") == "pgguard_owner"
        assert guard_enabled(own, "public.orders") == "A"
        member = own.execute(
            "SELECT pg_has_role(current_user, 'pgguard_owner', 'USAGE')"
        ).fetchone()
        # PostgreSQL 16+: ADMIN without membership, given up after install. 15 and older have
        # no ADMIN without membership: the platform's grant keeps the credential a member
        assert member == ((False,) if pg_server.major >= 16 else (True,))
        app = p.connect("app")
        e = error_of(app, "DROP TABLE public.orders CASCADE")
        assert e.sqlstate == "42501"
        e = error_of(app, "TRUNCATE public.orders")
        assert e.sqlstate == "PGG01"
        assert status(own).healthy
        # the owner role is chosen once: another one needs an uninstall first
        with pytest.raises(UsageError, match="installed here with owner role pgguard_owner"):
            p.install(owner_role="heroku_cred_7")
    finally:
        p.close()


def test_heroku_essential_cannot_install(pg_server: Any, make_db: Any) -> None:
    """One credential, owner of everything, no CREATEROLE, no ADMIN on anything: no second
    role to own the tables, so privilege mode refuses and says why - nothing changes."""
    p = make_platform(pg_server, make_db, heroku=True)
    try:
        with pg_server.connect() as su:
            su.execute(sql.SQL("REVOKE pgguard_owner FROM {}").format(sql.Identifier(p.owner)))
        own = p.connect("owner")
        with pytest.raises(PrivilegeError, match="can neither become nor grant"):
            install(own, mode="privileges", app_role=p.app)
        assert own.execute("SELECT to_regnamespace('pgguard')").fetchone() == (None,)
        assert owner_of(own, "public.tenants") == p.owner
    finally:
        p.close()


def test_cli_install_prints_the_password_once(pg_server: Any, make_db: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    p = make_platform(pg_server, make_db)
    try:
        dsn = pg_server.dsn(p.dbname, p.owner, p.owner_password)
        cmd = [sys.executable, "-m", "pgguard", "install", "--dsn", dsn]
        args = ["--mode", "privileges", "--app-role", p.app]
        res = subprocess.run(
            [*cmd, *args, "--json"], capture_output=True, text=True, env=os.environ, timeout=120
        )
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["mode"] == "privileges" and out["app_role"] == p.app
        assert out["app_password"]
        with psycopg.connect(pg_server.dsn(p.dbname, p.app, out["app_password"])) as app:
            assert app.execute("SELECT count(*) FROM public.tenants").fetchone() == (5,)
        res = subprocess.run(
            [*cmd, *args], capture_output=True, text=True, env=os.environ, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout == "" and "nothing to do" in res.stderr
        res = subprocess.run(
            [sys.executable, "-m", "pgguard", "status", "--json", "--dsn", dsn],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["mode"] == "privileges"
    finally:
        p.close()
