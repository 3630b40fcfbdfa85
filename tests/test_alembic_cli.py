"""The README's Alembic line in the env.py that `alembic init` generates, run with the real
`alembic` command as the app role that owns its tables: refused without a token, applied with
one — from `$PGGUARD_TOKEN` alone (the hook) and through `pgguard allow -- alembic …`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tokenhelp import approver_key, clean_env, register

from pgguard import keys
from pgguard.token import issue_token

BIN = Path(sys.executable).parent
HOOK = "pgguard.sqlalchemy.apply_env_token(connection)"

R1 = '''
"""create t"""
from alembic import op
revision = "r1"
down_revision = None

def upgrade():
    op.execute("CREATE TABLE t (id int PRIMARY KEY, c text)")
    op.execute("INSERT INTO t VALUES (1, 'kept')")

def downgrade():
    op.execute("DROP TABLE t")
'''
R2 = '''
"""drop t.c"""
from alembic import op
revision = "r2"
down_revision = "r1"

def upgrade():
    op.drop_column("t", "c")

def downgrade():
    op.execute("ALTER TABLE t ADD COLUMN c text")
'''


def make_project(tmp: Path, url: str, position: str) -> Path:
    proj = tmp / "proj"
    proj.mkdir()
    subprocess.run(
        [str(BIN / "alembic"), "init", "alembic"], cwd=proj, check=True, capture_output=True
    )
    ini = proj / "alembic.ini"
    ini.write_text(ini.read_text().replace("driver://user:pass@localhost/dbname", url))
    env = proj / "alembic" / "env.py"
    text = env.read_text()
    anchor = {
        "after_connect": "    with connectable.connect() as connection:\n",
        "in_transaction": "        with context.begin_transaction():\n",
    }[position]
    indent = " " * (len(anchor) - len(anchor.lstrip()) + 4)
    assert text.count(anchor) == 1, f"alembic's template changed: {anchor!r} not found once"
    text = text.replace(anchor, anchor + f"{indent}{HOOK}\n")
    env.write_text("import pgguard.sqlalchemy\n" + text)
    versions = proj / "alembic" / "versions"
    (versions / "r1.py").write_text(R1)
    (versions / "r2.py").write_text(R2)
    return proj


def columns(admin: psycopg.Connection[Any]) -> list[str]:
    rows = admin.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public.t'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("position", ["after_connect", "in_transaction"])
def test_alembic_env_hook_applies_an_approved_migration(
    position: str, admin: psycopg.Connection[Any], app_role: Any, tmp_path: Path
) -> None:
    from pgguard.installer import install

    install(admin)
    key = approver_key("alembic")
    register(admin, key)
    params = psycopg.conninfo.conninfo_to_dict(app_role.dsn)
    url = (
        f"postgresql+psycopg://{params['user']}:{params['password']}@{params['host']}:"
        f"{params['port']}/{params['dbname']}"
    )
    proj = make_project(tmp_path, url, position)
    alembic = [str(BIN / "alembic")]

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=proj, env=clean_env(env), capture_output=True, text=True, timeout=120
        )

    assert run(*alembic, "upgrade", "r1").returncode == 0
    refused = run(*alembic, "upgrade", "head")
    assert refused.returncode != 0 and "pgguard: refusing to drop column" in refused.stderr
    assert columns(admin) == ["id", "c"]

    # the hook alone: the token in $PGGUARD_TOKEN, nothing in PGOPTIONS
    token = issue_token(key, ops=["drop_column"], objects=["public.t.c"], ttl=600)
    done = run(*alembic, "upgrade", "head", env={"PGGUARD_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert columns(admin) == ["id"]
    assert admin.execute("SELECT version_num FROM alembic_version").fetchone() == ("r2",)
    assert admin.execute("SELECT id FROM t").fetchall() == [(1,)]

    # and end to end, as the README shows it: pgguard allow -- alembic downgrade/upgrade
    assert run(*alembic, "downgrade", "r1").returncode == 0
    admin.execute("UPDATE t SET c = 'again'")
    key_file = tmp_path / "approver.pem"
    keys.write_private_key(key_file, key)
    allowed = run(
        str(BIN / "pgguard"),
        "allow",
        "--key-file",
        str(key_file),
        "--op",
        "drop_column",
        "--object",
        "public.t.c",
        "--",
        *alembic,
        "upgrade",
        "head",
        env={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert allowed.returncode == 0, allowed.stderr
    assert columns(admin) == ["id"]
    # no transaction was left behind: the server saw the migration commit
    assert admin.execute(
        "SELECT count(*) FROM pgguard.audit WHERE op = 'drop_column'"
    ).fetchone() == (2,)
