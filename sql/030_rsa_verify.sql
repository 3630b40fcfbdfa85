-- pgguard.rsa_verify_pkcs1_sha256(n, k, msg, sig): RSASSA-PKCS1-v1_5 / SHA-256 verification with
-- e = 65537 in plain plpgsql; called by the token checker with a registered public key's n and k.
-- Security: builds the one valid encoding of sha256(msg) and compares it WHOLE with sig^e mod n;
-- the decrypted block is never parsed (no Bleichenbacher-style lenient-parsing forgeries).

CREATE OR REPLACE FUNCTION pgguard.rsa_verify_pkcs1_sha256(
    n numeric, k integer, msg bytea, sig bytea)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $fn$
DECLARE
    s numeric;
    m numeric;
    x numeric;
    d integer;
    lo numeric;
    hi numeric;
    mu numeric;
    em bytea;
BEGIN
    -- The key: 2048..16384 bits (k = 256..2048 bytes), and k must be n's exact byte length
    -- (256^(k-1) <= n < 256^k), as in every other implementation, which derive k from n.
    IF k < 256 OR k > 2048 OR n <> pg_catalog.trunc(n)
       OR n < pg_catalog.power(256::numeric, k - 1) OR n >= pg_catalog.power(256::numeric, k) THEN
        RETURN false;
    END IF;
    n := pg_catalog.trunc(n);  -- scale 0, so n::text below is its decimal digits only
    -- The signature: exactly k bytes, and as an integer s < n (so s and s + n, two spellings of
    -- one signature, cannot both verify).
    IF pg_catalog.length(sig) <> k THEN
        RETURN false;
    END IF;
    s := pgguard.bytea_to_numeric(sig);
    IF s >= n THEN
        RETURN false;
    END IF;
    -- m = s^65537 mod n: 65537 = 2^16 + 1, so 16 modular squarings then one multiply by s,
    -- each product x (0 <= x < n^2) reduced mod n by Barrett reduction in base 10 (HAC 14.42):
    -- with d = decimal digits of n and mu = floor(10^(2d) / n), q = floor(floor(x / 10^(d-1)) *
    -- mu / 10^(d+1)) satisfies 0 <= x - q*n < 3n, so at most two subtractions finish. Dividing
    -- by a power of ten is cheap for numeric (base 10000) where mod(x, n) is a full long
    -- division: about 3x faster overall. All numeric integer arithmetic here is exact.
    d := pg_catalog.length(n::text);
    lo := ('1' || pg_catalog.repeat('0', d - 1))::numeric;
    hi := ('1' || pg_catalog.repeat('0', d + 1))::numeric;
    mu := pg_catalog.div(('1' || pg_catalog.repeat('0', 2 * d))::numeric, n);
    m := s;
    FOR i IN 1 .. 17 LOOP
        x := CASE WHEN i <= 16 THEN m * m ELSE m * s END;
        m := x - pg_catalog.div(pg_catalog.div(x, lo) * mu, hi) * n;
        WHILE m >= n LOOP
            m := m - n;
        END LOOP;
    END LOOP;
    -- The expected encoding (RFC 8017 section 9.2), exactly k bytes:
    --   0x00 0x01 || PS (k - 54 bytes of 0xff, at least 8 since k >= 256) || 0x00
    --   || DigestInfo prefix for SHA-256 (19 bytes) || SHA-256(msg) (32 bytes)
    em := pg_catalog.decode('0001' || pg_catalog.repeat('ff', k - 54) || '00'
                            || '3031300d060960864801650304020105000420', 'hex')
          || pg_catalog.sha256(msg);
    RETURN m = pgguard.bytea_to_numeric(em);
END
$fn$;

COMMENT ON FUNCTION pgguard.rsa_verify_pkcs1_sha256(numeric, integer, bytea, bytea) IS
    'pgguard: RSASSA-PKCS1-v1_5 SHA-256 signature check, e = 65537, whole-encoding compare';
