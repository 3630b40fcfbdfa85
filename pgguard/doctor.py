"""`pgguard doctor`: the ways around the guard still open on this database, and how to close each.

A doctor is a list of independent check functions. Each takes a :class:`Context` (the
connection and a few facts read once) and yields :class:`Finding` values; :func:`doctor` runs
them all and collects what they found. Other modes and modules add checks with the
:func:`check` decorator (``pgguard.doctor.check``), so a privilege-mode module can contribute
its own findings without touching this file's checks. A check that fails to run (a catalog the
role may not read) becomes a ``low`` finding that says so, never a crash.

Severities: ``high`` (a role that connects today can get around the guard, or the guard is not
whole: exit 1), ``medium`` (a way around that needs a further step or leaks tokens), ``low``
and ``info`` (worth knowing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .connect import check_server
from .errors import NotInstalled
from .installer import EVENT_TRIGGERS
from .rowlimits import RowLimit, row_limits_if_installed

SEVERITIES = ("high", "medium", "low", "info")


@dataclass(frozen=True)
class Finding:
    """One way around the guard: a stable ``id``, its ``severity``, the ``evidence`` (which
    role, which setting) and the ``fix``."""

    id: str
    severity: str
    evidence: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """The documented JSON shape of one finding."""
        return {
            "id": self.id,
            "severity": self.severity,
            "evidence": self.evidence,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorReport:
    """Everything the checks found, worst first."""

    database: str
    role: str
    server_version: str
    checks: tuple[str, ...]
    findings: tuple[Finding, ...]
    #: every row-loss limit (`pgguard protect-rows`), as its trigger has it
    row_limits: tuple[RowLimit, ...] = ()

    @property
    def open_high(self) -> bool:
        """A high-severity finding is open: exit code 1."""
        return any(f.severity == "high" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape (see README, "doctor --json")."""
        return {
            "database": self.database,
            "role": self.role,
            "server_version": self.server_version,
            "checks": list(self.checks),
            "findings": [f.to_json() for f in self.findings],
            "row_limits": [lim.to_json() for lim in self.row_limits],
            "high": sum(f.severity == "high" for f in self.findings),
        }


@dataclass
class Context:
    """What every check may use: the connection and facts read once."""

    conn: psycopg.Connection[Any]
    version_num: int
    database: str
    role: str
    superuser: bool
    installed_by: str | None
    #: "event-triggers" or "privileges" (pgguard.privmode): checks of one mode skip the other
    mode: str = "event-triggers"
    extra: dict[str, Any] = field(default_factory=dict)

    def rows(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run a read-only query (inside a savepoint when in a transaction)."""
        return list(self.conn.execute(query, params).fetchall())


Check = Callable[[Context], Iterable[Finding]]
#: The registered checks, in the order they run. Extend with :func:`check`.
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a doctor check (a decorator); returns it unchanged."""
    CHECKS.append(fn)
    return fn


def doctor(conn: psycopg.Connection[Any], checks: Iterable[Check] | None = None) -> DoctorReport:
    """Run every check against the connected database; raises :class:`NotInstalled` when
    pgguard is not installed there."""
    check_server(conn)
    row = conn.execute(
        "SELECT current_database(), current_user::text, current_setting('server_version'),"
        " (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),"
        " to_regclass('pgguard.installation') IS NOT NULL"
    ).fetchone()
    assert row is not None
    database, role, version, superuser, installed = row
    if not installed:
        raise NotInstalled(
            f'pgguard is not installed in database "{database}"',
            hint="run pgguard install (as a role that may create event triggers)",
        )
    from . import privmode

    inst = conn.execute("SELECT installed_by FROM pgguard.installation").fetchone()
    ctx = Context(
        conn,
        conn.info.server_version,
        database,
        role,
        bool(superuser),
        inst[0] if inst else None,
        privmode.installed_mode(conn),
    )
    names: list[str] = []
    found: list[Finding] = []
    for fn in CHECKS if checks is None else checks:
        names.append(fn.__name__)
        try:
            found.extend(fn(ctx))
        except psycopg.Error as e:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                conn.rollback()
            found.append(
                Finding(
                    f"check_failed.{fn.__name__}",
                    "low",
                    f"could not run check {fn.__name__}: {str(e).strip()}",
                    "run pgguard doctor as a role that can read the catalogs it needs",
                )
            )
    limits = row_limits_if_installed(conn)
    if not conn.autocommit:
        conn.rollback()
    found.sort(key=lambda f: (SEVERITIES.index(f.severity), f.id, f.evidence))
    return DoctorReport(database, role, version, tuple(names), tuple(found), limits)


# --- the checks --------------------------------------------------------------------------------


@check
def connecting_role(ctx: Context) -> Iterator[Finding]:
    """The role doctor connected as (normally the application's DSN) is itself a way around."""
    if ctx.superuser:
        yield Finding(
            "dsn.superuser",
            "high",
            f'this DSN connects as superuser "{ctx.role}": it can disable or drop pgguard\'s event'
            " triggers, and on PostgreSQL 17+ SET event_triggers = off",
            "give the application its own NOSUPERUSER role that owns its tables; keep superuser"
            " credentials out of application and migration configuration",
        )
    owner = ctx.rows(
        "SELECT d.datdba::regrole::text FROM pg_catalog.pg_database d"
        " WHERE d.datname = current_database()"
        " AND pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')"
    )
    if owner:
        yield Finding(
            "dsn.database_owner",
            "high",
            f'role "{ctx.role}" owns (or is a member of the owner "{owner[0][0]}" of) database'
            f' "{ctx.database}": it can DROP DATABASE, which nothing inside the database sees'
            " (dropdb, Django's reset_db)",
            f'ALTER DATABASE "{ctx.database}" OWNER TO a role the application does not use',
        )
    createdb = ctx.rows(
        "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = current_user AND rolcreatedb"
        " AND NOT rolsuper"
    )
    if createdb:
        yield Finding(
            "dsn.createdb",
            "low",
            f'role "{ctx.role}" has CREATEDB: it can drop the databases it creates (not this one'
            " unless it owns it)",
            f'ALTER ROLE "{ctx.role}" NOCREATEDB, unless it must create databases',
        )


@check
def protected_role_members(ctx: Context) -> Iterator[Finding]:
    """Members and ADMIN holders of the protected role (pgguard_owner, or privilege mode's
    --owner-role) can write pgguard's records."""
    from .privmode import owner_role

    owner = owner_role(ctx.conn)
    for name, admin in ctx.rows(
        """
        SELECT r.rolname::text,
               EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                        WHERE m.roleid = to_regrole(%(o)s) AND m.member = r.oid
                          AND m.admin_option)
          FROM pg_catalog.pg_roles r
         WHERE NOT r.rolsuper AND r.rolname <> %(o)s
           AND r.rolname IS DISTINCT FROM %(by)s
           AND to_regrole(%(o)s) IS NOT NULL
           AND pg_catalog.pg_has_role(r.oid, to_regrole(%(o)s), 'MEMBER')
         ORDER BY 1
        """,
        {"o": owner, "by": ctx.installed_by},
    ):
        yield Finding(
            "role.pgguard_owner_member",
            "high",
            f'role "{name}" is a member of {owner}{" with ADMIN OPTION" if admin else ""}:'
            ' it can forge "created in this transaction" records and spent tokens',
            f'REVOKE {owner} FROM "{name}"',
        )


@check
def createrole_before_16(ctx: Context) -> Iterator[Finding]:
    """On PG 14/15 a CREATEROLE role can grant itself membership in any non-superuser role."""
    if ctx.version_num >= 160000:
        return
    for (name,) in ctx.rows(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolcreaterole AND NOT rolsuper"
        " ORDER BY 1"
    ):
        yield Finding(
            "role.createrole",
            "high",
            f'role "{name}" has CREATEROLE on PostgreSQL {ctx.version_num // 10000}: it can'
            " grant itself pgguard_owner",
            f'ALTER ROLE "{name}" NOCREATEROLE (or upgrade to PostgreSQL 16+, where it needs'
            " ADMIN OPTION)",
        )


@check
def write_all_data(ctx: Context) -> Iterator[Finding]:
    """pg_write_all_data members can write pgguard's bookkeeping tables."""
    for (name,) in ctx.rows(
        "SELECT r.rolname::text FROM pg_catalog.pg_roles r"
        " WHERE NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'"
        " AND pg_catalog.pg_has_role(r.oid, 'pg_write_all_data', 'MEMBER') ORDER BY 1"
    ):
        yield Finding(
            "role.pg_write_all_data",
            "high",
            f'role "{name}" is a member of pg_write_all_data: it can forge pgguard\'s records'
            " (and delete every row of every table)",
            f'REVOKE pg_write_all_data FROM "{name}"',
        )


@check
def parameter_grants(ctx: Context) -> Iterator[Finding]:
    """SET granted on session_replication_role or event_triggers (PG 15+)."""
    if ctx.version_num < 150000:
        return
    for param, grantee in ctx.rows(
        """
        SELECT p.parname::text,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
          FROM pg_catalog.pg_parameter_acl p, pg_catalog.aclexplode(p.paracl) a
         WHERE p.parname IN ('event_triggers', 'session_replication_role')
           AND a.privilege_type = 'SET'
         ORDER BY 1, 2
        """
    ):
        high = param == "event_triggers"
        yield Finding(
            f"grant.set_{param}",
            "high" if high else "low",
            f"SET on parameter {param} is granted to {grantee}"
            + (
                ": that role can switch every event trigger off"
                if high
                else " (harmless while every pgguard trigger is ENABLE ALWAYS)"
            ),
            f"REVOKE SET ON PARAMETER {param} FROM {grantee}",
        )


@check
def event_triggers_setting(ctx: Context) -> Iterator[Finding]:
    """event_triggers = off (PG 17+) in server, database or role settings."""
    if ctx.version_num < 170000:
        return
    for setrole, setdb in ctx.rows(
        """
        SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE s.setrole::regrole::text END,
               s.setdatabase <> 0
          FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
         WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                      WHERE d.datname = current_database()))
           AND pg_catalog.split_part(c, '=', 1) = 'event_triggers'
           AND pg_catalog.lower(pg_catalog.split_part(c, '=', 2))
               IN ('off', 'of', 'false', 'fals', 'fal', 'fa', 'f', 'no', 'n', '0')
         ORDER BY 1
        """
    ):
        target = f'ROLE "{setrole}"' if setrole else f'DATABASE "{ctx.database}"'
        scope = f' IN DATABASE "{ctx.database}"' if setrole and setdb else ""
        yield Finding(
            "setting.event_triggers_off",
            "high",
            f"event_triggers = off is set for {target.lower()}{scope.lower()}: pgguard's event"
            " triggers do not fire there",
            f"ALTER {target}{scope} RESET event_triggers",
        )
    server = ctx.rows(
        "SELECT source FROM pg_catalog.pg_settings WHERE name = 'event_triggers'"
        " AND setting = 'off' AND source IN ('configuration file', 'command line',"
        " 'environment variable')"
    )
    if server:
        yield Finding(
            "setting.event_triggers_off",
            "high",
            f"event_triggers = off in the server's {server[0][0]}",
            "remove event_triggers = off from the server configuration and reload",
        )


@check
def persisted_token(ctx: Context) -> Iterator[Finding]:
    """pgguard.token stored in role/database settings: an approval that never expires from
    the session's point of view (until the token does), readable by others."""
    for setrole, setdb in ctx.rows(
        """
        SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE s.setrole::regrole::text END,
               CASE WHEN s.setdatabase = 0 THEN NULL
                    ELSE (SELECT d.datname::text FROM pg_catalog.pg_database d
                           WHERE d.oid = s.setdatabase) END
          FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
         WHERE pg_catalog.split_part(c, '=', 1) = 'pgguard.token'
         ORDER BY 1, 2
        """
    ):
        target = f'ROLE "{setrole}"' if setrole else f'DATABASE "{setdb}"'
        scope = f' IN DATABASE "{setdb}"' if setrole and setdb else ""
        yield Finding(
            "setting.persisted_token",
            "high",
            f"pgguard.token is stored in the settings of {target.lower()}{scope.lower()}: every"
            " session there presents it",
            f"ALTER {target}{scope} RESET pgguard.token; present tokens per session or"
            " transaction (SET LOCAL, PGOPTIONS)",
        )


@check
def statement_logging(ctx: Context) -> Iterator[Finding]:
    """log_statement = ddl/all writes `SET pgguard.token = …` to the server log."""
    row = ctx.rows("SELECT current_setting('log_statement')")
    if row and row[0][0] in ("all", "ddl", "mod"):
        yield Finding(
            "setting.log_statement",
            "medium" if row[0][0] != "mod" else "low",
            f"log_statement = {row[0][0]}: tokens presented with SET reach the server log",
            "present tokens with PGOPTIONS or set_config() in a parameterised query, or set"
            " log_statement = none for the migration role; keep tokens short-lived (--ttl)",
        )


@check
def unguarded_tables(ctx: Context) -> Iterator[Finding]:
    """Tables without an enabled-ALWAYS TRUNCATE guard."""
    rows = ctx.rows(
        "SELECT format('%I.%I', schema_name, table_name), state FROM pgguard.table_guards()"
        " WHERE state NOT IN ('ok', 'outdated') ORDER BY 1"
    )
    if rows:
        shown = ", ".join(f"{t} ({s})" for t, s in rows[:10])
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        yield Finding(
            "guard.tables_unguarded",
            "high",
            f"{len(rows)} table(s) without an enabled-ALWAYS TRUNCATE guard: {shown}{more}",
            "run pgguard install (it attaches and heals guards); find who disabled them with"
            " pgguard audit",
        )


@check
def event_trigger_state(ctx: Context) -> Iterator[Finding]:
    """pgguard's event triggers: present, ENABLE ALWAYS."""
    if ctx.mode != "event-triggers":
        return
    found = dict(
        ctx.rows(
            "SELECT evtname::text, evtenabled::text FROM pg_catalog.pg_event_trigger"
            " WHERE evtname = ANY (%s)",
            (list(EVENT_TRIGGERS),),
        )
    )
    for name in EVENT_TRIGGERS:
        if name not in found:
            yield Finding(
                "guard.event_trigger_missing",
                "high",
                f"event trigger {name} is missing",
                "run pgguard install as the installing role",
            )
        elif found[name] != "A":
            yield Finding(
                "guard.event_trigger_not_always",
                "high",
                f"event trigger {name} is "
                + str(
                    {"D": "disabled", "O": "origin", "R": "replica"}.get(found[name], found[name])
                ),
                f"ALTER EVENT TRIGGER {name} ENABLE ALWAYS (or run pgguard install)",
            )


@check
def function_integrity(ctx: Context) -> Iterator[Finding]:
    """pgguard's functions as the catalog holds them, against the code this package ships."""
    from .sqlcode import shipped_functions

    shipped = shipped_functions(ctx.mode)
    live = {
        name: src
        for name, src in ctx.rows(
            "SELECT n.nspname || '.' || p.proname, p.prosrc FROM pg_catalog.pg_proc p"
            " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')"
        )
    }
    changed = sorted(
        name
        for name, src in shipped.items()
        if name in live and _digest(live[name]) != _digest(src)
    )
    missing = sorted(name for name in shipped if name not in live)
    if changed or missing:
        what = ", ".join([*changed, *(f"{m} (missing)" for m in missing)][:10])
        yield Finding(
            "guard.functions_changed",
            "high",
            f"pgguard function(s) differ from this package's code: {what}",
            "run pgguard install with the package version that installed it (an older or newer"
            " package reports its own code as different), and find out who changed them",
        )


@check
def platform_notes(ctx: Context) -> Iterator[Finding]:
    """Caveats of managed platforms, where they can be detected."""
    if ctx.rows("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rds_superuser'"):
        yield Finding(
            "platform.rds_major_upgrade",
            "info",
            "Amazon RDS/Aurora: a major-version upgrade fails while event triggers exist",
            "before the upgrade: pgguard allow --op uninstall --object pgguard -- pgguard"
            " uninstall (keys and audit go with it: export them first with pgguard audit --json"
            " and keys list); after it: pgguard install --key-file ... again",
        )


def _digest(src: str) -> str:
    return hashlib.sha256(src.strip().encode()).hexdigest()


# privilege mode's and row-loss limits' own checks register themselves on CHECKS (they import
# this module)
from . import privmode_doctor, rowlimits_doctor  # noqa: E402,F401
