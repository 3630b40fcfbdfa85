"""SQLAlchemy and Alembic: present an override token on every connection.

``use_token(engine, token)`` makes each connection checked out of the engine's pool present
``token`` (and stop presenting it once removed). For Alembic, one line in ``env.py`` after the
connection is made::

    pgguard.sqlalchemy.apply_env_token(connection)   # uses $PGGUARD_TOKEN when set

which is what ``pgguard allow … -- alembic upgrade head`` sets (PGOPTIONS works as well).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

_SET = "SELECT pg_catalog.set_config('pgguard.token', %s, false)"


def _set_on_dbapi(dbapi_conn: Any, token: str) -> None:
    """Set the token for the session, leaving the DBAPI connection as it found it.

    A session-level ``set_config`` made inside a transaction is undone if that transaction
    rolls back, so when the connection was idle the setting is committed on its own; when a
    transaction is already open it belongs to the caller, and the setting joins it.
    """
    idle = getattr(getattr(dbapi_conn, "info", None), "transaction_status", None) == 0
    autocommit = bool(getattr(dbapi_conn, "autocommit", False))
    cur = dbapi_conn.cursor()
    try:
        cur.execute(_SET, (token,))
    finally:
        cur.close()
    if idle and not autocommit:
        dbapi_conn.commit()


def use_token(engine: Engine, token: str | None) -> Callable[[], None]:
    """Present ``token`` on every connection ``engine`` hands out; returns the undo function.

    ``None`` or ``""`` presents no token. Connections already in the pool get the token at
    their next checkout; undoing disposes the pool, so no connection keeps the token. No
    transaction is left open behind the caller's back.
    """

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        _set_on_dbapi(dbapi_conn, token or "")

    event.listen(engine, "checkout", on_checkout)

    def undo() -> None:
        event.remove(engine, "checkout", on_checkout)
        # pooled connections still carry the token: replace them rather than trust a reset
        engine.dispose()

    return undo


def apply_env_token(connection: Connection, env_var: str = "PGGUARD_TOKEN") -> bool:
    """Present ``$PGGUARD_TOKEN`` on this connection (Alembic ``env.py``); True when set.

    Works anywhere in ``env.py``'s online mode: before ``context.configure`` (no transaction
    is begun: Alembic would take one it finds open for an outer transaction it does not own,
    and roll everything back at close), or inside ``context.begin_transaction()``, where the
    setting becomes part of the migration's transaction.
    """
    token = os.environ.get(env_var)
    if not token:
        return False
    if connection.in_transaction():
        connection.execute(
            text("SELECT pg_catalog.set_config('pgguard.token', :t, false)"), {"t": token}
        )
    else:
        # straight on the driver connection: SQLAlchemy's autobegin must not see it
        _set_on_dbapi(connection.connection.dbapi_connection, token)
    return True


def route_ddl(connection: Connection) -> bool:
    """Privilege mode: send this connection's schema changes through ``pgguard.run_ddl``.

    One line in Alembic's ``env.py``, beside :func:`apply_env_token`, and ``op.create_table``,
    ``op.drop_column``, ``op.execute("ALTER …")`` and the rest run as the protected owner,
    judged by the executor; data statements run as they are. Returns False (and changes
    nothing) where pgguard is not installed in privilege mode, so the same ``env.py`` serves
    every environment. Statements that cannot run inside a function (``CREATE INDEX
    CONCURRENTLY``) raise :class:`pgguard.runner.ScriptError` saying what to do instead.
    """
    from .runner import executor_statements

    began = not connection.in_transaction()
    found = connection.execute(
        text("SELECT pg_catalog.to_regprocedure('pgguard.run_ddl(text, name[])') IS NOT NULL")
    ).scalar()
    if began:
        # the look-up autobegan a transaction the caller did not ask for (Alembic would take it
        # for an outer one it does not own): it only read, so end it
        connection.rollback()
    if not found:
        return False

    def before_cursor_execute(
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        if executemany or parameters:  # DDL carries no parameters
            return statement, parameters
        ddl = executor_statements(statement)
        if ddl is None:
            return statement, parameters
        if len(ddl) == 1:
            return "SELECT pgguard.run_ddl(%(pgguard_ddl)s)", {"pgguard_ddl": ddl[0]}
        # in order: a function scan over the array runs its rows in array order
        return (
            "SELECT pgguard.run_ddl(s) FROM unnest(%(pgguard_ddl)s::text[]) AS s",
            {"pgguard_ddl": ddl},
        )

    event.listen(connection, "before_cursor_execute", before_cursor_execute, retval=True)
    return True
