-- Privilege mode: the state the protection rests on, read from the catalog. Used by the
-- executor (530) before and after every statement, and by `pgguard status` (any role may call
-- these; they read only the catalog).

-- Schemas whose tables pgguard protects: everything but the system's, pgguard's and the
-- excluded ones.
-- plpgsql, not sql: an sql function with SET is planned on every call, and the executor calls
-- this several times per statement.
CREATE OR REPLACE FUNCTION pgguard.guarded_schemas() RETURNS oid[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    excluded text[] := pgguard.excluded_schemas();
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.array_agg(n.oid ORDER BY n.oid), '{}')
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgguard', 'pgguard_sentinel')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND NOT (n.nspname = ANY (excluded)));
END
$$;

-- The protected role: pgguard.owner_oid() (010; pgguard_owner or the --owner-role of install).

-- Objects in guarded schemas (and the schemas) that pgguard_owner does not own: each one's
-- owner could drop or alter it, or (a function) change what runs inside it. Extension members
-- are the extension's. Empty when the ownership is whole.
CREATE OR REPLACE FUNCTION pgguard.ownership_drift()
RETURNS TABLE (kind text, object text, owner text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    g oid[] := pgguard.guarded_schemas();
    own oid := pgguard.owner_oid();
BEGIN
    -- plpgsql, not sql: its plans are cached per session, and the executor calls this on
    -- every statement. Extension members are looked up only for objects not ours (rare).
    RETURN QUERY
    SELECT 'schema'::text, pg_catalog.quote_ident(n.nspname), n.nspowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_namespace n
     WHERE n.oid = ANY (g) AND n.nspowner <> own
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                          AND d.objid = n.oid AND d.deptype = 'e')
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                          WHEN 'f' THEN 'foreign table' ELSE 'relation' END,
           c.oid::pg_catalog.regclass::text, c.relowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = ANY (g) AND c.relowner <> own
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND c.relpersistence <> 't'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'function', p.oid::pg_catalog.regprocedure::text, p.proowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = ANY (g) AND p.proowner <> own
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_type t
     WHERE t.typnamespace = ANY (g) AND t.typowner <> own AND t.typtype IN ('d', 'e', 'r')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                          AND d.objid = t.oid AND d.deptype = 'e');
END
$$;

-- Roles that can become pgguard_owner (members, and ADMIN holders, who can grant it to
-- themselves). Superusers are always such roles and are not listed.
CREATE OR REPLACE FUNCTION pgguard.owner_takeover_paths()
RETURNS TABLE (role_name text, how text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT r.rolname::text,
           CASE WHEN m.admin_option THEN 'holds ADMIN OPTION on ' || pgguard.owner_name()
                ELSE 'is a member of ' || pgguard.owner_name() END
      FROM pg_catalog.pg_auth_members m
      JOIN pg_catalog.pg_roles r ON r.oid = m.member
     WHERE m.roleid = pgguard.owner_oid() AND NOT r.rolsuper
$$;

-- Is a function safe to run as the protected owner later (from autovacuum, say)? Built-in
-- (owned by the bootstrap superuser), an extension's, or pgguard's own.
CREATE OR REPLACE FUNCTION pgguard.trusted_function(fn oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT fn = 0 OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p
         WHERE p.oid = fn
           AND (p.proowner = 10 OR p.pronamespace = 'pgguard'::pg_catalog.regnamespace
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND d.objid = p.oid AND d.deptype = 'e')))
$$;
