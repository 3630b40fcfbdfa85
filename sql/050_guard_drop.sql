-- The sql_drop guard: refuses dropping a table or column (directly or by cascade), pgguard's
-- own objects, or a table's TRUNCATE guard, unless the session's token covers them.
-- Fired by event trigger pgguard_sql_drop (ENABLE ALWAYS). SECURITY DEFINER so it can read
-- pgguard.created_tables, which sessions can neither read nor write.

-- Forget the bookkeeping of the tables this sql_drop reports (names, renames, links): their
-- oids may be reused. Reads the server's own event data only.
CREATE OR REPLACE FUNCTION pgguard.forget_dropped_tables() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    gone oid[];
BEGIN
    -- the dropped objects read once (a DROP SCHEMA ... CASCADE reports every table, index,
    -- type and constraint: reading them per DELETE cost more than the DELETEs), then one
    -- index probe per table and bookkeeping table
    SELECT pg_catalog.array_agg(o.objid) INTO gone
      FROM pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type = 'table';
    IF gone IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM pgguard.relation_names n WHERE n.relid = ANY (gone);
    DELETE FROM pgguard.renames n WHERE n.relid = ANY (gone);
    DELETE FROM pgguard.attachments a WHERE a.relid = ANY (gone) OR a.parent = ANY (gone);
END
$$;

CREATE OR REPLACE FUNCTION pgguard.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_xid bigint;
    excluded text[];
    tables_direct text[];
    tables_dependent text[];
    dependent_oids oid[];
    late text[];
    late_oids oid[];
    guard_oids oid[];
    direct_oids oid[];
    col_oids oid[];
    col_subids integer[];
    renamed record;
    row_limit record;
    ancestors text[];
    hint_extra text[] := '{}';
    claims jsonb;
    issued timestamptz;
    cols text[];
    guards text[];
    own text[];
    hint text;
    tag text := TG_TAG;
    empty_on boolean;
    empty_tables text[];
    empty_cols text[];
BEGIN
    -- pgguard's own objects first, with nothing but the catalog: the helpers this function
    -- uses may be what is being dropped. No token can approve this (the verifier itself
    -- would go); `pgguard uninstall` drops the event triggers before anything else.
    SELECT pg_catalog.array_agg(d.object_identity) INTO own
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.schema_name IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')
        OR (d.object_type = 'schema' AND d.object_identity IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch'));
    IF own IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to drop pgguard''s own object %s',
                                        own[1]),
            DETAIL = 'this statement would remove the guard itself',
            HINT = 'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
                   || pg_catalog.quote_ident(pg_catalog.current_database())
                   || ' -- pgguard uninstall',
            CONSTRAINT = 'op=uninstall';
    END IF;
    -- a row-limit trigger (075) dropped alone takes the limit away: op uninstall on its table,
    -- the token protect-rows --remove asks for too; a token that may drop the whole table may
    -- drop its limit (pg_restore --clean drops a table's triggers before the table)
    SELECT pgguard.ident_path(o.address_names[1], o.address_names[2]) AS tbl,
           o.address_names[3] AS trigger
      INTO row_limit
      FROM pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type = 'trigger' AND NOT o.is_temporary
       AND o.address_names[3] IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
       AND NOT o.address_names[1] = ANY (pgguard.excluded_schemas())
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
                        WHERE d.object_type = 'table' AND d.address_names[1] = o.address_names[1]
                          AND d.address_names[2] = o.address_names[2])
     LIMIT 1;
    IF FOUND THEN
        PERFORM pgguard.check_override(
            CASE WHEN pgguard.token_covers('drop_table', row_limit.tbl) THEN 'drop_table'
                 ELSE 'uninstall' END, ARRAY[row_limit.tbl], tag, NULL, '{}',
            pg_catalog.format('pgguard: refusing to drop the row-loss limit "%s" of "%s"',
                              row_limit.trigger, row_limit.tbl));
    END IF;
    excluded := pgguard.excluded_schemas();
    empty_on := pgguard.empty_rule_on();
    -- DDL always has a transaction id; asking for it here costs nothing extra.
    v_xid := pgguard.current_xid();
    WITH d AS (
        SELECT o.object_type, o.schema_name, o.address_names, o.objid, o.objsubid, o.original,
               o.normal, o.object_identity
          FROM pg_catalog.pg_event_trigger_dropped_objects() o
         WHERE NOT o.is_temporary AND o.object_type IN ('table', 'table column', 'trigger')
    ), t AS (
        SELECT d.*,
               pgguard.ident_path(d.address_names[1], d.address_names[2]) AS tbl,
               -- PG 14 leaves schema_name NULL for triggers: address_names has it for all three
               COALESCE(d.address_names[1] = ANY (excluded), false) AS is_excluded,
               COALESCE(d.address_names[1] = 'pgguard', false) AS is_own,
               EXISTS (SELECT 1 FROM pgguard.created_tables c
                        WHERE c.xid = v_xid AND c.relid = d.objid
                          AND d.object_type IN ('table', 'table column')) AS fresh,
               -- the empty-table rule (047): a dropped table was measured when the statement
               -- started; a dropped column's table is still here, locked, and is measured now
               empty_on AND CASE d.object_type
                   WHEN 'table' THEN EXISTS (
                       SELECT 1 FROM pgguard.empty_at_start e
                        WHERE e.xid = v_xid AND e.tag = TG_TAG AND e.relid = d.objid)
                   WHEN 'table column' THEN pgguard.tree_holds_no_row(d.objid)
                   ELSE false END AS empty
          FROM d
    )
    SELECT
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'table' AND (t.original OR t.normal)
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'table' AND NOT t.original AND NOT t.normal
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(t.objid) FILTER (
            WHERE t.object_type = 'table' AND NOT t.original AND NOT t.normal
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(t.objid) FILTER (
            WHERE t.object_type = 'table' AND (t.original OR t.normal)
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(
            pgguard.ident_path(t.address_names[1], t.address_names[2], t.address_names[3])
        ) FILTER (
            WHERE t.object_type = 'table column'
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(t.objid) FILTER (
            WHERE t.object_type = 'table column'
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(t.objsubid) FILTER (
            WHERE t.object_type = 'table column'
              AND NOT (t.fresh OR t.empty) AND NOT t.is_excluded AND NOT t.is_own),
        -- a guard dropped with its table is judged as the table; alone, it is an uninstall
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'trigger' AND t.address_names[3] = 'pgguard_truncate_guard'
              AND NOT t.is_excluded
              -- even on a table made in this transaction: it would leave it unguarded
              AND t.tbl NOT IN (SELECT t2.tbl FROM t t2 WHERE t2.object_type = 'table')),
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'table' AND t.empty
              AND NOT t.fresh AND NOT t.is_excluded AND NOT t.is_own),
        pg_catalog.array_agg(
            pgguard.ident_path(t.address_names[1], t.address_names[2], t.address_names[3])
        ) FILTER (
            WHERE t.object_type = 'table column' AND t.empty
              AND NOT t.fresh AND NOT t.is_excluded AND NOT t.is_own)
      INTO tables_direct, tables_dependent, dependent_oids, direct_oids, cols, col_oids,
           col_subids, guards, empty_tables, empty_cols
      FROM t;

    -- what the empty-table rule let through is recorded (and goes if the statement fails)
    IF empty_tables IS NOT NULL THEN
        PERFORM pgguard.note_empty_allowed('drop_table', empty_tables, tag);
    END IF;
    IF empty_cols IS NOT NULL THEN
        PERFORM pgguard.note_empty_allowed('drop_column', empty_cols, tag);
    END IF;

    IF guards IS NULL AND tables_direct IS NULL AND tables_dependent IS NULL
       AND cols IS NULL THEN
        -- nothing to judge (temporary, fresh, excluded tables), but their bookkeeping must go
        -- all the same: a table made later with the same oid must not inherit it
        PERFORM pgguard.forget_dropped_tables();
        RETURN;
    END IF;

    IF tables_dependent IS NOT NULL THEN
        -- Tables dropped as parts of another (partitions with their parent) are covered by a
        -- token for one of their own ancestors - recorded in pgguard.attachments, as the
        -- catalog rows are gone by now - through links made before the token was issued.
        -- Anything else (an extension's member, a partition attached since) must be named.
        -- attached by this very transaction: named in the HINT, so the approver sees them
        hint_extra := ARRAY(
            SELECT x.tbl FROM unnest(tables_dependent, dependent_oids) AS x(tbl, oid)
             WHERE EXISTS (SELECT 1 FROM pgguard.attachments a
                            WHERE a.relid = x.oid AND a.attached_at >= pg_catalog.now()));
        claims := (pgguard.presented_token()).claims;
        issued := pgguard.token_cutoff(claims);
        IF issued IS NOT NULL THEN
            WITH RECURSIVE up(child, anc) AS (
                SELECT a.relid, a.parent FROM pgguard.attachments a
                 WHERE a.relid = ANY (dependent_oids) AND a.attached_at < issued
                UNION
                SELECT up.child, a.parent FROM up JOIN pgguard.attachments a ON a.relid = up.anc
                 WHERE a.attached_at < issued
            ), named AS (
                SELECT up.child, pgguard.ident_path(o.address_names[1], o.address_names[2]) AS anc
                  FROM up JOIN pg_catalog.pg_event_trigger_dropped_objects() o
                    ON o.objid = up.anc AND o.object_type = 'table'
            ), judged AS (
                SELECT x.tbl, x.oid, EXISTS (SELECT 1 FROM named n
                                       WHERE n.child = x.oid
                                         AND pgguard.claims_cover(claims, 'drop_table', n.anc))
                              AS by_ancestor
                  FROM unnest(tables_dependent, dependent_oids) AS x(tbl, oid)  -- unqualified: multi-array form
            )
            SELECT pg_catalog.array_agg(j.tbl) FILTER (WHERE j.by_ancestor),
                   pg_catalog.array_agg(j.tbl) FILTER (WHERE NOT j.by_ancestor),
                   pg_catalog.array_agg(j.oid) FILTER (WHERE NOT j.by_ancestor),
                   (SELECT pg_catalog.array_agg(DISTINCT n.anc) FROM named n)
              INTO tables_dependent, late, late_oids, ancestors
              FROM judged j;
        END IF;
    END IF;

    hint := pgguard.allow_hint(
        ARRAY(SELECT x FROM (VALUES
            ('uninstall', guards IS NOT NULL),
            ('drop_table', tables_direct IS NOT NULL OR tables_dependent IS NOT NULL),
            ('drop_column', cols IS NOT NULL)) v(x, present) WHERE present),
        COALESCE(guards, '{}') || COALESCE(tables_direct, '{}')
            || COALESCE(CASE WHEN tables_direct IS NULL THEN tables_dependent END, '{}')
            || COALESCE(late, '{}') || hint_extra
            || COALESCE(cols, '{}'));

    -- A token is matched against names: one issued before a table or column got its current
    -- name (rename, schema move) does not cover it, or renaming into an approved glob would
    -- stretch the approval.
    claims := COALESCE(claims, (pgguard.presented_token()).claims);
    issued := pgguard.token_cutoff(claims);
    IF issued IS NOT NULL THEN
        SELECT x.obj, x.op, x.at INTO renamed FROM (
            SELECT d.tbl AS obj, 'drop_table' AS op, pgguard.renamed_since(d.oid, 0, issued) AS at
              FROM unnest(tables_direct, direct_oids) AS d(tbl, oid)  -- multi-array form
            UNION ALL
            SELECT c.col, 'drop_column', pgguard.renamed_since(c.oid, c.sub, issued)
              FROM unnest(cols, col_oids, col_subids) AS c(col, oid, sub)
            UNION ALL
            -- named because attached since the token: matched by name, so renames count too
            SELECT d.tbl, 'drop_table', pgguard.renamed_since(d.oid, 0, issued)
              FROM unnest(late, late_oids) AS d(tbl, oid)
            UNION ALL
            -- a guard dropped alone is matched by its table's name under op uninstall
            SELECT g.tbl, 'uninstall', pgguard.renamed_since(pg_catalog.to_regclass(g.tbl), 0, issued)
              FROM unnest(guards) AS g(tbl)
        ) x WHERE x.at IS NOT NULL LIMIT 1;
        IF FOUND THEN
            PERFORM pgguard.refuse(renamed.op, ARRAY[renamed.obj], pg_catalog.format(
                '"%s" got its current name at %s, after the override token was issued (%s)',
                renamed.obj, renamed.at, issued), hint, tag, NULL, 'renamed', claims);
        END IF;
    END IF;

    IF guards IS NOT NULL THEN
        PERFORM pgguard.check_override('uninstall', guards, tag, hint, '{}',
            pg_catalog.format('pgguard: refusing to drop trigger "pgguard_truncate_guard" on "%s"',
                              guards[1]));
    END IF;
    PERFORM pgguard.check_override('drop_table', tables_direct, tag, hint);
    PERFORM pgguard.check_override('drop_table', late, tag, hint);
    PERFORM pgguard.check_override('drop_table', tables_dependent, tag, hint,
                                   COALESCE(ancestors, '{}'));
    PERFORM pgguard.check_override('drop_column', cols, tag, hint);
    PERFORM pgguard.forget_dropped_tables();
END
$$;
