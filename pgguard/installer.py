"""`pgguard install`: create or upgrade pgguard in one database, safely re-runnable.

Two steps, each in transactions of its own:

1. Under ``pg_advisory_xact_lock``, in one transaction: the roles, schema ``pgguard``, its tables
   (Alembic revisions in ``migrations/``), the server-side code (``sql/``), and the event
   triggers. From its commit on, every drop is guarded and every new table gets its guard.
   Skipped entirely when the installed code is already this package's (a re-run is a no-op).
2. The TRUNCATE guard on every existing table, in batches of their own transactions, so 10,000
   tables never need 10,000 locks at once; each table waits at most ``lock_timeout`` and a busy
   one is retried later. A run killed half-way is finished by the next run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import resources
from ._version import __version__
from .connect import check_server
from .errors import (
    GuardRefused,
    InstallError,
    NewerSchemaInstalled,
    PgguardError,
    PrivilegeError,
    UsageError,
)

#: pg_advisory_xact_lock key shared by install and uninstall ("pgguard" in ASCII).
ADVISORY_LOCK_KEY = 0x7067677561726400 >> 8
EVENT_TRIGGERS = (
    "pgguard_sql_drop",
    "pgguard_ddl_end",
    "pgguard_drop_check",
    "pgguard_ddl_check",
    "pgguard_ddl_start",
    "pgguard_watch_start",
    "pgguard_table_rewrite",
)
OWNER_ROLE = "pgguard_owner"
AUDITOR_ROLE = "pgguard_auditor"

#: Roles that may create event triggers on managed platforms, by platform.
PLATFORM_ROLES = {
    "rds_superuser": "Amazon RDS / Aurora",
    "cloudsqlsuperuser": "Google Cloud SQL",
    "neon_superuser": "Neon",
    "azure_pg_admin": "Azure Database for PostgreSQL",
    "supabase_admin": "Supabase",
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TableProblem:
    """A table whose guard could not be attached, and why."""

    table: str
    reason: str


@dataclass(frozen=True)
class InstallReport:
    """What `install` did."""

    package_version: str
    previous_version: str | None
    action: str  # "installed" | "upgraded" | "unchanged"
    migrations_applied: tuple[str, ...]
    tables_attached: int
    tables_healed: int
    tables_total: int
    problems: tuple[TableProblem, ...]
    keys_added: tuple[str, ...]
    excluded_schemas: tuple[str, ...]
    seconds: float
    batches: int = 0
    retries: int = 0
    notes: tuple[str, ...] = field(default=())
    mode: str = "event-triggers"
    #: privilege mode: the app role, and its password when install created it (shown once)
    app_role: str | None = None
    app_password: str | None = field(default=None, repr=False)
    #: False: the empty-table rule lets a table holding no row be dropped or truncated without
    #: a token (the default); True: `--protect-empty`, refused like any other table
    protect_empty: bool = False

    @property
    def complete(self) -> bool:
        """Every table that should carry a guard carries one."""
        return not self.problems


def sql_digest() -> str:
    """SHA-256 over the sql/ files and the package version: what a re-install compares."""
    h = hashlib.sha256(__version__.encode())
    for path in resources.sql_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def install(
    conn: psycopg.Connection[Any],
    *,
    exclude_schemas: Sequence[str] | None = None,
    protect_empty: bool | None = None,
    public_keys: Iterable[Any] = (),
    batch_size: int = 200,
    lock_timeout: str = "2s",
    retries: int = 5,
    progress: Progress | None = None,
    mode: str | None = None,
    app_role: str | None = None,
    owner_role: str | None = None,
) -> InstallReport:
    """Install or upgrade pgguard in the connected database.

    ``exclude_schemas`` replaces the stored list when given (``None`` keeps it).
    ``protect_empty`` True refuses dropping or truncating tables that hold no row like any
    other (False: the empty-table rule lets them through; ``None`` keeps the stored choice).
    ``public_keys`` are :class:`pgguard.keys.PublicKeyRow` values to register.
    ``progress(done, total)`` is called as existing tables get their guard.
    ``mode``: ``"event-triggers"`` or ``"privileges"``; by default the installed one, else
    event triggers where this role may create them and privileges otherwise (``app_role``,
    ``owner_role``: see :mod:`pgguard.privmode`).
    """
    from . import privmode

    started = time.monotonic()
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise InstallError("install needs a connection that is not inside a transaction")
    conn.autocommit = True
    check_server(conn)
    if mode not in (None, privmode.MODE_EVENT_TRIGGERS, privmode.MODE_PRIVILEGES):
        raise UsageError(f"unknown mode {mode!r}: event-triggers or privileges")
    installed = privmode.installed_mode(conn) if _has_installation(conn) else None
    recorded_owner = privmode.owner_role(conn) if installed else None
    if owner_role is not None and recorded_owner and owner_role != recorded_owner:
        raise UsageError(
            f"pgguard is installed here with owner role {recorded_owner}: uninstall it before"
            f" switching to {owner_role}"
        )
    if owner_role is not None and owner_role != privmode.OWNER_ROLE and mode is None:
        mode = privmode.MODE_PRIVILEGES  # only privilege mode has an owner role of its own
    if (
        owner_role is not None
        and owner_role != privmode.OWNER_ROLE
        and (mode == privmode.MODE_EVENT_TRIGGERS or installed == privmode.MODE_EVENT_TRIGGERS)
    ):
        raise UsageError("--owner-role names privilege mode's owner; event-trigger mode has none")
    caps = privmode.probe(
        conn, exclude_schemas or (), owner_role or recorded_owner or privmode.OWNER_ROLE
    )
    chosen = mode or installed or caps.mode
    if installed and chosen != installed:
        raise UsageError(
            f"pgguard is installed here in {installed} mode: uninstall it before switching"
            f" to {chosen} mode"
        )
    if chosen == privmode.MODE_PRIVILEGES:
        if caps.event_triggers and mode is None and installed is None:
            chosen = privmode.MODE_EVENT_TRIGGERS
        else:
            return _install_privileges(
                conn, caps, started, exclude_schemas, public_keys, app_role, protect_empty
            )
    _check_privileges(conn)

    digest = sql_digest()
    previous, step1_needed = _installed_state(conn, digest)
    if exclude_schemas is not None:
        step1_needed = step1_needed or _stored_excludes(conn) != sorted(set(exclude_schemas))
    if protect_empty is not None:
        step1_needed = step1_needed or _stored_protect_empty(conn) != protect_empty
    keys = list(public_keys)
    migrations: tuple[str, ...] = ()
    if step1_needed:
        migrations = _step1(conn, digest, exclude_schemas, protect_empty)
    keys_added = _register_keys(conn, keys) if keys else ()
    report = _step2(conn, batch_size, lock_timeout, retries, progress)
    attached, healed, total, problems, batches, retried = report

    with conn.transaction():
        # written only when it changes: a re-run of a current install writes nothing
        conn.execute(
            "UPDATE pgguard.installation SET completed_at = CASE WHEN %(ok)s THEN now() END"
            " WHERE (completed_at IS NOT NULL) <> %(ok)s",
            {"ok": not problems},
        )
    excluded = tuple(_stored_excludes(conn))
    if previous is None:
        action = "installed"
    elif step1_needed:
        action = "upgraded"
    else:
        action = "unchanged"
    return InstallReport(
        package_version=__version__,
        previous_version=previous,
        action=action,
        migrations_applied=migrations,
        tables_attached=attached,
        tables_healed=healed,
        tables_total=total,
        problems=tuple(problems),
        keys_added=keys_added,
        excluded_schemas=excluded,
        seconds=time.monotonic() - started,
        batches=batches,
        retries=retried,
        protect_empty=_stored_protect_empty(conn),
    )


def _has_installation(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("SELECT to_regclass('pgguard.installation')").fetchone() != (None,)


def _install_privileges(
    conn: psycopg.Connection[Any],
    caps: Any,
    started: float,
    exclude_schemas: Sequence[str] | None,
    public_keys: Iterable[Any],
    app_role: str | None,
    protect_empty: bool | None = None,
) -> InstallReport:
    from . import privmode

    previous = None
    if _has_installation(conn):
        row = conn.execute("SELECT package_version FROM pgguard.installation").fetchone()
        previous = row[0] if row else None
        _refuse_newer(conn)
    done = privmode.install(
        conn,
        caps,
        app_role=app_role,
        exclude_schemas=exclude_schemas,
        protect_empty=protect_empty,
    )
    keys = list(public_keys)
    keys_added = _register_keys(conn, keys) if keys else ()
    migrations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    role: str | None = None
    password: str | None = None
    if done is None:
        action, attached = "unchanged", 0
        known = privmode.app_roles(conn)
        role = known[0] if known else None
    else:
        result, migrations = done
        action = "installed" if previous is None else "upgraded"
        attached, notes = result.guards_attached, result.notes
        role, password = result.app_role, result.app_password
    return InstallReport(
        package_version=__version__,
        previous_version=previous,
        action=action,
        migrations_applied=migrations,
        tables_attached=attached,
        tables_healed=0,
        tables_total=attached,  # as in event-trigger mode: the tables this run had to guard
        problems=(),
        keys_added=keys_added,
        excluded_schemas=tuple(_stored_excludes(conn)),
        seconds=time.monotonic() - started,
        notes=notes,
        mode=privmode.MODE_PRIVILEGES,
        app_role=role,
        app_password=password,
    )


def _check_privileges(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        """
        SELECT r.rolsuper,
               ARRAY(SELECT b.rolname::text FROM pg_catalog.pg_roles b
                      WHERE b.rolname = ANY (%s)
                        AND pg_catalog.pg_has_role(current_user, b.oid, 'member'))
          FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
        """,
        (list(PLATFORM_ROLES),),
    ).fetchone()
    if row is None or row[0] or row[1]:
        return
    user = conn.info.user
    platforms = ", ".join(f"{role} ({name})" for role, name in PLATFORM_ROLES.items())
    raise PrivilegeError(
        f'role "{user}" may not create event triggers, which pgguard install needs: connect as '
        f"a superuser, or on a managed platform as a member of its privileged role: {platforms}; "
        "on Supabase use the postgres role",
        hint="run pgguard doctor to see what this role can do",
    )


def _installed_state(conn: psycopg.Connection[Any], digest: str) -> tuple[str | None, bool]:
    """(installed package version or None, whether step 1 must run)."""
    row = conn.execute(
        """
        SELECT to_regclass('pgguard.installation') IS NOT NULL,
               (SELECT count(*) FROM pg_catalog.pg_event_trigger
                 WHERE evtname = ANY (%s) AND evtenabled = 'A')
        """,
        (list(EVENT_TRIGGERS),),
    ).fetchone()
    assert row is not None
    if not row[0]:
        return None, True
    inst = conn.execute("SELECT package_version, sql_sha256 FROM pgguard.installation").fetchone()
    if inst is None:
        return None, True
    _refuse_newer(conn)
    if inst[1] != digest or row[1] != len(EVENT_TRIGGERS):
        return inst[0], True
    # same code, but ownership or privileges changed behind its back (REASSIGN OWNED fires no
    # event trigger): re-applying sql/ repairs it
    tampered = conn.execute(
        "SELECT pgguard.foreign_owned_objects() IS NOT NULL OR pgguard.privileges_widened()"
        " IS NOT NULL"
    ).fetchone()
    return inst[0], bool(tampered and tampered[0])


def take_install_lock(conn: psycopg.Connection[Any], wait: str = "60s") -> None:
    """Take pgguard's advisory lock for this transaction, waiting at most ``wait``.

    Any role can take an advisory lock, so a session holding ours must not hang install or
    uninstall forever: past ``wait`` this raises :class:`InstallError` naming the holder.
    """
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(wait)))
    try:
        with conn.transaction():  # a savepoint: a timeout must not poison the transaction
            conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable as e:
        holder = conn.execute(
            "SELECT a.pid, a.usename::text, a.application_name FROM pg_catalog.pg_locks l"
            " JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1",
            (ADVISORY_LOCK_KEY,),
        ).fetchone()
        who = (
            f"pid {holder[0]} (role {holder[1]}, {holder[2] or 'no application_name'})"
            if holder
            else "a session that has ended since"
        )
        raise InstallError(
            f"another session holds pgguard's install lock: {who}; waited {wait}",
            hint="wait for it to finish, or end that session: SELECT pg_terminate_backend(pid)",
        ) from e
    conn.execute("SET LOCAL lock_timeout = DEFAULT")


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(resources.migrations_dir()))
    return {rev.revision for rev in script.walk_revisions()}


def _refuse_newer(conn: psycopg.Connection[Any]) -> None:
    if conn.execute("SELECT to_regclass('pgguard.alembic_version')").fetchone() == (None,):
        return
    installed = {r[0] for r in conn.execute("SELECT version_num FROM pgguard.alembic_version")}
    unknown = installed - _known_revisions()
    if unknown:
        raise NewerSchemaInstalled(
            f"this database holds pgguard schema revision {', '.join(sorted(unknown))}, newer "
            f"than pgguard {__version__} knows; upgrade the pgguard package and run it again",
        )


def _stored_excludes(conn: psycopg.Connection[Any]) -> list[str]:
    if conn.execute("SELECT to_regclass('pgguard.settings')").fetchone() == (None,):
        return []
    row = conn.execute(
        "SELECT value FROM pgguard.settings WHERE name = 'exclude_schemas'"
    ).fetchone()
    return sorted(row[0]) if row else []


def _stored_protect_empty(conn: psycopg.Connection[Any]) -> bool:
    if conn.execute("SELECT to_regclass('pgguard.settings')").fetchone() == (None,):
        return False
    row = conn.execute("SELECT value FROM pgguard.settings WHERE name = 'protect_empty'").fetchone()
    return bool(row and row[0] is True)


def _step1(
    conn: psycopg.Connection[Any],
    digest: str,
    exclude_schemas: Sequence[str] | None,
    protect_empty: bool | None = None,
    *,
    files: Sequence[Any] | None = None,
    roles: Callable[[psycopg.Connection[Any]], None] | None = None,
    finish: Callable[[psycopg.Connection[Any]], None] | None = None,
    owner: str | None = None,
) -> tuple[str, ...]:
    """Roles, schema, tables, code and event triggers, in one transaction.

    Privilege mode (:mod:`pgguard.privmode`) passes its own ``files`` (no event triggers), its
    own ``roles`` step, a ``finish`` step run last in the same transaction, and its ``owner``
    role (recorded in pgguard.settings; the SQL asks ``pgguard.owner_name()``).
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    # Alembic needs a SQLAlchemy connection; wrap ours so the migration runs in this very
    # transaction, under the advisory lock.
    conn.autocommit = False
    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: conn,
        poolclass=StaticPool,
        pool_reset_on_return=None,
    )
    try:
        with engine.connect() as sa_conn, sa_conn.begin():
            raw: psycopg.Connection[Any] = sa_conn.connection.driver_connection  # type: ignore[assignment]
            take_install_lock(raw)
            _refuse_newer(raw)
            before = _alembic_revisions(raw)
            (roles or _create_roles)(raw)
            raw.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS pgguard AUTHORIZATION {}").format(
                    sql.Identifier(owner or OWNER_ROLE)
                )
            )
            if exclude_schemas is not None:
                _authorize_exclusion(raw, exclude_schemas)
            # Our own DDL on schema pgguard would be refused as `uninstall`: the event triggers
            # go first and come back at the end of this same transaction (sql/990).
            for name in EVENT_TRIGGERS:
                raw.execute(sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(name)))
            cfg = Config()
            cfg.set_main_option("script_location", str(resources.migrations_dir()))
            cfg.attributes["connection"] = sa_conn
            command.upgrade(cfg, "head")
            after = _alembic_revisions(raw)
            if owner is not None:
                raw.execute(
                    "INSERT INTO pgguard.settings (name, value)"
                    " VALUES ('owner_role', to_jsonb(%s::text))"
                    " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    (owner,),
                )
            if exclude_schemas is not None:
                raw.execute(
                    """
                    INSERT INTO pgguard.settings (name, value)
                    VALUES ('exclude_schemas', to_jsonb(%s::text[]))
                    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
                    """,
                    (sorted(set(exclude_schemas)),),
                )
            if protect_empty is not None:
                raw.execute(
                    """
                    INSERT INTO pgguard.settings (name, value) VALUES ('protect_empty', %s)
                    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
                    """,
                    (Jsonb(protect_empty),),
                )
            for path in files if files is not None else resources.sql_files():
                try:
                    raw.execute(path.read_text())
                except psycopg.Error as e:
                    raise InstallError(f"applying {path.name} failed: {e}".strip()) from e
            _drop_guards_in_excluded(raw)
            # names as they are now: renames from here on are recorded (pgguard.renames)
            raw.execute(
                "INSERT INTO pgguard.relation_names (relid, path, cols)"
                " SELECT c.oid, pgguard.ident_path(n.nspname, c.relname),"
                "        ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a"
                "               WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum)"
                "   FROM pg_catalog.pg_class c"
                "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                "  WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'"
                "    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgguard',"
                "                          'pgguard_sentinel', 'pgguard_watch')"
                " ON CONFLICT (relid) DO NOTHING"
            )
            # links made before pgguard watched them: a token for a parent covers them
            raw.execute(
                "INSERT INTO pgguard.attachments (relid, parent, attached_at)"
                " SELECT inhrelid, inhparent, '-infinity' FROM pg_catalog.pg_inherits"
                " ON CONFLICT DO NOTHING"
            )
            raw.execute(
                """
                INSERT INTO pgguard.installation (package_version, sql_sha256)
                VALUES (%(v)s, %(d)s)
                ON CONFLICT (singleton) DO UPDATE
                   SET package_version = %(v)s, sql_sha256 = %(d)s, upgraded_at = now(),
                       completed_at = NULL
                """,
                {"v": __version__, "d": digest},
            )
            if finish is not None:
                finish(raw)
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            f"pgguard install lacks a privilege: {e.diag.message_primary}",
            hint="connect as a superuser or the platform's privileged role (see pgguard doctor)",
        ) from e
    except PgguardError:
        raise
    except psycopg.Error as e:
        raise InstallError(f"pgguard install failed and changed nothing: {e}".strip()) from e
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.autocommit = True
    return tuple(r for r in after if r not in before)


def _authorize_exclusion(conn: psycopg.Connection[Any], exclude_schemas: Sequence[str]) -> None:
    """Excluding a schema that holds protected tables switches their guard off: like removing a
    guard, that needs a token with op ``uninstall`` covering those tables (presented as usual,
    e.g. ``pgguard allow --op uninstall --object 'app.*' -- pgguard install --exclude-schema
    app``). Runs before the event triggers go, while pgguard's verifier is in place."""
    if conn.execute("SELECT to_regprocedure('pgguard.authorize_exclusion(text[])')").fetchone() == (
        None,
    ):
        return  # installed by a version without it: nothing to compare against yet
    try:
        with conn.transaction():
            conn.execute("SELECT pgguard.authorize_exclusion(%s::text[])", (list(exclude_schemas),))
    except psycopg.Error as e:
        refused = GuardRefused.from_diag(e)
        if refused is not None:
            raise refused from e
        raise


def _alembic_revisions(conn: psycopg.Connection[Any]) -> list[str]:
    if conn.execute("SELECT to_regclass('pgguard.alembic_version')").fetchone() == (None,):
        return []
    return [r[0] for r in conn.execute("SELECT version_num FROM pgguard.alembic_version")]


def _create_roles(conn: psycopg.Connection[Any]) -> None:
    for role in (OWNER_ROLE, AUDITOR_ROLE):
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
        stmt = "ALTER ROLE {} NOLOGIN" if exists else "CREATE ROLE {} NOLOGIN"
        conn.execute(sql.SQL(stmt).format(sql.Identifier(role)))
    # A non-superuser installer (a platform's privileged role) must be a member of the
    # protected role to hand it ownership; a superuser needs no membership.
    is_super = conn.execute(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if is_super and not is_super[0]:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(OWNER_ROLE), sql.Identifier(conn.info.user)
            )
        )


def _drop_guards_in_excluded(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """
        SELECT t.tgrelid::regclass::text FROM pg_catalog.pg_trigger t
          JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE t.tgname = 'pgguard_truncate_guard' AND n.nspname = ANY (pgguard.excluded_schemas())
        """
    ).fetchall()
    for (table,) in rows:
        # `table` is a regclass rendering: already quoted where it must be
        conn.execute(sql.SQL("DROP TRIGGER pgguard_truncate_guard ON {}").format(sql.SQL(table)))


def _register_keys(conn: psycopg.Connection[Any], keys: list[Any]) -> tuple[str, ...]:
    from .keystore import add_keys

    return add_keys(conn, keys)


# The ddl_command_end triggers that judge the attach step's own statements (per table a CREATE
# TRIGGER and an ALTER TABLE ... ENABLE ALWAYS TRIGGER, each judged again as a nested DDL
# statement: most of install's time per table). attach_guards judges each table itself.
_DDL_END_TRIGGERS = ("pgguard_ddl_end", "pgguard_ddl_check")


def _may_quiet_ddl_end(conn: psycopg.Connection[Any]) -> bool:
    """Whether the attach batches may switch the ddl_command_end triggers off inside their own
    transaction: only a superuser installer, with both triggers there and enabled always."""
    row = conn.execute(
        "SELECT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)"
        " AND (SELECT count(*) FROM pg_catalog.pg_event_trigger"
        "       WHERE evtname = ANY (%s) AND evtenabled = 'A') = %s",
        (list(_DDL_END_TRIGGERS), len(_DDL_END_TRIGGERS)),
    ).fetchone()
    return bool(row and row[0])


def _set_ddl_end(conn: psycopg.Connection[Any], state: str) -> None:
    """DISABLE or ENABLE ALWAYS pgguard's ddl_command_end triggers, in the caller's transaction.

    Other sessions keep seeing them enabled (catalog changes are transactional), so they stay
    guarded meanwhile; an error anywhere in the batch rolls the DISABLE back with it. Before
    the batch may commit, both must be back to ALWAYS: checked, not assumed.
    """
    for name in _DDL_END_TRIGGERS:
        conn.execute(sql.SQL("ALTER EVENT TRIGGER {} " + state).format(sql.Identifier(name)))
    if state != "DISABLE":
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_event_trigger"
            " WHERE evtname = ANY (%s) AND evtenabled = 'A'",
            (list(_DDL_END_TRIGGERS),),
        ).fetchone()
        if not row or row[0] != len(_DDL_END_TRIGGERS):
            raise InstallError("pgguard's ddl_command_end triggers did not come back enabled")


def _step2(
    conn: psycopg.Connection[Any],
    batch_size: int,
    lock_timeout: str,
    retries: int,
    progress: Progress | None,
) -> tuple[int, int, int, list[TableProblem], int, int]:
    """Attach the TRUNCATE guard to every table lacking a good one, batch by batch."""
    pending = [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT relid, format('%I.%I', schema_name, table_name) FROM pgguard.table_guards()"
            " WHERE state <> 'ok' ORDER BY relid"
        )
    ]
    total = len(pending)
    names = dict(pending)
    attached = healed = done = batches = retried = 0
    problems: dict[int, TableProblem] = {}
    if progress:
        progress(0, total)
    todo = [oid for oid, _ in pending]
    quiet = _may_quiet_ddl_end(conn)
    for attempt in range(retries + 1):
        locked: list[int] = []
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            batches += 1
            with conn.transaction():
                if quiet:
                    # ALTER EVENT TRIGGER updates its catalog row without waiting for another
                    # transaction's update of it: two installs' batches (or an uninstall) must
                    # take turns, or one fails with "tuple concurrently updated"
                    take_install_lock(conn)
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout))
                )
                if quiet:
                    _set_ddl_end(conn, "DISABLE")
                rows = conn.execute(
                    "SELECT relid, outcome FROM pgguard.attach_guards(%s::oid[])", (batch,)
                ).fetchall()
                if quiet:
                    _set_ddl_end(conn, "ENABLE ALWAYS")
            for relid, outcome in rows:
                if outcome == "locked":
                    locked.append(relid)
                    continue
                problems.pop(relid, None)
                done += 1
                # 'ok': a parent's attach reached it first (the tree below it is walked)
                if outcome in ("attached", "ok"):
                    attached += 1
                elif outcome == "healed":
                    healed += 1
                elif outcome.startswith("error"):
                    problems[relid] = TableProblem(names[relid], outcome[len("error: ") :])
            if progress:
                progress(done, total)
        if not locked:
            break
        for relid in locked:
            problems[relid] = TableProblem(
                names[relid], f"could not lock it within lock_timeout={lock_timeout}"
            )
        if attempt < retries:
            retried += 1
            time.sleep(min(0.25 * 2**attempt, 4.0))
        todo = locked
    return attached, healed, total, list(problems.values()), batches, retried
