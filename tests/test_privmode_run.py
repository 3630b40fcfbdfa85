"""`pgguard run -f migration.sql` in privilege mode, as the app role (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from guardhelp import claims, payload_of, private_key, register_key, sign
from privhelp import Platform, make_platform, owner_of

from pgguard.runner import ScriptError, plan


@pytest.fixture
def platform(pg_server: Any, make_db: Any) -> Iterator[Platform]:
    p = make_platform(pg_server, make_db)
    p.install()
    yield p
    p.close()


def pgguard(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgguard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


ADDITIVE = """\
BEGIN;
-- a comment; with a semicolon
CREATE TABLE public.products (id serial PRIMARY KEY, name text DEFAULT ';');
ALTER TABLE public.tenants ADD COLUMN plan text;
CREATE INDEX products_name ON public.products (name);
SET lock_timeout = '5s';
INSERT INTO public.products (name) VALUES ('a'), ('b');
CREATE FUNCTION public.label(t text) RETURNS text LANGUAGE sql AS $$ SELECT t || ';' $$;
COMMIT;
"""


def test_run_applies_additive_script(platform: Platform, tmp_path: Path) -> None:
    script = tmp_path / "0001.sql"
    script.write_text(ADDITIVE)
    dsn = platform.server.dsn(platform.dbname, platform.app, platform.app_password)
    proc = pgguard("run", "--dsn", dsn, "-f", str(script), "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"through_executor": 4' in proc.stdout and '"direct": 2' in proc.stdout
    app = platform.connect("app")
    assert owner_of(app, "public.products") == "pgguard_owner"
    assert app.execute("SELECT count(*) FROM public.products").fetchone() == (2,)


def test_run_refuses_a_drop_then_applies_it_with_a_token(
    platform: Platform, tmp_path: Path
) -> None:
    script = tmp_path / "0002.sql"
    script.write_text(
        "CREATE TABLE public.extra (a int);\n\nALTER TABLE public.tenants DROP COLUMN legacy;\n"
    )
    dsn = platform.server.dsn(platform.dbname, platform.app, platform.app_password)
    proc = pgguard("run", "--dsn", dsn, "-f", str(script))
    assert proc.returncode == 1
    assert 'line 3: pgguard: refusing to drop column "public.tenants.legacy"' in proc.stderr
    assert "pgguard allow --op drop_column --object public.tenants.legacy" in proc.stderr
    app = platform.connect("app")
    # one transaction: the CREATE before the refused statement is undone too
    assert app.execute("SELECT to_regclass('public.extra')").fetchone() == (None,)
    kid = register_key(platform.admin(), private_key(0))
    tok = sign(
        private_key(0),
        kid,
        payload_of(claims(ops=["drop_column"], obj=["public.tenants.legacy"])),
    )
    proc = pgguard("run", "--dsn", dsn, "-f", str(script), PGOPTIONS=f"-c pgguard.token={tok}")
    assert proc.returncode == 0, proc.stderr
    assert app.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'tenants'"
        " AND column_name = 'legacy'"
    ).fetchone() == (0,)


def test_run_explains_what_cannot_run_in_a_function(platform: Platform, tmp_path: Path) -> None:
    script = tmp_path / "0003.sql"
    script.write_text(
        "CREATE TABLE public.x (a int);\nCREATE INDEX CONCURRENTLY xi ON public.x (a);\n"
        "VACUUM public.x;\nDO $$ BEGIN END $$;\n"
    )
    dsn = platform.server.dsn(platform.dbname, platform.app, platform.app_password)
    proc = pgguard("run", "--dsn", dsn, "-f", str(script))
    assert proc.returncode == 2
    assert "line 2: CREATE INDEX CONCURRENTLY cannot run inside a function" in proc.stderr
    assert "line 3: VACUUM/ANALYZE cannot run inside a function" in proc.stderr
    assert "line 4: DO is not a schema change" in proc.stderr
    assert "nothing was run" in proc.stderr
    app = platform.connect("app")
    assert app.execute("SELECT to_regclass('public.x')").fetchone() == (None,)


def test_plan_routes_statements() -> None:
    routes = plan("SELECT 1; CREATE TABLE t (a int); BEGIN; TRUNCATE t; COMMIT")
    assert [r for _, r in routes] == ["direct", "executor", "skip", "direct", "skip"]
    with pytest.raises(ScriptError, match="line 1: savepoints"):
        plan("SAVEPOINT a")


def test_run_begin_atomic_function(platform: Platform, tmp_path: Path) -> None:
    """pglast splits the script; the BEGIN ATOMIC body reaches the executor as one statement."""
    script = tmp_path / "0002.sql"
    script.write_text(
        "CREATE FUNCTION public.double(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN x IS NULL THEN 0 ELSE x * 2 END;\nEND;\n"
        "CREATE TABLE public.after_it (a int);\n"
    )
    dsn = platform.server.dsn(platform.dbname, platform.app, platform.app_password)
    proc = pgguard("run", "--dsn", dsn, "-f", str(script))
    assert proc.returncode == 0, proc.stderr
    app = platform.connect("app")
    assert app.execute("SELECT public.double(21)").fetchone() == (42,)
    assert owner_of(app, "public.after_it") == "pgguard_owner"
