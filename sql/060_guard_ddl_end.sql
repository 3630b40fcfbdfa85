-- The ddl_command_end guard: gives every new table (and every partition or child attached
-- later) its TRUNCATE guard, notes tables created in this transaction, and refuses disabling,
-- downgrading, renaming or replacing a guard, or changing pgguard's own objects.
-- Fired by event trigger pgguard_ddl_end (ENABLE ALWAYS). SECURITY INVOKER on purpose: the
-- guard is attached as the table's owner, who just ran the DDL; bookkeeping goes through
-- SECURITY DEFINER helpers that trust only the server's own event-trigger state.

-- note_ddl (below) replaced note_created_tables, note_attachments and note_names, which
-- nothing calls any more: gone, so that only the code that runs stays callable.
DROP FUNCTION IF EXISTS pgguard.note_created_tables(), pgguard.note_attachments(),
    pgguard.note_names();

-- The bookkeeping of one DDL statement, in one call and one read of
-- pg_event_trigger_ddl_commands() (the ddl_command_end guard calls it once per statement):
-- the tables it created (the "created earlier in this transaction" exemption), when
-- partitions and children came under their parents (pgguard.attachments: no session can
-- back-date a link), and renames and schema moves of tables and columns (pgguard.renames).
-- It takes nothing from its caller: the commands come from the server's own event-trigger
-- state, which raises outside an event trigger, so a session cannot call it to mark an old
-- table as new. Index lookups per object, never a scan of the catalog: generic plans
-- (plan_cache_mode) so no statement is planned again on every call.
CREATE OR REPLACE FUNCTION pgguard.note_ddl() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    v_xid bigint;
    created oid[];     -- tables this command created
    linked oid[];      -- tables whose partitions/children links may have changed
    rels oid[];        -- relations the command reports, whatever it calls them
    composite boolean; -- one of them a composite type (its typed tables are touched too)
    types oid[];
    schemas oid[];
    exts oid[];
    touched oid[];
    more oid[];
    r record;
BEGIN
    SELECT pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.object_type = 'table' AND d.command_tag IN (
                     'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA',
                     'CREATE EXTENSION')),
           pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.object_type = 'table' AND d.command_tag IN (
                     'CREATE TABLE', 'ALTER TABLE', 'CREATE SCHEMA', 'CREATE EXTENSION')),
           pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass),
           pg_catalog.bool_or(d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND (SELECT c.relkind FROM pg_catalog.pg_class c
                                    WHERE c.oid = d.objid) = 'c'),
           pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass),
           pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass),
           pg_catalog.array_agg(d.objid) FILTER (
               WHERE d.classid = 'pg_catalog.pg_extension'::pg_catalog.regclass)
      INTO created, linked, rels, composite, types, schemas, exts
      FROM pg_catalog.pg_event_trigger_ddl_commands() d;

    -- tables created
    IF created IS NOT NULL THEN
        v_xid := pgguard.current_xid();
        -- forget finished transactions, in one transaction of 32 (by xid) and there once (not
        -- per CREATE: a migration creating hundreds of tables would rescan its own dead rows
        -- each time; nor per transaction: autocommit DDL would rescan the last ones' dead rows
        -- each time, 0.17 ms per CREATE TABLE); skip rows another session is cleaning right
        -- now. Rows of finished transactions are only clutter: lookups are by the running xid.
        IF v_xid % 32 = 0 THEN
            IF NOT EXISTS (SELECT 1 FROM pgguard.created_tables c WHERE c.xid = v_xid) THEN
                DELETE FROM pgguard.created_tables c
                 WHERE c.ctid IN (
                    SELECT c2.ctid FROM pgguard.created_tables c2
                     WHERE c2.xid < pg_catalog.pg_snapshot_xmin(
                               pg_catalog.pg_current_snapshot())::text::bigint
                     LIMIT 10000 FOR UPDATE SKIP LOCKED);
            END IF;
        END IF;
        -- a new table may have the oid of one dropped while pgguard was not looking (looked
        -- up first: three lookups cost less than three DELETEs that find nothing)
        IF EXISTS (SELECT 1 FROM pgguard.relation_names x WHERE x.relid = ANY (created))
           OR EXISTS (SELECT 1 FROM pgguard.renames x WHERE x.relid = ANY (created))
           OR EXISTS (SELECT 1 FROM pgguard.attachments x WHERE x.relid = ANY (created)) THEN
            DELETE FROM pgguard.relation_names x WHERE x.relid = ANY (created);
            DELETE FROM pgguard.renames x WHERE x.relid = ANY (created);
            DELETE FROM pgguard.attachments x
             WHERE x.relid = ANY (created)
               AND NOT EXISTS (SELECT 1 FROM pgguard.created_tables c
                                WHERE c.xid = v_xid AND c.relid = x.relid);
        END IF;
        INSERT INTO pgguard.created_tables (xid, relid)
        SELECT DISTINCT v_xid, u.relid FROM pg_catalog.unnest(created) u(relid)
        ON CONFLICT DO NOTHING;
    END IF;

    -- links: only where there is a link, or a record of one, to change
    IF linked IS NOT NULL AND (
           EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = ANY (linked))
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = ANY (linked))
        OR EXISTS (SELECT 1 FROM pgguard.attachments a
                    WHERE a.relid = ANY (linked) OR a.parent = ANY (linked))) THEN
        DELETE FROM pgguard.attachments a
         WHERE (a.relid = ANY (linked) OR a.parent = ANY (linked))
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                            WHERE i.inhrelid = a.relid AND i.inhparent = a.parent);
        INSERT INTO pgguard.attachments (relid, parent, attached_at)
        SELECT DISTINCT i.inhrelid, i.inhparent, pg_catalog.clock_timestamp()
          FROM pg_catalog.pg_inherits i
         WHERE i.inhparent = ANY (linked) OR i.inhrelid = ANY (linked)
        ON CONFLICT (relid, parent) DO NOTHING;
    END IF;

    -- names: every relation the command reports, whatever it calls it (ALTER INDEX/VIEW/
    -- MATERIALIZED VIEW/FOREIGN TABLE ... RENAME act on tables too), the typed tables of a type
    -- it reports, the tables of a schema it reports, the member tables of an extension, and
    -- everything below them (a column renamed in a parent is renamed in its children)
    touched := COALESCE(rels, '{}');
    IF composite THEN
        -- typed tables of a composite type reported as a relation
        touched := touched || ARRAY(
            SELECT dep.objid FROM pg_catalog.pg_class ct
              JOIN pg_catalog.pg_depend dep
                ON dep.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
               AND dep.refobjid = ct.reltype
               AND dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
             WHERE ct.oid = ANY (rels) AND ct.relkind = 'c');
    END IF;
    IF types IS NOT NULL THEN
        touched := touched || ARRAY(
            SELECT dep.objid FROM pg_catalog.pg_depend dep
             WHERE dep.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
               AND dep.refobjid = ANY (types)
               AND dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass);
    END IF;
    IF schemas IS NOT NULL THEN
        touched := touched || ARRAY(
            SELECT c2.oid FROM pg_catalog.pg_class c2 WHERE c2.relnamespace = ANY (schemas));
    END IF;
    IF exts IS NOT NULL THEN
        touched := touched || ARRAY(
            SELECT dep.objid FROM pg_catalog.pg_depend dep
             WHERE dep.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
               AND dep.refobjid = ANY (exts) AND dep.deptype = 'e'
               AND dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass);
    END IF;
    IF pg_catalog.cardinality(touched) = 0 THEN
        RETURN;
    END IF;
    -- and everything below them (a column renamed in a parent is renamed in its children)
    more := touched;
    LOOP
        more := ARRAY(SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                       WHERE i.inhparent = ANY (more)
                         AND NOT (i.inhrelid = ANY (touched)));
        EXIT WHEN pg_catalog.cardinality(more) = 0;
        touched := touched || more;
    END LOOP;
    -- each table's names now beside the names last seen, in one query
    FOR r IN
        SELECT c.oid, pgguard.ident_path(n.nspname, c.relname) AS path,
               ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum) AS cols,
               x.relid IS NOT NULL AS known, x.path AS old_path, x.cols AS old_cols
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pgguard.relation_names x ON x.relid = c.oid
         WHERE c.oid = ANY (touched)
           AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
    LOOP
        IF NOT r.known THEN
            INSERT INTO pgguard.relation_names VALUES (r.oid, r.path, r.cols);
            CONTINUE;
        END IF;
        IF r.old_path = r.path AND r.old_cols = r.cols THEN
            CONTINUE;
        END IF;
        -- columns only added (ADD COLUMN: the old names are a prefix of the new) rename
        -- nothing; compared whole, as comparing element by element decompresses a wide
        -- table's stored array once per column
        IF r.old_path <> r.path
           OR r.old_cols IS DISTINCT FROM r.cols[1:pg_catalog.cardinality(r.old_cols)] THEN
            INSERT INTO pgguard.renames (relid, attnum, renamed_at)
            SELECT r.oid, 0, pg_catalog.clock_timestamp() WHERE r.old_path <> r.path
            UNION ALL
            SELECT r.oid, x.i, pg_catalog.clock_timestamp()
              FROM ROWS FROM (pg_catalog.unnest(r.old_cols), pg_catalog.unnest(r.cols))
                   WITH ORDINALITY x(o, n, i)
             WHERE x.o IS NOT NULL AND x.n IS NOT NULL AND x.o <> x.n
            ON CONFLICT (relid, attnum) DO UPDATE SET renamed_at = EXCLUDED.renamed_at;
        END IF;
        UPDATE pgguard.relation_names x SET path = r.path, cols = r.cols WHERE x.relid = r.oid;
    END LOOP;
END
$$;

-- Did the table (attnum 0) or this column get its current name at or after a token issued at
-- `iat` (so the token, matched against that name, does not cover it)? plpgsql, like the hot
-- helpers in 010: called per truncated table.
CREATE OR REPLACE FUNCTION pgguard.renamed_since(rel oid, col integer, iat timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    -- no token issue time, nothing to compare (and a query with NULL here would be planned
    -- afresh on every call: its custom plan is a constant false, cheaper than the generic)
    IF iat IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT pg_catalog.max(r.renamed_at) FROM pgguard.renames r
             WHERE r.relid = rel AND r.attnum IN (0, col) AND r.renamed_at >= iat);
END
$$;

-- Was `rel` put under `parent` (any parent, when NULL) after a token issued at `iat`, so that
-- the token for the parent does not cover it? `iat` is whole seconds: a link made within that
-- second may be later than the token, and counts as later. NULL `iat` (no valid token): no
-- link counts.
CREATE OR REPLACE FUNCTION pgguard.link_after(rel oid, parent oid, iat timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    IF iat IS NULL THEN
        RETURN true;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pgguard.attachments a
         WHERE a.relid = rel AND (link_after.parent IS NULL OR a.parent = link_after.parent)
           AND a.attached_at >= iat);
END
$$;

-- The one door from the ddl_command_end guard (which runs as the session's role) to
-- check_override for op uninstall. It takes no objects or messages from its caller: it finds
-- the tampering itself, in the catalog, so calling it by hand can approve (and audit) only a
-- change that really is there. `rel` NULL: the database-wide checks (grants, excluded schemas).
CREATE OR REPLACE FUNCTION pgguard.tamper_override(rel oid, tag text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    c record;
    g record;
    obj text;
    what text;
BEGIN
    IF rel IS NULL THEN
        what := pgguard.privileges_widened();
        IF what IS NOT NULL THEN
            PERFORM pgguard.check_override('uninstall', ARRAY['pgguard'], tag, NULL, '{}',
                pg_catalog.format('pgguard: refusing to grant %s', what));
        END IF;
        what := pgguard.guarded_table_in_excluded_schema();
        IF what IS NOT NULL THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[what], tag, NULL, '{}',
                pg_catalog.format(
                    'pgguard: refusing to move protected table "%s" into an excluded schema',
                    what));
        END IF;
        RETURN;
    END IF;
    SELECT n.nspname, cl.relname INTO c
      FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
     WHERE cl.oid = rel AND cl.relkind IN ('r', 'p') AND cl.relpersistence <> 't';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    obj := pgguard.ident_path(c.nspname, c.relname);
    SELECT t.tgenabled, t.tgfoid, t.tgtype, t.tgqual INTO g
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard';
    IF c.nspname = ANY (pgguard.excluded_schemas()) THEN
        IF FOUND THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[obj], tag, NULL, '{}',
                pg_catalog.format(
                    'pgguard: refusing to move protected table "%s" into excluded schema "%s"',
                    obj, c.nspname));
        END IF;
    ELSIF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = rel
                      AND t.tgfoid = 'pgguard.truncate_guard()'::pg_catalog.regprocedure) THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[obj], tag, NULL, '{}',
                pg_catalog.format('pgguard: refusing to rename the TRUNCATE guard of "%s"', obj));
        END IF;
    ELSIF NOT pgguard.guard_form_ok(g.tgfoid, g.tgtype, g.tgqual, rel)
          AND NOT pgguard.guard_form_old(g.tgfoid, g.tgtype, g.tgqual) THEN
        PERFORM pgguard.check_override('uninstall', ARRAY[obj], tag, NULL, '{}',
            pg_catalog.format('pgguard: refusing to replace the TRUNCATE guard of "%s"', obj));
    ELSIF g.tgenabled <> 'A' THEN
        PERFORM pgguard.check_override('uninstall', ARRAY[obj], tag, NULL, '{}',
            pg_catalog.format('pgguard: refusing to disable the TRUNCATE guard of "%s"', obj));
    END IF;
END
$$;

-- Make sure one table carries a correct, ENABLE ALWAYS guard (sql/070: guard_definition,
-- guard_form_ok); attach it when missing. Returns 'attached', 'healed' (enabled again, or a
-- guard of the old form replaced), 'ok' or 'skipped'; raises PGG01 (op uninstall) when the
-- guard was tampered with. `tag` is the command that led here: only a plain CREATE TRIGGER may leave
-- the guard in ORIGIN mode (and is healed); any other command that did so is refused.
CREATE OR REPLACE FUNCTION pgguard.ensure_guard(rel oid, tag text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    c record;
    g record;
    obj text;
BEGIN
    SELECT cl.relkind, cl.relpersistence, cl.relowner, n.nspname, cl.relname INTO c
      FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
     WHERE cl.oid = rel;
    IF NOT FOUND OR c.relkind NOT IN ('r', 'p') OR c.relpersistence = 't'
       OR c.nspname IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch', 'pg_catalog',
                        'information_schema')
       OR c.nspname LIKE 'pg\_toast%' THEN
        RETURN 'skipped';
    END IF;
    obj := pgguard.ident_path(c.nspname, c.relname);
    SELECT t.oid, t.tgenabled, t.tgfoid, t.tgtype, t.tgqual INTO g
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard';

    IF c.nspname = ANY (pgguard.excluded_schemas()) THEN
        -- guards exist only outside excluded schemas: one here means a protected table was
        -- moved in (ALTER TABLE ... SET SCHEMA), which would switch its protection off
        IF FOUND THEN
            PERFORM pgguard.tamper_override(rel, tag);
        END IF;
        RETURN 'skipped';
    END IF;

    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = rel
                      AND t.tgfoid = 'pgguard.truncate_guard()'::pg_catalog.regprocedure) THEN
            PERFORM pgguard.tamper_override(rel, tag);
            RETURN 'ok';
        END IF;
        EXECUTE pgguard.guard_definition(rel);
        -- the nested ddl_command_end for CREATE TRIGGER may already have healed it
        IF (SELECT t.tgenabled FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard') <> 'A' THEN
            EXECUTE pg_catalog.format(
                'ALTER TABLE %s ENABLE ALWAYS TRIGGER pgguard_truncate_guard', rel::regclass);
        END IF;
        RETURN 'attached';
    END IF;

    -- A guard of the form before the WHEN clause (an upgrade, an old dump) protects as well,
    -- only slower: replaced in place, keeping it enabled-always, where this role owns the
    -- table (ENABLE ALWAYS needs that; otherwise install replaces it). Left in ORIGIN mode
    -- or disabled by anything but a plain CREATE TRIGGER, it is tampering like any other.
    IF pgguard.guard_form_old(g.tgfoid, g.tgtype, g.tgqual)
       AND (g.tgenabled = 'A' OR tag = 'CREATE TRIGGER') THEN
        IF NOT pg_catalog.pg_has_role(c.relowner, 'USAGE') THEN
            RETURN 'ok';
        END IF;
        EXECUTE pgguard.guard_definition(rel, true);
        -- CREATE OR REPLACE TRIGGER leaves it in ORIGIN mode, unless the nested
        -- ddl_command_end has already healed it
        IF (SELECT t.tgenabled FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = rel AND t.tgname = 'pgguard_truncate_guard') <> 'A' THEN
            EXECUTE pg_catalog.format(
                'ALTER TABLE %s ENABLE ALWAYS TRIGGER pgguard_truncate_guard', rel::regclass);
        END IF;
        RETURN 'healed';
    END IF;
    -- the function, BEFORE | TRUNCATE, FOR EACH STATEMENT (tgtype 34), and the WHEN clause
    -- for this very table
    IF NOT pgguard.guard_form_ok(g.tgfoid, g.tgtype, g.tgqual, rel) THEN
        PERFORM pgguard.tamper_override(rel, tag);
        RETURN 'ok';
    END IF;
    IF g.tgenabled <> 'A' THEN
        IF tag = 'CREATE TRIGGER' THEN
            EXECUTE pg_catalog.format(
                'ALTER TABLE %s ENABLE ALWAYS TRIGGER pgguard_truncate_guard', rel::regclass);
            RETURN 'healed';
        END IF;
        PERFORM pgguard.tamper_override(rel, tag);
    END IF;
    RETURN 'ok';
END
$$;

-- After GRANT or REVOKE: a write privilege on pgguard's tables or sequence, or CREATE on its
-- schema, for anyone but the owner, would let sessions forge exemptions, verifications or
-- refusal numbers. Returns what was found, or NULL.
CREATE OR REPLACE FUNCTION pgguard.privileges_widened() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pg_catalog.format('%s on %s to %s', a.privilege_type, c.oid::pg_catalog.regclass,
                             CASE a.grantee WHEN 0 THEN 'PUBLIC'
                                  ELSE a.grantee::pg_catalog.regrole::text END)
      FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
     WHERE c.relnamespace = 'pgguard'::pg_catalog.regnamespace
       AND a.grantee <> c.relowner
       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER',
                                'REFERENCES', 'USAGE')
    UNION ALL
    SELECT pg_catalog.format('%s on schema %s to %s', a.privilege_type, n.nspname,
                             CASE a.grantee WHEN 0 THEN 'PUBLIC'
                                  ELSE a.grantee::pg_catalog.regrole::text END)
      FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
     WHERE n.nspname IN ('pgguard', 'pgguard_sentinel', 'pgguard_watch')
       AND a.grantee <> n.nspowner AND a.privilege_type = 'CREATE'
    LIMIT 1
$$;

-- After ALTER SCHEMA / ALTER EXTENSION: a guarded table now in an excluded schema (a schema
-- renamed to an excluded name, an extension moved there) would have lost its protection.
CREATE OR REPLACE FUNCTION pgguard.guarded_table_in_excluded_schema() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pgguard.ident_path(n.nspname, c.relname)
      FROM pg_catalog.pg_namespace n
      JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
      JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard'
     WHERE n.nspname = ANY (pgguard.excluded_schemas())
     LIMIT 1
$$;

CREATE OR REPLACE FUNCTION pgguard.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
-- one plan per query and session: a custom plan per call (an array or TG_TAG parameter makes
-- the planner prefer them) costs more than the query
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    objs oid[];
    kinds text[];
    rels oid[] := '{}';
    notes boolean;
    i integer;
    rel oid;
    found text;
BEGIN
    -- One read of the commands: what to note, the sentinel's objects, and the tables to look
    -- at. Bookkeeping (note_ddl) only when the command reports a relation, type, schema or
    -- extension: a CREATE TRIGGER (the guard's own, attached below) reports only a trigger,
    -- which can neither create, link nor rename a table.
    SELECT pg_catalog.array_agg(d.objid ORDER BY d.ordinality)
               FILTER (WHERE d.object_type IN ('table', 'schema', 'trigger')),
           pg_catalog.array_agg(d.object_type ORDER BY d.ordinality)
               FILTER (WHERE d.object_type IN ('table', 'schema', 'trigger')),
           pg_catalog.bool_or(d.classid IN ('pg_catalog.pg_class'::pg_catalog.regclass,
                                            'pg_catalog.pg_type'::pg_catalog.regclass,
                                            'pg_catalog.pg_namespace'::pg_catalog.regclass,
                                            'pg_catalog.pg_extension'::pg_catalog.regclass)),
           -- The sentinel's own objects (pgguard's are the sentinel's to watch: a replaced
           -- function of ours would already be the one running here). Inline, calling nothing
           -- replaceable; no token approves it, as the verifier is what would change.
           pg_catalog.min(d.object_identity) FILTER (
               WHERE d.schema_name IN ('pgguard_sentinel', 'pgguard_watch')
                  OR (d.object_type = 'schema'
                      AND d.object_identity IN ('pgguard_sentinel', 'pgguard_watch'))
                  OR (d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                      AND d.objid IN (SELECT e.evtfoid FROM pg_catalog.pg_event_trigger e
                                       WHERE e.evtname LIKE 'pgguard\_%')))
      INTO objs, kinds, notes, found
      FROM pg_catalog.pg_event_trigger_ddl_commands() WITH ORDINALITY d;
    IF notes THEN
        PERFORM pgguard.note_ddl();
    END IF;
    IF TG_TAG IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES') THEN
        PERFORM pgguard.tamper_override(NULL, TG_TAG);
    ELSIF TG_TAG IN ('ALTER SCHEMA', 'ALTER EXTENSION') THEN
        PERFORM pgguard.tamper_override(NULL, TG_TAG);
    END IF;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to change pgguard''s own object %s',
                                        found),
            DETAIL = 'this statement would remove the guard itself',
            HINT = 'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
                   || pg_catalog.quote_ident(pg_catalog.current_database())
                   || ' -- pgguard uninstall',
            CONSTRAINT = 'op=uninstall';
    END IF;
    FOR i IN 1 .. COALESCE(pg_catalog.cardinality(objs), 0) LOOP
        IF kinds[i] = 'table' THEN
            rels := rels || objs[i];
        ELSIF kinds[i] = 'schema' THEN
            -- a schema renamed (say, from an excluded name): each of its tables needs its guard
            rels := rels || ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                                   WHERE c.relnamespace = objs[i] AND c.relkind IN ('r', 'p'));
        ELSE
            rels := rels || (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = objs[i]);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(rels) = 0 THEN
        RETURN;
    END IF;
    -- ATTACH PARTITION and INHERIT report only the parent: look at the whole tree below it
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = ANY (rels)) THEN
        rels := ARRAY(
            WITH RECURSIVE tree(relid) AS (
                SELECT pg_catalog.unnest(rels)
                UNION
                SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                  JOIN tree ON i.inhparent = tree.relid
            )
            SELECT DISTINCT tree.relid FROM tree WHERE tree.relid IS NOT NULL);
    END IF;
    -- Only tables whose guard is not plainly in order go to ensure_guard, which judges them:
    -- after ALTER TABLE ... ADD COLUMN none does, and that costs one query for all of them
    -- (a generic plan: plan_cache_mode above), in the order the command reported them. The
    -- test is a scalar subquery on purpose, so it stays one index lookup per table: as a
    -- NOT EXISTS the generic plan became a merge anti join over every guard in the database,
    -- deparsing each one's WHEN clause, on every DDL statement.
    FOREACH rel IN ARRAY ARRAY(
        SELECT u.rel FROM (
            SELECT DISTINCT ON (t.rel) t.rel, t.n
              FROM pg_catalog.unnest(rels) WITH ORDINALITY t(rel, n)
             WHERE t.rel IS NOT NULL
             ORDER BY t.rel, t.n) u
         WHERE (SELECT g.tgenabled = 'A'
                       AND pgguard.guard_form_ok(g.tgfoid, g.tgtype, g.tgqual, u.rel)
                       AND NOT ((SELECT n.nspname::text FROM pg_catalog.pg_class c
                                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                  WHERE c.oid = u.rel)
                                = ANY ((SELECT pgguard.excluded_schemas())::text[]))
                  FROM pg_catalog.pg_trigger g
                 WHERE g.tgrelid = u.rel AND g.tgname = 'pgguard_truncate_guard')
               IS NOT TRUE
         ORDER BY u.n) LOOP
        PERFORM pgguard.ensure_guard(rel, TG_TAG);
    END LOOP;
    -- row-loss limits (075): a disabled, renamed or replaced row-limit trigger is refused
    FOREACH rel IN ARRAY rels LOOP
        CONTINUE WHEN rel IS NULL OR NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_trigger g
             WHERE g.tgrelid = rel
               AND (g.tgname IN ('pgguard_row_limit_delete', 'pgguard_row_limit_update')
                    OR g.tgfoid = 'pgguard.row_limit_guard()'::pg_catalog.regprocedure));
        PERFORM pgguard.row_limits_ensure(rel, TG_TAG);
    END LOOP;
END
$$;
