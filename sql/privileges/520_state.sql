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

-- Objects in guarded schemas (and the schemas) that the owner role does not own: each one's
-- owner could drop or alter it, or (a function) change what runs inside it - and dropping a
-- collation, an operator, a text search configuration... with CASCADE takes the columns and
-- indexes that use them along. Extension members are the extension's; operator classes and
-- families only a superuser can make are listed when a non-superuser owns them. Empty when
-- the ownership is whole. `object` is what ALTER ... OWNER takes after the kind's keywords.
DROP FUNCTION IF EXISTS pgguard.ownership_drift();
CREATE OR REPLACE FUNCTION pgguard.ownership_drift()
RETURNS TABLE (kind text, object text, owner text, classid oid, objid oid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    g oid[] := pgguard.guarded_schemas();
    own oid := pgguard.owner_oid();
BEGIN
    -- plpgsql, not sql: its plans are cached per session, and the executor calls this on
    -- statements that change an owner. Extension members are looked up only for objects not
    -- ours (rare).
    RETURN QUERY
    WITH o AS (
        SELECT 'schema'::text AS kind, pg_catalog.quote_ident(n.nspname) AS object,
               n.nspowner AS owner, 'pg_catalog.pg_namespace'::pg_catalog.regclass::oid AS classid,
               n.oid AS objid
          FROM pg_catalog.pg_namespace n WHERE n.oid = ANY (g) AND n.nspowner <> own
        UNION ALL
        SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                              WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                              WHEN 'f' THEN 'foreign table' ELSE 'relation' END,
               c.oid::pg_catalog.regclass::text, c.relowner,
               'pg_catalog.pg_class'::pg_catalog.regclass::oid, c.oid
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = ANY (g) AND c.relowner <> own
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND c.relpersistence <> 't'
        UNION ALL
        SELECT 'function', p.oid::pg_catalog.regprocedure::text, p.proowner,
               'pg_catalog.pg_proc'::pg_catalog.regclass::oid, p.oid
          FROM pg_catalog.pg_proc p WHERE p.pronamespace = ANY (g) AND p.proowner <> own
        UNION ALL
        SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner,
               'pg_catalog.pg_type'::pg_catalog.regclass::oid, t.oid
          FROM pg_catalog.pg_type t
         WHERE t.typnamespace = ANY (g) AND t.typowner <> own AND t.typtype IN ('d', 'e', 'r')
        UNION ALL
        SELECT 'operator', o.oid::pg_catalog.regoperator::text, o.oprowner,
               'pg_catalog.pg_operator'::pg_catalog.regclass::oid, o.oid
          FROM pg_catalog.pg_operator o WHERE o.oprnamespace = ANY (g) AND o.oprowner <> own
        UNION ALL
        SELECT 'collation', pgguard.ident_path(n.nspname, l.collname), l.collowner,
               'pg_catalog.pg_collation'::pg_catalog.regclass::oid, l.oid
          FROM pg_catalog.pg_collation l JOIN pg_catalog.pg_namespace n ON n.oid = l.collnamespace
         WHERE l.collnamespace = ANY (g) AND l.collowner <> own
        UNION ALL
        SELECT 'conversion', pgguard.ident_path(n.nspname, v.conname), v.conowner,
               'pg_catalog.pg_conversion'::pg_catalog.regclass::oid, v.oid
          FROM pg_catalog.pg_conversion v JOIN pg_catalog.pg_namespace n ON n.oid = v.connamespace
         WHERE v.connamespace = ANY (g) AND v.conowner <> own
        UNION ALL
        SELECT 'text search configuration', pgguard.ident_path(n.nspname, f.cfgname), f.cfgowner,
               'pg_catalog.pg_ts_config'::pg_catalog.regclass::oid, f.oid
          FROM pg_catalog.pg_ts_config f JOIN pg_catalog.pg_namespace n ON n.oid = f.cfgnamespace
         WHERE f.cfgnamespace = ANY (g) AND f.cfgowner <> own
        UNION ALL
        SELECT 'text search dictionary', pgguard.ident_path(n.nspname, d.dictname), d.dictowner,
               'pg_catalog.pg_ts_dict'::pg_catalog.regclass::oid, d.oid
          FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
         WHERE d.dictnamespace = ANY (g) AND d.dictowner <> own
        UNION ALL
        SELECT 'statistics', pgguard.ident_path(n.nspname, x.stxname), x.stxowner,
               'pg_catalog.pg_statistic_ext'::pg_catalog.regclass::oid, x.oid
          FROM pg_catalog.pg_statistic_ext x JOIN pg_catalog.pg_namespace n ON n.oid = x.stxnamespace
         WHERE x.stxnamespace = ANY (g) AND x.stxowner <> own
        UNION ALL
        SELECT 'operator class',
               pgguard.ident_path(n.nspname, c.opcname) || ' USING ' || pg_catalog.quote_ident(a.amname),
               c.opcowner, 'pg_catalog.pg_opclass'::pg_catalog.regclass::oid, c.oid
          FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace
          JOIN pg_catalog.pg_am a ON a.oid = c.opcmethod
         WHERE c.opcnamespace = ANY (g) AND c.opcowner <> own
           AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = c.opcowner)
        UNION ALL
        SELECT 'operator family',
               pgguard.ident_path(n.nspname, f.opfname) || ' USING ' || pg_catalog.quote_ident(a.amname),
               f.opfowner, 'pg_catalog.pg_opfamily'::pg_catalog.regclass::oid, f.oid
          FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
          JOIN pg_catalog.pg_am a ON a.oid = f.opfmethod
         WHERE f.opfnamespace = ANY (g) AND f.opfowner <> own
           AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = f.opfowner)
    )
    SELECT o.kind, o.object, o.owner::pg_catalog.regrole::text, o.classid, o.objid
      FROM o
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e');
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
