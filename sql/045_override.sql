-- Refusing and approving: pgguard.refuse() raises the PGG01 error every guard uses, after
-- writing the refusal where it survives the rollback (the server log); pgguard.check_override()
-- lets a statement through only when the session's token covers it, spending `once` tokens and
-- recording the override in pgguard.audit. SECURITY DEFINER: both write pgguard's tables.

CREATE OR REPLACE FUNCTION pgguard.refuse(
    op text, objs text[], detail text, hint text, command_tag text,
    message text DEFAULT NULL, reason text DEFAULT NULL, token_claims jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    first_obj text[] := pgguard.ident_parts(objs[1]);
    n int := pg_catalog.cardinality(objs);
    msg text;
BEGIN
    IF hint IS NULL AND op = 'truncate' THEN
        -- each table's trigger sees only its table: the whole statement is what this backend
        -- holds ACCESS EXCLUSIVE (TRUNCATE locks every table before any trigger fires)
        hint := pgguard.allow_hint(ARRAY['truncate'], pgguard.truncate_statement_tables(objs));
    END IF;
    hint := COALESCE(hint, pgguard.allow_hint(ARRAY[op], objs));
    msg := COALESCE(message, 'pgguard: refusing to ' || CASE op
        WHEN 'drop_table' THEN 'drop table'
        WHEN 'drop_column' THEN 'drop column'
        WHEN 'truncate' THEN 'truncate table'
        WHEN 'unlogged' THEN 'make unlogged table'
        ELSE 'change pgguard object' END || pg_catalog.format(' "%s"', objs[1]))
        || CASE WHEN n > 1 THEN pg_catalog.format(' and %s more', n - 1) ELSE '' END;
    -- The refused transaction rolls back, and pgguard.audit with it: the server log is where
    -- a refusal survives. `pgguard audit` reads these lines back (stable prefix, one JSON each).
    RAISE LOG 'pgguard-refusal: %', pg_catalog.jsonb_build_object(
        'seq', pg_catalog.nextval('pgguard.refusal_seq'), 'at', pg_catalog.clock_timestamp(), 'db', pg_catalog.current_database(),
        'op', op, 'objects', pg_catalog.to_jsonb(objs), 'command_tag', command_tag,
        'session_user', session_user::text,
        'application_name', pg_catalog.current_setting('application_name', true),
        'client_addr', pg_catalog.inet_client_addr(), 'reason', reason, 'detail', detail,
        'jti', token_claims ->> 'jti', 'sub', token_claims ->> 'sub');
    RAISE EXCEPTION USING
        ERRCODE = 'PGG01',
        MESSAGE = msg,
        DETAIL = detail,
        HINT = hint,
        CONSTRAINT = 'op=' || op,
        SCHEMA = COALESCE(first_obj[1], ''),
        TABLE = COALESCE(first_obj[2], ''),
        COLUMN = COALESCE(first_obj[3], '');
END
$$;

-- The guarded tables the running TRUNCATE will empty, as far as this backend's locks tell:
-- every table it holds ACCESS EXCLUSIVE on, with a guard, not exempt. A partition or child is
-- left to its listed parent's token, unless this very transaction put it there: then it is
-- named, so the approver sees it. Falls back to `objs`.
CREATE OR REPLACE FUNCTION pgguard.truncate_statement_tables(objs text[]) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    found text[];
BEGIN
    WITH RECURSIVE locked AS (
        SELECT c.oid, n.nspname, c.relname
          FROM pg_catalog.pg_locks l
          JOIN pg_catalog.pg_class c ON c.oid = l.relation
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
           AND l.mode = 'AccessExclusiveLock' AND l.granted
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
           AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
           AND NOT (n.nspname = ANY (pgguard.excluded_schemas()))
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid = c.oid AND t.tgname = 'pgguard_truncate_guard')
           AND NOT EXISTS (SELECT 1 FROM pgguard.created_tables ct
                            WHERE ct.xid = pgguard.current_xid() AND ct.relid = c.oid)
    ), named AS (
        -- earlier statements of this transaction may hold such locks too (ALTER TABLE): keep
        -- the tables the statement names, and what it reaches from them (children, CASCADE)
        SELECT l.oid FROM locked l
         WHERE pg_catalog.current_query() ~* ('\m' || pg_catalog.regexp_replace(
                   l.relname, '([^[:alnum:]_])', '\\\1', 'g') || '\M')
    ), reached(oid) AS (
        SELECT named.oid FROM named
        UNION
        SELECT l.oid FROM locked l JOIN reached r
            ON EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                        WHERE i.inhrelid = l.oid AND i.inhparent = r.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                        WHERE k.contype = 'f' AND k.conrelid = l.oid AND k.confrelid = r.oid)
    )
    SELECT pg_catalog.array_agg(pgguard.ident_path(l.nspname, l.relname) ORDER BY 1)
      INTO found
      FROM locked l
     WHERE (l.oid IN (SELECT reached.oid FROM reached)
            OR NOT EXISTS (SELECT 1 FROM named))
       AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_inherits i JOIN locked p ON p.oid = i.inhparent
         WHERE i.inhrelid = l.oid
           AND NOT EXISTS (SELECT 1 FROM pgguard.attachments a
                            WHERE a.relid = i.inhrelid AND a.parent = i.inhparent
                              AND a.attached_at >= pg_catalog.now()));
    RETURN COALESCE(found, objs);
END
$$;

-- Let `objs` through for `op` only if the session's token covers each of them (an object is
-- also covered when the token covers one of `covering`: the partitioned parent dropped with it).
CREATE OR REPLACE FUNCTION pgguard.check_override(
    op text, objs text[], command_tag text, hint text DEFAULT NULL,
    covering text[] DEFAULT '{}', message text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    t record;
    o text;
    spent record;
    xid bigint;
BEGIN
    IF objs IS NULL OR pg_catalog.cardinality(objs) = 0 THEN
        RETURN;
    END IF;
    t := pgguard.presented_token();
    IF t.claims IS NULL THEN
        PERFORM pgguard.refuse(op, objs, t.failure, hint, command_tag, message, t.reason);
    END IF;
    IF NOT (t.claims -> 'ops') ? op THEN
        PERFORM pgguard.refuse(op, objs, pg_catalog.format(
            'the override token does not cover op %s (it covers: %s)', op,
            (SELECT pg_catalog.string_agg(x, ', ')
               FROM pg_catalog.jsonb_array_elements_text(t.claims -> 'ops') x)),
            hint, command_tag, message, 'wrong_scope', t.claims);
    END IF;
    FOREACH o IN ARRAY objs LOOP
        IF NOT pgguard.claims_cover(t.claims, op, o)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(covering) c
                            WHERE pgguard.claims_cover(t.claims, op, c)) THEN
            PERFORM pgguard.refuse(op, ARRAY[o] || pg_catalog.array_remove(objs, o),
                pg_catalog.format('the override token does not cover "%s" (it covers: %s)', o,
                    (SELECT pg_catalog.string_agg(x, ', ')
                       FROM pg_catalog.jsonb_array_elements_text(t.claims -> 'obj') x)),
                hint, command_tag, message, 'wrong_scope', t.claims);
        END IF;
    END LOOP;

    -- the two-person rule (install --require-approvals): distinct live keys that signed
    IF pg_catalog.cardinality(pg_catalog.string_to_array(t.token_kid, ','))
           < pgguard.approvals_needed(op) THEN
        PERFORM pgguard.refuse(op, objs, pg_catalog.format(
            'the override token carries %s of the %s approvals %s needs (signed by: %s)',
            pg_catalog.cardinality(pg_catalog.string_to_array(t.token_kid, ',')),
            pgguard.approvals_needed(op), op, pg_catalog.replace(t.token_kid, ',', ', ')),
            'a second approver adds a signature: pgguard cosign "$PGGUARD_TOKEN" --key-file KEY',
            command_tag, message, 'approvals', t.claims);
    END IF;

    xid := pgguard.current_xid();
    IF (t.claims ->> 'once')::boolean THEN
        -- A rolled-back use leaves the token unspent: the row goes with the transaction. A
        -- concurrent use waits on the primary key and then sees the other transaction's row.
        INSERT INTO pgguard.spent_tokens (jti, kid, xid, exp)
        VALUES (t.claims ->> 'jti', t.token_kid, xid,
                pg_catalog.to_timestamp((t.claims ->> 'exp')::double precision))
        ON CONFLICT (jti) DO NOTHING;
        SELECT s.xid, s.used_at INTO spent FROM pgguard.spent_tokens s
         WHERE s.jti = t.claims ->> 'jti';
        IF spent.xid <> xid THEN
            PERFORM pgguard.refuse(op, objs, pg_catalog.format(
                'token %s was already used at %s', t.claims ->> 'jti', spent.used_at),
                hint, command_tag, message, 'already_used', t.claims);
        END IF;
    END IF;

    INSERT INTO pgguard.audit (kind, op, object, command_tag, xid, jti, kid, sub, why)
    SELECT 'override', op, x, command_tag, xid, t.claims ->> 'jti', t.token_kid,
           t.claims ->> 'sub', t.claims ->> 'why'
      FROM pg_catalog.unnest(objs) x;
END
$$;

-- `pgguard uninstall`'s authorization, for an uninstalling role that is not pgguard_owner's
-- (privilege mode's installing credential): fixed op and object, so calling it by hand approves,
-- and audits, nothing but an uninstall the session's token already covers.
CREATE OR REPLACE FUNCTION pgguard.authorize_uninstall() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    PERFORM pgguard.check_override('uninstall', ARRAY['pgguard'], 'PGGUARD UNINSTALL',
        'to approve it, run: pgguard allow --op uninstall --object pgguard --db '
            || pgguard.shell_quote(pg_catalog.current_database()),
        '{}', 'pgguard: refusing to uninstall pgguard');
END
$$;

-- `pgguard install --exclude-schema`: excluding a schema that holds protected tables switches
-- their guard off, so the session's token must cover them under op uninstall. The tables are
-- found here, from the catalog; nothing but the schema names comes from the caller.
CREATE OR REPLACE FUNCTION pgguard.authorize_exclusion(schemas text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    tables text[];
BEGIN
    SELECT pg_catalog.array_agg(pgguard.ident_path(n.nspname, c.relname) ORDER BY 1)
      INTO tables
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgname = 'pgguard_truncate_guard' AND n.nspname = ANY (schemas)
       AND NOT (n.nspname = ANY (pgguard.excluded_schemas()));
    IF tables IS NOT NULL THEN
        PERFORM pgguard.check_override('uninstall', tables, 'PGGUARD INSTALL', NULL, '{}',
            pg_catalog.format('pgguard: refusing to exclude schema "%s", which holds protected tables',
                              (pgguard.ident_parts(tables[1]))[1]));
    END IF;
END
$$;
