-- Multi-signature tokens (pgg2) and the two-person rule: pgguard.multisig_verify() checks every
-- signature once per token (presented_token() calls it and caches the result like pgg1's), and
-- pgguard.approvals_needed(op) reads `install --require-approvals`. Rules mirror
-- pgguard/multisig.py. Security: each signature is an ordinary pgg1 signature of its key over
-- the same payload, checked by rsa_verify_pkcs1_sha256; only distinct live registered keys count.

-- Approvals an op needs: the per-op setting, else the default ("*"), else 1.
CREATE OR REPLACE FUNCTION pgguard.approvals_needed(op text) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT COALESCE((SELECT COALESCE((s.value ->> op)::integer, (s.value ->> '*')::integer)
                       FROM pgguard.settings s WHERE s.name = 'required_approvals'), 1)
$$;

-- pgg2.<payload>.<kid1>.<sig1>.<kid2>.<sig2>[…]: 2 to 8 signatures, kids strictly ascending
-- (one spelling per token, each key once); sig_i verifies over 'pgg1.' || kid_i || '.' || payload.
-- Returns the claims and the comma-separated kids whose signatures count (registered, live,
-- valid), or a failure. A signature by an unknown or revoked key does not count; one that does
-- not verify under a registered key makes the whole token bad. `cached_*`: what an earlier
-- verification of the same token found (only liveness is checked again).
CREATE OR REPLACE FUNCTION pgguard.multisig_verify(
    tok text, h bytea, cached_claims jsonb, cached_kids text,
    OUT claims jsonb, OUT kids text, OUT failure text, OUT reason text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    parts text[];
    n integer;
    v_kid text;
    prev text := '';
    sig bytea;
    key_row pgguard.keys;
    valid text[] := '{}';
    first_bad text;
    first_reason text;
    unknown boolean := false;
    problem text;
BEGIN
    IF cached_claims IS NOT NULL THEN
        FOREACH v_kid IN ARRAY pg_catalog.string_to_array(cached_kids, ',') LOOP
            SELECT * INTO key_row FROM pgguard.keys k WHERE k.kid = v_kid;
            IF FOUND AND key_row.revoked_at IS NULL THEN
                valid := valid || v_kid;
            ELSIF first_bad IS NULL THEN
                first_bad := pg_catalog.format(
                    'the override token is signed by key %s, revoked at %s', v_kid,
                    key_row.revoked_at);
                first_reason := 'revoked_key';
            END IF;
        END LOOP;
        IF pg_catalog.cardinality(valid) = 0 THEN
            failure := first_bad;
            reason := first_reason;
            RETURN;
        END IF;
        claims := cached_claims;
        kids := pg_catalog.array_to_string(valid, ',');
        RETURN;
    END IF;

    parts := pg_catalog.string_to_array(tok, '.');
    n := pg_catalog.cardinality(parts);
    IF n < 6 OR n > 18 OR n % 2 = 1 OR parts[2] !~ '^[A-Za-z0-9_-]+$' THEN
        failure := 'the override token is malformed (expected pgg2.<payload>.<kid>.<signature>'
                   '… with 2 to 8 signatures)';
        reason := 'malformed';
        RETURN;
    END IF;
    FOR i IN 1 .. (n - 2) / 2 LOOP
        v_kid := parts[2 * i + 1];
        IF v_kid !~ '^[0-9a-f]{16}$' OR parts[2 * i + 2] !~ '^[A-Za-z0-9_-]+$'
           OR pgguard.b64url_decode(parts[2 * i + 2]) IS NULL THEN
            failure := 'the override token is malformed (a key id or signature is not valid)';
            reason := 'malformed';
            RETURN;
        END IF;
        IF v_kid COLLATE "C" <= prev COLLATE "C" THEN
            failure := 'the override token is malformed: its signatures must be ordered by key '
                       'id, one per key';
            reason := 'malformed';
            RETURN;
        END IF;
        prev := v_kid;
    END LOOP;
    BEGIN
        SELECT p.claims, p.problem INTO claims, problem FROM pgguard.parse_claims(parts[2]) p;
    EXCEPTION WHEN OTHERS THEN
        claims := NULL;
        problem := 'a claim cannot be read (' || SQLERRM || ')';
    END;
    IF problem IS NOT NULL THEN
        claims := NULL;
        failure := 'the override token is malformed: ' || problem;
        reason := 'malformed';
        RETURN;
    END IF;

    FOR i IN 1 .. (n - 2) / 2 LOOP
        v_kid := parts[2 * i + 1];
        SELECT * INTO key_row FROM pgguard.keys k WHERE k.kid = v_kid;
        IF NOT FOUND THEN
            unknown := true;
            IF first_bad IS NULL THEN
                first_bad := pg_catalog.format('the override token is signed by key %s, which is '
                                               'not registered in this database', v_kid);
                first_reason := 'unknown_key';
            END IF;
            CONTINUE;
        ELSIF key_row.revoked_at IS NOT NULL THEN
            IF first_bad IS NULL THEN
                first_bad := pg_catalog.format(
                    'the override token is signed by key %s, revoked at %s', v_kid,
                    key_row.revoked_at);
                first_reason := 'revoked_key';
            END IF;
            CONTINUE;
        END IF;
        sig := pgguard.b64url_decode(parts[2 * i + 2]);
        IF NOT COALESCE(pgguard.rsa_verify_pkcs1_sha256(
                key_row.n, key_row.k,
                pg_catalog.convert_to('pgg1.' || v_kid || '.' || parts[2], 'UTF8'), sig), false) THEN
            claims := NULL;
            failure := pg_catalog.format(
                'the override token''s signature by key %s does not verify', v_kid);
            reason := 'bad_signature';
            RETURN;
        END IF;
        valid := valid || v_kid;
    END LOOP;
    IF pg_catalog.cardinality(valid) = 0 THEN
        claims := NULL;
        failure := first_bad;
        reason := first_reason;
        RETURN;
    END IF;
    kids := pg_catalog.array_to_string(valid, ',');
    -- Remember it (see presented_token), unless a signer is unknown here: registering that key
    -- later must let its signature count, so such a token is verified afresh each time.
    IF NOT unknown AND pg_catalog.pg_try_advisory_xact_lock(
           ('x' || pg_catalog.encode(pg_catalog.substr(h, 1, 8), 'hex'))::bit(64)::bigint) THEN
        BEGIN
            INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)
            VALUES (h, kids, claims,
                    pg_catalog.to_timestamp((claims ->> 'exp')::double precision))
            ON CONFLICT (token_sha256) DO NOTHING;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
    END IF;
END
$$;
