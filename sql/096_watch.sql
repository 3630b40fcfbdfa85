-- The watch: what still refuses when one statement removes both other sets of guard functions
-- (DROP SCHEMA app, pgguard, pgguard_sentinel CASCADE; DROP FUNCTION a(), b() CASCADE;
-- DROP EXTENSION plpgsql CASCADE; DROP OWNED BY the installer): no sql_drop trigger fires then.
-- Event trigger pgguard_watch_start queues a deferred check before every statement that can drop
-- functions; at COMMIT the check refuses a transaction that left the guard incomplete. A
-- statement that drops the check itself must drop pgguard_watch.removal with it (its partition
-- key names both functions here), and PostgreSQL refuses to drop a table with pending trigger
-- events. Owned by the installing superuser; SECURITY DEFINER so any role's DDL can queue.

CREATE SCHEMA IF NOT EXISTS pgguard_watch;
REVOKE ALL ON SCHEMA pgguard_watch FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgguard_watch.at_commit() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    -- nothing here is replaceable by the session: catalog reads only
    -- each trigger by name and function: one recreated under the same name around another
    -- function is as good as gone
    SELECT pg_catalog.string_agg(x.name, ', ' ORDER BY x.name) INTO missing
      FROM (VALUES ('pgguard_sql_drop', 'pgguard.on_sql_drop()'),
                   ('pgguard_ddl_end', 'pgguard.on_ddl_end()'),
                   ('pgguard_drop_check', 'pgguard_sentinel.on_sql_drop()'),
                   ('pgguard_ddl_check', 'pgguard_sentinel.on_ddl_end()'),
                   ('pgguard_ddl_start', 'pgguard.on_ddl_start()'),
                   ('pgguard_watch_start', 'pgguard_watch.on_ddl_start()'),
                   ('pgguard_table_rewrite', 'pgguard.on_table_rewrite()')) AS x(name, fn)
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                        WHERE e.evtname = x.name AND e.evtenabled = 'A'
                          AND e.evtfoid = pg_catalog.to_regprocedure(x.fn));
    IF missing IS NULL
       AND pg_catalog.to_regclass('pgguard.installation') IS NOT NULL
       AND pg_catalog.to_regprocedure('pgguard.truncate_guard()') IS NOT NULL
       AND pg_catalog.to_regprocedure('pgguard.truncate_refused(pg_catalog.regclass)') IS NOT NULL THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'PGG01',
        MESSAGE = 'pgguard: refusing to remove the guard',
        DETAIL = 'this transaction removed pgguard''s '
                 || COALESCE('event triggers ' || missing, 'own objects')
                 || '; only pgguard uninstall may do that',
        HINT = 'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
               || pg_catalog.quote_ident(pg_catalog.current_database())
               || ' -- pgguard uninstall',
        CONSTRAINT = 'op=uninstall';
END
$$;

CREATE OR REPLACE FUNCTION pgguard_watch.on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    row_id tid;
BEGIN
    -- A session's SET CONSTRAINTS ALL IMMEDIATE must not make the check run now, before the
    -- drop: it would pass and leave nothing queued. The row goes at once; its deferred trigger
    -- event stays queued until COMMIT (or a later SET CONSTRAINTS ... IMMEDIATE).
    SET CONSTRAINTS pgguard_watch.pgguard_at_commit DEFERRED;
    INSERT INTO pgguard_watch.removal DEFAULT VALUES RETURNING ctid INTO row_id;
    DELETE FROM pgguard_watch.removal_pending r WHERE r.ctid = row_id;
END
$$;

CREATE TABLE IF NOT EXISTS pgguard_watch.removal (
    queued boolean NOT NULL DEFAULT true
) PARTITION BY LIST ((queued
    AND 'pgguard_watch.at_commit()'::pg_catalog.regprocedure IS NOT NULL
    AND 'pgguard_watch.on_ddl_start()'::pg_catalog.regprocedure IS NOT NULL));
CREATE TABLE IF NOT EXISTS pgguard_watch.removal_pending
    PARTITION OF pgguard_watch.removal DEFAULT;
REVOKE ALL ON pgguard_watch.removal, pgguard_watch.removal_pending FROM PUBLIC;
-- readable (it is always empty): pg_dump locks and reads every table of the schemas it dumps,
-- and any role that could dump the database before install must still be able to
GRANT USAGE ON SCHEMA pgguard_watch TO PUBLIC;
GRANT SELECT ON pgguard_watch.removal, pgguard_watch.removal_pending TO PUBLIC;

DROP TRIGGER IF EXISTS pgguard_at_commit ON pgguard_watch.removal;
CREATE CONSTRAINT TRIGGER pgguard_at_commit AFTER INSERT ON pgguard_watch.removal
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgguard_watch.at_commit();
-- ALWAYS: session_replication_role = replica must not skip it (PG 14 does not recurse)
ALTER TABLE pgguard_watch.removal ENABLE ALWAYS TRIGGER pgguard_at_commit;
ALTER TABLE pgguard_watch.removal_pending ENABLE ALWAYS TRIGGER pgguard_at_commit;

REVOKE ALL ON FUNCTION pgguard_watch.at_commit(), pgguard_watch.on_ddl_start() FROM PUBLIC;
