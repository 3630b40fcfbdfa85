-- The TRUNCATE guard: trigger pgguard_truncate_guard on every protected table, a statement-level
-- BEFORE TRUNCATE trigger (ENABLE ALWAYS) that decides in its WHEN clause:
--   WHEN (pgguard.truncate_refused('schema.table'::regclass)) EXECUTE FUNCTION pgguard.truncate_guard()
-- Each truncated table's own trigger fires (CASCADE, partitions, children), so each asks for the
-- token; the signature is verified once per token (pgguard.presented_token caches it).
--
-- Why a WHEN clause: plpgsql compiles a trigger function once per *trigger* and keeps its
-- cached plans per table for the session, so a TRUNCATE of N guarded tables sent O(N) catalog
-- invalidations that each walked N cached plans (O(N^2)), and every later statement of that
-- session paid for them too. A WHEN clause is a plain function call: one compiled function, one
-- set of cached plans, whatever the number of tables.

-- The decision for one table, made in its guard's WHEN clause: raises the refusal (PGG01), or
-- returns false (allowed; the trigger function does not run). The table comes from the
-- trigger's own definition (a regclass constant: it follows renames and schema moves), its
-- names from the catalog. Executable by PUBLIC, as a WHEN clause runs with the truncating
-- role's rights: called by hand it approves, and audits, nothing but a TRUNCATE of this very
-- table that the session's token (or the empty-table rule) already allows.
CREATE OR REPLACE FUNCTION pgguard.truncate_refused(rel pg_catalog.regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    tbl oid := rel;
    schema_name text;
    table_name text;
    obj text;
    has_parent boolean;
    issued timestamptz;
    renamed_at timestamptz;
    covering text[] := '{}';
BEGIN
    SELECT n.nspname, c.relname INTO schema_name, table_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    obj := pgguard.ident_path(schema_name, table_name);
    has_parent := EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = tbl);
    IF schema_name = ANY (pgguard.excluded_schemas())
       OR EXISTS (SELECT 1 FROM pgguard.created_tables c
                   WHERE c.xid = pgguard.current_xid() AND c.relid = tbl) THEN
        RETURN false;
    END IF;
    -- the empty-table rule (047): TRUNCATE holds ACCESS EXCLUSIVE on every table it empties
    -- before any trigger fires, so no writer can slip a row in after this look
    IF pgguard.empty_rule_on() AND pgguard.holds_no_row(tbl) THEN
        PERFORM pgguard.note_empty_allowed('truncate', ARRAY[obj], 'TRUNCATE TABLE');
        RETURN false;
    END IF;
    -- The token's issue time matters only for a renamed table or one with a parent (both
    -- rare): check_override verifies the token either way, so the hot path asks for it once.
    IF has_parent OR EXISTS (SELECT 1 FROM pgguard.renames r WHERE r.relid = tbl) THEN
        issued := pgguard.token_cutoff((pgguard.presented_token()).claims);
    END IF;
    -- a token issued before the table got its current name does not cover it (see 050)
    IF issued IS NOT NULL THEN
        renamed_at := pgguard.renamed_since(tbl, 0, issued);
    END IF;
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
                 WHERE i.inhrelid = tbl AND NOT pgguard.link_after(i.inhrelid, i.inhparent, issued)
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
    RETURN false;
END
$$;

-- The same decision for a guard in the form before the WHEN clause (the trigger function runs
-- and calls this), so such a guard protects exactly as before until it is replaced. For
-- pgguard_owner alone (see 900): only truncate_guard() calls it.
CREATE OR REPLACE FUNCTION pgguard.truncate_check(rel oid, schema_name text, table_name text)
RETURNS record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    PERFORM pgguard.truncate_refused(rel::pg_catalog.regclass);
    RETURN NULL;
END
$$;

-- The trigger function. Under the WHEN clause it never runs: truncate_refused has raised or said
-- no. It decides again by itself, so a guard without its WHEN clause still refuses. SECURITY
-- DEFINER so that truncate_check is pgguard_owner's alone: a trigger function cannot be called
-- except as a trigger.
CREATE OR REPLACE FUNCTION pgguard.truncate_guard() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN pgguard.truncate_check(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME);
END
$$;

-- The statement that gives table `rel` its guard (ensure_guard runs it; OR REPLACE for a guard
-- of the old form).
CREATE OR REPLACE FUNCTION pgguard.guard_definition(rel oid, or_replace boolean DEFAULT false)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pg_catalog.format(
        'CREATE %sTRIGGER pgguard_truncate_guard BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
        'WHEN (pgguard.truncate_refused(%L::pg_catalog.regclass)) '
        'EXECUTE FUNCTION pgguard.truncate_guard()',
        CASE WHEN or_replace THEN 'OR REPLACE ' ELSE '' END,
        rel::pg_catalog.regclass, rel::pg_catalog.regclass::text)
$$;

-- The guard's WHEN clause for table `rel` exactly as pg_get_expr(tgqual, 0) prints the one
-- guard_definition creates (and pg_restore re-creates from a dump). Printing depends on the
-- search_path (the function and the table are qualified only when not visible) and on
-- standard_conforming_strings (backslashes doubled when off); so does this text, as it has no
-- SET clause: it is inlined into its callers' queries.
CREATE OR REPLACE FUNCTION pgguard.guard_when(rel oid) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN pg_catalog.pg_function_is_visible(
                         'pgguard.truncate_refused(pg_catalog.regclass)'::pg_catalog.regprocedure)
                THEN 'truncate_refused(' ELSE 'pgguard.truncate_refused(' END
           || pg_catalog.chr(39)
           || pg_catalog.replace(
                  CASE WHEN pg_catalog.current_setting('standard_conforming_strings') = 'off'
                       THEN pg_catalog.replace(rel::pg_catalog.regclass::text, pg_catalog.chr(92),
                                               pg_catalog.repeat(pg_catalog.chr(92), 2))
                       ELSE rel::pg_catalog.regclass::text END,
                  pg_catalog.chr(39), pg_catalog.repeat(pg_catalog.chr(39), 2))
           || pg_catalog.chr(39) || '::regclass)'
$$;

-- Is a trigger on `rel` with this function, type and WHEN clause the guard in its current form
-- (its enable state aside)? The WHEN clause must be the one for this very table: WHEN (false),
-- another function, or the expression of another table's guard do not match. Never NULL (no
-- WHEN clause: false), so that NOT guard_form_ok(...) is true for it.
CREATE OR REPLACE FUNCTION pgguard.guard_form_ok(
    fn oid, kind smallint, qual pg_catalog.pg_node_tree, rel oid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(fn = 'pgguard.truncate_guard()'::pg_catalog.regprocedure AND kind = 34
                    AND pg_catalog.pg_get_expr(qual, 0) = pgguard.guard_when(rel), false)
$$;

-- The guard's form before the WHEN clause (BEFORE TRUNCATE FOR EACH STATEMENT, no WHEN): it
-- protects as well, only slower. ensure_guard and install replace it; status calls it outdated.
CREATE OR REPLACE FUNCTION pgguard.guard_form_old(fn oid, kind smallint, qual pg_catalog.pg_node_tree)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT fn = 'pgguard.truncate_guard()'::pg_catalog.regprocedure AND kind = 34 AND qual IS NULL
$$;
