-- The sql_drop guard: refuses dropping a table or column (directly or by cascade), pgguard's
-- own objects, or a table's TRUNCATE guard, unless the session's token covers them.
-- Fired by event trigger pgguard_sql_drop (ENABLE ALWAYS). SECURITY DEFINER so it can read
-- pgguard.created_tables, which sessions can neither read nor write.

CREATE OR REPLACE FUNCTION pgguard.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_xid bigint;
    excluded text[] := pgguard.excluded_schemas();
    tables_direct text[];
    tables_dependent text[];
    cols text[];
    guards text[];
    own text[];
    hint text;
    tag text := TG_TAG;
BEGIN
    -- DDL always has a transaction id; asking for it here costs nothing extra.
    v_xid := pgguard.current_xid();
    WITH d AS (
        SELECT o.object_type, o.schema_name, o.address_names, o.objid, o.original, o.normal,
               o.object_identity
          FROM pg_catalog.pg_event_trigger_dropped_objects() o
         WHERE NOT o.is_temporary
    ), t AS (
        SELECT d.*,
               d.address_names[1] || '.' || d.address_names[2] AS tbl,
               (d.schema_name = ANY (excluded)) AS is_excluded,
               EXISTS (SELECT 1 FROM pgguard.created_tables c
                        WHERE c.xid = v_xid AND c.relid = d.objid
                          AND d.object_type IN ('table', 'table column')) AS fresh
          FROM d
    )
    SELECT
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'table' AND (t.original OR t.normal)
              AND NOT t.fresh AND NOT t.is_excluded AND t.schema_name <> 'pgguard'),
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'table' AND NOT t.original AND NOT t.normal
              AND NOT t.fresh AND NOT t.is_excluded AND t.schema_name <> 'pgguard'),
        pg_catalog.array_agg(t.tbl || '.' || t.address_names[3]) FILTER (
            WHERE t.object_type = 'table column'
              AND NOT t.fresh AND NOT t.is_excluded AND t.schema_name <> 'pgguard'),
        -- a guard dropped with its table is judged as the table; alone, it is an uninstall
        pg_catalog.array_agg(t.tbl) FILTER (
            WHERE t.object_type = 'trigger' AND t.address_names[3] = 'pgguard_truncate_guard'
              AND NOT t.is_excluded
              AND NOT EXISTS (SELECT 1 FROM t t2
                               WHERE t2.object_type = 'table' AND t2.tbl = t.tbl)
              AND NOT EXISTS (SELECT 1 FROM pgguard.created_tables c
                               WHERE c.xid = v_xid
                                 AND c.relid = pg_catalog.to_regclass(pg_catalog.format(
                                     '%I.%I', t.address_names[1], t.address_names[2])))),
        pg_catalog.array_agg(t.object_identity) FILTER (
            WHERE t.schema_name = 'pgguard'
               OR (t.object_type = 'schema' AND t.object_identity = 'pgguard'))
      INTO tables_direct, tables_dependent, cols, guards, own
      FROM t;

    IF own IS NULL AND guards IS NULL AND tables_direct IS NULL AND tables_dependent IS NULL
       AND cols IS NULL THEN
        RETURN;
    END IF;

    hint := pgguard.allow_hint(
        ARRAY(SELECT x FROM (VALUES
            ('uninstall', own IS NOT NULL OR guards IS NOT NULL),
            ('drop_table', tables_direct IS NOT NULL OR tables_dependent IS NOT NULL),
            ('drop_column', cols IS NOT NULL)) v(x, present) WHERE present),
        COALESCE(CASE WHEN own IS NOT NULL THEN ARRAY['pgguard'] END, '{}')
            || COALESCE(guards, '{}') || COALESCE(tables_direct, '{}')
            || COALESCE(CASE WHEN tables_direct IS NULL THEN tables_dependent END, '{}')
            || COALESCE(cols, '{}'));

    IF own IS NOT NULL THEN
        PERFORM pgguard.check_override('uninstall', ARRAY['pgguard'], tag, hint, '{}',
            pg_catalog.format('pgguard: refusing to drop pgguard''s own object %s', own[1]));
    END IF;
    IF guards IS NOT NULL THEN
        PERFORM pgguard.check_override('uninstall', guards, tag, hint, '{}',
            pg_catalog.format('pgguard: refusing to drop trigger "pgguard_truncate_guard" on "%s"',
                              guards[1]));
    END IF;
    PERFORM pgguard.check_override('drop_table', tables_direct, tag, hint);
    -- partitions dropped with their parent are covered by a token for the parent
    PERFORM pgguard.check_override('drop_table', tables_dependent, tag, hint,
                                   COALESCE(tables_direct, '{}'));
    PERFORM pgguard.check_override('drop_column', cols, tag, hint);
END
$$;
