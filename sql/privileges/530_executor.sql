-- Privilege mode: pgguard.run_ddl(statement), the executor. Runs exactly one schema change as
-- pgguard_owner (SECURITY DEFINER; the app role holds EXECUTE, never the role) and then judges
-- what the statement DID from the catalog: tables or columns gone need the session's token
-- (045's check_override: same verification, scope and audit as event-trigger mode); anything
-- that would hand the owner's power to someone else is refused. A refusal raises PGG01 and
-- the statement is undone with it. Security notes beside each check; threat model in README.

-- A digest of every catalog row that makes up schema pgguard. Computed inline by run_ddl
-- (and here only for status): nothing replaceable may run before it is compared.
CREATE OR REPLACE FUNCTION pgguard.self_digest() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    ns oid := pg_catalog.to_regnamespace('pgguard');
    rels oid[];
BEGIN
    -- plpgsql for its cached plans (an sql function is planned on every call); the relations
    -- go into an array first so every lookup below is an index scan by relation
    rels := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = ns);
    RETURN pg_catalog.md5(pg_catalog.concat_ws('|',
        (SELECT n.xmin::text FROM pg_catalog.pg_namespace n WHERE n.oid = ns),
        (SELECT pg_catalog.string_agg(c.oid || ':' || c.xmin, ',' ORDER BY c.oid)
           FROM pg_catalog.pg_class c WHERE c.relnamespace = ns),
        (SELECT pg_catalog.string_agg(p.oid || ':' || p.xmin, ',' ORDER BY p.oid)
           FROM pg_catalog.pg_proc p WHERE p.pronamespace = ns),
        (SELECT pg_catalog.string_agg(t.oid || ':' || t.xmin, ',' ORDER BY t.oid)
           FROM pg_catalog.pg_type t WHERE t.typnamespace = ns),
        (SELECT pg_catalog.string_agg(a.attrelid || '.' || a.attnum || ':' || a.xmin, ','
                                      ORDER BY a.attrelid, a.attnum)
           FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY (rels)),
        (SELECT pg_catalog.string_agg(t.oid || ':' || t.xmin, ',' ORDER BY t.oid)
           FROM pg_catalog.pg_trigger t WHERE t.tgrelid = ANY (rels)),
        (SELECT pg_catalog.string_agg(p.oid || ':' || p.xmin, ',' ORDER BY p.oid)
           FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY (rels)),
        (SELECT pg_catalog.string_agg(r.oid || ':' || r.xmin, ',' ORDER BY r.oid)
           FROM pg_catalog.pg_rewrite r WHERE r.ev_class = ANY (rels)),
        (SELECT pg_catalog.string_agg(k.oid || ':' || k.xmin, ',' ORDER BY k.oid)
           FROM pg_catalog.pg_constraint k WHERE k.conrelid = ANY (rels)),
        (SELECT pg_catalog.string_agg(d.oid || ':' || d.xmin, ',' ORDER BY d.oid)
           FROM pg_catalog.pg_attrdef d WHERE d.adrelid = ANY (rels)),
        (SELECT pg_catalog.string_agg(x.oid || ':' || x.xmin, ',' ORDER BY x.oid)
           FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid = ANY (rels))));
END
$$;

-- Rows this transaction inserted, updated or deleted in pgguard's tables so far (the server's
-- own per-transaction counters, which no session can reset). Nothing pgguard does while a
-- schema change runs writes there, so any change is code running as the owner inside it.
CREATE OR REPLACE FUNCTION pgguard.self_writes() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid)
                                 + pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)
                                 + pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)), 0)::bigint
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'pgguard'::pg_catalog.regnamespace AND c.relkind = 'r');
END
$$;

-- Grants and memberships that must not move while a statement runs: pgguard_owner's
-- memberships and default privileges. A digest of them.
CREATE OR REPLACE FUNCTION pgguard.authority_digest() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    own oid := pgguard.owner_oid();
BEGIN
    RETURN pg_catalog.md5(COALESCE((
        SELECT pg_catalog.string_agg(m.roleid || '>' || m.member || ':' || m.admin_option, ','
                                     ORDER BY m.roleid, m.member, m.grantor)
          FROM pg_catalog.pg_auth_members m
         WHERE m.member = own OR m.roleid = own), '')
        || '|' || COALESCE((
        SELECT pg_catalog.string_agg(d.oid || ':' || d.xmin, ',' ORDER BY d.oid)
          FROM pg_catalog.pg_default_acl d), ''));
END
$$;

-- What the statement left that would run someone else's code as the owner later, or hand out
-- the owner's rights (rows written by this transaction only: age <= 0). NULL when nothing.
-- Why each: README "Threat model of the executor". `locked`: the relations the transaction
-- holds a lock of SHARE UPDATE EXCLUSIVE or stronger on (every index, statistics object and
-- relation a statement creates or rebuilds is among them); `wrote`: the catalogs it wrote
-- (see run_ddl). NULL for either: look everywhere (the slow, complete form).
DROP FUNCTION IF EXISTS pgguard.escalation_found();
CREATE OR REPLACE FUNCTION pgguard.escalation_found(
    locked oid[] DEFAULT NULL, wrote text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    g oid[] := pgguard.guarded_schemas();
    own oid := pgguard.owner_oid();
    ns oid := pg_catalog.to_regnamespace('pgguard');
    every boolean := locked IS NULL OR wrote IS NULL;
    idx oid[];
    own_rel oid[];
    own_typ oid[];
    own_fn oid[];
    hit text;  -- not `found`: that name is plpgsql's FOUND
BEGIN
    IF every OR 'pg_proc' = ANY (wrote) THEN
        -- a SECURITY DEFINER function of the owner would run as the owner for anyone
        SELECT pg_catalog.format('SECURITY DEFINER function %s', p.oid::pg_catalog.regprocedure)
          INTO hit FROM pg_catalog.pg_proc p
         WHERE p.proowner = own AND p.prosecdef
           AND p.pronamespace <> 'pgguard'::pg_catalog.regnamespace
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    END IF;
    -- index expressions/predicates and statistics expressions run as the table owner when
    -- autovacuum analyzes the table: only built-in, extension or pgguard functions there.
    -- A new or rebuilt index is always locked by the transaction that writes it.
    IF every THEN
        idx := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                      WHERE c.relkind IN ('i', 'I') AND c.relnamespace = ANY (g)
                        AND pg_catalog.age(c.xmin) <= 0);
    ELSE
        idx := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                      WHERE c.oid = ANY (locked) AND c.relkind IN ('i', 'I')
                        AND c.relnamespace = ANY (g) AND pg_catalog.age(c.xmin) <= 0);
    END IF;
    WITH recent AS (
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, x AS objid
          FROM pg_catalog.unnest(idx) x
        UNION ALL
        SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid
          FROM pg_catalog.pg_statistic_ext s
         WHERE (every OR 'pg_statistic_ext' = ANY (wrote))
           AND s.stxnamespace = ANY (g) AND pg_catalog.age(s.xmin) <= 0
    ), calls AS (
        -- LATERAL: an index probe per new object, never a scan of pg_depend
        SELECT r.classid, r.objid,
               CASE WHEN d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass
                    THEN (SELECT o.oprcode::oid FROM pg_catalog.pg_operator o
                           WHERE o.oid = d.refobjid)
                    ELSE d.refobjid END AS fn
          FROM recent r
          CROSS JOIN LATERAL (
              SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d
               WHERE d.classid = r.classid AND d.objid = r.objid
                 AND d.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass,
                                      'pg_catalog.pg_operator'::pg_catalog.regclass)) d
    )
    SELECT pg_catalog.format('%s uses function %s, which is not built in',
               CASE k.classid WHEN 'pg_catalog.pg_class'::pg_catalog.regclass
                    THEN 'index ' || k.objid::pg_catalog.regclass::text
                    ELSE 'statistics object ' || k.objid END,
               p.oid::pg_catalog.regprocedure)
      INTO hit
      FROM calls k JOIN pg_catalog.pg_proc p ON p.oid = k.fn
     WHERE p.proowner <> 10 AND p.pronamespace <> 'pgguard'::pg_catalog.regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                        WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND e.objid = p.oid AND e.deptype = 'e')
     LIMIT 1;
    IF hit IS NOT NULL THEN RETURN hit; END IF;
    IF every OR 'pg_proc' = ANY (wrote) THEN
        -- ... nor may this statement change a function such code already calls (CREATE OR
        -- REPLACE, ALTER FUNCTION ... SET / RENAME of one an index or range type depends on)
        SELECT pg_catalog.format('function %s, which %s uses, changed',
                   p.oid::pg_catalog.regprocedure,
                   pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
          INTO hit
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d
            ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid = p.oid
         WHERE p.proowner = own AND pg_catalog.age(p.xmin) <= 0
           AND d.classid IN ('pg_catalog.pg_class'::pg_catalog.regclass,
                             'pg_catalog.pg_statistic_ext'::pg_catalog.regclass,
                             'pg_catalog.pg_type'::pg_catalog.regclass)
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    END IF;
    IF every OR 'pg_range' = ANY (wrote) THEN
        -- a range type's subtype_diff runs when a column of it is analyzed
        SELECT pg_catalog.format('range type %s uses function %s, which is not built in',
                                 r.rngtypid::pg_catalog.regtype, r.rngsubdiff::pg_catalog.regproc)
          INTO hit
          FROM (SELECT r.* FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t
                    ON t.oid = r.rngtypid WHERE pg_catalog.age(t.xmin) <= 0 OFFSET 0) r
         WHERE NOT pgguard.trusted_function(r.rngsubdiff)
            OR NOT pgguard.trusted_function(r.rngcanonical)
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    END IF;
    -- anything this statement built on pgguard's tables or code (an updatable view over
    -- pgguard.keys would write it with the owner's rights). When it wrote no function,
    -- operator, range, statistics object or standalone type, what it built hangs off the
    -- relations it locked (views and their rules, policies, triggers, constraints, defaults,
    -- indexes, new tables' columns): their new dependencies are enough. Otherwise all new
    -- dependencies on pgguard's objects.
    IF NOT every AND 'pg_depend' = ANY (wrote)
       AND NOT wrote && '{pg_proc,pg_operator,pg_range,pg_statistic_ext}'::text[]
       AND (NOT 'pg_type' = ANY (wrote)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid = ANY (locked) AND c.reltype <> 0
                          AND pg_catalog.age(c.xmin) <= 0)) THEN
        SELECT pg_catalog.format('%s depends on pgguard''s %s',
                   pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
                   pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
          INTO hit
          FROM (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid, x AS objid
                  FROM pg_catalog.unnest(locked) x
                UNION ALL
                SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::oid, w.oid
                  FROM pg_catalog.pg_rewrite w WHERE w.ev_class = ANY (locked)
                UNION ALL
                SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass::oid, y.oid
                  FROM pg_catalog.pg_policy y WHERE y.polrelid = ANY (locked)
                UNION ALL
                SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass::oid, t.oid
                  FROM pg_catalog.pg_trigger t WHERE t.tgrelid = ANY (locked)
                UNION ALL
                SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, k.oid
                  FROM pg_catalog.pg_constraint k WHERE k.conrelid = ANY (locked)
                UNION ALL
                SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass::oid, a.oid
                  FROM pg_catalog.pg_attrdef a WHERE a.adrelid = ANY (locked)
                OFFSET 0) o
          CROSS JOIN LATERAL (
              SELECT d.* FROM pg_catalog.pg_depend d
               WHERE d.classid = o.classid AND d.objid = o.objid
                 AND pg_catalog.age(d.xmin) <= 0) d
         WHERE CASE d.refclassid
                 WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN EXISTS (
                     SELECT 1 FROM pg_catalog.pg_class c
                      WHERE c.oid = d.refobjid AND c.relnamespace = ns)
                 WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN EXISTS (
                     SELECT 1 FROM pg_catalog.pg_type t
                      WHERE t.oid = d.refobjid AND t.typnamespace = ns)
                 WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN EXISTS (
                     SELECT 1 FROM pg_catalog.pg_proc p
                      WHERE p.oid = d.refobjid AND p.pronamespace = ns
                        AND p.proname <> 'truncate_guard')
                      -- a TRUNCATE guard's WHEN clause (its form is judged with the guards)
                      AND NOT (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
                               AND d.refobjid = 'pgguard.truncate_refused(pg_catalog.regclass)'
                                                    ::pg_catalog.regprocedure)
                 ELSE false END
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    ELSIF every OR 'pg_depend' = ANY (wrote) THEN
        -- pgguard's objects come from their namespace dependencies, their row and array
        -- types and indexes from those: index probes throughout, never a scan of a catalog.
        own_rel := ARRAY(SELECT o.objid FROM pg_catalog.pg_depend o
                          WHERE o.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                            AND o.refobjid = ns AND o.deptype = 'n'
                            AND o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass);
        own_typ := ARRAY(SELECT o.objid FROM pg_catalog.pg_depend o
                          WHERE o.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                            AND o.refobjid = ns AND o.deptype = 'n'
                            AND o.classid = 'pg_catalog.pg_type'::pg_catalog.regclass)
                || ARRAY(SELECT c.reltype FROM pg_catalog.pg_class c
                          WHERE c.oid = ANY (own_rel) AND c.reltype <> 0);
        own_typ := own_typ || ARRAY(SELECT t.typarray FROM pg_catalog.pg_type t
                                     WHERE t.oid = ANY (own_typ) AND t.typarray <> 0);
        own_rel := own_rel || ARRAY(SELECT i.indexrelid FROM pg_catalog.pg_index i
                                     WHERE i.indrelid = ANY (own_rel));
        own_fn := ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p
                         WHERE p.oid = ANY (ARRAY(
                               SELECT o.objid FROM pg_catalog.pg_depend o
                                WHERE o.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                                  AND o.refobjid = ns AND o.deptype = 'n'
                                  AND o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass))
                           AND p.proname <> 'truncate_guard');
        SELECT pg_catalog.format('%s depends on pgguard''s %s',
                   pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
                   pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
          INTO hit
          FROM (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS refclassid, x AS refobjid
                  FROM pg_catalog.unnest(own_rel) x
                UNION ALL
                SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::oid, x
                  FROM pg_catalog.unnest(own_typ) x
                UNION ALL
                SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::oid, x
                  FROM pg_catalog.unnest(own_fn) x) o
          CROSS JOIN LATERAL (
              SELECT d.* FROM pg_catalog.pg_depend d
               WHERE d.refclassid = o.refclassid AND d.refobjid = o.refobjid
                 AND pg_catalog.age(d.xmin) <= 0
                 -- a TRUNCATE guard's WHEN clause (its form is judged with the guards)
                 AND NOT (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
                          AND d.refobjid = 'pgguard.truncate_refused(pg_catalog.regclass)'
                                               ::pg_catalog.regprocedure)) d
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    END IF;
    IF every OR 'pg_class' = ANY (wrote) THEN
        -- privileges that carry structure or re-granting with them (data privileges are the
        -- default privileges' business). GRANT takes no lock: this one has to look at every
        -- relation row of the guarded schemas the transaction wrote.
        SELECT pg_catalog.format('%s on %s to %s%s', a.privilege_type, c.oid::pg_catalog.regclass,
                   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END,
                   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
          INTO hit
          FROM (SELECT c.oid, c.relacl, c.relowner FROM pg_catalog.pg_class c
                 WHERE c.relacl IS NOT NULL AND pg_catalog.age(c.xmin) <= 0
                   AND c.relnamespace = ANY (g) OFFSET 0) c,   -- fence: explode only those rows
               pg_catalog.aclexplode(c.relacl) a
         WHERE a.grantee <> c.relowner
           AND (a.is_grantable OR a.privilege_type NOT IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE',
                                                           'TRUNCATE', 'USAGE'))
         LIMIT 1;
        IF hit IS NOT NULL THEN RETURN hit; END IF;
    END IF;
    IF every OR 'pg_namespace' = ANY (wrote) THEN
        SELECT pg_catalog.format('%s on schema %s to %s', a.privilege_type, n.nspname,
                   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END)
          INTO hit
          FROM (SELECT n.nspname, n.nspacl, n.nspowner FROM pg_catalog.pg_namespace n
                 WHERE n.oid = ANY (g) AND pg_catalog.age(n.xmin) <= 0 OFFSET 0) n,
               pg_catalog.aclexplode(n.nspacl) a
         WHERE a.grantee <> n.nspowner
           AND (a.is_grantable OR a.privilege_type <> 'USAGE')
         LIMIT 1;
    END IF;
    RETURN hit;
END
$$;

-- What the executor needs to know about a relation, read from whatever snapshot is active:
-- the current one, or (through the executor's cursor, below) the one from before the
-- statement ran. Only plain catalog reads, so the snapshot decides what is seen. `guard` is
-- the state of the TRUNCATE guard (070's forms: ok, outdated - the form before the WHEN
-- clause, still protecting -, replaced, disabled, missing; only the current state is judged
-- by form), `guard_on` whether one is ALWAYS on.
CREATE OR REPLACE FUNCTION pgguard.rel_state(rels oid[])
RETURNS TABLE (relid oid, kind text, path text, persistence text, guarded boolean, guard text,
               guard_on boolean, parents oid[], attnums int[], attnames text[], fresh boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    g oid[] := pgguard.guarded_schemas();
BEGIN
    -- plpgsql: its plans are kept for the session (the executor calls this twice a statement)
    RETURN QUERY
    SELECT c.oid, c.relkind::text,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
           c.relpersistence::text,
           c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND c.relnamespace = ANY (g),
           CASE WHEN t.oid IS NULL THEN 'missing'
                WHEN pgguard.guard_form_ok(t.tgfoid, t.tgtype, t.tgqual, c.oid)
                    THEN CASE WHEN t.tgenabled <> 'A' THEN 'disabled' ELSE 'ok' END
                WHEN NOT pgguard.guard_form_old(t.tgfoid, t.tgtype, t.tgqual) THEN 'replaced'
                WHEN t.tgenabled <> 'A' THEN 'disabled'
                ELSE 'outdated' END,
           t.oid IS NOT NULL AND t.tgenabled = 'A',
           ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
           ARRAY(SELECT a.attnum::int FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum),
           ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum),
           pg_catalog.age(c.xmin) <= 0
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_trigger t
             ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard'
     WHERE c.oid = ANY (rels);
END
$$;

-- The executor's view of the catalog as it was before the statement: run_ddl opens a cursor
-- on this before the statement runs and fetches from it afterwards; a cursor keeps the
-- snapshot it was opened with, so rel_state sees the relations as they were (names, columns,
-- guards of tables the statement renamed or dropped; their row-limit triggers, 075). Which relations: the setting
-- pgguard.prior_ask, set by run_ddl just before the fetch. Code the statement ran could close
-- that cursor and open its own under the same name, so the answer carries a MAC under a key
-- only run_ddl's call knows (a cursor parameter: not visible in pg_cursors).
CREATE OR REPLACE FUNCTION pgguard.prior_state(mac_key bytea) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    ask text := pg_catalog.current_setting('pgguard.prior_ask');
    msg text;
BEGIN
    msg := ask || '|' || pg_catalog.jsonb_build_object(
        'rels', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s))
                            FROM pgguard.rel_state(ask::oid[]) s), '[]'),
        'limits', pgguard.row_limits_before(ask::oid[]))::text;
    RETURN msg || '|' || pg_catalog.encode(pg_catalog.sha256(mac_key || pg_catalog.sha256(
        mac_key || pg_catalog.convert_to(msg, 'UTF8'))), 'hex');
END
$$;

-- The executor. `caller_schemas` defaults to the caller's effective search_path (a default is
-- evaluated in the caller's context): the statement runs with those schemas, minus pg_catalog
-- and pg_temp, then pg_temp last. pg_catalog, not listed, is searched first - so built-ins
-- cannot be shadowed and temporary objects come last, while unqualified names otherwise
-- resolve (and unqualified CREATEs land) as the caller intended. Returns the command tag.
--
-- Cost: the checks follow what the statement did, not the size of the database. What it did
-- comes from two records the server keeps and no session can forge: the per-transaction row
-- counters of the catalogs (pg_stat_get_xact_tuples_*: which kinds of catalog rows it wrote,
-- so checks about functions, ranges, schemas... run only when those were written) and the
-- locks the transaction holds (every table or column dropped, renamed or moved, every trigger
-- changed, every index created takes a lock of SHARE ROW EXCLUSIVE or stronger on its table
-- or index, kept to the end of the transaction - also when code the statement ran did it).
-- The state before the statement of exactly those relations comes from a cursor opened
-- before it ran (prior_state). Where the server does not count (track_counts off) the
-- executor refuses: the counters are also how writes to pgguard's own tables are seen.
CREATE OR REPLACE FUNCTION pgguard.run_ddl(
    statement text, caller_schemas name[] DEFAULT pg_catalog.current_schemas(false))
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET standard_conforming_strings = on
SET check_function_bodies = on
SET plan_cache_mode = force_generic_plan  -- array arguments: custom plans were re-planned on every call
SET jit = off  -- its catalog queries are costed past jit_above_cost: compiling cost more
AS $$
DECLARE
    pinned CONSTANT text := 'pg_catalog, pgguard, pg_temp';
    -- the catalogs whose row counters say which checks a statement needs (order matters)
    cats CONSTANT oid[] := '{pg_catalog.pg_class, pg_catalog.pg_attribute,
        pg_catalog.pg_namespace, pg_catalog.pg_proc, pg_catalog.pg_type,
        pg_catalog.pg_operator, pg_catalog.pg_depend, pg_catalog.pg_shdepend,
        pg_catalog.pg_statistic_ext, pg_catalog.pg_range}'::pg_catalog.regclass[]::oid[];
    counted boolean := pg_catalog.current_setting('track_counts') = 'on';
    ins0 bigint[];        -- counters before: rows inserted, updated, deleted per catalog
    upd0 bigint[];
    del0 bigint[];
    ins1 bigint[];
    upd1 bigint[];
    del1 bigint[];
    wi boolean[] := '{}'; -- what the statement wrote: inserted / updated / deleted per catalog
    wu boolean[] := '{}';
    wd boolean[] := '{}';
    wrote text[] := '{}';
    k int;
    db oid := (SELECT d.oid FROM pg_catalog.pg_database d
                WHERE d.datname = pg_catalog.current_database());
    ns oid := pg_catalog.to_regnamespace('pgguard');
    own_objs text[];      -- pgguard's objects (namespace dependencies), before
    own_tabs oid[];       -- pgguard's tables, whose row counters must not move
    lex record;
    why text;
    tag text;
    path text;
    writes_before bigint;
    auth_before text;
    mac_key bytea;
    tm refcursor;         -- the view from before the statement (prior_state)
    parsed refcursor;     -- BEGIN ATOMIC: the server's parser counts the statements
    ask oid[];
    answer text;
    msg text;
    prior jsonb;
    b_limits text[] := '{}';  -- row-limit triggers before (075)
    locked_all oid[];     -- relations locked SHARE UPDATE EXCLUSIVE or stronger
    locked oid[];         -- ... SHARE ROW EXCLUSIVE or stronger: structure may have changed
    gone_t text[] := '{}';
    gone_oid oid[] := '{}';
    gone_par oid[] := '{}';
    gone_c text[] := '{}';
    gone_c_oid oid[] := '{}';
    gone_c_num int[] := '{}';
    ren_rel oid[] := '{}';
    ren_num int[] := '{}';
    bad_guard text[] := '{}';
    bad_state text[] := '{}';
    to_guard oid[] := '{}';
    new_rels oid[] := '{}';
    unlogged text;
    covering text[];
    claims jsonb;
    issued timestamptz;
    renamed record;
    bad text;  -- not `found`: that name would hide plpgsql's FOUND
    r record;
    i int;
    v_xid bigint;
    empty_on boolean := pgguard.empty_rule_on();
    probe oid[];          -- tables the statement drops, to measure before it runs again
    b_empty oid[] := '{}';
    measured boolean := false;
    rel oid;
    empty_t text[];
    empty_c text[];
    g oid[];
BEGIN
    lex := pgguard.statement_words(statement);
    IF lex.problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: the executor runs exactly one statement: ' || lex.problem,
            HINT = 'send statements one at a time (pgguard run splits a file for you)',
            CONSTRAINT = 'op=uninstall';
    END IF;
    why := pgguard.statement_refusal(lex.words);
    IF why IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: the executor refuses this statement: %s', why),
            DETAIL = pg_catalog.left(statement, 200),
            CONSTRAINT = 'op=uninstall';
    END IF;
    tag := pgguard.statement_tag(lex.words);
    IF NOT counted THEN
        -- the row counters are how code run by the statement writing pgguard's tables is seen
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: the executor needs track_counts = on (the server default)',
            HINT = 'ask the platform or a superuser to turn track_counts back on',
            CONSTRAINT = 'op=uninstall';
    END IF;
    IF ' ' || pg_catalog.array_to_string(lex.words, ' ') || ' ' LIKE '% BEGIN ATOMIC %' THEN
        -- The lexer follows psql's rule for BEGIN ATOMIC bodies (CASE ... END nests), which a
        -- keyword used as a name can fool. The server's parser decides instead: opening a
        -- cursor parses (and runs nothing) and refuses a text of several statements before
        -- it refuses a single statement that is no query - with its command tag.
        BEGIN
            OPEN parsed NO SCROLL FOR EXECUTE statement;
            CLOSE parsed;
            why := 'not a schema change';
        EXCEPTION WHEN invalid_cursor_definition THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            why := CASE WHEN pg_catalog.strpos(why, tag) > 0 THEN NULL ELSE why END;
        END;
        IF why IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'PGG01',
                MESSAGE = 'pgguard: the executor runs exactly one statement: the server reads '
                          || 'more than one in this text',
                DETAIL = why,
                HINT = 'send statements one at a time (pgguard run splits a file for you)',
                CONSTRAINT = 'op=uninstall';
        END IF;
    END IF;

    -- before: pgguard's own objects and tables (through their namespace dependencies, an
    -- index scan), the catalog counters, grants of the owner
    own_objs := ARRAY(SELECT d.classid || ':' || d.objid FROM pg_catalog.pg_depend d
                       WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                         AND d.refobjid = ns AND d.deptype = 'n' ORDER BY 1);
    own_tabs := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                       WHERE c.relkind = 'r' AND c.oid IN (
                             SELECT d.objid FROM pg_catalog.pg_depend d
                              WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                                AND d.refobjid = ns AND d.deptype = 'n'
                                AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass));
    writes_before := (SELECT COALESCE(pg_catalog.sum(
                                 pg_catalog.pg_stat_get_xact_tuples_inserted(x)
                               + pg_catalog.pg_stat_get_xact_tuples_updated(x)
                               + pg_catalog.pg_stat_get_xact_tuples_deleted(x)), 0)::bigint
                        FROM pg_catalog.unnest(own_tabs) x);
    auth_before := pgguard.authority_digest();
    SELECT pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_inserted(c.c) ORDER BY c.o),
           pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_updated(c.c) ORDER BY c.o),
           pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_deleted(c.c) ORDER BY c.o)
      INTO ins0, upd0, del0
      FROM pg_catalog.unnest(cats) WITH ORDINALITY AS c(c, o);
    mac_key := pg_catalog.decode(pg_catalog.md5(pg_catalog.gen_random_uuid()::text)
                                 || pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 'hex');
    OPEN tm NO SCROLL FOR SELECT pgguard.prior_state(mac_key) FROM pg_catalog.generate_series(1, 4);

    -- the caller's schemas, pg_catalog first and pg_temp last (see the header)
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(s), ', ' ORDER BY o) INTO path
      FROM pg_catalog.unnest(caller_schemas) WITH ORDINALITY AS u(s, o)
     WHERE s NOT IN ('pg_catalog', 'pgguard', 'pgguard_sentinel') AND s NOT LIKE 'pg\_temp%';
    -- The empty-table rule (047): a table that holds no row may go without a token. Whether
    -- it held one must be read before it is gone, and only a statement that drops tables
    -- needs to know: it runs once in a subtransaction, is undone when it dropped any, the
    -- tables it dropped are locked (ACCESS EXCLUSIVE, to the end of the transaction: no
    -- writer can slip in) and measured, and then it runs again for real.
    LOOP
        BEGIN
            PERFORM pg_catalog.set_config('search_path',
                                          COALESCE(path || ', ', '') || 'pg_temp', true);
            EXECUTE statement;
            PERFORM pg_catalog.set_config('search_path', pinned, true);
            IF empty_on AND NOT measured THEN
                -- locked relations that are no guarded table now: were they one before?
                g := pgguard.guarded_schemas();
                ask := ARRAY(
                    SELECT DISTINCT l.relation FROM pg_catalog.pg_lock_status() l
                     WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
                       AND l.database = db AND l.granted
                       AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock',
                                      'AccessExclusiveLock')
                       AND NOT EXISTS (
                           SELECT 1 FROM pg_catalog.pg_class c
                            WHERE c.oid = l.relation
                              AND (c.relkind NOT IN ('r', 'p')
                                   OR (c.relpersistence <> 't' AND c.relnamespace = ANY (g)))));
                probe := '{}';
                IF pg_catalog.cardinality(ask) > 0 THEN
                    PERFORM pg_catalog.set_config('pgguard.prior_ask', ask::text, true);
                    FETCH tm INTO answer;
                    -- (the MAC is checked on the answer that decides, after the statement)
                    probe := ARRAY(SELECT b.relid FROM pg_catalog.jsonb_to_recordset(
                                       pg_catalog.substr(pg_catalog.left(answer, -65),
                                           pg_catalog.length(ask::text) + 2)::jsonb -> 'rels')
                                       AS b(relid oid, guarded boolean)
                                    WHERE b.guarded);
                END IF;
                IF pg_catalog.cardinality(probe) > 0 THEN
                    RAISE EXCEPTION USING ERRCODE = 'PGGE0';  -- internal: measure, run again
                END IF;
            END IF;
            EXIT;
        EXCEPTION WHEN SQLSTATE 'PGGE0' THEN
            PERFORM pg_catalog.set_config('search_path', pinned, true);
            FOREACH rel IN ARRAY probe LOOP
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE',
                                          rel::pg_catalog.regclass);
            END LOOP;
            b_empty := ARRAY(SELECT x FROM pg_catalog.unnest(probe) x
                              WHERE pgguard.holds_no_row(x));
            measured := true;
        END;
    END LOOP;

    -- What the statement wrote and locked. Until pgguard itself is known to be unchanged
    -- nothing replaceable runs (the statement ran as the owner of pgguard's functions):
    -- inline queries only, down to the own-objects checks.
    SELECT pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_inserted(c.c) ORDER BY c.o),
           pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_updated(c.c) ORDER BY c.o),
           pg_catalog.array_agg(pg_catalog.pg_stat_get_xact_tuples_deleted(c.c) ORDER BY c.o)
      INTO ins1, upd1, del1
      FROM pg_catalog.unnest(cats) WITH ORDINALITY AS c(c, o);
    FOR k IN 1 .. pg_catalog.cardinality(cats) LOOP
        wi := wi || (NOT counted OR ins1[k] <> ins0[k]);
        wu := wu || (NOT counted OR upd1[k] <> upd0[k]);
        wd := wd || (NOT counted OR del1[k] <> del0[k]);
        IF wi[k] OR wu[k] OR wd[k] THEN
            wrote := wrote || (SELECT c.relname::text FROM pg_catalog.pg_class c
                                WHERE c.oid = cats[k]);
        END IF;
    END LOOP;
    SELECT pg_catalog.array_agg(DISTINCT l.relation),
           pg_catalog.array_agg(DISTINCT l.relation)
               FILTER (WHERE l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock',
                                        'AccessExclusiveLock'))
      INTO locked_all, locked
      FROM pg_catalog.pg_lock_status() l
     WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
       AND l.database = db AND l.granted
       AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock',
                      'ExclusiveLock', 'AccessExclusiveLock');
    locked_all := COALESCE(locked_all, '{}');
    locked := COALESCE(locked, '{}');

    -- pgguard's own objects: none added, removed or moved (namespace dependencies), none
    -- rewritten (their catalog rows, columns included: a GRANT takes no lock), none locked
    -- for a change (triggers, policies, rules, indexes, constraints, statistics on its tables)
    IF (wi[7] OR wu[7] OR wd[7])
       AND ARRAY(SELECT d.classid || ':' || d.objid FROM pg_catalog.pg_depend d
                  WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                    AND d.refobjid = ns AND d.deptype = 'n' ORDER BY 1)
           IS DISTINCT FROM own_objs THEN
        bad := 'objects';
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                   WHERE c.oid = ANY (locked_all) AND c.relnamespace = ns) THEN
        bad := 'locked';
    ELSIF (wu[1] OR wu[2] OR wu[3] OR wi[4] OR wu[4] OR wu[5] OR wu[6])
          AND (EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                        WHERE n.oid = ns AND pg_catalog.age(n.xmin) <= 0)
               OR EXISTS (
                   SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                      AND d.refobjid = ns AND d.deptype = 'n'
                      AND CASE d.classid
                          WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN EXISTS (
                              SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = d.objid
                                 AND (pg_catalog.age(c.xmin) <= 0 OR EXISTS (
                                      SELECT 1 FROM pg_catalog.pg_attribute a
                                       WHERE a.attrelid = c.oid
                                         AND pg_catalog.age(a.xmin) <= 0)))
                          WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN EXISTS (
                              SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = d.objid
                                 AND pg_catalog.age(p.xmin) <= 0)
                          WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN EXISTS (
                              SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = d.objid
                                 AND pg_catalog.age(t.xmin) <= 0)
                          WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN EXISTS (
                              SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oid = d.objid
                                 AND pg_catalog.age(o.xmin) <= 0)
                          ELSE false END)) THEN
        bad := 'rows';
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that changes pgguard''s own objects',
            DETAIL = pg_catalog.left(statement, 200),
            HINT = 'pgguard install and uninstall change schema pgguard; nothing else may',
            CONSTRAINT = 'op=uninstall';
    END IF;
    IF (SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_xact_tuples_inserted(x)
                                     + pg_catalog.pg_stat_get_xact_tuples_updated(x)
                                     + pg_catalog.pg_stat_get_xact_tuples_deleted(x)), 0)::bigint
          FROM pg_catalog.unnest(own_tabs) x) <> writes_before THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that wrote to pgguard''s tables',
            DETAIL = 'code run by the statement (a function, a default, an index expression) '
                     || 'wrote rows in schema pgguard as the protected owner',
            CONSTRAINT = 'op=uninstall';
    END IF;
    -- pgguard is as it was: its functions may run from here on
    IF pgguard.authority_digest() IS DISTINCT FROM auth_before THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that changes role memberships or default '
                      || 'privileges of ' || pgguard.owner_name(),
            CONSTRAINT = 'op=uninstall';
    END IF;
    bad := pgguard.escalation_found(CASE WHEN counted THEN locked_all END,
                                    CASE WHEN counted THEN wrote END);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing a statement that leaves %s', bad),
            DETAIL = 'code or rights left this way would let the app role act as the protected '
                     || 'owner',
            HINT = 'use built-in functions in indexes; run reviewed exceptions as the owner '
                   || 'credential (break-glass)',
            CONSTRAINT = 'op=uninstall';
    END IF;
    -- an owner changes: the owner's shared dependency row is rewritten (or a schema is made
    -- for someone else)
    IF wu[8] OR wd[8] OR wi[3] OR wu[3] THEN
        SELECT d.kind || ' ' || d.object || ' (owner ' || d.owner || ')' INTO bad
          FROM pgguard.ownership_drift() d LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'PGG01',
                MESSAGE = pg_catalog.format(
                    'pgguard: refusing a statement that leaves %s not owned by %s', bad,
                    pgguard.owner_name()),
                CONSTRAINT = 'op=uninstall';
        END IF;
    END IF;

    -- Tables and columns gone, renamed, made unlogged, guards changed, tables new: only
    -- relations the transaction locked can be among them - plus, when a schema row was
    -- rewritten (renamed: every table in it has a new name), that schema's tables.
    IF wu[3] OR wd[3] THEN
        locked := locked || ARRAY(
            SELECT c.oid FROM pg_catalog.pg_class c
             WHERE c.relkind IN ('r', 'p') AND c.relnamespace IN (
                   SELECT n.oid FROM pg_catalog.pg_namespace n
                    WHERE pg_catalog.age(n.xmin) <= 0));
    END IF;
    v_xid := pgguard.current_xid();
    IF pg_catalog.cardinality(locked) > 0 THEN
        ask := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(locked) x ORDER BY 1);
        PERFORM pg_catalog.set_config('pgguard.prior_ask', ask::text, true);
        FETCH tm INTO answer;
        IF NOT FOUND OR answer IS NULL THEN
            answer := '';
        END IF;
        msg := pg_catalog.left(answer, -65);
        IF pg_catalog.right(answer, 64) IS DISTINCT FROM pg_catalog.encode(pg_catalog.sha256(
               mac_key || pg_catalog.sha256(mac_key || pg_catalog.convert_to(msg, 'UTF8'))), 'hex')
           OR pg_catalog.split_part(msg, '|', 1) <> ask::text THEN
            RAISE EXCEPTION USING ERRCODE = 'PGG01',
                MESSAGE = 'pgguard: refusing a statement that interfered with the executor''s '
                          || 'view of the catalog',
                DETAIL = 'code run by the statement closed or replaced the executor''s cursor',
                CONSTRAINT = 'op=uninstall';
        END IF;
        prior := pg_catalog.substr(msg, pg_catalog.length(ask::text) + 2)::jsonb;
        b_limits := ARRAY(SELECT pg_catalog.jsonb_array_elements_text(prior -> 'limits'));
        prior := prior -> 'rels';
        FOR r IN
            SELECT COALESCE(b.relid, a.relid) AS relid, b.path AS b_path,
                   COALESCE(b.guarded, false) AS b_guarded,
                   b.guard_on AS b_guard_on, b.parents AS b_parents, b.attnums AS b_nums,
                   b.attnames AS b_names, b.persistence AS b_pers,
                   a.relid AS a_relid, a.path AS a_path, COALESCE(a.guarded, false) AS a_guarded,
                   a.guard AS a_guard, a.attnums AS a_nums, a.attnames AS a_names,
                   a.persistence AS a_pers, a.fresh AS a_fresh
              FROM pg_catalog.jsonb_to_recordset(prior)
                       AS b(relid oid, path text, persistence text, guarded boolean,
                            guard_on boolean, parents oid[], attnums int[], attnames text[])
              FULL JOIN pgguard.rel_state(ask) a ON a.relid = b.relid
        LOOP
            IF r.b_guarded AND NOT r.a_guarded AND NOT EXISTS (
                   SELECT 1 FROM pgguard.created_tables ct
                    WHERE ct.xid = v_xid AND ct.relid = r.relid) THEN
                gone_t := gone_t || r.b_path;
                gone_oid := gone_oid || r.relid;
                gone_par := gone_par || r.b_parents;
            END IF;
            IF r.b_guarded AND r.a_relid IS NOT NULL AND r.a_path <> r.b_path THEN
                ren_rel := ren_rel || r.relid;
                ren_num := ren_num || 0;
            END IF;
            IF r.b_guarded AND r.a_guarded THEN
                FOR i IN 1 .. COALESCE(pg_catalog.cardinality(r.b_nums), 0) LOOP
                    k := pg_catalog.array_position(r.a_nums, r.b_nums[i]);
                    IF k IS NULL THEN
                        IF NOT EXISTS (SELECT 1 FROM pgguard.created_tables ct
                                        WHERE ct.xid = v_xid AND ct.relid = r.relid) THEN
                            gone_c := gone_c || (r.b_path || '.'
                                                 || pg_catalog.quote_ident(r.b_names[i]));
                            gone_c_oid := gone_c_oid || r.relid;
                            gone_c_num := gone_c_num || r.b_nums[i];
                        END IF;
                    ELSIF r.a_names[k] <> r.b_names[i] THEN
                        ren_rel := ren_rel || r.relid;
                        ren_num := ren_num || r.b_nums[i];
                    END IF;
                END LOOP;
                -- UNLOGGED: a crash empties the table and replicas never see it
                IF r.a_pers = 'u' AND r.b_pers <> 'u' AND unlogged IS NULL THEN
                    unlogged := r.b_path;
                END IF;
            END IF;
            -- guards: a table that had a good one keeps it; new tables get theirs
            IF r.a_guarded AND r.a_guard <> 'ok' THEN
                IF r.a_guard = 'outdated' THEN
                    -- enabled always, in the form before the WHEN clause: replaced in place
                    to_guard := to_guard || r.relid;
                ELSIF r.b_guarded AND r.b_guard_on THEN
                    bad_guard := bad_guard || r.a_path;
                    bad_state := bad_state || r.a_guard;
                ELSIF NOT r.b_guarded THEN
                    to_guard := to_guard || r.relid;
                END IF;
            END IF;
            IF r.a_guarded AND NOT r.b_guarded AND r.a_fresh THEN
                new_rels := new_rels || r.relid;
            END IF;
        END LOOP;
    END IF;

    IF empty_on AND (pg_catalog.cardinality(gone_t) > 0 OR pg_catalog.cardinality(gone_c) > 0) THEN
        -- tables measured empty before the statement; columns of a table (and its
        -- partitions) that holds no row now, under the statement's lock
        SELECT pg_catalog.array_agg(t.path) FILTER (WHERE t.oid = ANY (b_empty)),
               COALESCE(pg_catalog.array_agg(t.path) FILTER (WHERE NOT t.oid = ANY (b_empty)), '{}'),
               COALESCE(pg_catalog.array_agg(t.oid) FILTER (WHERE NOT t.oid = ANY (b_empty)), '{}')
          INTO empty_t, gone_t, gone_oid
          FROM unnest(gone_t, gone_oid) AS t(path, oid);
        SELECT pg_catalog.array_agg(c.path) FILTER (WHERE pgguard.tree_holds_no_row(c.oid)),
               COALESCE(pg_catalog.array_agg(c.path) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid)), '{}'),
               COALESCE(pg_catalog.array_agg(c.oid) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid)), '{}'),
               COALESCE(pg_catalog.array_agg(c.num) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid)), '{}')
          INTO empty_c, gone_c, gone_c_oid, gone_c_num
          FROM unnest(gone_c, gone_c_oid, gone_c_num) AS c(path, oid, num);
        IF empty_t IS NOT NULL THEN
            PERFORM pgguard.note_empty_allowed('drop_table', empty_t, tag);
        END IF;
        IF empty_c IS NOT NULL THEN
            PERFORM pgguard.note_empty_allowed('drop_column', empty_c, tag);
        END IF;
    END IF;
    IF pg_catalog.cardinality(gone_t) > 0 OR pg_catalog.cardinality(gone_c) > 0 THEN
        claims := (pgguard.presented_token()).claims;
        issued := pg_catalog.to_timestamp((claims ->> 'iat')::double precision);
        -- a token issued before a table or column got its current name does not cover it
        IF issued IS NOT NULL THEN
            SELECT x.obj, x.op, x.at INTO renamed FROM (
                SELECT t.path AS obj, 'drop_table' AS op, pgguard.renamed_since(t.oid, 0, issued) AS at
                  FROM unnest(gone_t, gone_oid) AS t(path, oid)
                UNION ALL
                SELECT c.path, 'drop_column', pgguard.renamed_since(c.oid, c.num, issued)
                  FROM unnest(gone_c, gone_c_oid, gone_c_num) AS c(path, oid, num)
            ) x WHERE x.at IS NOT NULL LIMIT 1;
            IF FOUND THEN
                PERFORM pgguard.refuse(renamed.op, ARRAY[renamed.obj], pg_catalog.format(
                    '"%s" got its current name at %s, after the override token was issued (%s)',
                    renamed.obj, renamed.at, issued), NULL, tag, NULL, 'renamed', claims);
            END IF;
        END IF;
        -- a partition or child gone with its parent is covered by a token for the parent
        covering := ARRAY(SELECT t.path FROM unnest(gone_t, gone_oid) AS t(path, oid)
                           WHERE t.oid = ANY (gone_par));
        PERFORM pgguard.check_override('drop_table',
            ARRAY(SELECT t.path FROM unnest(gone_t, gone_oid) AS t(path, oid)
                   WHERE NOT EXISTS (
                       SELECT 1 FROM pg_catalog.jsonb_to_recordset(prior)
                                         AS b(relid oid, parents oid[])
                        WHERE b.relid = t.oid AND b.parents && gone_oid)),
            tag, NULL);
        PERFORM pgguard.check_override('drop_table',
            ARRAY(SELECT t.path FROM unnest(gone_t, gone_oid) AS t(path, oid)
                   WHERE EXISTS (
                       SELECT 1 FROM pg_catalog.jsonb_to_recordset(prior)
                                         AS b(relid oid, parents oid[])
                        WHERE b.relid = t.oid AND b.parents && gone_oid)),
            tag, NULL, covering);
        PERFORM pgguard.check_override('drop_column', gone_c, tag, NULL);
    END IF;

    IF unlogged IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to make table "%s" unlogged', unlogged),
            DETAIL = 'an unlogged table is emptied by a crash and missing on replicas',
            HINT = 'run it as the owner credential (break-glass) if it is really meant',
            CONSTRAINT = 'op=uninstall';
    END IF;
    -- row-loss limits keep their triggers, as the guards below do
    IF pg_catalog.cardinality(b_limits) > 0 THEN
        PERFORM pgguard.row_limits_after(b_limits, tag);
    END IF;
    FOR i IN 1 .. pg_catalog.cardinality(bad_guard) LOOP
        PERFORM pgguard.check_override('uninstall', ARRAY[bad_guard[i]], tag, NULL, '{}',
            pg_catalog.format('pgguard: refusing to %s the TRUNCATE guard of "%s"',
                CASE bad_state[i] WHEN 'missing' THEN 'drop' WHEN 'replaced' THEN 'replace'
                     ELSE 'disable' END, bad_guard[i]));
    END LOOP;
    FOREACH rel IN ARRAY to_guard LOOP
        PERFORM pgguard.ensure_guard(rel, 'CREATE TRIGGER');
    END LOOP;

    -- bookkeeping the event triggers do in the other mode: tables made in this transaction
    -- (exempt, as there), and renames (a token issued before one does not cover the new name)
    IF pg_catalog.cardinality(new_rels) > 0 THEN
        INSERT INTO pgguard.created_tables (xid, relid)
        SELECT v_xid, x FROM pg_catalog.unnest(new_rels) x ON CONFLICT DO NOTHING;
    END IF;
    IF pg_catalog.cardinality(ren_rel) > 0 THEN
        INSERT INTO pgguard.renames (relid, attnum, renamed_at)
        SELECT x.rel, x.num, pg_catalog.clock_timestamp()
          FROM (SELECT DISTINCT y.rel, y.num FROM unnest(ren_rel, ren_num) AS y(rel, num)) x
        ON CONFLICT (relid, attnum) DO UPDATE SET renamed_at = EXCLUDED.renamed_at;
    END IF;
    CLOSE tm;
    RETURN tag;
END
$$;
