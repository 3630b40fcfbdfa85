-- The sentinel: event triggers whose functions live outside schema pgguard and belong to the
-- installing superuser. On sql_drop it refuses DROP SCHEMA pgguard CASCADE, DROP FUNCTION
-- pgguard.on_sql_drop() CASCADE, DROP OWNED BY pgguard_owner - which take the main guard's own
-- event triggers with them. On ddl_command_end it refuses any change to pgguard's objects
-- (CREATE OR REPLACE FUNCTION, ALTER ..., a trigger or index on its tables): a replaced
-- function of the main guard would already be the one running. Self-contained on purpose;
-- the main ddl_command_end guard watches the sentinel in turn. `pgguard uninstall` drops the
-- event triggers before anything else.

CREATE SCHEMA IF NOT EXISTS pgguard_sentinel;
REVOKE ALL ON SCHEMA pgguard_sentinel FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgguard_sentinel.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    victim text;
BEGIN
    -- While the main guard survives this statement, it decides (and may accept a token).
    IF pg_catalog.to_regprocedure('pgguard.on_sql_drop()') IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                    WHERE e.evtname = 'pgguard_sql_drop' AND e.evtenabled = 'A') THEN
        RETURN;
    END IF;
    SELECT d.object_identity INTO victim
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.schema_name IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')
        OR (d.object_type = 'schema' AND d.object_identity IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch'))
     LIMIT 1;
    IF victim IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to drop pgguard''s own object %s',
                                        victim),
            DETAIL = 'this statement would remove the guard itself',
            HINT = 'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
                   || pg_catalog.quote_ident(pg_catalog.current_database())
                   || ' -- pgguard uninstall',
            CONSTRAINT = 'op=uninstall';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pgguard_sentinel.on_sql_drop() FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgguard_sentinel.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- its lookups are planned once per session: a session that starts on a young database and
-- creates thousands of tables would keep reading all of pg_trigger for each new guard
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    owner oid;
    d record;
    victim text;
BEGIN
    -- pgguard's objects by schema, and by owner (an object moved out, a renamed schema), and
    -- what hangs on its tables (triggers, policies, rules); inline: nothing here is replaceable
    -- except this function, which the main guard watches. One pass over the commands, and per
    -- command only the one owner lookup its catalog calls for (by index): a single query with
    -- every catalog's test as a subplan opened and locked all of them on every DDL statement,
    -- and was planned afresh each time.
    FOR d IN SELECT c.classid, c.objid, c.object_type, c.schema_name, c.object_identity
               FROM pg_catalog.pg_event_trigger_ddl_commands() c LOOP
        IF d.schema_name IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')
           OR (d.object_type = 'schema'
               AND d.object_identity IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')) THEN
            victim := d.object_identity;
            EXIT;
        END IF;
        -- by name, not pgguard.owner_oid(): the sentinel must judge a renamed or missing schema
        -- pgguard, and event-trigger mode's owner is always pgguard_owner (--owner-role names
        -- privilege mode's, where no sentinel runs)
        owner := COALESCE(owner, pg_catalog.to_regrole('pgguard_owner'), 0);
        IF d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
            IF (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = d.objid) = owner THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
            IF (SELECT c.relowner FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c
                    ON c.oid = t.tgrelid WHERE t.oid = d.objid) = owner THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
            IF (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid = d.objid) = owner
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                           WHERE e.evtfoid = d.objid AND e.evtname LIKE 'pgguard\_%') THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN
            IF (SELECT n.nspowner = owner OR n.nspname IN ('pgguard_sentinel', 'pgguard_watch')
                  FROM pg_catalog.pg_namespace n WHERE n.oid = d.objid) THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass THEN
            IF (SELECT t.typowner FROM pg_catalog.pg_type t WHERE t.oid = d.objid) = owner THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
            IF (SELECT c.relowner FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c
                    ON c.oid = p.polrelid WHERE p.oid = d.objid) = owner THEN
                victim := d.object_identity;
            END IF;
        ELSIF d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
            IF (SELECT c.relowner FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c
                    ON c.oid = r.ev_class WHERE r.oid = d.objid) = owner THEN
                victim := d.object_identity;
            END IF;
        END IF;
        EXIT WHEN victim IS NOT NULL;
    END LOOP;
    IF victim IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to change pgguard''s own object %s',
                                        victim),
            DETAIL = 'this statement would remove the guard itself',
            HINT = 'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
                   || pg_catalog.quote_ident(pg_catalog.current_database())
                   || ' -- pgguard uninstall',
            CONSTRAINT = 'op=uninstall';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pgguard_sentinel.on_ddl_end() FROM PUBLIC;
