-- The TRUNCATE guard: a statement-level BEFORE TRUNCATE trigger function, attached to every
-- protected table as trigger pgguard_truncate_guard (ENABLE ALWAYS). Each truncated table's own
-- trigger fires (CASCADE, partitions, children), so each asks for the token; the signature is
-- verified once per token (pgguard.presented_token caches it). SECURITY DEFINER: it writes audit.

CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    IF TG_TABLE_SCHEMA = ANY (pgguard.excluded_schemas())
       OR EXISTS (SELECT 1 FROM pgguard.created_tables c
                   WHERE c.xid = pgguard.current_xid() AND c.relid = TG_RELID) THEN
        RETURN NULL;
    END IF;
    PERFORM pgguard.check_override('truncate', ARRAY[TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME],
                                   'TRUNCATE TABLE');
    RETURN NULL;
END
$$;
