-- Every function here pins search_path, even the internal helpers: a plpgsql function resolves
-- its variables' types when first compiled in a session and keeps them, so an unpinned one
-- could be compiled under a session's hostile search_path (a domain named "text" in public)
-- and then run inside pgguard's SECURITY DEFINER code.
--
-- Plan note for every guard function: their point lookups (pg_trigger by table, the
-- created-tables and token tables by key) are cached as generic plans for the whole session,
-- planned when those tables may still be tiny. `SET enable_seqscan = off` on those functions
-- keeps the cached plans on the indexes, so a session that later sees 10,000 guarded tables (or
-- a migration that creates thousands) does not scan them all per statement.
--
-- Small helpers used by every guard: the current top-level transaction id, excluded schemas,
-- shell quoting for HINT lines, and pgguard's glob matching of object names.
-- Called by the event-trigger and TRUNCATE-trigger functions; all are read-only and safe for
-- any role to call.

-- The helpers every guard calls per statement or per table are plpgsql, not SQL: a SQL function
-- with a SET clause is never inlined, and before PostgreSQL 18 it is parsed and planned again
-- in every statement that calls it (about 20 us each on PG 15); plpgsql keeps its plans for
-- the session.
CREATE OR REPLACE FUNCTION pgguard.current_xid() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$ BEGIN RETURN pg_catalog.pg_current_xact_id()::text::bigint; END $$;

-- The protected role: pgguard_owner, or in privilege mode the role named with --owner-role at
-- install (recorded in pgguard.settings, which only that role writes). Any role may ask.
CREATE OR REPLACE FUNCTION pgguard.owner_name() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN COALESCE((SELECT s.value #>> '{}' FROM pgguard.settings s WHERE s.name = 'owner_role'),
                    'pgguard_owner');
END
$$;

CREATE OR REPLACE FUNCTION pgguard.owner_oid() RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN pg_catalog.to_regrole(pg_catalog.quote_ident(pgguard.owner_name()));
END
$$;

CREATE OR REPLACE FUNCTION pgguard.excluded_schemas() RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN COALESCE(
        (SELECT ARRAY(SELECT pg_catalog.jsonb_array_elements_text(s.value))
           FROM pgguard.settings s WHERE s.name = 'exclude_schemas'),
        '{}'::text[]);
END
$$;

-- Quote a word for a POSIX shell only when it needs it, so HINT lines stay readable.
CREATE OR REPLACE FUNCTION pgguard.shell_quote(word text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT CASE WHEN word ~ '^[A-Za-z0-9_.,/:=@+-]+$' THEN word
                ELSE '''' || pg_catalog.replace(word, '''', '''"''"''') || '''' END
$$;

-- One glob segment: '*' is any run of characters, '?' exactly one; all else is literal.
CREATE OR REPLACE FUNCTION pgguard.glob_segment_matches(pattern text, word text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    RETURN (word COLLATE "C") LIKE pg_catalog.replace(pg_catalog.replace(
               pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pattern,
                   '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_') ESCAPE '\';
END
$$;

-- Does a token's object pattern cover an object ("schema.table" or "schema.table.column")?
-- Semantics (mirrored by pgguard.token.object_matches): '*' alone covers everything; a
-- two-segment pattern covers matching tables and all their columns; a three-segment pattern
-- covers matching columns only; a one-segment pattern covers only one-segment objects.
CREATE OR REPLACE FUNCTION pgguard.object_matches(pattern text, obj text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    p text[] := pg_catalog.string_to_array(pattern, '.');
    np int := pg_catalog.cardinality(p);
    no int := pg_catalog.cardinality(obj);
BEGIN
    IF pattern = '*' THEN
        RETURN true;
    ELSIF np = 1 THEN
        RETURN no = 1 AND pgguard.glob_segment_matches(p[1], obj[1]);
    ELSIF np = 2 THEN
        RETURN no IN (2, 3)
           AND pgguard.glob_segment_matches(p[1], obj[1])
           AND pgguard.glob_segment_matches(p[2], obj[2]);
    ELSIF np = 3 THEN
        RETURN no = 3
           AND pgguard.glob_segment_matches(p[1], obj[1])
           AND pgguard.glob_segment_matches(p[2], obj[2])
           AND pgguard.glob_segment_matches(p[3], obj[3]);
    END IF;
    RETURN false;
END
$$;

-- Objects travel between the guards as identifier paths, each part quoted only when it must
-- be (public.tenants, app."a.b", public."Users".id), so a name holding a dot stays one part:
-- matching is on the parts (pgguard.ident_parts), never on the joined text.
CREATE OR REPLACE FUNCTION pgguard.ident_path(VARIADIC parts text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    p text;
    path text;
BEGIN
    -- NULL parts are skipped and no part at all gives NULL (as string_agg would)
    FOREACH p IN ARRAY parts LOOP
        IF p IS NOT NULL THEN
            path := CASE WHEN path IS NULL THEN '' ELSE path || '.' END
                    || pg_catalog.quote_ident(p);
        END IF;
    END LOOP;
    RETURN path;
END
$$;

CREATE OR REPLACE FUNCTION pgguard.ident_parts(path text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$ BEGIN RETURN pg_catalog.parse_ident(path); END $$;

-- A glob that covers exactly this object, for HINT lines: glob characters and dots inside a
-- name become '?', the only way a pattern can say them.
CREATE OR REPLACE FUNCTION pgguard.ident_glob(path text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$ SELECT pg_catalog.string_agg(pg_catalog.translate(p, '*?.', '???'), '.' ORDER BY o)
        FROM pg_catalog.unnest(pg_catalog.parse_ident(path)) WITH ORDINALITY AS u(p, o) $$;
