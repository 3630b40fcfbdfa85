"""`pgguard status`: is the guard whole? The deploy health check.

Healthy means: both event triggers present and ``ENABLE ALWAYS``, every table outside the
excluded schemas carrying an enabled-``ALWAYS`` TRUNCATE guard, and the last install finished.
Anything else is degraded, with each problem named. Any role that can connect may run it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ._version import __version__
from .connect import check_server
from .errors import NotInstalled
from .installer import EVENT_TRIGGERS

#: How many unprotected tables `Status` lists by name (the count is always exact).
LIST_LIMIT = 100

_ENABLED_WORDS = {"A": "always", "O": "origin", "R": "replica", "D": "disabled"}


@dataclass(frozen=True)
class EventTriggerState:
    """One of pgguard's event triggers as the catalog has it."""

    name: str
    present: bool
    enabled: str | None  # "always" | "origin" | "replica" | "disabled" | None when missing

    @property
    def ok(self) -> bool:
        """Present and firing in every replication mode."""
        return self.present and self.enabled == "always"


@dataclass(frozen=True)
class TableState:
    """A table that should carry a TRUNCATE guard and does not carry a good one."""

    table: str
    state: str  # "missing" | "disabled" | "not_always" | "replaced"


@dataclass(frozen=True)
class RowLimitState:
    """A table's row-loss limit for one op (`pgguard protect-rows`), as its trigger has it."""

    table: str
    op: str  # "delete_rows" | "update_rows"
    max_rows: int
    max_fraction: float
    enabled: str  # "always" | "origin" | "replica" | "disabled"


@dataclass(frozen=True)
class Status:
    """Health of pgguard in one database."""

    database: str
    server_version: str
    installed_version: str
    package_version: str
    installed_at: dt.datetime
    install_complete: bool
    event_triggers: tuple[EventTriggerState, ...]
    tables_protected: int
    tables_unprotected_count: int
    tables_unprotected: tuple[TableState, ...]
    excluded_schemas: tuple[str, ...]
    keys_live: int
    keys_revoked: int
    overrides_24h: int
    refusals_total: int
    problems: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    #: "event-triggers" or "privileges" (see pgguard.privmode)
    mode: str = "event-triggers"
    row_limits: tuple[RowLimitState, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """No problem found: exit code 0."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape (see README, "status --json")."""
        data = asdict(self)
        data["installed_at"] = self.installed_at.isoformat()
        data["healthy"] = self.healthy
        data["event_triggers"] = [
            {"name": t.name, "present": t.present, "enabled": t.enabled, "ok": t.ok}
            for t in self.event_triggers
        ]
        return data


def status(conn: psycopg.Connection[Any]) -> Status:
    """Read pgguard's health; raises :class:`NotInstalled` when it is not installed."""
    check_server(conn)
    row = conn.execute(
        "SELECT current_database(), current_setting('server_version'),"
        " to_regclass('pgguard.installation') IS NOT NULL"
    ).fetchone()
    assert row is not None
    database, server_version, has_table = row
    inst = (
        conn.execute(
            "SELECT package_version, installed_at, completed_at FROM pgguard.installation"
        ).fetchone()
        if has_table
        else None
    )
    if inst is None:
        _end(conn)
        raise NotInstalled(
            f'pgguard is not installed in database "{database}"',
            hint="run pgguard install (as a role that may create event triggers)",
        )
    installed_version, installed_at, completed_at = inst

    from . import privmode

    mode = privmode.installed_mode(conn)
    expected = EVENT_TRIGGERS if mode == privmode.MODE_EVENT_TRIGGERS else ()
    found = {
        name: enabled
        for name, enabled in conn.execute(
            "SELECT evtname::text, evtenabled::text FROM pg_catalog.pg_event_trigger"
            " WHERE evtname = ANY (%s)",
            (list(EVENT_TRIGGERS),),
        )
    }
    triggers = tuple(
        EventTriggerState(
            name, name in found, _ENABLED_WORDS.get(found[name]) if name in found else None
        )
        for name in expected
    )
    # 'outdated': the guard's form before the WHEN clause, which protects as well (install
    # replaces it): protected, and a note
    counts = conn.execute(
        "SELECT count(*) FILTER (WHERE state IN ('ok', 'outdated')),"
        " count(*) FILTER (WHERE state NOT IN ('ok', 'outdated')),"
        " count(*) FILTER (WHERE state = 'outdated')"
        " FROM pgguard.table_guards()"
    ).fetchone()
    assert counts is not None
    bad = tuple(
        TableState(name, state)
        for name, state in conn.execute(
            "SELECT format('%%I.%%I', schema_name, table_name), state FROM pgguard.table_guards()"
            " WHERE state NOT IN ('ok', 'outdated') ORDER BY 1 LIMIT %s",
            (LIST_LIMIT,),
        )
    )
    excluded = tuple(
        r[0] for r in conn.execute("SELECT unnest(pgguard.excluded_schemas()) ORDER BY 1")
    )
    keys = conn.execute(
        "SELECT count(*) FILTER (WHERE revoked_at IS NULL),"
        " count(*) FILTER (WHERE revoked_at IS NOT NULL) FROM pgguard.keys"
    ).fetchone()
    assert keys is not None
    activity = {
        kind: n for kind, n, _ in conn.execute("SELECT * FROM pgguard.recent_activity('24 hours')")
    }
    total = conn.execute("SELECT pgguard.refusals_total()").fetchone()
    row_limits = _row_limits(conn)
    row_limits_missing = _row_limits_missing(conn)
    integrity = conn.execute(
        "SELECT pgguard.foreign_owned_objects(), pgguard.privileges_widened()"
    ).fetchone()
    owner = privmode.owner_role(conn)
    mode_problems = privmode.status_problems(conn) if mode == privmode.MODE_PRIVILEGES else []
    bypasses = _bypasses(conn)
    _end(conn)

    problems: list[str] = []
    for t in triggers:
        if not t.present:
            problems.append(f"event trigger {t.name} is missing")
        elif not t.ok:
            problems.append(f"event trigger {t.name} is {t.enabled}, not enabled always")
    if counts[1]:
        problems.append(f"{counts[1]} table(s) without an enabled-always TRUNCATE guard")
    if completed_at is None:
        problems.append("the last install did not finish")
    if integrity and integrity[0]:
        problems.append(
            f"{len(integrity[0])} pgguard object(s) not owned by {owner} (e.g. "
            f"{integrity[0][0]}): run pgguard install to repair"
        )
    if integrity and integrity[1]:
        problems.append(f"a write privilege was granted on pgguard's objects: {integrity[1]}")
    problems.extend(mode_problems)
    problems.extend(row_limits_missing)
    for lim in row_limits:
        if lim.enabled != "always":
            problems.append(
                f"the row-loss limit ({lim.op}) on {lim.table} is {lim.enabled}, not enabled always"
            )
    problems.extend(bypasses)
    notes: list[str] = []
    if installed_version != __version__:
        notes.append(
            f"installed version {installed_version} differs from this package's {__version__}:"
            " run pgguard install to upgrade"
        )
    if counts[2]:
        notes.append(
            f"{counts[2]} table(s) carry the TRUNCATE guard in its earlier form (it protects"
            " them; TRUNCATE of many tables is slower): run pgguard install to replace it"
        )
    if not keys[0]:
        notes.append("no approver key is registered: no override token can be accepted")
    return Status(
        database=database,
        server_version=server_version,
        installed_version=installed_version,
        package_version=__version__,
        installed_at=installed_at,
        install_complete=completed_at is not None,
        event_triggers=triggers,
        tables_protected=counts[0],
        tables_unprotected_count=counts[1],
        tables_unprotected=bad,
        excluded_schemas=excluded,
        keys_live=keys[0],
        keys_revoked=keys[1],
        overrides_24h=activity.get("override", 0),
        refusals_total=total[0] if total else 0,
        problems=tuple(problems),
        notes=tuple(notes),
        mode=mode,
        row_limits=row_limits,
    )


def _row_limits_missing(conn: psycopg.Connection[Any]) -> list[str]:
    """Row-loss limits recorded by `protect-rows` whose trigger is gone."""
    row = conn.execute("SELECT to_regprocedure('pgguard.row_limits_missing()')").fetchone()
    if row is None or row[0] is None:
        return []
    return [
        f"the row-loss limit ({r[1]}) on {r[0]} is missing: its trigger was dropped"
        " (pgguard protect-rows puts it back)"
        for r in conn.execute(
            "SELECT pgguard.ident_path(schema_name, table_name), op"
            " FROM pgguard.row_limits_missing() ORDER BY 1, 2"
        )
    ]


def _row_limits(conn: psycopg.Connection[Any]) -> tuple[RowLimitState, ...]:
    """Tables with row-loss limits (none before the deploy loop was installed)."""
    row = conn.execute("SELECT to_regprocedure('pgguard.row_limits()')").fetchone()
    if row is None or row[0] is None:
        return ()
    return tuple(
        RowLimitState(r[0], r[1], int(r[2]), float(r[3]), r[4])
        for r in conn.execute(
            "SELECT pgguard.ident_path(schema_name, table_name), op, max_rows, max_fraction,"
            " enabled FROM pgguard.row_limits() ORDER BY 1, 2"
        )
    )


def _bypasses(conn: psycopg.Connection[Any]) -> list[str]:
    """Ways around the guard that settings and grants open, which no event trigger sees:
    members of the protected role (they can forge pgguard's records), and on PostgreSQL 17+
    ``event_triggers = off`` (it silences even ``ENABLE ALWAYS`` triggers) in role or database
    settings or granted with ``SET ON PARAMETER``. ``pgguard doctor`` explains each."""
    found: list[str] = []
    row = conn.execute(
        """
        SELECT array_agg(r.rolname::text ORDER BY r.rolname)
          FROM pg_catalog.pg_roles r
         WHERE NOT r.rolsuper AND r.oid IS DISTINCT FROM pgguard.owner_oid()
           AND r.rolname <> (SELECT i.installed_by FROM pgguard.installation i)
           AND pg_catalog.pg_has_role(r.oid, pgguard.owner_oid(), 'MEMBER')
        """
    ).fetchone()
    if row and row[0]:
        owner = conn.execute("SELECT pgguard.owner_name()").fetchone()
        name = owner[0] if owner else "pgguard_owner"
        found.append(
            f"role(s) {', '.join(row[0])} are members of {name} and can forge pgguard's"
            f" records: REVOKE {name} FROM them"
        )
    if conn.info.server_version >= 170000:
        settings = conn.execute(
            """
            SELECT pg_catalog.format('%s%s',
                       CASE WHEN s.setrole = 0 THEN 'every role'
                            ELSE 'role ' || s.setrole::regrole::text END,
                       CASE WHEN s.setdatabase = 0 THEN '' ELSE ' in this database' END)
              FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
             WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                          WHERE d.datname = pg_catalog.current_database()))
               AND pg_catalog.split_part(c, '=', 1) = 'event_triggers'
               AND pg_catalog.lower(pg_catalog.split_part(c, '=', 2))
                   IN ('off', 'of', 'false', 'fals', 'fal', 'fa', 'f', 'no', 'n', '0')
             ORDER BY 1
            """
        ).fetchall()
        for (where,) in settings:
            found.append(f"event_triggers = off is set for {where}: the guard does not fire there")
        server = conn.execute(
            "SELECT source FROM pg_catalog.pg_settings WHERE name = 'event_triggers'"
            " AND setting = 'off' AND source IN ('configuration file', 'command line',"
            " 'environment variable', 'default')"
        ).fetchone()
        if server:
            found.append(f"event_triggers = off in the server's {server[0]}: the guard is off")
    if conn.info.server_version >= 150000:
        grants = conn.execute(
            """
            SELECT pg_catalog.format('SET on parameter %s to %s', p.parname,
                       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END)
              FROM pg_catalog.pg_parameter_acl p, pg_catalog.aclexplode(p.paracl) a
             WHERE p.parname IN ('event_triggers', 'session_replication_role')
               AND a.privilege_type = 'SET'
             ORDER BY 1
            """
        ).fetchall()
        for (grant,) in grants:
            if grant.startswith("SET on parameter event_triggers"):
                found.append(f"{grant} is granted: that role can switch the guard off")
    return found


def _end(conn: psycopg.Connection[Any]) -> None:
    # leave a non-autocommit connection as we found it: idle, not in a read transaction
    if not conn.autocommit:
        conn.rollback()
