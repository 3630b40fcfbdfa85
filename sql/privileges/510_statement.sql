-- Privilege mode: what the executor (pgguard.run_ddl, 530) can know about a statement before it
-- runs it. plpgsql cannot call the server's parser, so this is a lexer: it skips comments,
-- quoted strings and identifiers and dollar quotes the way the server's scanner does (with
-- standard_conforming_strings on, which run_ddl pins) and returns the statement's bare words.
-- It only decides what to refuse early with a clear message; what a statement DID is judged
-- afterwards from the catalog, so a lexer mistake can refuse too much, never let more through.

-- words: every unquoted word, upper-cased, in order ("pgguard" quoted counts as PGGUARD too);
-- problem: why the text is not exactly one statement (NULL when it is).
CREATE OR REPLACE FUNCTION pgguard.statement_words(stmt text, OUT words text[], OUT problem text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $fn$
DECLARE
    n int := pg_catalog.length(stmt);
    i int := 1;
    j int;
    ch text;
    nx text;
    tag text;
    depth int;
    ended boolean := false;   -- a top-level ';' was seen
    parens int := 0;
    body int := 0;            -- inside a BEGIN ATOMIC body: its CASE/END depth (psql's rule)
    w text;
BEGIN
    words := '{}';
    WHILE i <= n LOOP
        ch := pg_catalog.substr(stmt, i, 1);
        nx := pg_catalog.substr(stmt, i + 1, 1);
        IF ch ~ '^[[:space:]]$' THEN
            i := i + 1;
            CONTINUE;
        END IF;
        IF ch = '-' AND nx = '-' THEN
            j := pg_catalog.strpos(pg_catalog.substr(stmt, i), E'\n');
            IF j = 0 THEN
                j := pg_catalog.strpos(pg_catalog.substr(stmt, i), E'\r');
            END IF;
            i := CASE WHEN j = 0 THEN n + 1 ELSE i + j END;
            CONTINUE;
        END IF;
        IF ch = '/' AND nx = '*' THEN
            depth := 1;
            i := i + 2;
            WHILE i <= n AND depth > 0 LOOP
                IF pg_catalog.substr(stmt, i, 2) = '/*' THEN
                    depth := depth + 1;
                    i := i + 2;
                ELSIF pg_catalog.substr(stmt, i, 2) = '*/' THEN
                    depth := depth - 1;
                    i := i + 2;
                ELSE
                    i := i + 1;
                END IF;
            END LOOP;
            IF depth > 0 THEN
                problem := 'the statement ends inside a /* comment';
                RETURN;
            END IF;
            CONTINUE;
        END IF;
        IF ended THEN
            problem := 'the text holds more than one statement';
            RETURN;
        END IF;
        IF ch = ';' AND body > 0 AND parens = 0 THEN
            -- a statement of a BEGIN ATOMIC body; run_ddl has the server's parser confirm
            -- that the whole text is still one statement
            i := i + 1;
            CONTINUE;
        END IF;
        IF ch = ';' THEN
            IF parens > 0 THEN
                problem := 'the text holds more than one statement';
                RETURN;
            END IF;
            ended := true;
            i := i + 1;
            CONTINUE;
        END IF;
        IF ch = '(' THEN
            parens := parens + 1;
        ELSIF ch = ')' THEN
            parens := parens - 1;
        END IF;
        -- a word: letters, digits, _, $ and non-ASCII; E'', B'', X'', N'', U&'' prefixes
        IF ch ~ '^[A-Za-z_]$' OR pg_catalog.ascii(ch) > 127 THEN
            j := i;
            WHILE j <= n AND (pg_catalog.substr(stmt, j, 1) ~ '^[A-Za-z0-9_$]$'
                              OR pg_catalog.ascii(pg_catalog.substr(stmt, j, 1)) > 127) LOOP
                j := j + 1;
            END LOOP;
            w := pg_catalog.upper(pg_catalog.substr(stmt, i, j - i));
            IF pg_catalog.substr(stmt, j, 1) = '''' AND w IN ('E', 'B', 'X', 'N') THEN
                i := j;
                IF w = 'E' THEN
                    -- backslash escapes: a quote after a backslash does not end the string
                    i := i + 1;
                    LOOP
                        IF i > n THEN
                            problem := 'the statement ends inside a quoted string';
                            RETURN;
                        END IF;
                        ch := pg_catalog.substr(stmt, i, 1);
                        IF ch = '\' THEN
                            i := i + 2;
                        ELSIF ch = '''' AND pg_catalog.substr(stmt, i + 1, 1) = '''' THEN
                            i := i + 2;
                        ELSIF ch = '''' THEN
                            i := i + 1;
                            EXIT;
                        ELSE
                            i := i + 1;
                        END IF;
                    END LOOP;
                END IF;
                CONTINUE;  -- a plain string follows (handled below on the next turn)
            END IF;
            IF w = 'U' AND pg_catalog.substr(stmt, j, 1) = '&'
               AND pg_catalog.substr(stmt, j + 1, 1) IN ('''', '"') THEN
                i := j + 1;  -- the quoted part follows
                CONTINUE;
            END IF;
            IF parens = 0 AND words[1] = 'CREATE' THEN
                IF w = 'ATOMIC' AND words[pg_catalog.cardinality(words)] = 'BEGIN'
                   AND body = 0 THEN
                    body := 1;
                ELSIF w = 'CASE' AND body > 0 THEN
                    body := body + 1;
                ELSIF w = 'END' AND body > 0 THEN
                    body := body - 1;
                END IF;
            END IF;
            words := words || w;
            i := j;
            CONTINUE;
        END IF;
        IF ch = '''' OR ch = '"' THEN
            j := i + 1;
            LOOP
                IF j > n THEN
                    problem := 'the statement ends inside a quoted '
                               || CASE ch WHEN '"' THEN 'identifier' ELSE 'string' END;
                    RETURN;
                END IF;
                IF pg_catalog.substr(stmt, j, 1) = ch THEN
                    IF pg_catalog.substr(stmt, j + 1, 1) = ch THEN
                        j := j + 2;
                        CONTINUE;
                    END IF;
                    EXIT;
                END IF;
                j := j + 1;
            END LOOP;
            IF ch = '"' THEN
                w := pg_catalog.replace(pg_catalog.substr(stmt, i + 1, j - i - 1), '""', '"');
                IF w IN ('pgguard', 'pgguard_sentinel') THEN
                    words := words || pg_catalog.upper(w);
                ELSE
                    words := words || ('"' || w || '"');
                END IF;
            END IF;
            i := j + 1;
            CONTINUE;
        END IF;
        IF ch = '$' THEN
            -- $tag$ ... $tag$ (a $ inside a word was consumed with the word above)
            tag := pg_catalog.substring(pg_catalog.substr(stmt, i), '^\$([A-Za-z_][A-Za-z0-9_]*)?\$');
            IF tag IS NOT NULL OR pg_catalog.substr(stmt, i, 2) = '$$' THEN
                tag := '$' || COALESCE(tag, '') || '$';
                j := pg_catalog.strpos(pg_catalog.substr(stmt, i + pg_catalog.length(tag)), tag);
                IF j = 0 THEN
                    problem := 'the statement ends inside a dollar-quoted string';
                    RETURN;
                END IF;
                i := i + pg_catalog.length(tag) + j - 1 + pg_catalog.length(tag);
                CONTINUE;
            END IF;
        END IF;
        i := i + 1;
    END LOOP;
    IF pg_catalog.cardinality(words) = 0 THEN
        problem := 'the text holds no statement';
    ELSIF body > 0 THEN
        problem := 'the statement ends inside a BEGIN ATOMIC body';
    END IF;
END
$fn$;

-- Why the executor will not run this statement (NULL: it may run, and its effects decide).
-- `words` from statement_words. The refusal names what to do instead.
CREATE OR REPLACE FUNCTION pgguard.statement_refusal(words text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
DECLARE
    w1 text := words[1];
    k int := 2;
    kind text;
BEGIN
    IF 'PGGUARD' = ANY (words) OR 'PGGUARD_SENTINEL' = ANY (words) THEN
        RETURN 'it names schema pgguard, which only pgguard install and uninstall change';
    END IF;
    IF 'CONCURRENTLY' = ANY (words) THEN
        RETURN 'CONCURRENTLY cannot run inside a function (the executor is one): run it as the '
            || 'owner credential (break-glass), or drop CONCURRENTLY';
    END IF;
    IF w1 IN ('VACUUM', 'CLUSTER', 'ANALYZE', 'ANALYSE', 'CHECKPOINT') THEN
        RETURN w1 || ' is maintenance, not a schema change: autovacuum runs it as the owner, or '
            || 'run it as the owner credential (break-glass)';
    END IF;
    IF w1 IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'WITH', 'VALUES', 'TABLE',
              'TRUNCATE', 'COPY', 'LOCK', 'EXPLAIN', 'CALL', 'SHOW', 'DECLARE', 'FETCH',
              'MOVE', 'CLOSE', 'LISTEN', 'NOTIFY', 'UNLISTEN') THEN
        RETURN w1 || ' is not a schema change: run it directly as the app role (TRUNCATE of a '
            || 'guarded table asks for its token there)';
    END IF;
    IF w1 IN ('BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE',
              'PREPARE', 'EXECUTE', 'DEALLOCATE', 'DISCARD', 'SET', 'RESET', 'DO', 'LOAD',
              'GRANT', 'REVOKE', 'REASSIGN', 'SECURITY', 'IMPORT') THEN
        RETURN w1 || ' cannot go through the executor (it runs exactly one schema change as '
            || 'the owner; sessions, roles, privileges and code blocks are not schema changes)';
    END IF;
    IF w1 NOT IN ('CREATE', 'ALTER', 'DROP', 'COMMENT', 'REFRESH', 'REINDEX') THEN
        RETURN pg_catalog.format('%s is not a schema change the executor knows', w1);
    END IF;
    IF ' ' || pg_catalog.array_to_string(words, ' ') || ' ' LIKE '% BEGIN ATOMIC %'
       AND NOT (w1 = 'CREATE' AND (words[2] IN ('FUNCTION', 'PROCEDURE')
                                   OR (words[2] = 'OR' AND words[3] = 'REPLACE'
                                       AND words[4] IN ('FUNCTION', 'PROCEDURE')))) THEN
        RETURN 'BEGIN ATOMIC is accepted only as the body of CREATE FUNCTION or PROCEDURE';
    END IF;
    IF 'DEFINER' = ANY (words) AND 'SECURITY' = ANY (words) THEN
        RETURN 'SECURITY DEFINER functions would run as the protected owner: create them as '
            || 'the owner credential (break-glass) after review';
    END IF;
    -- the object kind: skip modifiers between the verb and the kind
    WHILE words[k] IN ('OR', 'REPLACE', 'UNIQUE', 'TEMP', 'TEMPORARY', 'GLOBAL', 'LOCAL',
                       'UNLOGGED', 'RECURSIVE', 'TRUSTED', 'PROCEDURAL', 'CONSTRAINT') LOOP
        k := k + 1;
    END LOOP;
    kind := words[k];
    IF kind IN ('ROLE', 'USER', 'GROUP', 'DATABASE', 'TABLESPACE', 'EVENT', 'EXTENSION',
                'LANGUAGE', 'SERVER', 'FOREIGN', 'PUBLICATION', 'SUBSCRIPTION', 'RULE',
                'TRANSFORM', 'CAST', 'ACCESS', 'DEFAULT', 'SYSTEM', 'LARGE', 'OWNED',
                'CONVERSION')
       OR (kind = 'OPERATOR' AND words[k + 1] IN ('CLASS', 'FAMILY'))
       OR (kind = 'TEXT' AND words[k + 2] IN ('PARSER', 'TEMPLATE')) THEN
        RETURN pg_catalog.format(
            '%s %s is not a schema change the executor runs: it concerns roles, privileges, '
            'the server or code that runs as the owner; run it as the owner credential '
            '(break-glass) after review', w1, kind);
    END IF;
    RETURN NULL;
END
$$;

-- The command tag the audit and refusals name ("DROP TABLE", "ALTER TABLE", ...).
CREATE OR REPLACE FUNCTION pgguard.statement_tag(words text[]) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT CASE WHEN words[1] IN ('REFRESH', 'REINDEX', 'COMMENT') THEN words[1]
                WHEN words[2] IN ('UNIQUE', 'OR', 'TEMP', 'TEMPORARY', 'UNLOGGED')
                    THEN words[1] || ' ' || COALESCE(words[CASE WHEN words[2] = 'OR' THEN 4 ELSE 3 END], '')
                WHEN words[2] = 'MATERIALIZED' THEN words[1] || ' MATERIALIZED VIEW'
                ELSE words[1] || ' ' || COALESCE(words[2], '') END
$$;
