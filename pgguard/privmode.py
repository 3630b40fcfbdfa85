"""Privilege mode: protection where event triggers are forbidden (Render, Heroku, Aiven, ...).

Without event triggers a DROP TABLE can be stopped only by privilege, so install moves every
guarded schema and everything in it to ``pgguard_owner`` (recording the owners it had), gives the
app role data privileges only, leaves the installing credential without membership in
``pgguard_owner``, and lets schema changes through ``pgguard.run_ddl()`` (sql/privileges/), a
``SECURITY DEFINER`` executor that checks each statement's effects against the session's token.

This module is the privilege-mode side of ``install``, ``status`` and ``uninstall``; the
event-trigger side is :mod:`pgguard.installer` and :mod:`pgguard.removal`. :func:`probe` tells
which of the two a connection can have.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import resources
from .errors import InstallError, PrivilegeError, UsageError

MODE_EVENT_TRIGGERS = "event-triggers"
MODE_PRIVILEGES = "privileges"
OWNER_ROLE = "pgguard_owner"
AUDITOR_ROLE = "pgguard_auditor"
#: sql/ files that only event-trigger mode applies: they create event triggers, or guard them.
EVENT_TRIGGER_ONLY = ("095_sentinel.sql", "096_watch.sql", "990_event_triggers.sql")
#: What the app role may do to data in guarded schemas. TRUNCATE included on purpose: the
#: ENABLE ALWAYS guard trigger then answers with PGG01 and the HINT, not "permission denied".
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
#: Roles that may create event triggers on managed platforms, by platform.
PLATFORM_ROLES = {
    "rds_superuser": "Amazon RDS / Aurora",
    "cloudsqlsuperuser": "Google Cloud SQL",
    "neon_superuser": "Neon",
    "azure_pg_admin": "Azure Database for PostgreSQL",
    "supabase_admin": "Supabase",
}


@dataclass(frozen=True)
class Capabilities:
    """What the connected role can do, found without changing anything."""

    role: str
    server_major: int
    superuser: bool
    event_triggers: bool
    createrole: bool
    owns_database: bool
    owner_role_exists: bool
    auditor_role_exists: bool
    owner_admin: bool  # can grant the owner role to itself (ADMIN, CREATEROLE on <=15, member)
    admin_of: tuple[str, ...]  # roles it holds ADMIN OPTION on
    blocked_schemas: tuple[str, ...]  # guarded schemas whose owner it cannot act as
    owner_role: str = OWNER_ROLE  # the protected role (--owner-role)

    @property
    def mode(self) -> str:
        """The mode install picks when not told."""
        return MODE_EVENT_TRIGGERS if self.event_triggers else MODE_PRIVILEGES

    def missing_for_privileges(self, app_role_exists: bool) -> list[str]:
        """What privilege mode still needs, each with how to get it (empty: ready)."""
        missing = []
        if not self.owner_role_exists and not self.createrole:
            missing.append(
                f'role "{self.owner_role}" does not exist and "{self.role}" may not create roles:'
                f" create it outside SQL (Heroku: heroku pg:credentials:create --name"
                f" {self.owner_role}) and run install again"
            )
        elif self.owner_role_exists and not self.owner_admin:
            missing.append(
                f'"{self.role}" can neither become nor grant "{self.owner_role}": it needs ADMIN'
                f" OPTION on it (Heroku gives the default credential that on every other"
                f" credential: heroku pg:credentials:repair-default)"
            )
        if not self.auditor_role_exists and not self.createrole:
            missing.append(
                f'role "{AUDITOR_ROLE}" does not exist and "{self.role}" may not create roles'
                f" (Heroku: heroku pg:credentials:create --name {AUDITOR_ROLE})"
            )
        if not app_role_exists and not self.createrole:
            missing.append(
                "the app role does not exist and cannot be created here: name an existing"
                " one with --app-role (Heroku: heroku pg:credentials:create --name app_rw)"
            )
        for schema in self.blocked_schemas:
            missing.append(
                f'schema "{schema}" (or something in it) belongs to a role "{self.role}" cannot'
                f" act as: give it to {self.role}, or leave it out with --exclude-schema"
                f" {schema}"
            )
        return missing


@dataclass(frozen=True)
class PrivilegeInstall:
    """What the privilege-mode part of install did."""

    app_role: str
    app_role_created: bool
    app_password: str | None  # only when install created the role: shown once, never stored
    objects_taken: int
    guards_attached: int
    notes: tuple[str, ...]


def probe(
    conn: psycopg.Connection[Any],
    exclude_schemas: Sequence[str] = (),
    owner_role: str = OWNER_ROLE,
) -> Capabilities:
    """Find out what the connected role can do; reads the catalog only. ``owner_role``: the
    protected role privilege mode would use (``--owner-role``)."""
    row = conn.execute(
        """
        SELECT current_user::text, current_setting('server_version_num')::int / 10000,
               r.rolsuper, r.rolcreaterole,
               EXISTS (SELECT 1 FROM pg_catalog.pg_roles b WHERE b.rolname = ANY (%(platform)s)
                        AND pg_catalog.pg_has_role(current_user, b.oid, 'member')),
               (SELECT d.datdba = r.oid FROM pg_catalog.pg_database d
                 WHERE d.datname = current_database()),
               to_regrole(%(owner)s) IS NOT NULL, to_regrole(%(auditor)s) IS NOT NULL,
               ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m
                       JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid AND m.admin_option ORDER BY 1)
          FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
        """,
        {"platform": list(PLATFORM_ROLES), "owner": owner_role, "auditor": AUDITOR_ROLE},
    ).fetchone()
    assert row is not None
    role, major, superuser, createrole, platform, owns_db, owner_exists, auditor_exists, admin = row
    if not owner_exists:
        owner_admin = bool(createrole or superuser)
    else:
        owner_admin = bool(
            superuser
            or owner_role in admin
            or (createrole and major <= 15)
            or conn.execute(
                "SELECT pg_has_role(current_user, %s, 'USAGE')", (owner_role,)
            ).fetchone()
            == (True,)
        )
    blocked = [
        r[0]
        for r in conn.execute(
            """
            SELECT DISTINCT n.nspname::text FROM pg_catalog.pg_namespace n
              LEFT JOIN pg_catalog.pg_class c
                     ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                    AND c.relpersistence <> 't'
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgguard',
                                     'pgguard_sentinel')
               AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
               AND NOT n.nspname = ANY (%(excl)s)
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                WHERE d.classid = 'pg_catalog.pg_namespace'::regclass
                                  AND d.objid = n.oid AND d.deptype = 'e')
               AND (NOT (pg_catalog.pg_has_role(current_user, n.nspowner, 'USAGE')
                         OR n.nspowner = to_regrole(%(owner)s))
                    OR (c.oid IS NOT NULL
                        AND NOT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
                        AND c.relowner IS DISTINCT FROM to_regrole(%(owner)s)
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                         WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                           AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))))
             ORDER BY 1
            """,
            {"excl": list(exclude_schemas), "owner": owner_role},
        )
    ]
    if superuser:
        blocked = []
    return Capabilities(
        role=role,
        server_major=major,
        superuser=bool(superuser),
        event_triggers=bool(superuser or platform),
        createrole=bool(createrole),
        owns_database=bool(owns_db),
        owner_role_exists=bool(owner_exists),
        auditor_role_exists=bool(auditor_exists),
        owner_admin=owner_admin,
        admin_of=tuple(admin),
        blocked_schemas=tuple(blocked),
        owner_role=owner_role,
    )


def sql_files() -> list[Path]:
    """The server-side files privilege mode applies, in order."""
    shared = [p for p in resources.sql_files() if p.name not in EVENT_TRIGGER_ONLY]
    own = (resources.sql_dir() / "privileges").glob("[0-9][0-9][0-9]_*.sql")
    # one sequence by number: 900_privileges.sql (owner, REVOKE FROM PUBLIC) after our code,
    # our 950_grants.sql after it
    return sorted([*shared, *own], key=lambda p: p.name)


def installed_mode(conn: psycopg.Connection[Any]) -> str:
    """The mode recorded at install (event-trigger mode for installs older than the setting)."""
    if conn.execute("SELECT to_regclass('pgguard.settings')").fetchone() == (None,):
        return MODE_EVENT_TRIGGERS
    row = conn.execute("SELECT value #>> '{}' FROM pgguard.settings WHERE name = 'mode'").fetchone()
    return str(row[0]) if row else MODE_EVENT_TRIGGERS


def app_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """The app roles recorded at install."""
    row = conn.execute(
        "SELECT ARRAY(SELECT jsonb_array_elements_text(value)) FROM pgguard.settings"
        " WHERE name = 'app_roles'"
    ).fetchone()
    return list(row[0]) if row else []


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def owner_role(conn: psycopg.Connection[Any]) -> str:
    """The protected role of this database's install: the ``--owner-role`` recorded at install
    (pgguard.settings ``owner_role``), else pgguard_owner."""
    if conn.execute("SELECT to_regclass('pgguard.settings')").fetchone() == (None,):
        return OWNER_ROLE
    row = conn.execute(
        "SELECT value #>> '{}' FROM pgguard.settings WHERE name = 'owner_role'"
    ).fetchone()
    return str(row[0]) if row and row[0] else OWNER_ROLE


def become_owner(conn: psycopg.Connection[Any], owner: str | None = None) -> bool:
    """Make the connected role a member of the owner role (default: this install's) for this
    transaction's work.

    Returns whether it had to grant itself (then :func:`give_up_owner` revokes it)."""
    owner = owner or owner_role(conn)
    row = conn.execute(
        "SELECT rolsuper, pg_has_role(current_user, %s, 'USAGE'),"
        " current_setting('server_version_num')::int >= 160000"
        " FROM pg_roles WHERE rolname = current_user",
        (owner,),
    ).fetchone()
    assert row is not None
    if row[0] or row[1]:
        return False
    grant = sql.SQL("GRANT {} TO {}").format(_ident(owner), _ident(conn.info.user))
    if row[2]:
        grant += sql.SQL(" WITH INHERIT TRUE, SET TRUE")
    try:
        with conn.transaction():
            conn.execute(grant)
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            f'"{conn.info.user}" cannot make itself a member of {owner}, which privilege-'
            f"mode install and uninstall need for the length of one transaction: "
            f"{e.diag.message_primary}",
            hint=f"it needs ADMIN OPTION on {owner} (or CREATEROLE on PostgreSQL 15 and"
            " older); see pgguard doctor",
        ) from e
    return True


def give_up_owner(conn: psycopg.Connection[Any], owner: str | None = None) -> None:
    """Leave the connected role without membership in the owner role (ADMIN, on PostgreSQL 16+
    the creator's, cannot be given up; doctor lists it)."""
    owner = owner or owner_role(conn)
    conn.execute(sql.SQL("REVOKE {} FROM {}").format(_ident(owner), _ident(conn.info.user)))


def create_roles(
    conn: psycopg.Connection[Any], caps: Capabilities, app_role: str
) -> tuple[bool, str | None]:
    """The owner role, pgguard_auditor and the app role, where missing. Returns (app role
    created, its password)."""
    for role in (caps.owner_role, AUDITOR_ROLE):
        if conn.execute("SELECT to_regrole(%s)", (role,)).fetchone() == (None,):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(_ident(role)))
    if conn.execute("SELECT to_regrole(%s)", (app_role,)).fetchone() != (None,):
        return False, None
    password = secrets.token_urlsafe(24)
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(_ident(app_role), sql.Literal(password))
    )
    return True, password


def check_app_role(conn: psycopg.Connection[Any], app_role: str, owner: str = OWNER_ROLE) -> None:
    """Refuse an app role that would hold the owner's power anyway."""
    row = conn.execute(
        """
        SELECT r.rolsuper, r.rolname = current_user,
               pg_has_role(r.oid, %(owner)s, 'USAGE') OR pg_has_role(r.oid, %(owner)s, 'MEMBER'),
               EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid
                        AND m.roleid = %(owner)s::regrole AND m.admin_option)
          FROM pg_roles r WHERE r.rolname = %(app)s
        """,
        {"owner": owner, "app": app_role},
    ).fetchone()
    assert row is not None
    if row[0]:
        raise UsageError(f'app role "{app_role}" is a superuser: no guard can restrain it')
    if row[1]:
        raise UsageError(
            f'app role "{app_role}" is the installing role: the app needs a role of its own,'
            " so the installing credential can stay out of the app's hands"
        )
    if row[2] or row[3]:
        raise UsageError(f'app role "{app_role}" can become {owner}: revoke that first')
    if app_role == owner:
        raise UsageError(
            f'app role "{app_role}" is the owner role: the app needs a role of its own'
        )


def take_ownership(conn: psycopg.Connection[Any], owner: str = OWNER_ROLE) -> int:
    """Record and move every guarded schema and object to the owner role. Returns how many."""
    moved = 0
    # schemas first (with whether PUBLIC could CREATE there), then tables (their indexes and
    # owned sequences follow them), then whatever is left
    for oid, name, current, public_create in conn.execute(
        """
        SELECT n.oid, n.nspname::text, n.nspowner::regrole::text,
               EXISTS (SELECT 1 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
                        WHERE a.grantee = 0 AND a.privilege_type = 'CREATE')
          FROM pg_namespace n WHERE n.oid = ANY (pgguard.guarded_schemas())
        """
    ).fetchall():
        conn.execute(
            "INSERT INTO pgguard.original_owners (classid, objid, kind, identity, owner_name,"
            " public_create) VALUES ('pg_namespace'::regclass, %s, 'schema', %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (oid, name, current, public_create),
        )
        if current != owner:
            conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(_ident(name), _ident(owner)))
            moved += 1
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(_ident(name)))
    for _ in range(3):
        drift = conn.execute(
            "SELECT d.kind, d.object, d.owner, d.classid, d.objid"
            " FROM pgguard.ownership_drift() d WHERE d.kind <> 'schema'"
            " ORDER BY d.kind <> 'table', d.kind"
        ).fetchall()
        if not drift:
            break
        for kind, obj, was, classid, objid in drift:
            conn.execute(
                "INSERT INTO pgguard.original_owners (classid, objid, kind, identity, owner_name)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (classid, objid, kind, obj, was),
            )
            try:
                with conn.transaction():
                    conn.execute(_alter_owner(kind, obj, owner))
                moved += 1
            except psycopg.errors.ObjectNotInPrerequisiteState:
                continue  # a sequence owned by a table: it follows the table
    left = conn.execute("SELECT kind, object, owner FROM pgguard.ownership_drift()").fetchall()
    if left:
        kind, obj, was = left[0]
        raise InstallError(
            f"{len(left)} object(s) in guarded schemas could not be given to {owner}, e.g."
            f" {kind} {obj} (owner {was}); nothing was changed",
            hint="give them to the installing role, or exclude their schema (--exclude-schema)",
        )
    return moved


def _alter_owner(kind: str, obj: str, to: str) -> sql.Composed:
    verb = {
        "table": "TABLE",
        "view": "VIEW",
        "materialized view": "MATERIALIZED VIEW",
        "sequence": "SEQUENCE",
        "foreign table": "FOREIGN TABLE",
        "relation": "TYPE",  # a standalone composite type
        "function": "ROUTINE",
        "type": "TYPE",
        "operator": "OPERATOR",
        "collation": "COLLATION",
        "conversion": "CONVERSION",
        "text search configuration": "TEXT SEARCH CONFIGURATION",
        "text search dictionary": "TEXT SEARCH DICTIONARY",
        "statistics": "STATISTICS",
        "operator class": "OPERATOR CLASS",
        "operator family": "OPERATOR FAMILY",
    }[kind]
    # `obj` is a regclass/regprocedure/regtype/regoperator rendering or a quoted path (with
    # USING for operator classes and families): already quoted where it must be
    return sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(verb), sql.SQL(obj), _ident(to))


def grant_app(
    conn: psycopg.Connection[Any], roles: Iterable[str], owner_name: str = OWNER_ROLE
) -> None:
    """Data privileges on everything guarded, now and later (default privileges)."""
    schemas = [
        r[0]
        for r in conn.execute(
            "SELECT nspname::text FROM pg_namespace WHERE oid = ANY (pgguard.guarded_schemas())"
        )
    ]
    for role in roles:
        who = _ident(role)
        for schema in schemas:
            s = _ident(schema)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, who))
            conn.execute(
                sql.SQL("GRANT " + TABLE_PRIVILEGES + " ON ALL TABLES IN SCHEMA {} TO {}").format(
                    s, who
                )
            )
            conn.execute(
                sql.SQL(
                    "GRANT " + SEQUENCE_PRIVILEGES + " ON ALL SEQUENCES IN SCHEMA {} TO {}"
                ).format(s, who)
            )
        owner = _ident(owner_name)
        for what, privs in (
            ("TABLES", TABLE_PRIVILEGES),
            ("SEQUENCES", SEQUENCE_PRIVILEGES),
            ("SCHEMAS", "USAGE"),
        ):
            conn.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT " + privs + " ON " + what + " TO {}"
                ).format(owner, who)
            )


def digest() -> str:
    """What a re-install compares: the shared code's digest plus privilege mode's own files."""
    import hashlib

    from .installer import sql_digest

    h = hashlib.sha256(("privileges:" + sql_digest()).encode())
    for path in sql_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def install(
    conn: psycopg.Connection[Any],
    caps: Capabilities,
    *,
    app_role: str | None,
    exclude_schemas: Sequence[str] | None,
    protect_empty: bool | None = None,
) -> tuple[PrivilegeInstall, tuple[str, ...]] | None:
    """The privilege-mode install, in ONE transaction: a guard is whole or not there at all.

    Schema, tables and code go in as in event-trigger mode (:func:`pgguard.installer._step1`),
    minus the event triggers; then ownership, privileges and every table's guard, and last the
    installing role gives up its membership in the owner role (``caps.owner_role``). Returns
    ``None`` when a current,
    whole install is there already (nothing written), else what it did and the migrations run.
    """
    from .installer import _step1

    prior_roles = app_roles(conn) if installed_mode(conn) == MODE_PRIVILEGES else []
    role = app_role or (prior_roles[0] if prior_roles else None)
    if not role:
        raise UsageError(
            "privilege mode needs the app role: --app-role NAME (an existing role, or a new one"
            " install creates and prints the password of, once)"
        )
    code = digest()
    stored_excl = None
    if installed_mode(conn) == MODE_PRIVILEGES:
        row = conn.execute(
            "SELECT ARRAY(SELECT jsonb_array_elements_text(value) ORDER BY 1) FROM"
            " pgguard.settings WHERE name = 'exclude_schemas'"
        ).fetchone()
        stored_excl = sorted(row[0]) if row else []
    from .installer import _stored_protect_empty

    if (
        is_current(conn, code, app_role)
        and (exclude_schemas is None or sorted(set(exclude_schemas)) == stored_excl)
        and (protect_empty is None or _stored_protect_empty(conn) == protect_empty)
    ):
        return None
    exists = conn.execute("SELECT to_regrole(%s) IS NOT NULL", (role,)).fetchone() == (True,)
    missing = caps.missing_for_privileges(exists)
    if missing:
        raise PrivilegeError(
            "privilege mode cannot be installed here; nothing was changed:\n  - "
            + "\n  - ".join(missing),
            hint="run pgguard doctor for what this role can do",
        )
    notes: list[str] = []
    state: dict[str, Any] = {}
    roles = sorted(set(prior_roles) | {role})

    owner = caps.owner_role

    def make_roles(raw: psycopg.Connection[Any]) -> None:
        state["created"], state["password"] = create_roles(raw, caps, role)
        check_app_role(raw, role, owner)
        state["granted"] = become_owner(raw, owner)

    def finish(raw: psycopg.Connection[Any]) -> None:
        raw.execute(
            "INSERT INTO pgguard.settings (name, value) VALUES ('mode', to_jsonb(%s::text)),"
            " ('app_roles', to_jsonb(%s::text[]))"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            (MODE_PRIVILEGES, roles),
        )
        for path in sql_files():
            if path.name == "950_grants.sql":  # the app roles are known only now
                raw.execute(path.read_text())
        state["moved"] = take_ownership(raw, owner)
        grant_app(raw, roles, owner)
        try:
            with raw.transaction():
                raw.execute(
                    sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                        _ident(raw.info.dbname), _ident(owner)
                    )
                )
        except psycopg.errors.InsufficientPrivilege:
            notes.append(
                f"{owner} may not create schemas here (the installing role cannot grant"
                " CREATE on the database): CREATE SCHEMA through the executor will fail"
            )
        attached = 0
        for relid, outcome in raw.execute(
            "SELECT relid, outcome FROM pgguard.attach_guards(ARRAY(SELECT relid FROM"
            " pgguard.table_guards() WHERE state <> 'ok'))"
        ).fetchall():
            if outcome in ("attached", "healed"):
                attached += 1
            elif outcome not in ("ok", "gone", "skipped"):
                raise InstallError(f"could not guard table oid {relid}: {outcome}")
        state["attached"] = attached
        raw.execute("UPDATE pgguard.installation SET completed_at = now()")
        if state["granted"]:
            give_up_owner(raw, owner)

    migrations = _step1(
        conn,
        code,
        exclude_schemas,
        protect_empty,
        files=sql_files(),
        roles=make_roles,
        finish=finish,
        owner=owner,
    )
    return (
        PrivilegeInstall(
            app_role=role,
            app_role_created=bool(state["created"]),
            app_password=state["password"],
            objects_taken=int(state["moved"]),
            guards_attached=int(state["attached"]),
            notes=tuple(notes),
        ),
        migrations,
    )


def is_current(conn: psycopg.Connection[Any], digest: str, app_role: str | None) -> bool:
    """A privilege-mode install of this very code, whole: a re-run has nothing to do."""
    if installed_mode(conn) != MODE_PRIVILEGES:
        return False
    row = conn.execute(
        "SELECT i.sql_sha256 = %s AND i.completed_at IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM pgguard.ownership_drift())"
        " AND NOT EXISTS (SELECT 1 FROM pgguard.table_guards() WHERE state <> 'ok')"
        " FROM pgguard.installation i",
        (digest,),
    ).fetchone()
    if not row or not row[0]:
        return False
    return app_role is None or app_role in app_roles(conn)


def status_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """What makes a privilege-mode install degraded (beyond the shared table-guard checks)."""
    problems = []
    protected = owner_role(conn)
    drift = conn.execute("SELECT kind, object, owner FROM pgguard.ownership_drift()").fetchall()
    if drift:
        kind, obj, owner = drift[0]
        problems.append(
            f"{len(drift)} object(s) in guarded schemas not owned by {protected} (e.g. {kind}"
            f" {obj}, owner {owner}): their owner can drop them; run pgguard install to repair"
        )
    roles = app_roles(conn)
    for role in roles:
        row = conn.execute(
            "SELECT to_regrole(%(r)s) IS NOT NULL AND (pg_has_role(%(r)s, %(o)s, 'MEMBER')"
            " OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = %(r)s::regrole"
            " AND m.roleid = %(o)s::regrole AND m.admin_option)"
            " OR (SELECT rolsuper OR (rolcreaterole AND current_setting('server_version_num')::int"
            " < 160000) FROM pg_roles WHERE rolname = %(r)s))",
            {"r": role, "o": protected},
        ).fetchone()
        if row and row[0]:
            problems.append(f'app role "{role}" has a path to {protected}: it can undo the guard')
    return problems


def restore_owners(conn: psycopg.Connection[Any]) -> int:
    """Uninstall: give back what install took, in this transaction. Objects made since (owned
    by pgguard_owner, no record) go to the uninstalling role. Returns how many moved."""
    moved = 0
    me = conn.info.user
    protected = owner_role(conn)
    for role in app_roles(conn):
        if conn.execute("SELECT to_regrole(%s)", (role,)).fetchone() != (None,):
            for what, privs in (
                ("TABLES", TABLE_PRIVILEGES),
                ("SEQUENCES", SEQUENCE_PRIVILEGES),
                ("SCHEMAS", "USAGE"),
            ):
                conn.execute(
                    sql.SQL(
                        "ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE "
                        + privs
                        + " ON "
                        + what
                        + " FROM {}"
                    ).format(_ident(protected), _ident(role))
                )
    recorded = {
        (r[0], r[1]): (r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT classid::regclass::text, objid, kind, owner_name, public_create"
            " FROM pgguard.original_owners"
        )
    }
    # schemas first
    for (catalog, objid), (_kind, owner, public_create) in recorded.items():
        if catalog != "pg_namespace":
            continue
        row = conn.execute(
            "SELECT nspname::text FROM pg_namespace WHERE oid = %s", (objid,)
        ).fetchone()
        if row is None:
            continue
        if conn.execute("SELECT to_regrole(%s)", (owner,)).fetchone() == (None,):
            owner = me
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(_ident(row[0]), _ident(owner)))
        if public_create:
            conn.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO PUBLIC").format(_ident(row[0])))
        moved += 1
    # schemas made since install
    for (name,) in conn.execute(
        "SELECT nspname::text FROM pg_namespace WHERE nspowner = %s::regrole"
        " AND nspname NOT IN ('pgguard')",
        (protected,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(_ident(name), _ident(me)))
        moved += 1
    # then the objects (a new owner needs CREATE on the schema: the schema's owner has it)
    for kind, obj, catalog, objid in conn.execute(
        """
        SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                    WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                    WHEN 'f' THEN 'foreign table' ELSE 'relation' END,
               c.oid::regclass::text, 'pg_class', c.oid
          FROM pg_class c
         WHERE c.relowner = %(o)s::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
           AND c.relnamespace <> 'pgguard'::regnamespace AND c.relpersistence <> 't'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
        UNION ALL
        SELECT 'function', p.oid::regprocedure::text, 'pg_proc', p.oid FROM pg_proc p
         WHERE p.proowner = %(o)s::regrole AND p.pronamespace <> 'pgguard'::regnamespace
        UNION ALL
        SELECT 'type', t.oid::regtype::text, 'pg_type', t.oid FROM pg_type t
         WHERE t.typowner = %(o)s::regrole AND t.typtype IN ('d', 'e', 'r')
           AND t.typnamespace <> 'pgguard'::regnamespace
        UNION ALL
        SELECT 'operator', o.oid::regoperator::text, 'pg_operator', o.oid FROM pg_operator o
         WHERE o.oprowner = %(o)s::regrole AND o.oprnamespace <> 'pgguard'::regnamespace
        UNION ALL
        SELECT 'collation', pgguard.ident_path(n.nspname, l.collname), 'pg_collation', l.oid
          FROM pg_collation l JOIN pg_namespace n ON n.oid = l.collnamespace
         WHERE l.collowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'conversion', pgguard.ident_path(n.nspname, v.conname), 'pg_conversion', v.oid
          FROM pg_conversion v JOIN pg_namespace n ON n.oid = v.connamespace
         WHERE v.conowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'text search configuration', pgguard.ident_path(n.nspname, f.cfgname),
               'pg_ts_config', f.oid
          FROM pg_ts_config f JOIN pg_namespace n ON n.oid = f.cfgnamespace
         WHERE f.cfgowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'text search dictionary', pgguard.ident_path(n.nspname, d.dictname),
               'pg_ts_dict', d.oid
          FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
         WHERE d.dictowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'statistics', pgguard.ident_path(n.nspname, x.stxname), 'pg_statistic_ext', x.oid
          FROM pg_statistic_ext x JOIN pg_namespace n ON n.oid = x.stxnamespace
         WHERE x.stxowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'operator class',
               pgguard.ident_path(n.nspname, c.opcname) || ' USING ' || quote_ident(a.amname),
               'pg_opclass', c.oid
          FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
          JOIN pg_am a ON a.oid = c.opcmethod
         WHERE c.opcowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        UNION ALL
        SELECT 'operator family',
               pgguard.ident_path(n.nspname, f.opfname) || ' USING ' || quote_ident(a.amname),
               'pg_opfamily', f.oid
          FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace
          JOIN pg_am a ON a.oid = f.opfmethod
         WHERE f.opfowner = %(o)s::regrole AND n.nspname <> 'pgguard'
        """,
        {"o": protected},
    ).fetchall():
        target = recorded.get((catalog, objid), (None, me, False))[1]
        if conn.execute("SELECT to_regrole(%s)", (target,)).fetchone() == (None,):
            target = me
        conn.execute(_alter_owner(kind, obj, target))
        moved += 1
    conn.execute(
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
            _ident(conn.info.dbname), _ident(protected)
        )
    )
    return moved
