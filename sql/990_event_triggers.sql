-- The event triggers. Names matter: triggers on one event fire in name order, and the
-- sentinel's pgguard_ddl_check must run before pgguard_ddl_end (which would trip over a renamed
-- or half-dropped schema pgguard before it could refuse). Created last, ENABLE ALWAYS so session_replication_role = replica does
-- not silence them. Only a superuser (or a platform's equivalent) can create or drop them; the
-- install transaction drops them first so its own DDL on schema pgguard is not refused.

DROP EVENT TRIGGER IF EXISTS pgguard_sql_drop;
CREATE EVENT TRIGGER pgguard_sql_drop ON sql_drop
    EXECUTE FUNCTION pgguard.on_sql_drop();
ALTER EVENT TRIGGER pgguard_sql_drop ENABLE ALWAYS;

-- pgguard_ddl_end fires for every command that reports to ddl_command_end except CREATE
-- INDEX (a third of a typical migration; an index is no table, no guard and nothing of the
-- sentinel's) and the DROP commands (they report nothing at ddl_command_end: sql_drop judges
-- them). The sentinel's pgguard_ddl_check still fires for every command.
DROP EVENT TRIGGER IF EXISTS pgguard_ddl_end;
CREATE EVENT TRIGGER pgguard_ddl_end ON ddl_command_end
    WHEN TAG IN (
        'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE SCHEMA',
        'ALTER SCHEMA', 'CREATE EXTENSION', 'ALTER EXTENSION', 'GRANT', 'REVOKE',
        'ALTER DEFAULT PRIVILEGES', 'CREATE TRIGGER', 'ALTER TRIGGER', 'ALTER INDEX',
        'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY', 'REFRESH MATERIALIZED VIEW',
        'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE',
        'ALTER ROUTINE', 'CREATE AGGREGATE', 'ALTER AGGREGATE', 'CREATE VIEW', 'ALTER VIEW',
        'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW', 'CREATE SEQUENCE',
        'ALTER SEQUENCE', 'CREATE TYPE', 'ALTER TYPE', 'CREATE DOMAIN', 'ALTER DOMAIN',
        'CREATE COLLATION', 'ALTER COLLATION', 'CREATE CONVERSION', 'ALTER CONVERSION',
        'CREATE OPERATOR', 'ALTER OPERATOR', 'CREATE OPERATOR CLASS', 'ALTER OPERATOR CLASS',
        'CREATE OPERATOR FAMILY', 'ALTER OPERATOR FAMILY', 'CREATE TEXT SEARCH CONFIGURATION',
        'ALTER TEXT SEARCH CONFIGURATION', 'CREATE TEXT SEARCH DICTIONARY',
        'ALTER TEXT SEARCH DICTIONARY', 'CREATE TEXT SEARCH PARSER',
        'ALTER TEXT SEARCH PARSER', 'CREATE TEXT SEARCH TEMPLATE',
        'ALTER TEXT SEARCH TEMPLATE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
        'IMPORT FOREIGN SCHEMA', 'CREATE STATISTICS', 'ALTER STATISTICS', 'COMMENT',
        'SECURITY LABEL', 'CREATE CAST', 'CREATE LANGUAGE', 'ALTER LANGUAGE',
        'CREATE FOREIGN DATA WRAPPER', 'ALTER FOREIGN DATA WRAPPER', 'CREATE SERVER',
        'ALTER SERVER', 'CREATE USER MAPPING', 'ALTER USER MAPPING', 'CREATE PUBLICATION',
        'ALTER PUBLICATION', 'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION',
        'CREATE ACCESS METHOD', 'CREATE TRANSFORM', 'ALTER LARGE OBJECT', 'ALTER RULE')
    EXECUTE FUNCTION pgguard.on_ddl_end();
ALTER EVENT TRIGGER pgguard_ddl_end ENABLE ALWAYS;

DROP EVENT TRIGGER IF EXISTS pgguard_drop_check;
CREATE EVENT TRIGGER pgguard_drop_check ON sql_drop
    EXECUTE FUNCTION pgguard_sentinel.on_sql_drop();
ALTER EVENT TRIGGER pgguard_drop_check ENABLE ALWAYS;

DROP EVENT TRIGGER IF EXISTS pgguard_ddl_check;
CREATE EVENT TRIGGER pgguard_ddl_check ON ddl_command_end
    EXECUTE FUNCTION pgguard_sentinel.on_ddl_end();
ALTER EVENT TRIGGER pgguard_ddl_check ENABLE ALWAYS;

-- Measures which tables hold no row before a statement that can drop tables takes its locks
-- (the empty-table rule, 047); only the tags whose drops the rule judges.
DROP EVENT TRIGGER IF EXISTS pgguard_ddl_start;
CREATE EVENT TRIGGER pgguard_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TYPE', 'DROP DOMAIN')
    EXECUTE FUNCTION pgguard.on_ddl_start();
ALTER EVENT TRIGGER pgguard_ddl_start ENABLE ALWAYS;

-- Before any statement that can drop functions: queue the watch's commit-time check (096).
DROP EVENT TRIGGER IF EXISTS pgguard_watch_start;
CREATE EVENT TRIGGER pgguard_watch_start ON ddl_command_start
    WHEN TAG IN ('DROP SCHEMA', 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE',
                 'DROP EXTENSION', 'DROP LANGUAGE', 'DROP OWNED')
    EXECUTE FUNCTION pgguard_watch.on_ddl_start();
ALTER EVENT TRIGGER pgguard_watch_start ENABLE ALWAYS;

DROP EVENT TRIGGER IF EXISTS pgguard_table_rewrite;
CREATE EVENT TRIGGER pgguard_table_rewrite ON table_rewrite
    EXECUTE FUNCTION pgguard.on_table_rewrite();
ALTER EVENT TRIGGER pgguard_table_rewrite ENABLE ALWAYS;
