"""Real Django and django-tenants (their documented layout) on a guarded database, as the app role
that owns its tables: a fresh database migrates, tenants are created, and a refused management
command shows pgguard's message, DETAIL and HINT (ENGINE "pgguard.django", under django-tenants
through ORIGINAL_BACKEND)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from tokenhelp import clean_env

from pgguard.installer import install

PROJECT = Path(__file__).parent / "data" / "djproj"
Conn = psycopg.Connection[Any]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "djproj"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def manage(project: Path, dsn: str, *args: str, engine: str | None = None) -> Any:
    env = {"PGGUARD_TEST_APP_DSN": dsn, "DJANGO_SETTINGS_MODULE": "settings"}
    if engine:
        env["DJANGO_ENGINE"] = engine
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=project, env=clean_env(env),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def owner_app(admin: Conn, make_app_role: Any) -> Any:
    """The app role owns the (guarded, default install) database's public schema, as on a
    platform where it created the database."""
    install(admin)
    role = make_app_role()
    admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role.name)))
    return role


def test_fresh_database_migrates_and_tenants_are_created(
    owner_app: Any, admin: Conn, project: Path
) -> None:
    done = manage(project, owner_app.dsn, "migrate_schemas", "--shared", "--noinput")
    assert done.returncode == 0, done.stderr
    # contenttypes 0002 dropped a column of a table 0001 created in an earlier transaction
    assert admin.execute(
        "SELECT op, object, reason FROM pgguard.audit WHERE reason = 'empty'"
    ).fetchall() == [("drop_column", "public.django_content_type.name", "empty")]
    script = (
        "from customers.models import Client, Domain\n"
        "Client(schema_name='public', name='public').save()\n"
        "for n in ('t1', 't2'):\n"
        "    c = Client(schema_name=n, name=n); c.save()\n"
        "    Domain(domain=n + '.example.test', tenant=c, is_primary=True).save()\n"
    )
    created = manage(project, owner_app.dsn, "shell", "-c", script)
    assert created.returncode == 0, created.stderr
    for schema in ("t1", "t2"):
        cols = admin.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'django_content_type'",
            (schema,),
        ).fetchone()
        assert cols == (3,)  # id, app_label, model: 0002 ran in the tenant too


def test_refused_flush_shows_pgguards_message_detail_and_hint(
    owner_app: Any, admin: Conn, project: Path
) -> None:
    engine = "pgguard.django"
    assert manage(project, owner_app.dsn, "migrate", "--noinput", engine=engine).returncode == 0
    made = manage(
        project, owner_app.dsn, "shell", "-c",
        "from django.contrib.auth.models import Group; Group.objects.create(name='admins')",
        engine=engine,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    flushed = manage(project, owner_app.dsn, "flush", "--noinput", engine=engine)
    assert flushed.returncode != 0
    assert "pgguard: refusing to truncate table" in flushed.stderr
    assert "DETAIL:  no override token" in flushed.stderr or "DETAIL:" in flushed.stderr
    assert "HINT:  to approve it, run: pgguard allow --op truncate" in flushed.stderr
    assert "couldn't be flushed" in flushed.stderr  # Django's own message still follows
    assert admin.execute("SELECT name FROM auth_group").fetchall() == [("admins",)]
    # the same under django-tenants, whose backend builds on ORIGINAL_BACKEND = pgguard.django
    tenants = manage(project, owner_app.dsn, "flush", "--noinput")
    assert "HINT:  to approve it, run: pgguard allow" in tenants.stderr
    assert admin.execute("SELECT count(*) FROM auth_group").fetchone() == (1,)
