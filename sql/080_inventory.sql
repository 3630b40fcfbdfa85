-- Which tables pgguard protects, and how well: read by `pgguard status` and by the install's
-- batch attach step. Read-only catalog queries; any role may call them.

-- Every table that should carry a guard, with the state of the guard it has.
-- state: 'ok' | 'missing' | 'disabled' (tgenabled D) | 'not_always' (O or R) | 'replaced'
-- | 'outdated' (enabled always, in the form before the WHEN clause: protects, install replaces it)
CREATE OR REPLACE FUNCTION pgguard.table_guards()
RETURNS TABLE (relid oid, schema_name text, table_name text, relkind "char", state text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT c.oid, n.nspname::text, c.relname::text, c.relkind,
           CASE WHEN t.oid IS NULL THEN 'missing'
                WHEN NOT pgguard.guard_form_ok(t.tgfoid, t.tgtype, t.tgqual, c.oid)
                 AND NOT pgguard.guard_form_old(t.tgfoid, t.tgtype, t.tgqual) THEN 'replaced'
                WHEN t.tgenabled = 'D' THEN 'disabled'
                WHEN t.tgenabled <> 'A' THEN 'not_always'
                WHEN t.tgqual IS NULL THEN 'outdated'
                ELSE 'ok' END
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_trigger t
             ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard'
     WHERE c.relkind IN ('r', 'p')
       AND c.relpersistence <> 't'
       AND n.nspname NOT IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch', 'pg_catalog',
                             'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%'
       AND n.nspname NOT LIKE 'pg\_temp%'
       AND NOT (n.nspname = ANY (pgguard.excluded_schemas()))
$$;

-- Attach or heal the guards of a batch of tables (install step 2). A table whose lock cannot
-- be had within lock_timeout is reported 'locked' and left for a retry, so one busy table does
-- not stall the install; anything else is reported with its error and left alone.
CREATE OR REPLACE FUNCTION pgguard.attach_guards(rels oid[])
RETURNS TABLE (relid oid, outcome text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
-- its per-table lookup of the guard is planned once per session, while pg_trigger may still be
-- small: without this the cached plan read all of pg_trigger for every table (install O(N²))
SET enable_seqscan = off
AS $$
DECLARE
    rel oid;
BEGIN
    FOREACH rel IN ARRAY rels LOOP
        relid := rel;
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard'
                          AND pgguard.guard_form_ok(t.tgfoid, t.tgtype, t.tgqual, rel)
                          AND t.tgenabled <> 'A') THEN
                EXECUTE pg_catalog.format(
                    'ALTER TABLE %s ENABLE ALWAYS TRIGGER pgguard_truncate_guard', rel::regclass);
                outcome := 'healed';
            ELSE
                outcome := pgguard.ensure_guard(rel, 'CREATE TRIGGER');
            END IF;
        EXCEPTION
            WHEN lock_not_available THEN
                outcome := 'locked';
            WHEN undefined_table THEN
                outcome := 'gone';
            WHEN OTHERS THEN
                outcome := 'error: ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Objects of pgguard that no longer belong to its owner (pgguard.owner_oid(); REASSIGN OWNED fires no event
-- trigger, so this is found by `pgguard status` and repaired by `pgguard install`).
CREATE OR REPLACE FUNCTION pgguard.foreign_owned_objects() RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pg_catalog.array_agg(x ORDER BY x) FROM (
        SELECT p.oid::pg_catalog.regprocedure::text AS x FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgguard'::pg_catalog.regnamespace
           AND p.proowner <> pgguard.owner_oid()
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'pgguard'::pg_catalog.regnamespace
           AND c.relowner <> pgguard.owner_oid()
        UNION ALL
        SELECT 'schema ' || n.nspname FROM pg_catalog.pg_namespace n
         WHERE n.nspname = 'pgguard' AND n.nspowner <> pgguard.owner_oid()
    ) s
$$;
