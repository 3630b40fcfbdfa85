-- The event triggers. Names matter: triggers on one event fire in name order, and the
-- sentinel's pgguard_ddl_check must run before pgguard_ddl_end (which would trip over a renamed
-- or half-dropped schema pgguard before it could refuse). Created last, ENABLE ALWAYS so session_replication_role = replica does
-- not silence them. Only a superuser (or a platform's equivalent) can create or drop them; the
-- install transaction drops them first so its own DDL on schema pgguard is not refused.

DROP EVENT TRIGGER IF EXISTS pgguard_sql_drop;
CREATE EVENT TRIGGER pgguard_sql_drop ON sql_drop
    EXECUTE FUNCTION pgguard.on_sql_drop();
ALTER EVENT TRIGGER pgguard_sql_drop ENABLE ALWAYS;

DROP EVENT TRIGGER IF EXISTS pgguard_ddl_end;
CREATE EVENT TRIGGER pgguard_ddl_end ON ddl_command_end
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
