"""Approver public keys registered in a database: add, list, revoke.

Only public halves are stored (``pgguard.keys``); whoever holds a private key whose public half
is listed here and not revoked can approve destructive changes. Writing needs the installing
role (the table belongs to the protected role ``pgguard_owner``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from .errors import NotInstalled, PgguardError, PrivilegeError, UsageError


@dataclass(frozen=True)
class RegisteredKey:
    """One row of ``pgguard.keys``."""

    kid: str
    bits: int
    comment: str | None
    added_at: dt.datetime
    added_by: str
    revoked_at: dt.datetime | None
    revoked_by: str | None

    @property
    def live(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def _require_installed(conn: psycopg.Connection[Any]) -> None:
    if conn.execute("SELECT to_regclass('pgguard.keys')").fetchone() == (None,):
        raise NotInstalled(
            "pgguard is not installed in this database", hint="run pgguard install first"
        )


def add_keys(
    conn: psycopg.Connection[Any], keys: Iterable[Any], *, comment: str | None = None
) -> tuple[str, ...]:
    """Register public keys (:class:`pgguard.keys.PublicKeyRow`); returns the kids newly added.

    A key already registered is left as it is, revoked or not: re-adding never un-revokes.
    """
    _require_installed(conn)
    added: list[str] = []
    try:
        with conn.transaction():
            for key in keys:
                row = conn.execute(
                    """
                    INSERT INTO pgguard.keys (kid, n, e, k, bits, public_pem, comment)
                    VALUES (%s, %s::numeric, %s, %s, %s, %s, %s)
                    ON CONFLICT (kid) DO NOTHING
                    RETURNING kid
                    """,
                    (key.kid, str(key.n), key.e, key.k, key.bits, key.pem, comment),
                ).fetchone()
                if row:
                    added.append(row[0])
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            "registering keys needs the role that installed pgguard (or a superuser)"
        ) from e
    return tuple(added)


def list_keys(conn: psycopg.Connection[Any]) -> list[RegisteredKey]:
    """Every registered key, live and revoked, oldest first."""
    _require_installed(conn)
    rows = conn.execute(
        "SELECT kid, bits, comment, added_at, added_by, revoked_at, revoked_by"
        " FROM pgguard.keys ORDER BY added_at, kid"
    ).fetchall()
    return [RegisteredKey(*r) for r in rows]


def revoke_key(conn: psycopg.Connection[Any], kid: str) -> RegisteredKey:
    """Revoke a key: tokens it signed stop working at once, even unexpired ones."""
    _require_installed(conn)
    try:
        with conn.transaction():
            row = conn.execute(
                """
                UPDATE pgguard.keys SET revoked_at = COALESCE(revoked_at, now()),
                                        revoked_by = COALESCE(revoked_by, session_user)
                 WHERE kid = %s
                RETURNING kid, bits, comment, added_at, added_by, revoked_at, revoked_by
                """,
                (kid,),
            ).fetchone()
            if row is None:
                raise UsageError(f"no key {kid} is registered in this database")
            # cached verifications of tokens it signed must not outlive it
            conn.execute("DELETE FROM pgguard.verified_tokens WHERE kid = %s", (kid,))
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            "revoking keys needs the role that installed pgguard (or a superuser)"
        ) from e
    except psycopg.Error as e:
        raise PgguardError(f"revoking key {kid} failed: {e}") from e
    return RegisteredKey(*row)
