"""Connecting: where the DSN comes from, and driver errors turned into pgguard's own.

Order, as in the contract: ``--dsn``, then ``$PGGUARD_DSN``, then ``$DATABASE_URL``, then libpq's
own ``PG*`` variables (an empty conninfo string lets libpq read them).
"""

from __future__ import annotations

import os
import re
from typing import Any

import psycopg

from .errors import ConnectError, UnsupportedServer

MIN_SERVER_VERSION = 140000

# SQLAlchemy-style URLs (postgresql+psycopg://) are common in DATABASE_URL; libpq wants none.
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")


def resolve_dsn(dsn: str | None = None) -> str:
    """The conninfo string or URL to use, following the contract's order."""
    for candidate in (dsn, os.environ.get("PGGUARD_DSN"), os.environ.get("DATABASE_URL")):
        if candidate:
            return _DRIVER_SUFFIX.sub(r"\1://", candidate)
    return ""


def describe(dsn: str) -> str:
    """A DSN fit for messages: never shows a password."""
    if not dsn:
        return "the server named by the PG* environment variables"
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the given DSN"
    params.pop("password", None)
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    db = params.get("dbname", params.get("user", ""))
    return f'database "{db}" on {host}:{port}' if db else f"{host}:{port}"


def connect(
    dsn: str | None = None, *, autocommit: bool = True, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Open a connection, or raise :class:`ConnectError` saying what to check."""
    conninfo = resolve_dsn(dsn)
    kwargs.setdefault("application_name", "pgguard")
    kwargs.setdefault("connect_timeout", 10)
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, **kwargs)
    except psycopg.Error as e:
        raise ConnectError(
            f"cannot connect to {describe(conninfo)}: {str(e).strip()}",
            hint="check --dsn, $PGGUARD_DSN, $DATABASE_URL or the PG* variables",
        ) from e
    return conn


def check_server(conn: psycopg.Connection[Any]) -> int:
    """The server's version number; raises :class:`UnsupportedServer` below 14."""
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        raise UnsupportedServer(
            f"PostgreSQL {version // 10000} is not supported: pgguard needs PostgreSQL 14 or "
            "newer (event triggers and pg_current_xact_id() as they behave from 14 on)"
        )
    return version
