-- Override tokens on the server: parse and verify the session's pgguard.token, check its scope,
-- spend single-use tokens. Called by the guards (050-070) and by `pgguard uninstall`.
-- Security: SECURITY DEFINER (owner pgguard_owner) because it writes pgguard's tables; it trusts
-- nothing from the session but the token text itself. Rules mirror pgguard/token.py exactly.

-- NULL when the claims are well-formed, else what is wrong with them.
CREATE OR REPLACE FUNCTION pgguard.claims_problem(c jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    x jsonb;
    seg text;
BEGIN
    IF c IS NULL OR pg_catalog.jsonb_typeof(c) <> 'object' THEN
        RETURN 'the payload is not a JSON object';
    END IF;
    FOREACH seg IN ARRAY ARRAY['iat', 'exp'] LOOP
        x := c -> seg;
        IF x IS NULL OR pg_catalog.jsonb_typeof(x) <> 'number'
           OR (x::text)::numeric <> pg_catalog.trunc((x::text)::numeric) THEN
            RETURN pg_catalog.format('claim %s must be an integer', seg);
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_typeof(c -> 'jti') IS DISTINCT FROM 'string' OR c ->> 'jti' = '' THEN
        RETURN 'claim jti must be a non-empty string';
    END IF;
    IF pg_catalog.jsonb_typeof(c -> 'ops') IS DISTINCT FROM 'array'
       OR pg_catalog.jsonb_array_length(c -> 'ops') = 0 THEN
        RETURN 'claim ops must be a non-empty list';
    END IF;
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(c -> 'ops') LOOP
        IF pg_catalog.jsonb_typeof(x) <> 'string'
           OR (x #>> '{}') NOT IN ('drop_table', 'drop_column', 'truncate', 'uninstall') THEN
            RETURN pg_catalog.format('claim ops holds an unknown op %s', x);
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_typeof(c -> 'obj') IS DISTINCT FROM 'array'
       OR pg_catalog.jsonb_array_length(c -> 'obj') = 0 THEN
        RETURN 'claim obj must be a non-empty list';
    END IF;
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(c -> 'obj') LOOP
        IF pg_catalog.jsonb_typeof(x) <> 'string'
           OR pg_catalog.cardinality(pg_catalog.string_to_array(x #>> '{}', '.')) > 3
           OR '' = ANY (pg_catalog.string_to_array(x #>> '{}', '.'))
           OR (x #>> '{}') = '' THEN
            RETURN pg_catalog.format('claim obj holds an invalid pattern %s', x);
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_typeof(c -> 'once') IS DISTINCT FROM 'boolean' THEN
        RETURN 'claim once must be a boolean';
    END IF;
    FOREACH seg IN ARRAY ARRAY['db', 'sub', 'why'] LOOP
        IF c ? seg AND pg_catalog.jsonb_typeof(c -> seg) <> 'string' THEN
            RETURN pg_catalog.format('claim %s must be a string', seg);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The session's token, verified: its claims, or (claims NULL) a failure DETAIL and a reason code.
-- The signature is checked once per distinct token and remembered in pgguard.verified_tokens,
-- which only this function writes, so TRUNCATE of 1,000 tables costs one RSA verification.
CREATE OR REPLACE FUNCTION pgguard.presented_token(
    OUT claims jsonb, OUT failure text, OUT reason text, OUT token_kid text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    tok text := pg_catalog.current_setting('pgguard.token', true);
    parts text[];
    key_row pgguard.keys;
    c jsonb;
    cached boolean := false;
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
    parts := pg_catalog.string_to_array(tok, '.');
    IF pg_catalog.cardinality(parts) <> 4 OR parts[1] <> 'pgg1'
       OR parts[2] !~ '^[0-9a-f]{16}$'
       OR parts[3] !~ '^[A-Za-z0-9_-]+$' OR parts[4] !~ '^[A-Za-z0-9_-]+$' THEN
        failure := 'the override token is malformed (expected pgg1.<kid>.<payload>.<signature>)';
        reason := 'malformed';
        RETURN;
    END IF;
    token_kid := parts[2];
    h := pg_catalog.sha256(pg_catalog.convert_to(tok, 'UTF8'));
    SELECT v.claims INTO c FROM pgguard.verified_tokens v WHERE v.token_sha256 = h;
    cached := FOUND;
    IF NOT cached THEN
        BEGIN
            c := pg_catalog.convert_from(pgguard.b64url_decode(parts[3]), 'UTF8')::jsonb;
        EXCEPTION WHEN OTHERS THEN
            c := NULL;
        END;
        problem := pgguard.claims_problem(c);
        IF problem IS NOT NULL THEN
            failure := 'the override token is malformed: ' || problem;
            reason := 'malformed';
            RETURN;
        END IF;
    END IF;

    SELECT * INTO key_row FROM pgguard.keys k WHERE k.kid = parts[2];
    IF NOT FOUND THEN
        failure := pg_catalog.format(
            'the override token is signed by key %s, which is not registered in this database',
            parts[2]);
        reason := 'unknown_key';
        RETURN;
    ELSIF key_row.revoked_at IS NOT NULL THEN
        failure := pg_catalog.format('the override token is signed by key %s, revoked at %s',
                                     parts[2], key_row.revoked_at);
        reason := 'revoked_key';
        RETURN;
    END IF;

    IF NOT cached THEN
        BEGIN
            sig := pgguard.b64url_decode(parts[4]);
        EXCEPTION WHEN OTHERS THEN
            sig := NULL;
        END;
        IF sig IS NULL OR NOT COALESCE(pgguard.rsa_verify_pkcs1_sha256(
                key_row.n, key_row.k,
                pg_catalog.convert_to(parts[1] || '.' || parts[2] || '.' || parts[3], 'UTF8'),
                sig), false) THEN
            failure := 'the override token''s signature does not verify';
            reason := 'bad_signature';
            RETURN;
        END IF;
        INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)
        VALUES (h, parts[2], c, pg_catalog.to_timestamp((c ->> 'exp')::double precision))
        ON CONFLICT (token_sha256) DO NOTHING;
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
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT (claims -> 'ops') ? op
       AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(claims -> 'obj') p
                    WHERE pgguard.object_matches(p, pg_catalog.string_to_array(obj, '.')))
$$;

-- The `pgguard allow` line that would approve these ops on these objects. Past five objects
-- it widens to schema.* per schema, since a hint nobody can paste helps nobody.
CREATE OR REPLACE FUNCTION pgguard.allow_hint(ops text[], objs text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    WITH o AS (
        SELECT DISTINCT x FROM pg_catalog.unnest(
            CASE WHEN pg_catalog.cardinality(objs) <= 5 THEN objs
                 ELSE ARRAY(SELECT DISTINCT pg_catalog.split_part(y, '.', 1) || '.*'
                              FROM pg_catalog.unnest(objs) y) END) x
    )
    SELECT 'to approve it, run: pgguard allow'
        || (SELECT pg_catalog.string_agg(' --op ' || op, '' ORDER BY op)
              FROM (SELECT DISTINCT pg_catalog.unnest(ops) op) s)
        || COALESCE((SELECT pg_catalog.string_agg(' --object ' || pgguard.shell_quote(x), '' ORDER BY x)
                       FROM o), '')
        || ' --db ' || pgguard.shell_quote(pg_catalog.current_database())
$$;
