-- pgguard.b64url_decode(text) and pgguard.bytea_to_numeric(bytea): decoding primitives for token
-- verification (called by pgguard.rsa_verify_pkcs1_sha256's callers and the token checker).
-- Security: pure functions of their input, no table access; b64url_decode accepts only the one
-- canonical unpadded spelling of each byte string and returns NULL (never raises) otherwise.

-- Strict, canonical base64url without padding (RFC 4648 section 5). Returns NULL when the input
-- has a character outside [A-Za-z0-9_-] (padding '=' and whitespace included), a length with
-- length % 4 = 1, or non-zero unused bits in the last character (a second spelling of the same
-- bytes). The empty string decodes to the empty bytea. NULL in, NULL out.
CREATE OR REPLACE FUNCTION pgguard.b64url_decode(s text)
RETURNS bytea
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $fn$
    SELECT CASE
        -- translate() deletes every alphabet character: anything left is outside the alphabet.
        -- (A character list, not a regex range, so no collation or encoding can widen it.)
        WHEN pg_catalog.translate(s,
                 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', '') <> ''
            THEN NULL
        WHEN pg_catalog.length(s) % 4 = 1 THEN NULL
        -- 2 chars per final byte: the last char carries 4 unused bits, which must be zero.
        WHEN pg_catalog.length(s) % 4 = 2
             AND pg_catalog.strpos('AQgw', pg_catalog.right(s, 1)) = 0 THEN NULL
        -- 3 chars per final 2 bytes: the last char carries 2 unused bits, which must be zero.
        WHEN pg_catalog.length(s) % 4 = 3
             AND pg_catalog.strpos('AEIMQUYcgkosw048', pg_catalog.right(s, 1)) = 0 THEN NULL
        ELSE pg_catalog.decode(
                 pg_catalog.translate(s, '-_', '+/')
                 || pg_catalog.repeat('=', (4 - pg_catalog.length(s) % 4) % 4),
                 'base64')
    END
$fn$;

COMMENT ON FUNCTION pgguard.b64url_decode(text) IS
    'pgguard: strict canonical unpadded base64url decode; NULL for any invalid input';

-- Big-endian unsigned integer value of a byte string ('\x'::bytea is 0). Works 7 bytes per
-- step (14 hex digits -> bit(56) -> bigint, always non-negative) rather than one byte per loop.
CREATE OR REPLACE FUNCTION pgguard.bytea_to_numeric(b bytea)
RETURNS numeric
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $fn$
DECLARE
    -- left-pad with zero bytes to a multiple of 7 bytes; leading zeros do not change the value
    h text := pg_catalog.repeat('00', (7 - pg_catalog.length(b) % 7) % 7)
              || pg_catalog.encode(b, 'hex');
    r numeric := 0;
BEGIN
    FOR i IN 0 .. pg_catalog.length(h) / 14 - 1 LOOP
        r := r * 72057594037927936  -- 2^56
             + ('x' || pg_catalog.substr(h, i * 14 + 1, 14))::bit(56)::bigint;
    END LOOP;
    RETURN r;
END
$fn$;

COMMENT ON FUNCTION pgguard.bytea_to_numeric(bytea) IS
    'pgguard: big-endian unsigned integer value of a byte string';
