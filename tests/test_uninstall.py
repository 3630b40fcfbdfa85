"""`pgguard uninstall`: removes every pgguard object, keeps every row of user data."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgguard import keys, keystore
from pgguard.errors import GuardRefused, UsageError
from pgguard.removal import uninstall
from pgguard.token import issue_token

Conn = psycopg.Connection[Any]


def leftovers(conn: Conn) -> list[Any]:
    return conn.execute(
        """
        SELECT 'schema' FROM pg_namespace WHERE nspname = 'pgguard'
        UNION ALL SELECT evtname FROM pg_event_trigger
        UNION ALL SELECT tgname || ' on ' || tgrelid::regclass FROM pg_trigger
                   WHERE tgname LIKE 'pgguard%'
        """
    ).fetchall()


def make_user_data(conn: Conn) -> None:
    conn.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text);"
        " INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g;"
        " CREATE TABLE p (id int) PARTITION BY RANGE (id);"
        " CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);"
        " INSERT INTO p SELECT generate_series(0, 99)"
    )


def test_without_keys_the_superuser_confirms(guarded_admin: Conn) -> None:
    make_user_data(guarded_admin)
    with pytest.raises(UsageError, match="--yes"):
        uninstall(guarded_admin)
    assert leftovers(guarded_admin)  # nothing was removed
    report = uninstall(guarded_admin, force=True)
    assert report.guards_removed == 3
    assert leftovers(guarded_admin) == []
    assert guarded_admin.execute("SELECT count(*) FROM t").fetchone() == (50,)
    assert guarded_admin.execute("SELECT count(*) FROM p").fetchone() == (100,)
    # the template database still uses the cluster-wide roles: they stay
    assert set(report.roles_kept) == {"pgguard_owner", "pgguard_auditor"}
    guarded_admin.execute("DROP TABLE t")  # unguarded now
    guarded_admin.execute("TRUNCATE p")


def test_with_keys_an_uninstall_token_is_required(guarded_admin: Conn) -> None:
    make_user_data(guarded_admin)
    key = keys.generate_private_key(2048)
    keystore.add_keys(guarded_admin, [keys.public_numbers_for_db(key.public_key())])
    with pytest.raises(GuardRefused) as caught:
        uninstall(guarded_admin, force=True)
    assert caught.value.op == "uninstall"
    assert "no override token is set" in (caught.value.detail or "")
    wrong = issue_token(key, ops=["drop_table"], objects=["*"])
    with pytest.raises(GuardRefused, match="refusing to uninstall"):
        uninstall(guarded_admin, token=wrong)
    assert leftovers(guarded_admin)
    good = issue_token(key, ops=["uninstall"], objects=["pgguard"])
    uninstall(guarded_admin, token=good)
    assert leftovers(guarded_admin) == []
    assert guarded_admin.execute("SELECT count(*) FROM t").fetchone() == (50,)


def test_roles_dropped_when_no_other_database_uses_them(pg_server: Any) -> None:
    """In a cluster of its own, uninstall leaves no role behind."""
    if pg_server.cluster is None:
        pytest.skip("needs a cluster of its own")
    from pgguard import localpg
    from pgguard.installer import install

    with localpg.LocalCluster(pg_server.major) as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            make_user_data(conn)
            install(conn)
            report = uninstall(conn, force=True)
            assert report.roles_dropped == ("pgguard_owner", "pgguard_auditor")
            assert conn.execute(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pgguard%'"
            ).fetchone() == (0,)
            assert leftovers(conn) == []
