"""`pgguard uninstall`: remove every object pgguard created; user data untouched.

It needs an override token with op ``uninstall`` (verified by the server, like any other
override). A database with no live approver key cannot accept any token, so there the installing
superuser may confirm with ``force=True`` (``--yes``) instead.

Order: authorize and drop the event triggers (one transaction), then the TRUNCATE guards in
batches (so 10,000 tables never need 10,000 locks at once), then schema ``pgguard`` and, when no
other database still uses them, the roles. An interrupted run is finished by the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from . import privmode
from .errors import GuardRefused, NotInstalled, PrivilegeError, UsageError
from .installer import AUDITOR_ROLE, EVENT_TRIGGERS, OWNER_ROLE, take_install_lock


@dataclass(frozen=True)
class UninstallReport:
    """What `uninstall` removed."""

    guards_removed: int
    roles_dropped: tuple[str, ...]
    roles_kept: tuple[str, ...]
    seconds: float


def uninstall(
    conn: psycopg.Connection[Any],
    *,
    token: str | None = None,
    force: bool = False,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> UninstallReport:
    """Remove pgguard from the connected database (see the module docstring)."""
    started = time.monotonic()
    conn.autocommit = True
    if conn.execute("SELECT to_regnamespace('pgguard')").fetchone() == (None,):
        raise NotInstalled("pgguard is not installed in this database")
    superuser = conn.execute(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if privmode.installed_mode(conn) == privmode.MODE_PRIVILEGES:
        return _uninstall_privileges(conn, token, force, bool(superuser and superuser[0]), started)
    try:
        with conn.transaction():
            take_install_lock(conn)
            _authorize(conn, token, force, bool(superuser and superuser[0]))
            for name in EVENT_TRIGGERS:
                conn.execute(
                    sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(name))
                )
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            "pgguard uninstall must run as the role that installed it (it drops event triggers)"
        ) from e

    tables = [
        r[0]
        for r in conn.execute(
            "SELECT t.tgrelid::regclass::text FROM pg_catalog.pg_trigger t"
            " WHERE t.tgname = 'pgguard_truncate_guard' ORDER BY t.tgrelid"
        )
    ]
    if progress:
        progress(0, len(tables))
    for start in range(0, len(tables), batch_size):
        with conn.transaction():
            for table in tables[start : start + batch_size]:
                conn.execute(
                    sql.SQL("DROP TRIGGER IF EXISTS pgguard_truncate_guard ON {}").format(
                        sql.SQL(table)
                    )
                )
        if progress:
            progress(min(start + batch_size, len(tables)), len(tables))

    dropped: list[str] = []
    kept: list[str] = []
    with conn.transaction():
        take_install_lock(conn)
        conn.execute("DROP SCHEMA IF EXISTS pgguard CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS pgguard_sentinel CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS pgguard_watch CASCADE")
    for role in (OWNER_ROLE, AUDITOR_ROLE):
        # roles are cluster-wide: another database's pgguard may still need them
        try:
            with conn.transaction():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            dropped.append(role)
        except psycopg.Error:
            kept.append(role)
    return UninstallReport(len(tables), tuple(dropped), tuple(kept), time.monotonic() - started)


def _uninstall_privileges(
    conn: psycopg.Connection[Any], token: str | None, force: bool, superuser: bool, started: float
) -> UninstallReport:
    """Privilege mode: one transaction gives everything back (guards, owners, privileges) and
    drops schema pgguard, so a database is never left half-guarded."""
    with conn.transaction():
        take_install_lock(conn)
        _authorize(conn, token, force, superuser)
        owner = privmode.owner_role(conn)
        granted = privmode.become_owner(conn, owner)
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT t.tgrelid::regclass::text FROM pg_catalog.pg_trigger t"
                " WHERE t.tgname = 'pgguard_truncate_guard' ORDER BY t.tgrelid"
            )
        ]
        for table in tables:
            conn.execute(
                sql.SQL("DROP TRIGGER IF EXISTS pgguard_truncate_guard ON {}").format(
                    sql.SQL(table)
                )
            )
        privmode.restore_owners(conn)
        conn.execute("DROP SCHEMA IF EXISTS pgguard CASCADE")
        if granted:
            privmode.give_up_owner(conn, owner)
    dropped: list[str] = []
    # an owner role of another name was the platform's credential (--owner-role): it stays
    kept: list[str] = [] if owner == OWNER_ROLE else [owner]
    for role in (OWNER_ROLE, AUDITOR_ROLE):
        if role == OWNER_ROLE and owner != OWNER_ROLE:
            continue
        try:
            with conn.transaction():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            dropped.append(role)
        except psycopg.Error:
            kept.append(role)
    return UninstallReport(len(tables), tuple(dropped), tuple(kept), time.monotonic() - started)


def _authorize(
    conn: psycopg.Connection[Any], token: str | None, force: bool, superuser: bool
) -> None:
    live = conn.execute("SELECT count(*) FROM pgguard.keys WHERE revoked_at IS NULL").fetchone()
    if live and live[0]:
        if token:
            conn.execute("SELECT set_config('pgguard.token', %s, true)", (token,))
        try:
            if conn.execute(
                "SELECT to_regprocedure('pgguard.authorize_uninstall()') IS NOT NULL"
            ).fetchone() == (True,):
                # check_override itself is for pgguard_owner's code alone
                conn.execute("SELECT pgguard.authorize_uninstall()")
            else:  # installed by a version without it
                conn.execute(
                    "SELECT pgguard.check_override('uninstall', ARRAY['pgguard'],"
                    " 'PGGUARD UNINSTALL', 'to approve it, run: pgguard allow --op uninstall"
                    " --object pgguard' || ' --db ' || pgguard.shell_quote(current_database()),"
                    " '{}', 'pgguard: refusing to uninstall pgguard')"
                )
        except psycopg.Error as e:
            refused = GuardRefused.from_diag(e)
            if refused is not None:
                raise refused from e
            raise
        return
    if not (force and superuser):
        raise UsageError(
            "no approver key is registered, so no uninstall token can be checked: "
            "as the superuser that installed pgguard, confirm with --yes"
        )
