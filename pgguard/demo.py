"""`pgguard demo`: the whole story, end to end, on a scratch database.

Without a DSN it starts a throwaway local PostgreSQL (the same starter the tests use) and
removes it afterwards. With a DSN it creates a scratch database on that server (the role needs
CREATEDB) and drops it afterwards: the demo never touches an existing database.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import keys as keymod
from .connect import connect, resolve_dsn
from .errors import GuardRefused, PgguardError
from .health import status
from .installer import install
from .token import issue_token

Say = Callable[[str], None]


@contextlib.contextmanager
def _server(dsn: str | None, pg_version: int | None, say: Say) -> Iterator[tuple[str, Any]]:
    """(admin DSN, cluster or None) of the server the demo runs on."""
    if resolve_dsn(dsn):
        yield resolve_dsn(dsn), None
        return
    from .localpg import PINNED_VERSIONS, LocalCluster, bundled_binaries, system_binaries

    # prefer a server already on the machine; else fetch the newest pinned one
    newest_first = sorted(PINNED_VERSIONS, reverse=True)
    present = [m for m in newest_first if bundled_binaries(m) or system_binaries(m)]
    major = pg_version or (present[0] if present else newest_first[0])
    say(f"[bold]starting a throwaway PostgreSQL {major}[/] (no --dsn given)")
    with LocalCluster(major) as cluster:
        yield cluster.dsn(), cluster


def run_demo(dsn: str | None, *, pg_version: int | None = None, say: Say = print) -> int:
    """Run the demo; returns the exit code (0 when every step behaved as shown)."""
    failures = 0
    with _server(dsn, pg_version, say) as (admin_dsn, cluster):
        dbname = f"pgguard_demo_{uuid.uuid4().hex[:8]}"
        app = f"pgguard_demo_app_{uuid.uuid4().hex[:6]}"
        with connect(admin_dsn) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'demo'").format(sql.Identifier(app))
            )
        params = conninfo_to_dict(admin_dsn)
        params["dbname"] = dbname
        db_dsn = make_conninfo("", **params)
        app_params = dict(params, user=app, password="demo")
        app_dsn = make_conninfo("", **app_params)
        try:
            failures = _story(db_dsn, app_dsn, app, say, cluster)
        finally:
            with connect(admin_dsn) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(app)))
            say(f"dropped the scratch database {dbname}")
    say("[green]demo finished[/]" if not failures else f"[red]{failures} step(s) misbehaved[/]")
    return 0 if not failures else 1


def _story(db_dsn: str, app_dsn: str, app: str, say: Say, cluster: Any) -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        key_path = Path(tmp) / "approver.pem"
        key = keymod.generate_private_key()
        keymod.write_private_key(key_path, key)
        say(f"\n[bold]1. an approver key[/] (kid {keymod.kid(key)}) stays with the approver")

        with connect(db_dsn) as admin:
            admin.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(app))
            )
        with connect(app_dsn) as conn:
            conn.execute(
                "CREATE TABLE tenants (id int PRIMARY KEY, name text, legacy_flag bool);"
                "INSERT INTO tenants SELECT g, 'tenant ' || g, false FROM generate_series(1, 3) g;"
                "CREATE TABLE orders (id int PRIMARY KEY, tenant_id int REFERENCES tenants);"
                "INSERT INTO orders SELECT g, 1 + g % 3 FROM generate_series(1, 10) g"
            )
        say("   the app role owns tables tenants (3 rows) and orders (10 rows)")

        say("\n[bold]2. pgguard install[/] (as a superuser, once per database)")
        with connect(db_dsn) as admin:
            report = install(admin, public_keys=[keymod.public_numbers_for_db(key.public_key())])
        say(
            f"   installed {report.package_version}: {report.tables_attached} tables guarded, "
            f"key {report.keys_added[0]} registered"
        )

        say("\n[bold]3. the app role tries the usual accidents[/] — the server refuses each")
        with connect(app_dsn) as conn:
            for stmt in (
                "DROP TABLE tenants CASCADE",
                "TRUNCATE tenants, orders",
                "ALTER TABLE tenants DROP COLUMN legacy_flag",
                f"DROP OWNED BY {app}",
                "ALTER TABLE tenants DISABLE TRIGGER USER",
                "DROP TRIGGER pgguard_truncate_guard ON orders",
            ):
                failures += not _expect_refusal(conn, stmt, say)
            conn.execute("SET pgguard.token = 'pgg1.0000000000000000.e30.AAAA'")
            say("   a forged token does not help:")
            failures += not _expect_refusal(conn, "DROP TABLE orders", say)
            conn.execute("RESET pgguard.token")
            n = conn.execute("SELECT count(*) FROM tenants").fetchone()
            say(f"   tenants still holds {n[0] if n else '?'} rows")

        say(
            "\n[bold]4. an approved change[/]: pgguard allow --op drop_column "
            "--object public.tenants.legacy_flag --once --ttl 10m"
        )
        token = issue_token(
            key,
            ttl=600,
            ops=["drop_column"],
            objects=["public.tenants.legacy_flag"],
            once=True,
            reason="demo: remove the legacy flag",
        )
        with connect(app_dsn) as conn:
            conn.execute(sql.SQL("SET pgguard.token = {}").format(sql.Literal(token)))
            conn.execute("ALTER TABLE tenants DROP COLUMN legacy_flag")
            say("   ALTER TABLE tenants DROP COLUMN legacy_flag  → [green]done[/]")
            say("   the same token again, for something else:")
            failures += not _expect_refusal(conn, "DROP TABLE orders", say)
            conn.execute("ALTER TABLE tenants ADD COLUMN legacy_flag bool")
            say("   and replayed for the very same change:")
            failures += not _expect_refusal(
                conn, "ALTER TABLE tenants DROP COLUMN legacy_flag", say
            )

        say("\n[bold]5. pgguard status[/]")
        with connect(db_dsn) as admin:
            st = status(admin)
            say(
                f"   {'healthy' if st.healthy else 'DEGRADED'}: {st.tables_protected} tables "
                f"protected, event triggers "
                f"{', '.join(f'{t.name}={t.enabled}' for t in st.event_triggers)}"
            )
            failures += not st.healthy
            say("\n[bold]6. the audit trail[/]")
            for row in admin.execute(
                "SELECT op, object, session_user_name, sub, why FROM pgguard.audit ORDER BY id"
            ):
                say(f"   override: {row[0]} {row[1]} by {row[2]}, approved by {row[3]}: {row[4]}")
        if cluster is not None:
            from .audit import parse_refusals

            refusals = parse_refusals(cluster.read_log().splitlines())
            say(f"   refusals recorded in the server log: {len(refusals)}")
    return failures


def _expect_refusal(conn: psycopg.Connection[Any], stmt: str, say: Say) -> bool:
    try:
        conn.execute(stmt)
    except psycopg.Error as e:
        refused = GuardRefused.from_diag(e)
        if refused is None:
            say(f"   {stmt}\n     [yellow]failed otherwise:[/] {e.diag.message_primary}")
            return False
        say(f"   {stmt}\n     [red]ERROR:[/]  {refused.message}\n     DETAIL: {refused.detail}")
        if refused.hint:
            say(f"     HINT:   {refused.hint}")
        return True
    except PgguardError as e:  # pragma: no cover
        say(f"   {stmt}: {e}")
        return False
    say(f"   {stmt}\n     [yellow]was NOT refused[/]")
    return False
