-- Row-loss limits (`pgguard protect-rows`): statement-level AFTER DELETE / AFTER UPDATE triggers
-- pgguard_row_limit_delete / pgguard_row_limit_update (ENABLE ALWAYS), limits in their arguments.
-- The trigger runs as the invoker and counts rows per transaction in a transaction-local setting;
-- past the limit it asks row_limit_check (SECURITY DEFINER: audit, spent tokens) for a token.

-- The trigger body. Reads the transition table (one tuplestore per statement, no per-row call),
-- adds its size to this transaction's count for the table and checks the limits:
--   refused when the count exceeds max_rows (TG_ARGV[0]), or when more than one row and more than
--   max_fraction (TG_ARGV[1]) of the table's rows before the transaction. The table is counted
--   only up to the size that would decide it, so the check costs at most rows/fraction reads.
-- The count lives in a SET LOCAL-style setting: it ends with the transaction, a rolled-back
-- savepoint takes its rows back with it, and it costs no write. A session can reset it (as it can
-- commit between batches): this limit stops accidents, not a role bent on deleting its own rows.
CREATE OR REPLACE FUNCTION pgguard.row_limit_guard() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    max_rows bigint := TG_ARGV[0]::bigint;
    frac numeric := TG_ARGV[1]::numeric;
    var text := 'pgguard.rows_' || pg_catalog.lower(TG_OP) || '_' || TG_RELID::text;
    prev bigint := COALESCE(NULLIF(pg_catalog.current_setting(var, true), '')::bigint, 0);
    want bigint := GREATEST(max_rows - prev, 0) + 1;
    n bigint;
    total bigint;
    seen bigint;
    size_before bigint;
BEGIN
    -- read only as far as decides it: an approved 100,000-row DELETE reads max_rows + 1 rows
    -- of its transition table, not 100,000
    SELECT pg_catalog.count(*) INTO n FROM (SELECT FROM pgguard_changed LIMIT want) s;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    total := prev + n;
    PERFORM pg_catalog.set_config(var, total::text, true);
    IF n = want THEN
        -- over max_rows. Counted in full only for the refusal's DETAIL (a token that covers
        -- it needs no number); the setting keeps the lower bound either way.
        IF NOT pgguard.token_covers(CASE TG_OP WHEN 'DELETE' THEN 'delete_rows'
                                              ELSE 'update_rows' END,
                                    pgguard.ident_path(TG_TABLE_SCHEMA, TG_TABLE_NAME)) THEN
            SELECT pg_catalog.count(*) INTO n FROM pgguard_changed;
            total := prev + n;
            PERFORM pg_catalog.set_config(var, total::text, true);
        END IF;
        RETURN pgguard.row_limit_check(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, total,
                                       max_rows, frac, NULL);
    END IF;
    IF total < 2 OR frac >= 1 THEN
        RETURN NULL;
    END IF;
    -- rows left now: DELETE took `total` away (before = left + total), UPDATE took none
    IF TG_OP = 'DELETE' THEN
        want := pg_catalog.floor(total * (1 - frac) / frac)::bigint + 1;
    ELSE
        want := pg_catalog.floor(total / frac)::bigint + 1;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM (SELECT FROM %s LIMIT %s) s',
                              TG_RELID::regclass, want) INTO seen;
    size_before := seen + CASE WHEN TG_OP = 'DELETE' THEN total ELSE 0 END;
    IF seen < want AND total > frac * size_before THEN
        RETURN pgguard.row_limit_check(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, total,
                                       max_rows, frac, size_before);
    END IF;
    RETURN NULL;
END
$$;

-- Whether the session's token (verified, unexpired, this database) covers op on obj. Spends
-- nothing and records nothing: pgguard.check_override does that when the rows go through.
CREATE OR REPLACE FUNCTION pgguard.token_covers(op text, obj text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    c jsonb;
BEGIN
    IF COALESCE(pg_catalog.current_setting('pgguard.token', true), '') = '' THEN
        RETURN false;
    END IF;
    c := (pgguard.presented_token()).claims;
    RETURN c IS NOT NULL AND pgguard.claims_cover(c, op, obj);
END
$$;

-- Past the limit: let the statement through only with a token for delete_rows / update_rows on
-- this table (pgguard.check_override: signature, scope, once, audit row); otherwise PGG01 with a
-- DETAIL saying how many rows and which limit, then why no token applied.
CREATE OR REPLACE FUNCTION pgguard.row_limit_check(
    rel oid, schema_name text, table_name text, tg_op text, total bigint, max_rows bigint,
    frac numeric, size_before bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    obj text;
    op text := CASE tg_op WHEN 'DELETE' THEN 'delete_rows' ELSE 'update_rows' END;
    verb text := CASE tg_op WHEN 'DELETE' THEN 'delete' ELSE 'update' END;
    why text;
    d_message text;
    d_detail text;
    d_hint text;
    d_constraint text;
BEGIN
    -- Called by hand, it would spend a once token or write an override for any table the
    -- caller names. The row-limit trigger calls it from a trigger, after this transaction
    -- deleted (updated) rows of the table: anything else is refused. The statistics counters
    -- are the server's, not the session's (track_counts is for superusers to turn off, and
    -- then only the trigger depth is checked). The table's name is read from the catalog.
    IF pg_catalog.pg_trigger_depth() < 1
       OR (pg_catalog.current_setting('track_counts')::boolean AND NOT EXISTS (
           -- a partitioned table's rows are counted on its partitions (pg_partition_tree is
           -- empty for a table that is neither)
           SELECT 1 FROM (SELECT rel AS relid
                          UNION ALL SELECT t.relid FROM pg_catalog.pg_partition_tree(rel) t
                                     WHERE t.isleaf) p
            WHERE pg_catalog.pg_stat_get_xact_tuples_deleted(p.relid)
                  + CASE WHEN tg_op = 'UPDATE'
                         THEN pg_catalog.pg_stat_get_xact_tuples_updated(p.relid) ELSE 0 END
                  > 0)) THEN
        RAISE EXCEPTION 'pgguard: row_limit_check is for the row-limit trigger of a table whose'
                        ' rows this transaction changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT n.nspname, c.relname INTO schema_name, table_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel;
    obj := pgguard.ident_path(schema_name, table_name);
    IF schema_name = ANY (pgguard.excluded_schemas()) THEN
        RETURN NULL;
    END IF;
    why := CASE WHEN size_before IS NULL
        THEN pg_catalog.format('this transaction %sd %s rows of "%s"; the limit is %s rows',
                               verb, total, obj, max_rows)
        ELSE pg_catalog.format(
            'this transaction %sd %s rows of "%s", which had %s; the limit is %s%% of its rows',
            verb, total, obj, size_before, (frac * 100)::double precision) END;
    BEGIN
        PERFORM pgguard.check_override(op, ARRAY[obj], tg_op, NULL, '{}',
            pg_catalog.format('pgguard: refusing to %s %s rows of "%s"', verb, total, obj));
    EXCEPTION WHEN SQLSTATE 'PGG01' THEN
        GET STACKED DIAGNOSTICS d_message = MESSAGE_TEXT, d_detail = PG_EXCEPTION_DETAIL,
                                d_hint = PG_EXCEPTION_HINT, d_constraint = CONSTRAINT_NAME;
        RAISE EXCEPTION USING
            ERRCODE = 'PGG01',
            MESSAGE = d_message,
            DETAIL = why || '; ' || d_detail,
            HINT = d_hint,
            CONSTRAINT = d_constraint,
            SCHEMA = schema_name,
            TABLE = table_name;
    END;
    RETURN NULL;
END
$$;

-- The tables with row-loss limits, and the state of their triggers (for `pgguard status`,
-- `protect-rows --list` and deploy reports). Read-only; any role may call it.
CREATE OR REPLACE FUNCTION pgguard.row_limits()
RETURNS TABLE (relid oid, schema_name text, table_name text, op text, max_rows bigint,
               max_fraction numeric, enabled text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT c.oid, n.nspname::text, c.relname::text,
           CASE WHEN t.tgname = 'pgguard_row_limit_delete' THEN 'delete_rows'
                ELSE 'update_rows' END,
           pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 1)::bigint,
           pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 2)::numeric,
           CASE t.tgenabled WHEN 'A' THEN 'always' WHEN 'O' THEN 'origin'
                            WHEN 'R' THEN 'replica' ELSE 'disabled' END
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgname IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
       AND t.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure
$$;

-- Whether pgguard was installed in privilege mode (pgguard.settings 'mode').
CREATE OR REPLACE FUNCTION pgguard.privilege_mode() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT COALESCE((SELECT s.value OPERATOR(pg_catalog.#>>) '{}' FROM pgguard.settings s
                      WHERE s.name = 'mode') = 'privileges', false)
$$;

-- Whether limits `now` ({max_rows, max_fraction}) let through more than `was`: a higher
-- max_rows or a higher max_fraction (NaN, which PostgreSQL sorts above every number, turns the
-- rule off and so counts as higher). A `was` without values (a record from before limits were
-- recorded, or a trigger that was missing) compares as nothing looser.
CREATE OR REPLACE FUNCTION pgguard.row_limit_looser(now jsonb, was jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT COALESCE((now OPERATOR(pg_catalog.->>) 'max_rows')::bigint
                        OPERATOR(pg_catalog.>) (was OPERATOR(pg_catalog.->>) 'max_rows')::bigint,
                    false)
        OR COALESCE((now OPERATOR(pg_catalog.->>) 'max_fraction')::numeric
                        OPERATOR(pg_catalog.>)
                    (was OPERATOR(pg_catalog.->>) 'max_fraction')::numeric, false)
$$;

-- "max_rows 50 → 1000, max_fraction 0.5 → 1" for a refusal's message.
CREATE OR REPLACE FUNCTION pgguard.row_limit_change(op text, now jsonb, was jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pg_catalog.format('%s: max_rows %s → %s, max_fraction %s → %s', op,
                             was OPERATOR(pg_catalog.->>) 'max_rows',
                             now OPERATOR(pg_catalog.->>) 'max_rows',
                             was OPERATOR(pg_catalog.->>) 'max_fraction',
                             now OPERATOR(pg_catalog.->>) 'max_fraction')
$$;

-- The limits protect-rows set, kept in pgguard.settings ('row_limits': relid -> {op ->
-- {max_rows, max_fraction}}). They are what a row-limit trigger is compared with: a trigger
-- dropped behind pgguard's back shows in `pgguard status`, and a trigger replaced with looser
-- arguments is refused by row_limit_tamper (its old arguments are gone by the time an event
-- trigger sees it, the record is not). Adding or tightening is allowed to the table's owner;
-- loosening (a higher max_rows or max_fraction) and taking a limit away (`--remove`, or
-- re-running without an op) need a token with op uninstall on the table, else the owner could
-- loosen the record first and the trigger after it.
DROP FUNCTION IF EXISTS pgguard.record_row_limits(oid[], text[], boolean);
CREATE OR REPLACE FUNCTION pgguard.record_row_limits(
    rels oid[], ops text[], remove boolean, max_rows bigint, max_fraction numeric)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    rec jsonb := COALESCE((SELECT s.value FROM pgguard.settings s WHERE s.name = 'row_limits'),
                          '{}'::jsonb);
    now jsonb := pg_catalog.jsonb_build_object('max_rows', max_rows,
                                               'max_fraction', max_fraction);
    rel oid;
    obj text;
    had jsonb;
    keep jsonb;
    dropped text[];
    loosened text[];
BEGIN
    IF NOT remove AND (max_rows IS NULL OR max_fraction IS NULL) THEN
        RAISE EXCEPTION 'pgguard: invalid row-loss limit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH rel IN ARRAY rels LOOP
        SELECT pgguard.ident_path(n.nspname, c.relname) INTO obj
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = rel
           AND (pg_catalog.pg_has_role(session_user, c.relowner, 'MEMBER')
                -- privilege mode: pgguard_owner owns every guarded table; a role that may
                -- delete its rows (the app role) may limit that, as it could not before
                OR (pgguard.privilege_mode()
                    AND pg_catalog.has_table_privilege(session_user, c.oid, 'DELETE')));
        IF obj IS NULL THEN
            RAISE EXCEPTION 'pgguard: only the owner of table % may change its row-loss limits',
                rel::regclass USING ERRCODE = 'insufficient_privilege';
        END IF;
        had := pgguard.row_limits_recorded(rec -> rel::text);
        -- a tighter limit is recorded when its trigger is replaced (row_limit_tamper): until
        -- then the record keeps the looser one, which the other trigger, not yet replaced,
        -- still has
        keep := CASE WHEN remove THEN '{}'::jsonb
                     ELSE (SELECT pg_catalog.jsonb_object_agg(o,
                                      CASE WHEN COALESCE(had -> o, '{}'::jsonb) = '{}'::jsonb
                                                OR pgguard.row_limit_looser(now, had -> o)
                                           THEN now ELSE had -> o END)
                             FROM pg_catalog.unnest(ops) o) END;
        dropped := ARRAY(SELECT pg_catalog.jsonb_object_keys(had)
                         EXCEPT SELECT pg_catalog.jsonb_object_keys(keep)
                         ORDER BY 1);
        loosened := ARRAY(SELECT pgguard.row_limit_change(o, now, had -> o)
                            FROM pg_catalog.unnest(ops) o
                           WHERE NOT remove AND pgguard.row_limit_looser(now, had -> o)
                           ORDER BY 1);
        IF pg_catalog.cardinality(dropped) > 0 THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[obj], 'PROTECT-ROWS', NULL, '{}',
                pg_catalog.format('pgguard: refusing to remove the row-loss limit (%s) of "%s"',
                                  pg_catalog.array_to_string(dropped, ', '), obj));
        ELSIF pg_catalog.cardinality(loosened) > 0 THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[obj], 'PROTECT-ROWS', NULL, '{}',
                pg_catalog.format('pgguard: refusing to loosen the row-loss limit of "%s" (%s)',
                                  obj, pg_catalog.array_to_string(loosened, '; ')));
        END IF;
        rec := CASE WHEN keep = '{}'::jsonb THEN rec - rel::text
                    ELSE pg_catalog.jsonb_set(rec, ARRAY[rel::text], keep) END;
    END LOOP;
    INSERT INTO pgguard.settings (name, value) VALUES ('row_limits', rec)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
END
$$;

-- One table's record as {op -> {max_rows, max_fraction}}; a record from before the limits were
-- kept (a list of ops) reads as those ops without values.
CREATE OR REPLACE FUNCTION pgguard.row_limits_recorded(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT CASE pg_catalog.jsonb_typeof(r)
        WHEN 'object' THEN r
        WHEN 'array' THEN COALESCE((SELECT pg_catalog.jsonb_object_agg(o, '{}'::jsonb)
                                      FROM pg_catalog.jsonb_array_elements_text(r) o),
                                   '{}'::jsonb)
        ELSE '{}'::jsonb END
$$;

-- Recorded limits whose trigger is gone (or no longer pgguard's) on a table that still exists.
CREATE OR REPLACE FUNCTION pgguard.row_limits_missing()
RETURNS TABLE (schema_name text, table_name text, op text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT n.nspname::text, c.relname::text, o.op
      FROM pgguard.settings s,
           pg_catalog.jsonb_each(s.value) e(relid, ops),
           pg_catalog.jsonb_object_keys(pgguard.row_limits_recorded(e.ops)) o(op)
      JOIN pg_catalog.pg_class c ON true
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE s.name = 'row_limits' AND c.oid = e.relid::oid
       AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_trigger t
            WHERE t.tgrelid = c.oid
              AND t.tgname = CASE o.op WHEN 'delete_rows' THEN 'pgguard_row_limit_delete'
                                       ELSE 'pgguard_row_limit_update' END
              AND t.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure)
$$;

-- Whether the row-limit triggers on one table are as protect-rows made them, for
-- pgguard.on_ddl_end (after ALTER TABLE, CREATE [OR REPLACE] TRIGGER, ALTER TRIGGER on a table
-- that has one). Runs as the session's role. A trigger CREATE TRIGGER just left in ORIGIN mode
-- is healed (protect-rows then sets ENABLE ALWAYS itself); anything else is for
-- row_limit_tamper to judge. Dropping one goes through pgguard.on_sql_drop (050).
CREATE OR REPLACE FUNCTION pgguard.row_limits_ensure(rel oid, tag text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF tag = 'CREATE TRIGGER' THEN
        FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g
                  WHERE g.tgrelid = rel AND g.tgenabled = 'O'
                    AND g.tgname IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
                    AND g.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I',
                                      rel::pg_catalog.regclass, t.tgname);
        END LOOP;
    END IF;
    PERFORM pgguard.row_limit_tamper(rel, tag);
END
$$;

-- The door to check_override (op uninstall on the table) for a row-limit trigger that was
-- disabled (DISABLE TRIGGER name|USER|ALL, or ENABLE in ORIGIN/REPLICA mode), renamed,
-- replaced (CREATE OR REPLACE TRIGGER with another function, event, column list, WHEN or
-- transition table) or loosened (arguments above the limits recorded for it). Like
-- tamper_override it takes nothing but the table from its caller and finds the change in the
-- catalog, so calling it by hand approves only what is really there. Once a trigger passes (or
-- a token let it), its limits become the record: a tighter CREATE OR REPLACE TRIGGER is free and
-- is what the next change is compared with; a limit nobody recorded is recorded as it is.
CREATE OR REPLACE FUNCTION pgguard.row_limit_tamper(rel oid, tag text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    g record;
    obj text;
    what text;
    op text;
    args text[];
    now jsonb;
    rec jsonb := COALESCE((SELECT s.value FROM pgguard.settings s WHERE s.name = 'row_limits'),
                          '{}'::jsonb);
    had jsonb;
    mine jsonb;
BEGIN
    SELECT pgguard.ident_path(n.nspname, c.relname) INTO obj
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel;
    IF obj IS NULL THEN
        RETURN;
    END IF;
    had := pgguard.row_limits_recorded(rec -> rel::text);
    mine := had;
    FOR g IN SELECT t.tgname, t.tgfoid, t.tgtype, t.tgenabled, t.tgqual, t.tgoldtable,
                    t.tgnewtable, t.tgattr, t.tgconstraint, t.tgnargs,
                    ARRAY[pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 1),
                          pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 2)]
                        AS args
               FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid = rel
                AND (t.tgname IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
                     OR t.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure)
              ORDER BY t.tgname LOOP
        op := CASE g.tgname WHEN 'pgguard_row_limit_delete' THEN 'delete_rows'
                            ELSE 'update_rows' END;
        now := NULL;
        IF g.tgnargs = 2 THEN
            BEGIN
                now := pg_catalog.jsonb_build_object('max_rows', g.args[1]::bigint,
                                                     'max_fraction', g.args[2]::numeric);
            EXCEPTION WHEN data_exception THEN
                now := NULL;
            END;
        END IF;
        what := CASE
            WHEN g.tgname NOT IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
                THEN 'rename'
            WHEN g.tgfoid <> 'pgguard.row_limit_guard()'::pg_catalog.regprocedure
                 -- AFTER, FOR EACH STATEMENT, DELETE (8) or UPDATE (16) alone
                 OR g.tgtype <> CASE g.tgname WHEN 'pgguard_row_limit_delete' THEN 8 ELSE 16 END
                 OR g.tgqual IS NOT NULL OR g.tgoldtable IS DISTINCT FROM 'pgguard_changed'
                 OR g.tgnewtable IS NOT NULL OR g.tgconstraint <> 0
                 OR pg_catalog.cardinality(g.tgattr::pg_catalog.int2[]) <> 0
                 -- arguments the trigger function cannot read as two limits
                 OR now IS NULL
                THEN 'replace'
            WHEN pgguard.row_limit_looser(now, had -> op)
                THEN 'loosen'
            WHEN g.tgenabled <> 'A' AND NOT (g.tgenabled = 'O' AND tag = 'CREATE TRIGGER')
                THEN 'disable'
            END;
        IF what IS NOT NULL THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[obj], tag, NULL, '{}',
                pg_catalog.format('pgguard: refusing to %s the row-loss limit "%s" of "%s"%s',
                                  what, CASE WHEN what <> 'rename' THEN g.tgname
                                             WHEN g.tgtype = 8 THEN 'pgguard_row_limit_delete'
                                             WHEN g.tgtype = 16 THEN 'pgguard_row_limit_update'
                                             ELSE g.tgname END, obj,
                                  CASE WHEN what = 'loosen' THEN
                                      ' (' || pgguard.row_limit_change(op, now, had -> op) || ')'
                                  ELSE '' END));
        END IF;
        IF what IS DISTINCT FROM 'rename' AND now IS NOT NULL THEN
            mine := pg_catalog.jsonb_set(mine, ARRAY[op], now);
        END IF;
    END LOOP;
    IF mine IS DISTINCT FROM had THEN
        -- tables that are gone leave nothing behind: pg_restore recreates a table under a new
        -- oid, whose CREATE TRIGGER brings it here, and its old oid could be some other
        -- table's one day
        rec := pg_catalog.jsonb_set(rec, ARRAY[rel::text], mine)
               - ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(rec) k
                        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                           WHERE c.oid = k::oid));
        INSERT INTO pgguard.settings (name, value) VALUES ('row_limits', rec)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
    END IF;
END
$$;

-- Privilege mode: the tables belong to pgguard_owner, so `protect-rows` (run as the app role)
-- comes here to have pgguard's own row-limit triggers created, replaced or dropped with the
-- owner's rights. It creates exactly those triggers and nothing else: the table, the events,
-- the function and the form are fixed here; the caller chooses only the limits. Who may, and
-- the uninstall token for taking a limit away, are record_row_limits' to judge.
CREATE OR REPLACE FUNCTION pgguard.protect_rows_owned(
    rels oid[], ops text[], max_rows bigint, max_fraction numeric, remove boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    rel oid;
    t record;
BEGIN
    IF NOT pgguard.privilege_mode() THEN
        RAISE EXCEPTION 'pgguard: protect_rows_owned is for privilege mode'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'in event-trigger mode the tables'' owner runs pgguard protect-rows';
    END IF;
    IF max_rows IS NULL OR max_rows < 0 OR max_fraction IS NULL OR max_fraction <= 0
       OR max_fraction > 1 OR ops IS NULL
       OR NOT ops <@ ARRAY['delete_rows', 'update_rows']
       OR (NOT remove AND pg_catalog.cardinality(ops) = 0) THEN
        RAISE EXCEPTION 'pgguard: invalid row-loss limit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pgguard.record_row_limits(rels, ops, remove, max_rows, max_fraction);
    FOREACH rel IN ARRAY rels LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid = rel AND c.relkind IN ('r', 'p')
                          AND c.relowner = (SELECT n.nspowner FROM pg_catalog.pg_namespace n
                                             WHERE n.nspname = 'pgguard')) THEN
            RAISE EXCEPTION 'pgguard: % is not a table pgguard protects by ownership',
                rel::pg_catalog.regclass USING ERRCODE = 'insufficient_privilege';
        END IF;
        FOR t IN SELECT * FROM (VALUES ('DELETE', 'pgguard_row_limit_delete', 'delete_rows'),
                                       ('UPDATE', 'pgguard_row_limit_update', 'update_rows'))
                          v(event, trigger, op) LOOP
            IF remove OR NOT t.op = ANY (ops) THEN
                EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', t.trigger,
                                          rel::pg_catalog.regclass);
            ELSE
                EXECUTE pg_catalog.format(
                    'CREATE OR REPLACE TRIGGER %I AFTER %s ON %s REFERENCING OLD TABLE AS '
                    'pgguard_changed FOR EACH STATEMENT '
                    'EXECUTE FUNCTION pgguard.row_limit_guard(%L, %L)',
                    t.trigger, t.event, rel::pg_catalog.regclass, max_rows::text,
                    max_fraction::text);
                EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I',
                                          rel::pg_catalog.regclass, t.trigger);
            END IF;
        END LOOP;
        -- no event trigger sees these statements in privilege mode: record the limits the
        -- triggers now have (a tightened one), as on_ddl_end does in event-trigger mode
        PERFORM pgguard.row_limit_tamper(rel, 'PROTECT-ROWS');
    END LOOP;
END
$$;

-- Privilege mode's executor (pgguard.run_ddl) runs schema changes as the tables' owner: these
-- two let it keep row-limit triggers as they are. Before the statement: 'relid:name' of every
-- row-limit trigger on the tables; after it: one that is gone (its table still there), or
-- renamed, disabled or replaced, needs a token with op uninstall on the table.
CREATE OR REPLACE FUNCTION pgguard.row_limits_before(rels oid[]) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(t.tgrelid::text || ':' || t.tgname::text), '{}')
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid = ANY (rels)
       AND t.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure
$$;

CREATE OR REPLACE FUNCTION pgguard.row_limits_after(before text[], tag text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    FOR e IN SELECT DISTINCT pg_catalog.split_part(x, ':', 1)::oid AS rel,
                    pg_catalog.split_part(x, ':', 2) AS trigger
               FROM pg_catalog.unnest(before) x LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = e.rel);
        PERFORM pgguard.row_limit_tamper(e.rel, tag);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid = e.rel AND t.tgname = e.trigger
                          AND t.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure)
        THEN
            PERFORM pgguard.check_override('uninstall',
                ARRAY[(SELECT pgguard.ident_path(n.nspname, c.relname)
                         FROM pg_catalog.pg_class c
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = e.rel)], tag, NULL, '{}',
                pg_catalog.format('pgguard: refusing to drop the row-loss limit "%s" of "%s"',
                                  e.trigger, e.rel::pg_catalog.regclass));
        END IF;
    END LOOP;
END
$$;

-- Records from before the limits were kept (relid -> list of ops), and limits protect-rows set
-- before it recorded anything, get the values their triggers hold now, so that loosening them
-- later is compared with something.
DO $$
DECLARE
    rec jsonb := COALESCE((SELECT s.value FROM pgguard.settings s WHERE s.name = 'row_limits'),
                          '{}'::jsonb);
    fixed jsonb := '{}'::jsonb;
    l record;
BEGIN
    FOR l IN SELECT r.key, pgguard.row_limits_recorded(r.value) AS ops
               FROM pg_catalog.jsonb_each(rec) r LOOP
        fixed := pg_catalog.jsonb_set(fixed, ARRAY[l.key], l.ops);
    END LOOP;
    FOR l IN SELECT x.relid, x.op, x.max_rows, x.max_fraction FROM pgguard.row_limits() x LOOP
        CONTINUE WHEN (fixed -> l.relid::text -> l.op) IS NOT NULL
                      AND (fixed -> l.relid::text -> l.op) <> '{}'::jsonb;
        fixed := pg_catalog.jsonb_set(fixed, ARRAY[l.relid::text],
            COALESCE(fixed -> l.relid::text, '{}'::jsonb)
            || pg_catalog.jsonb_build_object(l.op, pg_catalog.jsonb_build_object(
                   'max_rows', l.max_rows, 'max_fraction', l.max_fraction)));
    END LOOP;
    IF fixed IS DISTINCT FROM rec THEN
        INSERT INTO pgguard.settings (name, value) VALUES ('row_limits', fixed)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
    END IF;
END
$$;
