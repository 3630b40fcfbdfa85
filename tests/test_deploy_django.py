"""The deploy loop with a real Django project: `pgguard deploy -- python manage.py migrate`.

A small project is written into a temporary directory: app ``tenants`` with ``Tenant`` (5 rows,
a ``legacy_flag`` column) and ``Member`` (2 per tenant, ``on_delete=CASCADE``). Each test adds
one migration and runs ``manage.py migrate`` as users do, through the CLI:

- a ``RunPython`` that deletes every tenant: refused by the server with row-loss limits on;
  without them, ``deploy`` exits 1 and reports the loss and the restore point;
- an approved ``RemoveField``: ``deploy`` exits 0 and reports the column as approved;
- an additive ``AddField``: ``deploy`` exits 0 with an empty loss report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg.conninfo import conninfo_to_dict
from tokenhelp import Conn, approver_key, clean_env, count, register

from pgguard import keys
from pgguard.rowlimits import protect_rows

PY = sys.executable

SETTINGS = """
import os
SECRET_KEY = "test-only"
INSTALLED_APPS = ["tenants"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "site_urls"
# no OPTIONS: a token in PGOPTIONS (pgguard allow -- ...) reaches libpq untouched
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ["T_DB"], "USER": os.environ["T_USER"],
    "HOST": os.environ["T_HOST"], "PORT": os.environ["T_PORT"],
}}
"""

MODELS = """
from django.db import models

class Tenant(models.Model):
    name = models.TextField()
    legacy_flag = models.BooleanField(default=False)

class Member(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    name = models.TextField()
"""

INITIAL = """
from django.db import migrations, models

def seed(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    Member = apps.get_model("tenants", "Member")
    for i in range(5):
        t = Tenant.objects.create(name=f"t{i}")
        Member.objects.create(tenant=t, name="a")
        Member.objects.create(tenant=t, name="b")

class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Tenant", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.TextField()),
            ("legacy_flag", models.BooleanField(default=False)),
        ]),
        migrations.CreateModel("Member", [
            ("id", models.BigAutoField(primary_key=True)),
            ("tenant", models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)),
            ("name", models.TextField()),
        ]),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
"""

WIPE = """
from django.db import migrations

def wipe(apps, schema_editor):
    apps.get_model("tenants", "Tenant").objects.all().delete()

class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(wipe, migrations.RunPython.noop)]
"""

REMOVE_FIELD = """
from django.db import migrations

class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RemoveField("tenant", "legacy_flag")]
"""

ADD_FIELD = """
from django.db import migrations, models

class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.AddField("tenant", "plan", models.TextField(null=True))]
"""


URLS = """
from django.urls import path
from pgguard.django.health import health
urlpatterns = [path("health/", health)]
"""

PROBE = """
import json, django
django.setup()
from django.test import Client
r = Client().get("/health/")
print(json.dumps({"status": r.status_code, "body": json.loads(r.content)}))
"""


@pytest.fixture(scope="module")
def approver() -> rsa.RSAPrivateKey:
    return approver_key("django-deploy")


class Project:
    """The Django project on disk, and how to run it against the test database."""

    def __init__(self, root: Path, dsn: str) -> None:
        self.root = root
        self.dsn = dsn
        params = conninfo_to_dict(dsn)
        self.env = clean_env(
            {
                "T_DB": str(params["dbname"]),
                "T_USER": str(params["user"]),
                "T_HOST": str(params["host"]),
                "T_PORT": str(params["port"]),
                "DJANGO_SETTINGS_MODULE": "site_settings",
                "PYTHONPATH": str(root),
                "PGGUARD_DSN": dsn,
            }
        )
        (root / "tenants" / "migrations").mkdir(parents=True)
        (root / "tenants" / "__init__.py").write_text("")
        (root / "tenants" / "migrations" / "__init__.py").write_text("")
        (root / "tenants" / "models.py").write_text(MODELS)
        (root / "site_settings.py").write_text(SETTINGS)
        (root / "site_urls.py").write_text(URLS)
        (root / "probe.py").write_text(PROBE)
        (root / "manage.py").write_text(
            "import sys\nfrom django.core.management import execute_from_command_line\n"
            "execute_from_command_line(sys.argv)\n"
        )
        self.add_migration("0001_initial", INITIAL)

    def add_migration(self, name: str, text: str) -> None:
        (self.root / "tenants" / "migrations" / f"{name}.py").write_text(textwrap.dedent(text))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def migrate(self) -> subprocess.CompletedProcess[str]:
        return self.run(PY, "manage.py", "migrate", "--no-input")

    def deploy(self, *pre: str, json_out: bool = False) -> subprocess.CompletedProcess[str]:
        flags = ["--json"] if json_out else []
        return self.run(*pre, PY, "-m", "pgguard", "deploy", *flags, "--", PY, "manage.py",
                        "migrate", "--no-input")  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, guarded_db_dsn: str, guarded_admin: Conn, approver: Any) -> Project:
    register(guarded_admin, approver)
    p = Project(tmp_path / "site", guarded_db_dsn)
    first = p.migrate()
    assert first.returncode == 0, first.stderr
    assert count(guarded_admin, "SELECT count(*) FROM tenants_tenant") == 5
    return p


def test_runpython_wipe_refused_with_row_limits(project: Project, guarded_admin: Conn) -> None:
    protect_rows(guarded_admin, ["public.tenants_tenant"])
    project.add_migration("0002_wipe", WIPE)
    proc = project.deploy()
    assert proc.returncode != 0
    assert 'pgguard: refusing to delete 5 rows of "public.tenants_tenant"' in proc.stderr
    assert "pgguard allow --op delete_rows --object public.tenants_tenant" in proc.stderr
    assert "nothing lost" in proc.stderr  # the migration rolled back: the report says so
    assert count(guarded_admin, "SELECT count(*) FROM tenants_tenant") == 5
    assert count(guarded_admin, "SELECT count(*) FROM tenants_member") == 10


def test_runpython_wipe_reported_as_loss(project: Project, guarded_admin: Conn) -> None:
    project.add_migration("0002_wipe", WIPE)
    proc = project.deploy(json_out=True)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["command_exit"] == 0 and data["outcome"] == "loss"
    fell = {r["table"]: (r["before"], r["after"], r["approved"]) for r in data["rows_fell"]}
    assert fell == {
        "public.tenants_member": (10, 0, False),
        "public.tenants_tenant": (5, 0, False),
    }
    assert data["tables_gone"] == [] and data["columns_gone"] == []
    rp = data["restore_point"]
    assert rp["lsn"] and rp["txid"] and rp["time"]
    assert f"recovery_target_lsn = '{rp['lsn']}'" in rp["platforms"][0]
    # in words too, for the person watching the deploy
    again = project.deploy()  # nothing left to lose: a second deploy reports nothing
    assert again.returncode == 0, again.stderr
    assert "nothing lost" in again.stderr


def test_approved_remove_field(project: Project, tmp_path: Path, approver: Any) -> None:
    key_file = keys.write_private_key(tmp_path / "approver.pem", approver)
    project.add_migration("0002_remove_legacy", REMOVE_FIELD)
    allow = [PY, "-m", "pgguard", "allow", "--key-file", str(key_file), "--op", "drop_column",
             "--object", "public.tenants_tenant.legacy_flag", "--reason", "JIRA-7",
             "--"]  # fmt: skip
    proc = project.deploy(*allow, json_out=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(c["object"], c["approved"]) for c in data["columns_gone"]] == [
        ("public.tenants_tenant.legacy_flag", True)
    ]
    assert data["columns_gone"][0]["approval"]["why"] == "JIRA-7"
    assert data["rows_fell"] == [] and data["unapproved"] == []


def test_additive_deploy_reports_nothing_lost(project: Project) -> None:
    project.add_migration("0002_add_plan", ADD_FIELD)
    proc = project.deploy()
    assert proc.returncode == 0, proc.stderr
    assert "Applying tenants.0002_add_plan... OK" in proc.stdout
    assert "nothing lost" in proc.stderr
    assert "restore point" in proc.stderr  # printed before the command ran


def test_health_view(project: Project, guarded_admin: Conn) -> None:
    def probe() -> tuple[int, dict[str, Any]]:
        proc = project.run(PY, "probe.py")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        return data["status"], data["body"]

    code, body = probe()
    assert code == 200, body
    assert body["healthy"] and body["unapplied_migrations"] == [] and body["error"] is None
    assert body["guard"]["healthy"] and body["guard"]["problems"] == []

    project.add_migration("0002_add_plan", ADD_FIELD)
    code, body = probe()
    assert code == 503
    assert body["unapplied_migrations"] == ["tenants.0002_add_plan"]
    assert body["guard"]["healthy"]

    assert project.migrate().returncode == 0
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_sql_drop DISABLE")
    code, body = probe()
    assert code == 503 and body["unapplied_migrations"] == []
    assert body["guard"]["problems"] == [
        "event trigger pgguard_sql_drop is disabled, not enabled always"
    ]
    guarded_admin.execute("ALTER EVENT TRIGGER pgguard_sql_drop ENABLE ALWAYS")
    assert probe()[0] == 200
