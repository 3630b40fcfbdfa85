"""Backups of a guarded database with the real pg_dump/pg_restore of each server version: the app
role's whole-database dump works, restores into a fresh database, and `pgguard restore` puts an
archive back into the guarded database exactly (with a token) or not at all (without)."""

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
from pgguard.health import status
from pgguard.installer import install

BIN = Path(sys.executable).parent
Conn = psycopg.Connection[Any]


def tool(pg_server: Any, name: str) -> str:
    if pg_server.cluster is None:
        pytest.skip("pg_dump of the server's own version is known only for local servers")
    return str(pg_server.cluster.binaries.bindir / name)


def state(conn: Conn) -> dict[str, Any]:
    """Rows, keys and guards of the app's tables: what a restore must keep or bring back."""
    return {
        "rows": conn.execute(
            "SELECT (SELECT count(*) FROM public.parent), (SELECT count(*) FROM public.child),"
            " (SELECT count(DISTINCT id) FROM public.child)"
        ).fetchone(),
        "constraints": conn.execute(
            "SELECT conrelid::regclass::text, contype FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall(),
        "guards": conn.execute(
            "SELECT tgrelid::regclass::text, tgenabled FROM pg_trigger"
            " WHERE tgname = 'pgguard_truncate_guard' ORDER BY 1"
        ).fetchall(),
    }


@pytest.fixture
def app_db(admin: Conn, app_role: Any) -> Any:
    """A guarded database (default install) whose app role owns two related tables: 30 rows."""
    install(admin)
    app = app_role.connect()
    app.execute(
        "CREATE TABLE parent (id int PRIMARY KEY, name text);"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);"
        "INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 10) g;"
        "INSERT INTO child SELECT g, 1 + g % 10 FROM generate_series(1, 20) g"
    )
    return app


def test_app_role_dumps_its_guarded_database_and_it_restores_fresh(
    pg_server: Any, app_db: Conn, admin: Conn, app_role: Any, make_db: Any, tmp_path: Path
) -> None:
    dump, plain = tmp_path / "app.dump", tmp_path / "app.sql"
    for args, out in ((["-Fc"], dump), ([], plain)):
        proc = subprocess.run(
            [tool(pg_server, "pg_dump"), *args, "-f", str(out), "-d", app_role.dsn],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    before = state(admin)

    fresh = make_db()
    proc = subprocess.run(
        [tool(pg_server, "pg_restore"), "-d", pg_server.admin_dsn(fresh), str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_server.admin_dsn(fresh), autocommit=True) as conn:
        assert state(conn) == before
        # the copy carries pgguard along and is guarded as the original was
        assert status(conn).healthy, status(conn).problems
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("DROP TABLE child")
        assert refused.value.sqlstate == "PGG01"


def run_restore(
    pg_server: Any, dsn: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pgguard"), "restore", "--dsn", dsn, "--pg-restore",
         tool(pg_server, "pg_restore"), *args],
        capture_output=True, text=True, env=clean_env(env), timeout=120,
    )  # fmt: skip


def test_pgguard_restore_is_all_or_nothing(
    pg_server: Any, app_db: Conn, admin: Conn, app_role: Any, tmp_path: Path
) -> None:
    dump = tmp_path / "app.dump"
    subprocess.run(
        [tool(pg_server, "pg_dump"), "-Fc", "-f", str(dump), "-d", app_role.dsn], check=True
    )
    at_dump = state(admin)
    app_db.execute("DELETE FROM child WHERE id > 15; UPDATE parent SET name = 'changed'")
    changed = state(admin)

    # without a token: the first DROP is refused and the one transaction undoes the rest
    refused = run_restore(pg_server, app_role.dsn, "--clean", "--if-exists", str(dump))
    assert refused.returncode == 1, refused.stderr
    assert "pgguard: refusing to drop table" in refused.stderr
    assert "nothing was restored" in refused.stderr
    assert state(admin) == changed

    # approved: exactly the archive, the guard on the recreated tables, the guard healthy
    key = approver_key("restore")
    register(admin, key)
    key_file = tmp_path / "approver.pem"
    keys.write_private_key(key_file, key)
    approved = subprocess.run(
        [str(BIN / "pgguard"), "allow", "--key-file", str(key_file), "--op", "drop_table",
         "--object", "public.*", "--once", "--", str(BIN / "pgguard"), "restore", "--dsn",
         app_role.dsn, "--pg-restore", tool(pg_server, "pg_restore"), "--clean", "--if-exists",
         str(dump)],
        capture_output=True, text=True, env=clean_env(
            {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}), timeout=120,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert state(admin) == at_dump
    assert admin.execute("SELECT name FROM parent WHERE id = 1").fetchone() == ("p1",)
    assert status(admin).healthy, status(admin).problems


def test_pgguard_restore_refuses_what_would_break_all_or_nothing(
    pg_server: Any, app_db: Conn, app_role: Any, tmp_path: Path
) -> None:
    for args in (["-j", "4"], ["--single-transaction"], ["-L", "x.list"], ["--file=out.sql"]):
        proc = run_restore(pg_server, app_role.dsn, *args, str(tmp_path / "x.dump"))
        assert proc.returncode == 2, (args, proc.stderr)
    plain = tmp_path / "app.sql"
    subprocess.run([tool(pg_server, "pg_dump"), "-f", str(plain), "-d", app_role.dsn], check=True)
    proc = run_restore(pg_server, app_role.dsn, str(plain))
    assert proc.returncode == 2 and "plain SQL dump" in proc.stderr
