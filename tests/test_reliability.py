"""Reliability (issue 9): upgrades revision by revision, concurrent installs, install under a
write load, many sessions doing DDL with and without tokens, and bad input.

Durations are bounded for CI: ``PGGUARD_STRESS_SECONDS`` (default 8) per stress test; the
figures each test measured are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgguard import keys, keystore, resources
from pgguard.health import status
from pgguard.installer import EVENT_TRIGGERS, install
from pgguard.token import issue_token

Conn = psycopg.Connection[Any]
STRESS_SECONDS = float(os.environ.get("PGGUARD_STRESS_SECONDS", "8"))
PGGUARD_SCHEMAS = ("pgguard", "pgguard_sentinel", "pgguard_watch")


def schema_dump(pg_server: Any, dbname: str) -> list[str]:
    """pg_dump --schema-only of pgguard's schemas, minus what names the database."""
    if pg_server.cluster is None:
        pytest.skip("needs the local cluster's pg_dump")
    pg_dump = pg_server.cluster.binaries.bindir / "pg_dump"
    args = [str(pg_dump), "--schema-only", "--no-owner", "--dbname", pg_server.admin_dsn(dbname)]
    for schema in PGGUARD_SCHEMAS:
        args += ["--schema", schema]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    return [
        line
        for line in out.splitlines()
        if line
        and not line.startswith("--")
        and "\\restrict" not in line
        and "\\unrestrict" not in line
    ]


def revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(resources.migrations_dir()))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def upgrade_one_revision_at_a_time(dsn: str) -> list[str]:
    """pgguard's tables taken from nothing to head one revision per transaction, as a database
    installed by each release in turn would have been."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    conn = psycopg.connect(dsn)
    engine = create_engine(
        "postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool,
        pool_reset_on_return=None,
    )  # fmt: skip
    done = []
    try:
        for rev in revisions():
            with engine.connect() as sa_conn, sa_conn.begin():
                raw: Conn = sa_conn.connection.driver_connection  # type: ignore[assignment]
                raw.execute("CREATE SCHEMA IF NOT EXISTS pgguard AUTHORIZATION pgguard_owner")
                cfg = Config()
                cfg.set_main_option("script_location", str(resources.migrations_dir()))
                cfg.attributes["connection"] = sa_conn
                command.upgrade(cfg, rev)
            done.append(rev)
    finally:
        engine.dispose()
        conn.close()
    return done


def test_fresh_install_equals_one_upgraded_revision_by_revision(
    pg_server: Any, make_db: Any
) -> None:
    fresh, stepped = make_db(), make_db()
    with psycopg.connect(pg_server.admin_dsn(fresh)) as conn:
        install(conn)
    with psycopg.connect(pg_server.admin_dsn(stepped)) as conn:
        install(conn)  # the roles; then pgguard's tables go and come back one step at a time
        conn.autocommit = True
        for name in EVENT_TRIGGERS:
            conn.execute(sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(name)))
        for schema in PGGUARD_SCHEMAS:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    steps = upgrade_one_revision_at_a_time(pg_server.admin_dsn(stepped))
    assert len(steps) == len(revisions()) >= 1
    with psycopg.connect(pg_server.admin_dsn(stepped)) as conn:
        report = install(conn)
    assert report.migrations_applied == ()  # already at head: only the code was applied
    assert schema_dump(pg_server, stepped) == schema_dump(pg_server, fresh)


def test_two_concurrent_installs_serialize(pg_server: Any, make_db: Any) -> None:
    db = make_db()
    with pg_server.connect(db) as admin:
        admin.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        with psycopg.connect(pg_server.admin_dsn(db)) as conn:
            barrier.wait()
            try:
                results.append(install(conn).action)
            except Exception as e:  # noqa: BLE001 - the test reports it
                results.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(map(str, results)) in (["installed", "unchanged"], ["installed", "installed"])
    with pg_server.connect(db) as admin:
        assert status(admin).healthy
        assert admin.execute("SELECT count(*) FROM pgguard.installation").fetchone() == (1,)


def test_install_under_a_write_load(pg_server: Any, make_db: Any) -> None:
    """A pgbench-like workload writes the tables while install guards them: no workload error,
    lock waits bounded by install's per-table lock_timeout."""
    db = make_db()
    with pg_server.connect(db) as admin:
        for i in range(40):
            admin.execute(f"CREATE TABLE acct_{i} (id int PRIMARY KEY, bal int)")  # type: ignore[arg-type]
            admin.execute(f"INSERT INTO acct_{i} SELECT g, 0 FROM generate_series(1, 100) g")  # type: ignore[arg-type]
    stop = threading.Event()
    errors: list[str] = []
    latencies: list[float] = []

    def worker(n: int) -> None:
        with psycopg.connect(pg_server.admin_dsn(db), autocommit=True) as conn:
            k = 0
            while not stop.is_set():
                k += 1
                t0 = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute(
                            f"UPDATE acct_{(n + k) % 40} SET bal = bal + 1 WHERE id = %s",  # type: ignore[arg-type]
                            (k % 100 + 1,),
                        )
                        conn.execute(
                            f"INSERT INTO acct_{(n * 7 + k) % 40} VALUES (%s, 1)",  # type: ignore[arg-type]
                            (1000 + n * 1_000_000 + k,),
                        )
                except psycopg.Error as e:
                    errors.append(str(e))
                latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    started = time.monotonic()
    with psycopg.connect(pg_server.admin_dsn(db)) as conn:
        report = install(conn, batch_size=10, lock_timeout="1s")
    took = time.monotonic() - started
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(
        f"\ninstall under load: {took:.2f}s, {len(latencies)} workload transactions, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms, retries {report.retries}"
    )
    assert errors == []
    assert report.complete and report.tables_total == 40
    assert latencies[-1] < 10.0


def test_sessions_doing_ddl_with_and_without_tokens(
    pg_server: Any, guarded_admin: Conn, guarded_db_name: str, make_app_role: Any
) -> None:
    """Eight sessions (app roles and superusers) create, drop and truncate at once: every drop
    without a token is refused, every drop with one goes through, and nothing deadlocks."""
    key = keys.generate_private_key(2048)
    keystore.add_keys(guarded_admin, [keys.public_numbers_for_db(key.public_key())])
    time.sleep(1.1)  # tokens below are issued in a later second than anything they cover
    roles = [make_app_role() for _ in range(4)]
    outcome: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + STRESS_SECONDS

    def session(n: int) -> None:
        if n % 2:
            conn = roles[n // 2].connect()
        else:
            conn = psycopg.connect(pg_server.admin_dsn(guarded_db_name), autocommit=True)
        prefix = f"s{n}_"
        token = issue_token(key, ops=["drop_table", "truncate"], objects=[f"public.{prefix}*"])
        k = 0
        try:
            while time.monotonic() < deadline:
                k += 1
                table = f"{prefix}{k}"
                conn.execute(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1)")  # type: ignore[arg-type]
                for stmt in (f"TRUNCATE {table}", f"DROP TABLE {table}"):
                    try:
                        conn.execute(stmt)  # type: ignore[arg-type]
                        note("miss", f"{stmt} without a token went through")
                    except psycopg.Error as e:
                        note("refused" if e.sqlstate == "PGG01" else "error", f"{stmt}: {e}")
                conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
                for stmt in (f"TRUNCATE {table}", f"DROP TABLE {table}"):
                    try:
                        conn.execute(stmt)  # type: ignore[arg-type]
                        note("approved", "")
                    except psycopg.Error as e:
                        note("false_refusal" if e.sqlstate == "PGG01" else "error", f"{stmt}: {e}")
                conn.execute("SELECT set_config('pgguard.token', '', false)")
                with conn.transaction():  # made and dropped in one transaction: no token needed
                    conn.execute(f"CREATE TABLE {table}_tmp (id int); DROP TABLE {table}_tmp")  # type: ignore[arg-type]
                note("fresh", "")
        except psycopg.Error as e:
            note("error", f"session {n}: {e}")
        finally:
            conn.close()

    def note(kind: str, what: str) -> None:
        with lock:
            outcome[kind] += 1
            if kind in ("miss", "false_refusal", "error"):
                problems.append(what)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STRESS_SECONDS + 120)
    print(f"\n8 DDL sessions for {STRESS_SECONDS:.0f}s: {dict(outcome)}")
    assert problems == [], problems[:5]
    assert outcome["refused"] > 0 and outcome["approved"] > 0 and outcome["fresh"] > 0


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        ("host=127.0.0.1 port=notaport", "cannot connect"),
        ("postgresql://[::1", "cannot connect"),
        ("this is not a dsn", "cannot connect"),
        ("host=10.255.255.1 port=5432 dbname=x connect_timeout=3", "cannot connect"),
    ],
    ids=["bad-port", "bad-url", "garbage", "unreachable-host"],
)
def test_bad_dsn_is_one_clear_line_and_exit_3(dsn: str, words: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pgguard", "status", "--dsn", dsn],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 30


def test_wrong_password_is_exit_3(pg_server: Any, guarded_db_name: str) -> None:
    name, _password = pg_server.make_role("pw")
    with pg_server.connect() as conn:
        hba = conn.execute("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'")
        trust = hba.fetchone()
    if trust and trust[0]:
        pytest.skip("the test cluster trusts local connections: no password is checked")
    proc = subprocess.run(
        [sys.executable, "-m", "pgguard", "status", "--dsn",
         pg_server.dsn(guarded_db_name, name, "wrong")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3 and "cannot connect" in proc.stderr
