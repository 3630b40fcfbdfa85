"""The restore point `pgguard deploy` prints is real: recovering to it brings deleted rows back.

On a throwaway cluster of the major under test with WAL archiving on: a base backup, then
`pgguard deploy -- <a script deleting rows>` (exit 1, restore point in the JSON report), then
the base backup is started as a new server with ``restore_command`` reading the archive and
``recovery_target_lsn`` set to the printed LSN: the rows are there, and the deploy's changes
are not. Uses the same bundled binaries as the test servers (pgguard.localpg).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from tokenhelp import clean_env

from pgguard import localpg
from pgguard.installer import install


class ServerUser:
    """Runs the bundled binaries as the OS user the test servers run as."""

    def __init__(self, binaries: localpg.Binaries) -> None:
        self.bin = binaries
        self.user = localpg.server_os_user()

    def chown(self, path: Path) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.bin.libdir is not None:
            env["LD_LIBRARY_PATH"] = str(self.bin.libdir)
        return env

    def popen(self, args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
        uid = gid = None
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            uid, gid = pw.pw_uid, pw.pw_gid
        with open(log, "ab") as out:
            self.chown(log)
            return subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=self.env(),
                user=uid, group=gid, extra_groups=[] if uid is not None else None,
                start_new_session=True,
            )  # fmt: skip


@pytest.fixture
def workdir(pg_server: Any) -> Iterator[Path]:
    if pg_server.cluster is None:
        pytest.skip("needs local binaries (not PGGUARD_TEST_DSN or Docker)")
    path = Path(tempfile.mkdtemp(prefix="pgguard-pitr-", dir=localpg.run_dir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_recovery_to_the_printed_restore_point_brings_rows_back(
    pg_server: Any, workdir: Path
) -> None:
    runner = ServerUser(pg_server.cluster.binaries)
    archive = workdir / "archive"
    archive.mkdir()
    runner.chown(workdir)
    runner.chown(archive)
    settings = {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"cp %p {archive}/%f",
    }
    with localpg.LocalCluster(pg_server.major, settings=settings) as primary:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        dsn = primary.dsn("shop")
        with psycopg.connect(dsn, autocommit=True) as conn:
            install(conn)
            conn.execute("CREATE TABLE tenants (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO tenants SELECT g, 't' || g FROM generate_series(1, 50) g")

        backup = workdir / "restored"
        base = runner.popen(
            [str(runner.bin.bindir / "pg_basebackup"), "-d", primary.dsn(), "-D", str(backup),
             "-X", "stream", "-c", "fast"],
            workdir / "basebackup.log", workdir,
        )  # fmt: skip
        assert base.wait(timeout=120) == 0, (workdir / "basebackup.log").read_text()

        script = (
            "import psycopg, sys; c = psycopg.connect(sys.argv[1], autocommit=True);"
            " c.execute('DELETE FROM tenants WHERE id > 10')"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pgguard", "deploy", "--dsn", dsn, "--json", "--",
             sys.executable, "-c", script, dsn],
            env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        report = json.loads(proc.stdout)
        lsn = report["restore_point"]["lsn"]
        assert report["rows_fell"][0]["after"] == 10

        with psycopg.connect(dsn, autocommit=True) as conn:
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert segment is not None
            deadline = time.monotonic() + 60
            while not (archive / segment[0]).exists():
                assert time.monotonic() < deadline, "WAL segment was not archived"
                time.sleep(0.1)

    # the base backup, recovered to the restore point as a new server
    with open(backup / "postgresql.auto.conf", "a") as conf:
        conf.write(f"restore_command = 'cp {archive}/%f %p'\n")
        conf.write(f"recovery_target_lsn = '{lsn}'\n")
        conf.write("recovery_target_action = 'promote'\n")
    (backup / "recovery.signal").touch()
    runner.chown(backup / "recovery.signal")
    sock = workdir / "sock"
    sock.mkdir()
    runner.chown(sock)
    port = localpg._free_port()
    server = runner.popen(
        [str(runner.bin.bindir / "postgres"), "-D", str(backup), "-k", str(sock), "-h",
         "127.0.0.1", "-p", str(port), "-c", "archive_mode=off"],
        workdir / "restored.log", workdir,
    )  # fmt: skip
    try:
        restored = make_conninfo("", host="127.0.0.1", port=port, dbname="shop", user="postgres")
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (workdir / "restored.log").read_text()
            try:
                with psycopg.connect(restored, autocommit=True, connect_timeout=2) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                        break
            except psycopg.OperationalError:
                pass
            assert time.monotonic() < deadline, (workdir / "restored.log").read_text()
            time.sleep(0.1)
        with psycopg.connect(restored, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (50,)
            # the deploy's own record began after the restore point: not there either
            assert conn.execute("SELECT count(*) FROM pgguard.deploys").fetchone() == (0,)
        assert "recovery stopping" in (workdir / "restored.log").read_text()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
