"""The test harness itself: real servers start, report their major, isolate, and clean up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from pgguard import localpg

if TYPE_CHECKING:  # for annotations only: importing conftest at run time depends on import mode
    from conftest import AppRole, PgServer

MAJORS = {int(v) for v in os.environ.get("PGGUARD_PG_VERSIONS", "15").split(",") if v.strip()}


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its new parent) is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _local(pg_server: PgServer) -> localpg.LocalCluster:
    if pg_server.cluster is None:
        pytest.skip("needs a LocalCluster, not an external server")
    return pg_server.cluster


def test_server_reports_its_major(pg_server: PgServer) -> None:
    with psycopg.connect(pg_server.admin_dsn()) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    assert num // 10000 == pg_server.major
    if pg_server.label != "external":
        assert pg_server.label == f"pg{num // 10000}"  # the major we asked for, not another


def test_cluster_runs_unprivileged_and_logs(pg_server: PgServer) -> None:
    cluster = _local(pg_server)
    uid = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{cluster.pid}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
    )
    assert uid != 0  # initdb/postgres refuse root; we switched user
    assert uid == os.stat(cluster.directory / "data").st_uid
    offset = cluster.log_offset()
    with pytest.raises(psycopg.errors.RaiseException):
        with psycopg.connect(pg_server.admin_dsn()) as conn:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'pgg-harness-marker'; END $$")
    deadline = time.monotonic() + 5
    while "pgg-harness-marker" not in cluster.read_log(offset) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ERROR:  pgg-harness-marker" in cluster.read_log(offset)
    assert pg_server.log_path == cluster.log_path


def test_make_db_gives_isolated_databases(pg_server: PgServer, make_db: Callable[..., str]) -> None:
    first, second = make_db(), make_db()
    assert first != second
    with pg_server.connect(first) as conn:
        conn.execute("CREATE TABLE only_here (id int)")
    with pg_server.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
    copy = make_db(template=first)  # nobody is connected to `first` any more
    with pg_server.connect(copy) as conn:
        assert conn.execute("SELECT to_regclass('only_here')::text").fetchone() == ("only_here",)


def test_db_fixtures_point_at_one_fresh_database(db_name: str, db_dsn: str, admin: Any) -> None:
    assert admin.autocommit
    assert admin.execute("SELECT current_database()").fetchone() == (db_name,)
    assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (db_name,)
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchone()
        assert tables == (0,)


def test_app_role_is_a_plain_owner(app_role: AppRole, admin: Any, db_name: str) -> None:
    assert app_role.dbname == db_name
    conn = app_role.connect()
    row = conn.execute(
        "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (app_role.name, False, False)
    conn.execute("CREATE TABLE public.mine (id int)")
    app_role.create_schema("app")
    conn.execute("CREATE TABLE app.t (id int)")
    owner = admin.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'app'")
    assert owner.fetchone() == (app_role.name,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE ROLE should_not_exist")


def test_roles_and_databases_are_dropped(pg_server: PgServer) -> None:
    name, password = pg_server.make_role("drop")
    db = pg_server.create_database()
    with pg_server.connect(db) as conn:
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{name}"')
    with psycopg.connect(pg_server.dsn(db, name, password), autocommit=True) as conn:
        conn.execute("CREATE TABLE owned (id int)")
        # the order the janitor uses: database (forcing out this session), then role
        pg_server.drop_database(db)
    pg_server.drop_role(name)
    with pg_server.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None
        )


def test_stop_removes_the_cluster(pg_server: PgServer) -> None:
    cluster = localpg.LocalCluster(_local(pg_server).major)
    with cluster:
        directory, pid = cluster.directory, cluster.pid
        assert (directory / "data" / "PG_VERSION").read_text().strip() == str(cluster.major)
        with psycopg.connect(cluster.dsn()) as conn:
            conn.execute("SELECT 1")
    assert not directory.exists()
    assert _wait_dead(pid, 1)
    cluster.stop()  # idempotent


def test_server_dies_with_its_killed_parent(pg_server: PgServer) -> None:
    major = _local(pg_server).major
    child_code = textwrap.dedent(
        f"""
        import time
        from pgguard.localpg import LocalCluster
        pg = LocalCluster({major}).start()
        print(pg.port, pg.pid, pg.directory, flush=True)
        time.sleep(300)
        """
    )
    package_root = str(Path(localpg.__file__).resolve().parents[1])
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", child_code], stdout=subprocess.PIPE, text=True, env=env
    )
    directory = pid = None
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, f"child failed to start a cluster (exit {child.wait()})"
        port, pid_text, directory = line.split()
        pid = int(pid_text)
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as c:
            c.execute("SELECT 1")
        child.kill()  # SIGKILL: no atexit, no finally; only PR_SET_PDEATHSIG can help
        child.wait()
        assert _wait_dead(pid, 10), "postmaster outlived its killed parent"
    finally:
        if child.poll() is None:
            child.kill()
        if pid is not None and _alive(pid):
            os.kill(pid, 9)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(
    not set(localpg.PINNED_VERSIONS) <= set(MAJORS),
    reason="PGGUARD_PG_VERSIONS does not select all of 14..18",
)
def test_ensure_binaries_for_every_supported_major() -> None:
    for major in sorted(localpg.PINNED_VERSIONS):
        bindir = localpg.ensure_binaries(major, bundled=True)
        assert localpg.ensure_binaries(major, bundled=True, download=False) == bindir
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        assert f"(PostgreSQL) {major}." in out
        # The server runs as another OS user: the whole bundle must be readable by others.
        for path in (bindir, bindir / "postgres", bindir / "initdb", bindir.parent / "lib"):
            assert path.stat().st_mode & 0o005 == 0o005, path
        assert localpg.ensure_binaries(major).exists()  # the default choice works too


def test_missing_binaries_name_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PGGUARD_PG_CACHE", str(tmp_path / "empty"))
    with pytest.raises(localpg.LocalPgError, match="pgguard.localpg fetch 16"):
        localpg.ensure_binaries(16, download=False, bundled=True)
