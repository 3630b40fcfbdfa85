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
DECLARE
    obj text := pgguard.ident_path(schema_name, table_name);
    has_parent boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = rel);
    issued timestamptz;
    renamed_at timestamptz;
    covering text[] := '{}';
BEGIN
    IF schema_name = ANY (pgguard.excluded_schemas())
       OR EXISTS (SELECT 1 FROM pgguard.created_tables c
                   WHERE c.xid = pgguard.current_xid() AND c.relid = rel) THEN
        RETURN NULL;
    END IF;
    -- the empty-table rule (047): TRUNCATE holds ACCESS EXCLUSIVE on every table it empties
    -- before any trigger fires, so no writer can slip a row in after this look
    IF pgguard.empty_rule_on() AND pgguard.holds_no_row(rel) THEN
        PERFORM pgguard.note_empty_allowed('truncate', ARRAY[obj], 'TRUNCATE TABLE');
        RETURN NULL;
    END IF;
    -- The token's issue time matters only for a renamed table or one with a parent (both
    -- rare): check_override verifies the token either way, so the hot path asks for it once.
    IF has_parent OR EXISTS (SELECT 1 FROM pgguard.renames r WHERE r.relid = rel) THEN
        issued := pgguard.token_cutoff((pgguard.presented_token()).claims);
    END IF;
    -- a token issued before the table got its current name does not cover it (see 050)
    renamed_at := pgguard.renamed_since(rel, 0, issued);
    IF renamed_at IS NOT NULL THEN
        PERFORM pgguard.refuse('truncate', ARRAY[obj], pg_catalog.format(
                '"%s" got its current name at %s, after the override token was issued (%s)',
                obj, renamed_at, issued),
            NULL, 'TRUNCATE TABLE', NULL, 'renamed', (pgguard.presented_token()).claims);
    END IF;
    -- TRUNCATE of a parent fires each partition's (child's) own trigger: a token for an
    -- ancestor covers it, through links that existed when the token was issued (attaching a
    -- table under an approved parent does not stretch the approval to it)
    IF has_parent THEN
        covering := ARRAY(
            WITH RECURSIVE up(relid) AS (
                SELECT i.inhparent FROM pg_catalog.pg_inherits i
                 WHERE i.inhrelid = rel AND NOT pgguard.link_after(i.inhrelid, i.inhparent, issued)
                UNION
                SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.relid
                 WHERE NOT pgguard.link_after(i.inhrelid, i.inhparent, issued))
            -- matched by its current name: an ancestor that got it after the token was issued
            -- does not cover (renaming the parent into an approved glob must not approve its
            -- partitions); its own ancestors still may
            SELECT pgguard.ident_path(n.nspname, c.relname)
              FROM up JOIN pg_catalog.pg_class c ON c.oid = up.relid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE pgguard.renamed_since(up.relid, 0, issued) IS NULL);
    END IF;
    PERFORM pgguard.check_override('truncate', ARRAY[obj], 'TRUNCATE TABLE', NULL, covering);
    RETURN NULL;
END
$$;

-- SECURITY DEFINER so that truncate_check (which trusts the names it is given) is callable
-- by pgguard_owner alone: a trigger function cannot be called except as a trigger, and the
-- names come from the trigger's own table.
CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    -- one expression, so one cached plan per table: every cached plan is walked on each
    -- catalog invalidation in this session
    RETURN pgguard.truncate_check(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME);
END
$$;
