"""Privilege mode's findings for `pgguard doctor`: who can become the protected owner, the app
on the database-owner credential, ownership drift, code that runs as the owner, and what the
platform can do that no SQL stops. Registered on :data:`pgguard.doctor.CHECKS`; each check
returns nothing unless pgguard is installed here in privilege mode."""

from __future__ import annotations

from collections.abc import Iterator

from . import privmode
from .doctor import Context, Finding, check


def _privilege_mode(ctx: Context) -> bool:
    return ctx.mode == privmode.MODE_PRIVILEGES


@check
def owner_takeover(ctx: Context) -> Iterator[Finding]:
    """Members of pgguard_owner and holders of ADMIN on it can undo everything."""
    if not _privilege_mode(ctx):
        return
    apps = set(privmode.app_roles(ctx.conn))
    owner = privmode.owner_role(ctx.conn)
    for role, how in ctx.rows("SELECT role_name, how FROM pgguard.owner_takeover_paths()"):
        if role in apps:
            yield Finding(
                "privileges.app_takeover",
                "high",
                f'app role "{role}" {how}',
                f"REVOKE {owner} FROM {role}; an app role must have no path to it",
            )
        else:
            yield Finding(
                "privileges.owner_takeover",
                "medium",
                f'role "{role}" {how}: it can grant {owner} to itself and undo the guard',
                "keep this credential out of every application; on PostgreSQL 16+ the role that"
                f" created {owner} keeps an ADMIN OPTION it cannot give up, and on Heroku"
                " the default credential holds it on every credential: privilege mode protects"
                " against everyday credentials, not this one",
            )
    for (role,) in ctx.rows(
        "SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.rolname = ANY (%s)"
        " AND (r.rolcreaterole AND current_setting('server_version_num')::int < 160000)",
        (sorted(apps),),
    ):
        yield Finding(
            "privileges.app_createrole",
            "high",
            f'app role "{role}" has CREATEROLE on PostgreSQL 15 or older: it can grant itself'
            f" {owner}",
            f"ALTER ROLE {role} NOCREATEROLE",
        )


@check
def app_owns_database(ctx: Context) -> Iterator[Finding]:
    """The database owner can DROP DATABASE, which nothing inside the database sees."""
    if not _privilege_mode(ctx):
        return
    apps = privmode.app_roles(ctx.conn)
    row = ctx.rows(
        "SELECT d.datdba::regrole::text FROM pg_catalog.pg_database d"
        " WHERE d.datname = current_database()"
    )
    owner = row[0][0] if row else None
    if owner in apps:
        yield Finding(
            "privileges.app_owns_database",
            "high",
            f'app role "{owner}" owns the database: it can DROP DATABASE',
            "give the database to the platform's owner credential; the app connects as a role"
            " of its own",
        )
    elif owner == ctx.role:
        yield Finding(
            "privileges.connected_as_database_owner",
            "medium",
            f'this connection is the database owner "{owner}": if the application uses this'
            " credential (Render injects the default user as DATABASE_URL) the guard does not"
            " bind it",
            f"point the application at the app role ({', '.join(apps) or '--app-role'}) instead",
        )


@check
def ownership(ctx: Context) -> Iterator[Finding]:
    """Guarded objects that the owner role no longer owns (Heroku's repair-default does that)."""
    if not _privilege_mode(ctx):
        return
    protected = privmode.owner_role(ctx.conn)
    drift = ctx.rows("SELECT kind, object, owner FROM pgguard.ownership_drift()")
    if drift:
        kind, obj, owner = drift[0]
        yield Finding(
            "privileges.ownership_drift",
            "high",
            f"{len(drift)} guarded object(s) not owned by {protected}, e.g. {kind} {obj}"
            f" (owner {owner}): that owner can drop them",
            "run pgguard install again (it takes them back); on Heroku avoid"
            f" pg:credentials:repair-default and pg:credentials:destroy {protected}",
        )


@check
def owner_code(ctx: Context) -> Iterator[Finding]:
    """Index expressions that call non-built-in functions run as the owner under autovacuum."""
    if not _privilege_mode(ctx):
        return
    rows = ctx.rows(
        """
        SELECT DISTINCT d.objid::regclass::text, p.oid::regprocedure::text
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class c ON c.oid = d.objid
          JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND c.relkind IN ('i', 'I')
           AND d.refclassid = 'pg_catalog.pg_proc'::regclass
           AND c.relnamespace = ANY (pgguard.guarded_schemas())
           AND NOT pgguard.trusted_function(p.oid)
         ORDER BY 1
        """
    )
    for index, fn in rows:
        yield Finding(
            "privileges.index_function",
            "low",
            f"index {index} calls {fn}, which autovacuum runs as pgguard_owner; the executor"
            " refuses changes to it, so only the owner credential could alter what it does",
            "prefer built-in functions in indexes; review the function's body",
        )


@check
def replication_role_escape(ctx: Context) -> Iterator[Finding]:
    """Aiven's aiven_extras.session_replication_role(): the guards are ENABLE ALWAYS anyway."""
    if not _privilege_mode(ctx):
        return
    rows = ctx.rows(
        "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p"
        " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'aiven_extras' AND p.proname = 'session_replication_role'"
    )
    for (fn,) in rows:
        yield Finding(
            "privileges.aiven_replication_role",
            "info",
            f"{fn} lets roles set session_replication_role = replica; pgguard's triggers are"
            " ENABLE ALWAYS, so they fire regardless, but other ORIGIN triggers do not",
            "nothing to do for pgguard; make your own critical triggers ENABLE ALWAYS",
        )


@check
def platform_operations(ctx: Context) -> Iterator[Finding]:
    """What the platform can do that no SQL inside the database can stop."""
    if not _privilege_mode(ctx):
        return
    yield Finding(
        "privileges.platform_operations",
        "info",
        "platform operations are out of any guard's reach: deleting or restoring the database"
        " in the Render dashboard, heroku pg:reset, pg:backups:restore,"
        " pg:credentials:repair-default (gives ownership back to the default credential)",
        "limit who holds the platform account; after repair-default run pgguard install",
    )
