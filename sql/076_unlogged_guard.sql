-- The table_rewrite guard: refuses ALTER TABLE ... SET UNLOGGED of a protected table (op
-- `unlogged`: a crash empties an unlogged table, and replicas never see its rows), unless the
-- session's token covers it. Fired by event trigger pgguard_table_rewrite (ENABLE ALWAYS)
-- before the rewrite. SECURITY DEFINER: it reads pgguard's bookkeeping and calls check_override.

CREATE OR REPLACE FUNCTION pgguard.on_table_rewrite() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    rel oid := pg_catalog.pg_event_trigger_table_rewrite_oid();
    c record;
    obj text;
    issued timestamptz;
    renamed_at timestamptz;
BEGIN
    -- reason bit 1: the persistence changes; still permanent now: it is becoming unlogged
    IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 1 = 0 THEN
        RETURN;
    END IF;
    SELECT n.nspname, cl.relname, cl.relpersistence INTO c
      FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
     WHERE cl.oid = rel;
    IF NOT FOUND OR c.relpersistence <> 'p'
       OR c.nspname = ANY (pgguard.excluded_schemas())
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                       WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard')
       OR EXISTS (SELECT 1 FROM pgguard.created_tables ct
                   WHERE ct.xid = pgguard.current_xid() AND ct.relid = rel) THEN
        RETURN;
    END IF;
    obj := pgguard.ident_path(c.nspname, c.relname);
    -- matched by name, like every op: a rename since the token was issued is not covered
    IF EXISTS (SELECT 1 FROM pgguard.renames r WHERE r.relid = rel) THEN
        issued := pgguard.token_cutoff((pgguard.presented_token()).claims);
        renamed_at := pgguard.renamed_since(rel, 0, issued);
        IF renamed_at IS NOT NULL THEN
            PERFORM pgguard.refuse('unlogged', ARRAY[obj], pg_catalog.format(
                    '"%s" got its current name at %s, after the override token was issued (%s)',
                    obj, renamed_at, issued),
                NULL, TG_TAG, NULL, 'renamed', (pgguard.presented_token()).claims);
        END IF;
    END IF;
    PERFORM pgguard.check_override('unlogged', ARRAY[obj], TG_TAG);
END
$$;
