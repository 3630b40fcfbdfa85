-- The TRUNCATE guard: a statement-level BEFORE TRUNCATE trigger function, attached to every
-- protected table as trigger pgguard_truncate_guard (ENABLE ALWAYS). Each truncated table's own
-- trigger fires (CASCADE, partitions, children), so each asks for the token; the signature is
-- verified once per token (pgguard.presented_token caches it). The work is in truncate_check,
-- SECURITY DEFINER since it writes audit.

-- Everything but the trigger plumbing (returns NULL: the trigger's result). A plain function: plpgsql compiles a trigger function
-- once per trigger, i.e. once per table, so the trigger body below is kept to one call.
CREATE OR REPLACE FUNCTION pgguard.truncate_check(rel oid, schema_name text, table_name text)
RETURNS record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    IF schema_name = ANY (pgguard.excluded_schemas())
       OR EXISTS (SELECT 1 FROM pgguard.created_tables c
                   WHERE c.xid = pgguard.current_xid() AND c.relid = rel) THEN
        RETURN NULL;
    END IF;
    -- TRUNCATE of a parent fires each partition's (child's) own trigger: a token for any
    -- ancestor covers it, as it covers partitions dropped with their parent
    PERFORM pgguard.check_override('truncate', ARRAY[pgguard.ident_path(schema_name, table_name)],
        'TRUNCATE TABLE', NULL,
        ARRAY(WITH RECURSIVE up(relid) AS (
                  SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = rel
                  UNION
                  SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.relid)
              SELECT pgguard.ident_path(n.nspname, c.relname)
                FROM up JOIN pg_catalog.pg_class c ON c.oid = up.relid
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    -- one expression, so one cached plan per table: every cached plan is walked on each
    -- catalog invalidation in this session
    RETURN pgguard.truncate_check(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME);
END
$$;
