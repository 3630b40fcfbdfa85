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
    own oid := pg_catalog.to_regrole('pgguard_owner');
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

-- What this transaction's statement left that would run someone else's code as the owner
-- later, or hand out the owner's rights (rows written by this transaction only: age <= 0).
-- NULL when nothing. Why each: README "Threat model of the executor".
CREATE OR REPLACE FUNCTION pgguard.escalation_found() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    g oid[] := pgguard.guarded_schemas();
    own oid := pg_catalog.to_regrole('pgguard_owner');
    ns oid := pg_catalog.to_regnamespace('pgguard');
    hit text;  -- not `found`: that name is plpgsql's FOUND
BEGIN
    -- a SECURITY DEFINER function of the owner would run as the owner for anyone
    SELECT pg_catalog.format('SECURITY DEFINER function %s', p.oid::pg_catalog.regprocedure)
      INTO hit FROM pg_catalog.pg_proc p
     WHERE p.proowner = own AND p.prosecdef
       AND p.pronamespace <> 'pgguard'::pg_catalog.regnamespace
     LIMIT 1;
    IF hit IS NOT NULL THEN RETURN hit; END IF;
    -- index expressions/predicates and statistics expressions run as the table owner when
    -- autovacuum analyzes the table: only built-in, extension or pgguard functions there
    WITH recent AS (
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, i.indexrelid AS objid
          FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
         WHERE c.relnamespace = ANY (g) AND pg_catalog.age(c.xmin) <= 0
        UNION ALL
        SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid
          FROM pg_catalog.pg_statistic_ext s
         WHERE s.stxnamespace = ANY (g) AND pg_catalog.age(s.xmin) <= 0
    ), calls AS (
        SELECT d.classid, d.objid,
               CASE WHEN d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass
                    THEN (SELECT o.oprcode::oid FROM pg_catalog.pg_operator o
                           WHERE o.oid = d.refobjid)
                    ELSE d.refobjid END AS fn
          FROM pg_catalog.pg_depend d JOIN recent r ON r.classid = d.classid AND r.objid = d.objid
         WHERE d.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass,
                                'pg_catalog.pg_operator'::pg_catalog.regclass)
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
    -- anything this statement built on pgguard's tables or code (an updatable view over
    -- pgguard.keys would write it with the owner's rights)
    SELECT pg_catalog.format('%s depends on pgguard''s %s',
               pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
               pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
      INTO hit
      FROM pg_catalog.pg_depend d
     WHERE ((d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
             AND d.refobjid = ANY (ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                                          WHERE c.relnamespace = ns)))
            OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
                AND d.refobjid = ANY (ARRAY(SELECT t.oid FROM pg_catalog.pg_type t
                                             WHERE t.typnamespace = ns)))
            OR (d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND d.refobjid = ANY (ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p
                                             WHERE p.pronamespace = ns
                                               AND p.proname <> 'truncate_guard'))
                -- a TRUNCATE guard's WHEN clause (its form is judged with the guards below)
                AND NOT (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
                         AND d.refobjid = 'pgguard.truncate_refused(pg_catalog.regclass)'
                                              ::pg_catalog.regprocedure)))
       AND pg_catalog.age(d.xmin) <= 0
     LIMIT 1;
    IF hit IS NOT NULL THEN RETURN hit; END IF;
    -- privileges that carry structure or re-granting with them (data privileges are the
    -- default privileges' business)
    SELECT pg_catalog.format('%s on %s to %s%s', a.privilege_type, c.oid::pg_catalog.regclass,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END,
               CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
      INTO hit
      FROM (SELECT c.oid, c.relacl, c.relowner FROM pg_catalog.pg_class c
             WHERE c.relnamespace = ANY (g) AND pg_catalog.age(c.xmin) <= 0
               AND c.relacl IS NOT NULL OFFSET 0) c,   -- fence: explode only those rows
           pg_catalog.aclexplode(c.relacl) a
     WHERE a.grantee <> c.relowner
       AND (a.is_grantable OR a.privilege_type NOT IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE',
                                                       'TRUNCATE', 'USAGE'))
     LIMIT 1;
    IF hit IS NOT NULL THEN RETURN hit; END IF;
    SELECT pg_catalog.format('%s on schema %s to %s', a.privilege_type, n.nspname,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END)
      INTO hit
      FROM (SELECT n.nspname, n.nspacl, n.nspowner FROM pg_catalog.pg_namespace n
             WHERE n.oid = ANY (g) AND pg_catalog.age(n.xmin) <= 0 OFFSET 0) n,
           pg_catalog.aclexplode(n.nspacl) a
     WHERE a.grantee <> n.nspowner
       AND (a.is_grantable OR a.privilege_type <> 'USAGE')
     LIMIT 1;
    RETURN hit;
END
$$;

-- The executor. `caller_schemas` defaults to the caller's effective search_path (a default is
-- evaluated in the caller's context): the statement runs with those schemas, minus pg_catalog
-- and pg_temp, then pg_temp last. pg_catalog, not listed, is searched first - so built-ins
-- cannot be shadowed and temporary objects come last, while unqualified names otherwise
-- resolve (and unqualified CREATEs land) as the caller intended. Returns the command tag.
CREATE OR REPLACE FUNCTION pgguard.run_ddl(
    statement text, caller_schemas name[] DEFAULT pg_catalog.current_schemas(false))
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET standard_conforming_strings = on
SET check_function_bodies = on
SET jit = off  -- its catalog queries are costed past jit_above_cost: compiling cost more
AS $$
DECLARE
    pinned CONSTANT text := 'pg_catalog, pgguard, pg_temp';
    lex record;
    why text;
    tag text;
    path text;
    self_before text;
    writes_before bigint;
    auth_before text;
    b_rel oid[];          -- guarded tables before: oid, path, guard ok
    b_path text[];
    b_guard boolean[];
    b_crel oid[];         -- their columns: table oid, attnum, name
    b_cnum int[];
    b_cname name[];
    b_child oid[];        -- inheritance links before: child, parent
    b_limits text[];      -- row-limit triggers before (075)
    b_parent oid[];
    gone_t text[];
    gone_oid oid[];
    gone_c text[];
    gone_c_oid oid[];
    gone_c_num int[];
    covering text[];
    claims jsonb;
    issued timestamptz;
    renamed record;
    bad text;  -- not `found`: that name would hide plpgsql's FOUND
    r record;
    v_xid bigint;
    new_rels oid[];
    g oid[];
    empty_on boolean := pgguard.empty_rule_on();
    probe oid[];          -- tables the statement drops, to measure before it runs again
    b_empty oid[] := '{}';
    measured boolean := false;
    rel oid;
    empty_t text[];
    empty_c text[];
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

    -- before: what a statement may not take without a token, and what it may not touch
    g := pgguard.guarded_schemas();
    SELECT pg_catalog.array_agg(c.oid ORDER BY c.oid),
           pg_catalog.array_agg(pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                                ORDER BY c.oid),
           pg_catalog.array_agg(t.oid IS NOT NULL ORDER BY c.oid)
      INTO b_rel, b_path, b_guard
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_trigger t
             ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard' AND t.tgenabled = 'A'
     WHERE c.relnamespace = ANY (g) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't';
    b_rel := COALESCE(b_rel, '{}');
    SELECT pg_catalog.array_agg(a.attrelid), pg_catalog.array_agg(a.attnum::int),
           pg_catalog.array_agg(a.attname)
      INTO b_crel, b_cnum, b_cname
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = ANY (b_rel) AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT pg_catalog.array_agg(i.inhrelid), pg_catalog.array_agg(i.inhparent)
      INTO b_child, b_parent
      FROM pg_catalog.pg_inherits i WHERE i.inhrelid = ANY (b_rel);
    b_limits := pgguard.row_limits_before(b_rel);
    self_before := pgguard.self_digest();
    writes_before := pgguard.self_writes();
    auth_before := pgguard.authority_digest();

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
                probe := ARRAY(
                    SELECT x FROM pg_catalog.unnest(b_rel) x
                    EXCEPT
                    SELECT c.oid FROM pg_catalog.pg_class c
                     WHERE c.relnamespace = ANY (g) AND c.relkind IN ('r', 'p')
                       AND c.relpersistence <> 't');
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

    -- Nothing replaceable runs until pgguard itself is known to be unchanged: the statement
    -- ran as the owner of pgguard's functions. Inline comparisons only.
    IF pgguard.self_digest() IS DISTINCT FROM self_before THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that changes pgguard''s own objects',
            DETAIL = pg_catalog.left(statement, 200),
            HINT = 'pgguard install and uninstall change schema pgguard; nothing else may',
            CONSTRAINT = 'op=uninstall';
    END IF;
    IF pgguard.self_writes() <> writes_before THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that wrote to pgguard''s tables',
            DETAIL = 'code run by the statement (a function, a default, an index expression) '
                     || 'wrote rows in schema pgguard as the protected owner',
            CONSTRAINT = 'op=uninstall';
    END IF;
    IF pgguard.authority_digest() IS DISTINCT FROM auth_before THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = 'pgguard: refusing a statement that changes role memberships or default '
                      || 'privileges of pgguard_owner',
            CONSTRAINT = 'op=uninstall';
    END IF;
    bad := pgguard.escalation_found();
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing a statement that leaves %s', bad),
            DETAIL = 'code or rights left this way would let the app role act as the protected '
                     || 'owner',
            HINT = 'use built-in functions in indexes; run reviewed exceptions as the owner '
                   || 'credential (break-glass)',
            CONSTRAINT = 'op=uninstall';
    END IF;
    SELECT d.kind || ' ' || d.object || ' (owner ' || d.owner || ')' INTO bad
      FROM pgguard.ownership_drift() d LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format(
                'pgguard: refusing a statement that leaves %s not owned by pgguard_owner', bad),
            CONSTRAINT = 'op=uninstall';
    END IF;

    -- what is gone: guarded tables (dropped, or moved out of the guarded schemas) and columns
    v_xid := pgguard.current_xid();
    g := pgguard.guarded_schemas();
    -- set-based (a join, not a probe per table): this runs on every statement
    SELECT pg_catalog.array_agg(b.path), pg_catalog.array_agg(b.oid) INTO gone_t, gone_oid
      FROM unnest(b_rel, b_path) AS b(oid, path)
     WHERE b.oid IN (SELECT x FROM pg_catalog.unnest(b_rel) x
                     EXCEPT
                     SELECT c.oid FROM pg_catalog.pg_class c
                      WHERE c.relnamespace = ANY (g) AND c.relkind IN ('r', 'p')
                        AND c.relpersistence <> 't')
       AND NOT EXISTS (SELECT 1 FROM pgguard.created_tables ct
                        WHERE ct.xid = v_xid AND ct.relid = b.oid);
    -- a column dropped now has its pg_attribute row rewritten by this transaction (age <= 0)
    SELECT pg_catalog.array_agg(t.path || '.' || pg_catalog.quote_ident(b.name)),
           pg_catalog.array_agg(b.rel), pg_catalog.array_agg(b.num)
      INTO gone_c, gone_c_oid, gone_c_num
      FROM (SELECT a.attrelid, a.attnum FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = ANY (b_rel) AND a.attisdropped AND pg_catalog.age(a.xmin) <= 0
            OFFSET 0) a   -- fence: the few rows dropped now, then their names
      JOIN unnest(b_crel, b_cnum, b_cname) AS b(rel, num, name)
        ON b.rel = a.attrelid AND b.num = a.attnum
      JOIN unnest(b_rel, b_path) AS t(oid, path) ON t.oid = b.rel
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = b.rel
                      AND c.relnamespace = ANY (g))
       AND NOT EXISTS (SELECT 1 FROM pgguard.created_tables ct
                        WHERE ct.xid = v_xid AND ct.relid = b.rel);

    IF empty_on AND (gone_t IS NOT NULL OR gone_c IS NOT NULL) THEN
        -- tables measured empty before the statement; columns of a table (and its
        -- partitions) that holds no row now, under the statement's lock
        SELECT pg_catalog.array_agg(t.path) FILTER (WHERE t.oid = ANY (b_empty)),
               pg_catalog.array_agg(t.path) FILTER (WHERE NOT t.oid = ANY (b_empty)),
               pg_catalog.array_agg(t.oid) FILTER (WHERE NOT t.oid = ANY (b_empty))
          INTO empty_t, gone_t, gone_oid
          FROM unnest(gone_t, gone_oid) AS t(path, oid);
        SELECT pg_catalog.array_agg(c.path) FILTER (WHERE pgguard.tree_holds_no_row(c.oid)),
               pg_catalog.array_agg(c.path) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid)),
               pg_catalog.array_agg(c.oid) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid)),
               pg_catalog.array_agg(c.num) FILTER (WHERE NOT pgguard.tree_holds_no_row(c.oid))
          INTO empty_c, gone_c, gone_c_oid, gone_c_num
          FROM unnest(gone_c, gone_c_oid, gone_c_num) AS c(path, oid, num);
        IF empty_t IS NOT NULL THEN
            PERFORM pgguard.note_empty_allowed('drop_table', empty_t, tag);
        END IF;
        IF empty_c IS NOT NULL THEN
            PERFORM pgguard.note_empty_allowed('drop_column', empty_c, tag);
        END IF;
    END IF;
    IF gone_t IS NOT NULL OR gone_c IS NOT NULL THEN
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
        covering := ARRAY(
            SELECT b.path FROM unnest(b_rel, b_path) AS b(oid, path)
             WHERE b.oid = ANY (gone_oid)
               AND b.oid IN (SELECT p FROM pg_catalog.unnest(b_parent) p));
        PERFORM pgguard.check_override('drop_table',
            ARRAY(SELECT t.path FROM unnest(gone_t, gone_oid) AS t(path, oid)
                   WHERE NOT t.oid = ANY (COALESCE(b_child, '{}'))
                      OR NOT EXISTS (SELECT 1 FROM unnest(b_child, b_parent) l(c, p)
                                      WHERE l.c = t.oid AND l.p = ANY (gone_oid))),
            tag, NULL);
        PERFORM pgguard.check_override('drop_table',
            ARRAY(SELECT t.path FROM unnest(gone_t, gone_oid) AS t(path, oid)
                   WHERE EXISTS (SELECT 1 FROM unnest(b_child, b_parent) l(c, p)
                                  WHERE l.c = t.oid AND l.p = ANY (gone_oid))),
            tag, NULL, covering);
        PERFORM pgguard.check_override('drop_column', gone_c, tag, NULL);
    END IF;

    -- UNLOGGED: a crash empties the table and replicas never see it - a way to lose it
    SELECT b.path INTO bad
      FROM unnest(b_rel, b_path) AS b(oid, path)
      JOIN pg_catalog.pg_class c ON c.oid = b.oid
     WHERE c.relpersistence = 'u' AND pg_catalog.age(c.xmin) <= 0
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PGG01',
            MESSAGE = pg_catalog.format('pgguard: refusing to make table "%s" unlogged', bad),
            DETAIL = 'an unlogged table is emptied by a crash and missing on replicas',
            HINT = 'run it as the owner credential (break-glass) if it is really meant',
            CONSTRAINT = 'op=uninstall';
    END IF;

    -- row-loss limits keep their triggers, as the guards below do
    PERFORM pgguard.row_limits_after(b_limits, tag);
    -- guards: a table that had a good one keeps it; new tables get theirs
    FOR r IN SELECT c.oid AS relid,
                    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                        AS path,
                    CASE WHEN t.oid IS NULL THEN 'missing'
                         WHEN NOT pgguard.guard_form_ok(t.tgfoid, t.tgtype, t.tgqual, c.oid)
                          AND NOT pgguard.guard_form_old(t.tgfoid, t.tgtype, t.tgqual)
                         THEN 'replaced'
                         WHEN t.tgenabled <> 'A' THEN 'disabled'
                         ELSE 'outdated' END AS state
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_catalog.pg_trigger t
                      ON t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard'
              WHERE c.relnamespace = ANY (g) AND c.relkind IN ('r', 'p')
                AND c.relpersistence <> 't'
                AND (t.oid IS NULL OR t.tgenabled <> 'A'
                     OR NOT pgguard.guard_form_ok(t.tgfoid, t.tgtype, t.tgqual, c.oid)) LOOP
        IF r.state = 'outdated' THEN
            -- enabled always, in the form before the WHEN clause: replaced in place
            PERFORM pgguard.ensure_guard(r.relid, 'CREATE TRIGGER');
        ELSIF EXISTS (SELECT 1 FROM unnest(b_rel, b_guard) b(oid, ok)
                    WHERE b.oid = r.relid AND b.ok) THEN
            PERFORM pgguard.check_override('uninstall', ARRAY[r.path], tag, NULL, '{}',
                pg_catalog.format('pgguard: refusing to %s the TRUNCATE guard of "%s"',
                    CASE r.state WHEN 'missing' THEN 'drop' WHEN 'replaced' THEN 'replace'
                         ELSE 'disable' END, r.path));
        ELSIF NOT r.relid = ANY (b_rel) THEN
            PERFORM pgguard.ensure_guard(r.relid, 'CREATE TRIGGER');
        END IF;
    END LOOP;

    -- bookkeeping the event triggers do in the other mode: tables made in this transaction
    -- (exempt, as there), and renames (a token issued before one does not cover the new name)
    new_rels := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                       WHERE c.relnamespace = ANY (g) AND c.relkind IN ('r', 'p')
                         AND c.relpersistence <> 't' AND pg_catalog.age(c.xmin) <= 0
                         AND NOT c.oid = ANY (b_rel));
    IF pg_catalog.cardinality(new_rels) > 0 THEN
        INSERT INTO pgguard.created_tables (xid, relid)
        SELECT v_xid, x FROM pg_catalog.unnest(new_rels) x ON CONFLICT DO NOTHING;
    END IF;
    INSERT INTO pgguard.renames (relid, attnum, renamed_at)
    SELECT b.oid, 0, pg_catalog.clock_timestamp()
      FROM (SELECT c.oid, c.relname, n.nspname
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = ANY (b_rel)
               AND (pg_catalog.age(c.xmin) <= 0 OR pg_catalog.age(n.xmin) <= 0) OFFSET 0) c
      JOIN unnest(b_rel, b_path) AS b(oid, path) ON b.oid = c.oid
     WHERE pg_catalog.quote_ident(c.nspname) || '.' || pg_catalog.quote_ident(c.relname) <> b.path
    UNION ALL
    SELECT b.rel, b.num, pg_catalog.clock_timestamp()
      FROM (SELECT a.attrelid, a.attnum, a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = ANY (b_rel) AND pg_catalog.age(a.xmin) <= 0
               AND NOT a.attisdropped OFFSET 0) a
      JOIN unnest(b_crel, b_cnum, b_cname) AS b(rel, num, name)
        ON b.rel = a.attrelid AND b.num = a.attnum
     WHERE a.attname <> b.name
    ON CONFLICT (relid, attnum) DO UPDATE SET renamed_at = EXCLUDED.renamed_at;
    RETURN tag;
END
$$;
