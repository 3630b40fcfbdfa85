"""SQLAlchemy and Alembic integrations present the token; packaging ships sql/ and migrations/."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from pgguard import keys, keystore
from pgguard.errors import GuardRefused
from pgguard.sqlalchemy import apply_env_token, use_token
from pgguard.token import issue_token

ROOT = Path(__file__).resolve().parent.parent


def sa_url(dsn: str) -> sa.URL:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return sa.URL.create(
        "postgresql+psycopg",
        username=str(params.get("user")),
        password=params.get("password"),  # type: ignore[arg-type]
        host=str(params.get("host")),
        port=int(str(params.get("port"))),
        database=str(params.get("dbname")),
    )


@pytest.fixture
def key(guarded_admin: psycopg.Connection[Any]) -> Any:
    k = keys.generate_private_key(2048)
    keystore.add_keys(guarded_admin, [keys.public_numbers_for_db(k.public_key())])
    return k


def test_use_token_presents_it_until_undone(
    guarded_admin: psycopg.Connection[Any], guarded_db_dsn: str, key: Any
) -> None:
    guarded_admin.execute("CREATE TABLE a (id int); CREATE TABLE b (id int)")
    engine = sa.create_engine(sa_url(guarded_db_dsn), pool_size=2)
    try:
        with engine.connect() as conn:  # pooled before the hook: must get the token too
            conn.execute(sa.text("SELECT 1"))
        undo = use_token(engine, issue_token(key, ops=["drop_table"], objects=["public.*"]))
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE a"))
        undo()
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE b"))
        refused = GuardRefused.from_diag(caught.value.orig)  # type: ignore[arg-type]
        assert refused is not None and refused.op == "drop_table"
    finally:
        engine.dispose()


def test_alembic_env_hook_applies_pgguard_token(
    guarded_admin: psycopg.Connection[Any],
    guarded_db_dsn: str,
    key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guarded_admin.execute("CREATE TABLE old (id int, legacy int)")
    engine = sa.create_engine(sa_url(guarded_db_dsn))
    try:
        monkeypatch.delenv("PGGUARD_TOKEN", raising=False)
        with engine.begin() as conn:
            assert apply_env_token(conn) is False
        token = issue_token(key, ops=["drop_column"], objects=["public.old.legacy"])
        monkeypatch.setenv("PGGUARD_TOKEN", token)
        with engine.begin() as conn:
            assert apply_env_token(conn) is True
            conn.execute(sa.text("ALTER TABLE old DROP COLUMN legacy"))
    finally:
        engine.dispose()


def test_wheel_ships_sql_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pgguard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql_file in (ROOT / "sql").glob("*.sql"):
        assert f"pgguard/_sql/{sql_file.name}" in names
    assert "pgguard/_migrations/env.py" in names
    assert "pgguard/_migrations/versions/0001_initial.py" in names
    assert "pgguard/py.typed" in names


def test_env_py_helpers_leave_no_transaction_open(
    guarded_admin: psycopg.Connection[Any], guarded_db_dsn: str, key: Any, monkeypatch: Any
) -> None:
    from pgguard.sqlalchemy import route_ddl

    monkeypatch.setenv("PGGUARD_TOKEN", issue_token(key, ops=["drop_table"], objects=["x.*"]))
    engine = sa.create_engine(sa_url(guarded_db_dsn), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert apply_env_token(conn) is True
            assert route_ddl(conn) is False  # event-trigger mode: nothing to route
            assert not conn.in_transaction()
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            assert dbapi.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            # and the token stuck to the session: it was committed, not left to be rolled back
            assert (
                conn.execute(sa.text("SHOW pgguard.token")).scalar() == os.environ["PGGUARD_TOKEN"]
            )
    finally:
        engine.dispose()
