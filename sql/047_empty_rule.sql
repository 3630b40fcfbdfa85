-- The empty-table rule: dropping a table, dropping a column of it, or truncating it loses
-- nothing when the table holds no row, so the guards let it through without a token (unless
-- `install --protect-empty`), recording it in pgguard.audit with reason 'empty'. "Holds no
-- row" is a physical fact read by the server under the statement's ACCESS EXCLUSIVE lock: the
-- heap has no block. No session flag is involved; rows deleted but not yet vacuumed away count.

CREATE OR REPLACE FUNCTION pgguard.empty_rule_on() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT NOT COALESCE((SELECT s.value = 'true'::jsonb FROM pgguard.settings s
                          WHERE s.name = 'protect_empty'), false)
$$;

-- One table, on its own: a partitioned table has no storage of its own (its partitions answer
-- for themselves); a heap with zero blocks has never held a row since it was created,
-- truncated or vacuumed down to nothing. Any other access method might keep rows elsewhere.
-- Sound only while the caller holds a lock that keeps writers out (TRUNCATE, DROP COLUMN).
CREATE OR REPLACE FUNCTION pgguard.holds_no_row(rel oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT COALESCE((
        SELECT c.relkind = 'p'
            OR (c.relkind = 'r' AND a.amname = 'heap'
                AND pg_catalog.pg_relation_size(c.oid, 'main') = 0)
          FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_am a ON a.oid = c.relam
         WHERE c.oid = rel), false)
$$;

-- A table and every partition or inheritance child under it (a dropped column goes from all).
CREATE OR REPLACE FUNCTION pgguard.tree_holds_no_row(rel oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    WITH RECURSIVE tree(relid) AS (
        SELECT rel
        UNION
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid
    )
    SELECT bool_and(pgguard.holds_no_row(tree.relid)) FROM tree
$$;

-- Record what the rule let through. Callable only from pgguard's own SECURITY DEFINER guards
-- (not granted to PUBLIC), so nobody can write look-alike audit rows with it.
CREATE OR REPLACE FUNCTION pgguard.note_empty_allowed(op text, objs text[], command_tag text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    INSERT INTO pgguard.audit (kind, op, object, command_tag, xid, reason, detail)
    SELECT 'override', op, x, command_tag, pgguard.current_xid(), 'empty',
           'allowed without a token: the table held no row'
      FROM pg_catalog.unnest(objs) x
$$;

-- ddl_command_start of the statements that can drop tables: measure, before anything is gone,
-- which tables hold no row. DROP takes its locks only after this trigger, so a table another
-- transaction holds any lock stronger than ACCESS SHARE on (it may be writing to it, or have
-- rewritten it under a new file) does not count as empty; a writer that arrives later queues
-- behind the drop's lock request. An event-trigger function cannot be called directly, so
-- nobody but the server can write these records.
CREATE OR REPLACE FUNCTION pgguard.on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    v_xid bigint;
BEGIN
    IF NOT pgguard.empty_rule_on() THEN
        RETURN;
    END IF;
    v_xid := pgguard.current_xid();
    -- this transaction's earlier measurement is stale; finished transactions' are garbage
    DELETE FROM pgguard.empty_at_start e
     WHERE e.xid = v_xid
        OR e.xid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint;
    WITH busy AS MATERIALIZED (
        SELECT DISTINCT l.relation FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'relation' AND l.mode <> 'AccessShareLock'
           AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
    )
    INSERT INTO pgguard.empty_at_start (xid, tag, relid)
    SELECT v_xid, TG_TAG, c.oid
      FROM pg_catalog.pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'pgguard'::regnamespace)
       -- relpages is only an estimate, but a table whose heap has no block never shows more:
       -- it spares the file-size look-up for tables that have been vacuumed with rows in them
       AND (c.relkind = 'p' OR c.relpages = 0)
       AND c.oid NOT IN (SELECT busy.relation FROM busy WHERE busy.relation IS NOT NULL)
       -- holds_no_row(c.oid), inline: as a SQL function with SET it was planned again for
       -- every table of the database on every DROP (80 us each on PG 15)
       AND (c.relkind = 'p'
            OR (c.relkind = 'r'
                AND (SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid = c.relam) = 'heap'
                AND pg_catalog.pg_relation_size(c.oid, 'main') = 0));
END
$$;
