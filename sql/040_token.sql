-- Override tokens on the server: parse and verify the session's pgguard.token, check its scope,
-- spend single-use tokens. Called by the guards (050-070) and by `pgguard uninstall`.
-- Security: SECURITY DEFINER (owner pgguard_owner) because it writes pgguard's tables; it trusts
-- nothing from the session but the token text itself. Rules mirror pgguard/token.py exactly.

-- Decode and check a token's payload by the rules of pgguard/token.py (rule 1): claims, or
-- (claims NULL) what is wrong. Parsed as json, not jsonb, first: jsonb would hide duplicate keys
-- and normalise number spellings such as 1e3 that the rules reject.
CREATE OR REPLACE FUNCTION pgguard.parse_claims(payload text, OUT claims jsonb, OUT problem text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    raw bytea := pgguard.b64url_decode(payload);
    j json;
    x json;
    name text;
BEGIN
    IF raw IS NULL OR payload = '' THEN
        problem := 'the payload is not canonical base64url';
        RETURN;
    END IF;
    BEGIN
        j := pg_catalog.convert_from(raw, 'UTF8')::json;
    EXCEPTION WHEN OTHERS THEN
        problem := 'the payload is not UTF-8 JSON';
        RETURN;
    END;
    IF pg_catalog.json_typeof(j) <> 'object' THEN
        problem := 'the payload is not a JSON object';
        RETURN;
    END IF;
    IF (SELECT pg_catalog.count(*) <> pg_catalog.count(DISTINCT k)
          FROM pg_catalog.json_object_keys(j) k) THEN
        problem := 'the payload repeats a claim';
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) INTO name
      FROM (VALUES ('iat'), ('exp'), ('jti'), ('ops'), ('obj'), ('once')) r(k)
     WHERE j -> r.k IS NULL;
    IF name IS NOT NULL THEN
        problem := 'missing claim(s) ' || name;
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) INTO name
      FROM pg_catalog.json_object_keys(j) k
     WHERE k NOT IN ('iat', 'exp', 'jti', 'ops', 'obj', 'once', 'db', 'sub', 'why');
    IF name IS NOT NULL THEN
        problem := 'unknown claim(s) ' || name;
        RETURN;
    END IF;
    FOREACH name IN ARRAY ARRAY['iat', 'exp'] LOOP
        -- the literal as written: 1e9, 1.0 and -1 are not integers here
        IF pg_catalog.json_typeof(j -> name) <> 'number'
           OR (j -> name)::text !~ '^(0|[1-9][0-9]{0,11})$'
           OR (j -> name)::text::numeric > 253402300799 THEN
            problem := pg_catalog.format('claim %s must be a non-negative integer', name);
            RETURN;
        END IF;
    END LOOP;
    IF pg_catalog.json_typeof(j -> 'jti') <> 'string' OR j ->> 'jti' = '' THEN
        problem := 'claim jti must be a non-empty string';
        RETURN;
    END IF;
    IF pg_catalog.json_typeof(j -> 'once') <> 'boolean' THEN
        problem := 'claim once must be true or false';
        RETURN;
    END IF;
    FOREACH name IN ARRAY ARRAY['db', 'sub', 'why'] LOOP
        IF j -> name IS NOT NULL AND pg_catalog.json_typeof(j -> name) <> 'string' THEN
            problem := pg_catalog.format('claim %s must be a string', name);
            RETURN;
        END IF;
    END LOOP;
    FOREACH name IN ARRAY ARRAY['ops', 'obj'] LOOP
        IF pg_catalog.json_typeof(j -> name) <> 'array'
           OR pg_catalog.json_array_length(j -> name) = 0 THEN
            problem := pg_catalog.format('claim %s must be a non-empty list of strings', name);
            RETURN;
        END IF;
        FOR x IN SELECT * FROM pg_catalog.json_array_elements(j -> name) LOOP
            IF pg_catalog.json_typeof(x) <> 'string' THEN
                problem := pg_catalog.format('claim %s must be a non-empty list of strings', name);
                RETURN;
            ELSIF name = 'ops' AND (x #>> '{}') NOT IN ('drop_table', 'drop_column', 'truncate',
                                                        'uninstall', 'delete_rows',
                                                        'update_rows', 'unlogged') THEN
                problem := pg_catalog.format('unknown operation %s', x);
                RETURN;
            ELSIF name = 'obj' AND (
                    pg_catalog.cardinality(pg_catalog.string_to_array(x #>> '{}', '.')) > 3
                    OR '' = ANY (pg_catalog.string_to_array(x #>> '{}', '.'))
                    OR (x #>> '{}') = '') THEN
                problem := pg_catalog.format('object pattern %s is invalid', x);
                RETURN;
            END IF;
        END LOOP;
    END LOOP;
    BEGIN
        -- jsonb refuses what PostgreSQL text cannot hold (\u0000, lone surrogates)
        claims := j::jsonb;
    EXCEPTION WHEN OTHERS THEN
        problem := 'a claim holds a character PostgreSQL text cannot hold';
    END;
END
$$;

-- The session's token, verified: its claims, or (claims NULL) a failure DETAIL and a reason code.
-- The signature is checked once per distinct token and remembered in pgguard.verified_tokens,
-- which only this function writes, so TRUNCATE of 1,000 tables costs one RSA verification.
CREATE OR REPLACE FUNCTION pgguard.presented_token(
    OUT claims jsonb, OUT failure text, OUT reason text, OUT token_kid text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    tok text := pg_catalog.current_setting('pgguard.token', true);
    parts text[];
    key_row pgguard.keys;
    c jsonb;
    cached boolean := false;
    multi boolean := false;
    h bytea;
    sig bytea;
    now_s numeric := EXTRACT(epoch FROM pg_catalog.clock_timestamp());
    problem text;
BEGIN
    IF tok IS NULL OR tok = '' THEN
        failure := 'no override token is set (pgguard.token is empty)';
        reason := 'none';
        RETURN;
    END IF;
    -- A token seen before (same bytes) was fully checked then: only key, time and scope remain.
    h := pg_catalog.sha256(pg_catalog.convert_to(tok, 'UTF8'));
    SELECT v.claims, v.kid INTO c, token_kid FROM pgguard.verified_tokens v
     WHERE v.token_sha256 = h;
    cached := FOUND;
    IF pg_catalog.left(tok, 5) = 'pgg2.' THEN
        -- several signatures (042_multisig.sql): token_kid lists the keys that count
        SELECT m.claims, m.kids, m.failure, m.reason INTO c, token_kid, failure, reason
          FROM pgguard.multisig_verify(tok, h, CASE WHEN cached THEN c END,
                                       CASE WHEN cached THEN token_kid END) m;
        IF failure IS NOT NULL THEN
            RETURN;
        END IF;
        multi := true;
        cached := true;  -- signatures checked: only time, database and scope remain
    END IF;
    IF NOT cached THEN
        parts := pg_catalog.string_to_array(tok, '.');
        IF pg_catalog.cardinality(parts) <> 4 OR parts[1] <> 'pgg1'
           OR parts[2] !~ '^[0-9a-f]{16}$'
           OR parts[3] !~ '^[A-Za-z0-9_-]+$' OR parts[4] !~ '^[A-Za-z0-9_-]+$'
           OR pgguard.b64url_decode(parts[4]) IS NULL THEN
            failure := 'the override token is malformed (expected pgg1.<kid>.<payload>.<signature>)';
            reason := 'malformed';
            RETURN;
        END IF;
        token_kid := parts[2];
        BEGIN
            SELECT p.claims, p.problem INTO c, problem FROM pgguard.parse_claims(parts[3]) p;
        EXCEPTION WHEN OTHERS THEN
            -- a claim the json type accepts but text cannot hold (\u0000) fails deep inside
            -- json operators: whatever fails here is a malformed token, refused as such
            c := NULL;
            problem := 'a claim cannot be read (' || SQLERRM || ')';
        END;
        IF problem IS NOT NULL THEN
            failure := 'the override token is malformed: ' || problem;
            reason := 'malformed';
            RETURN;
        END IF;
    END IF;

    SELECT * INTO key_row FROM pgguard.keys k WHERE k.kid = token_kid;
    IF multi THEN
        NULL;
    ELSIF NOT FOUND THEN
        failure := pg_catalog.format(
            'the override token is signed by key %s, which is not registered in this database',
            token_kid);
        reason := 'unknown_key';
        RETURN;
    ELSIF key_row.revoked_at IS NOT NULL THEN
        failure := pg_catalog.format('the override token is signed by key %s, revoked at %s',
                                     token_kid, key_row.revoked_at);
        reason := 'revoked_key';
        RETURN;
    END IF;

    IF NOT cached THEN
        sig := pgguard.b64url_decode(parts[4]);
        IF sig IS NULL OR NOT COALESCE(pgguard.rsa_verify_pkcs1_sha256(
                key_row.n, key_row.k,
                pg_catalog.convert_to(parts[1] || '.' || parts[2] || '.' || parts[3], 'UTF8'),
                sig), false) THEN
            failure := 'the override token''s signature does not verify';
            reason := 'bad_signature';
            RETURN;
        END IF;
        -- Remember it, unless another transaction is doing so right now: sessions sharing a
        -- token (several connections of one tool) must not wait on each other's uncommitted
        -- row, nor fail under REPEATABLE READ; they just verify again.
        IF pg_catalog.pg_try_advisory_xact_lock(
               ('x' || pg_catalog.encode(pg_catalog.substr(h, 1, 8), 'hex'))::bit(64)::bigint) THEN
            BEGIN
                INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)
                VALUES (h, token_kid, c,
                        pg_catalog.to_timestamp((c ->> 'exp')::double precision))
                ON CONFLICT (token_sha256) DO NOTHING;
            EXCEPTION WHEN serialization_failure THEN
                NULL;
            END;
        END IF;
        DELETE FROM pgguard.verified_tokens v
         WHERE v.ctid IN (SELECT v2.ctid FROM pgguard.verified_tokens v2
                           WHERE v2.exp < pg_catalog.now() - interval '1 hour'
                           LIMIT 100 FOR UPDATE SKIP LOCKED);
    END IF;

    IF (c ->> 'exp')::numeric <= now_s THEN
        failure := pg_catalog.format('the override token expired at %s',
                                     pg_catalog.to_timestamp((c ->> 'exp')::double precision));
        reason := 'expired';
        RETURN;
    END IF;
    -- 60 s of leeway for the approver's clock running ahead of the server's
    IF (c ->> 'iat')::numeric > now_s + 60 THEN
        failure := pg_catalog.format(
            'the override token was issued in the future (%s); check the approver''s clock',
            pg_catalog.to_timestamp((c ->> 'iat')::double precision));
        reason := 'not_yet_valid';
        RETURN;
    END IF;
    IF c ? 'db' AND c ->> 'db' <> pg_catalog.current_database() THEN
        failure := pg_catalog.format('the override token is for database "%s", not "%s"',
                                     c ->> 'db', pg_catalog.current_database());
        reason := 'wrong_database';
        RETURN;
    END IF;
    claims := c;
END
$$;

CREATE OR REPLACE FUNCTION pgguard.claims_cover(claims jsonb, op text, obj text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    IF NOT (claims -> 'ops') ? op THEN
        RETURN false;
    END IF;
    FOR p IN SELECT pg_catalog.jsonb_array_elements_text(claims -> 'obj') LOOP
        IF pgguard.object_matches(p, pgguard.ident_parts(obj)) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

-- The `pgguard allow` line that would approve these ops on these objects. Past five objects
-- it widens to schema.* per schema, since a hint nobody can paste helps nobody.
CREATE OR REPLACE FUNCTION pgguard.allow_hint(ops text[], objs text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    WITH o AS (
        SELECT DISTINCT x FROM pg_catalog.unnest(
            CASE WHEN pg_catalog.cardinality(objs) <= 5
                 THEN ARRAY(SELECT pgguard.ident_glob(y) FROM pg_catalog.unnest(objs) y)
                 ELSE ARRAY(SELECT DISTINCT
                                pgguard.ident_glob(pg_catalog.quote_ident((pgguard.ident_parts(y))[1])) || '.*'
                              FROM pg_catalog.unnest(objs) y) END) x
    )
    SELECT 'to approve it, run: pgguard allow'
        || (SELECT pg_catalog.string_agg(' --op ' || op, '' ORDER BY op)
              FROM (SELECT DISTINCT pg_catalog.unnest(ops) op) s)
        || COALESCE((SELECT pg_catalog.string_agg(' --object ' || pgguard.shell_quote(x), '' ORDER BY x)
                       FROM o), '')
        || ' --db ' || pgguard.shell_quote(pg_catalog.current_database())
$$;

-- The line before which renames and attachments count as older than the token. A token's iat
-- is the approver's clock, and the server accepts it up to 60 s ahead: while a token is more
-- than 2 s "from the future" (more than rounding to whole seconds and ordinary clock jitter),
-- its iat cannot be trusted to say what it came after, so the line moves back by the whole
-- leeway (a rename or attachment made since then is not covered). NULL: no token.
CREATE OR REPLACE FUNCTION pgguard.token_cutoff(claims jsonb) RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT pg_catalog.to_timestamp((claims ->> 'iat')::double precision)
           - CASE WHEN (claims ->> 'iat')::numeric
                       > EXTRACT(epoch FROM pg_catalog.clock_timestamp()) + 2
                  THEN interval '60 seconds' ELSE interval '0' END
$$;
