-- Ownership and privileges of everything in schema pgguard, re-applied on every install.
-- Owner: the protected role (pgguard_owner, NOLOGIN; privilege mode: install's --owner-role). Nothing is writable except through
-- pgguard's own SECURITY DEFINER functions; nothing here is secret (keys are public halves).

DO $$
DECLARE
    r record;
    own text := pgguard.owner_name();  -- pgguard_owner, or install's --owner-role
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pgguard'::regnamespace LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', r.f, own);
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', r.f);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS t, c.relkind FROM pg_catalog.pg_class c
              WHERE c.relnamespace = 'pgguard'::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', r.t, own);
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', r.t);
    END LOOP;
    -- whatever anyone granted by hand goes; the GRANTs below put back what is needed
    FOR r IN SELECT DISTINCT c.oid::regclass AS t, a.grantee::regrole AS who
               FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
              WHERE c.relnamespace = 'pgguard'::regnamespace AND a.grantee <> 0
                AND a.grantee <> c.relowner LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', r.t, r.who);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER SEQUENCE pgguard.refusal_seq OWNER TO %I', own);
    EXECUTE pg_catalog.format('ALTER SCHEMA pgguard OWNER TO %I', own);
END
$$;
REVOKE ALL ON SEQUENCE pgguard.refusal_seq FROM PUBLIC;
REVOKE ALL ON SCHEMA pgguard FROM PUBLIC;
GRANT USAGE ON SCHEMA pgguard TO PUBLIC;

-- Readable by anyone: nothing here is secret (public keys, hashes of verified tokens, the audit
-- trail), and pg_dump locks and reads every table of every schema it dumps - a role that could
-- dump its database before pgguard was installed must still be able to. pgguard_auditor stays
-- the role `pgguard audit` documents.
GRANT SELECT ON ALL TABLES IN SCHEMA pgguard TO PUBLIC;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgguard TO PUBLIC;
GRANT SELECT ON pgguard.audit, pgguard.spent_tokens, pgguard.refusal_seq TO pgguard_auditor;

-- Callable by any role: what runs in the caller's own rights (the ddl_command_end guard and the
-- TRUNCATE trigger run as the table's owner, install's attach step as the installer, status as
-- anyone) and what those call. Everything else - the token verifier, scope matching, refusal,
-- the helpers behind them - is for pgguard_owner's SECURITY DEFINER code alone: check_override
-- and truncate_check take the objects to approve from their caller, so a session calling them
-- by hand could write override rows into the audit trail for objects it never touched.
-- truncate_refused (the guard's WHEN clause, run in the truncating role's rights) takes only
-- the table: by hand it approves nothing the session's token does not already cover.
GRANT EXECUTE ON FUNCTION
    pgguard.on_sql_drop(), pgguard.on_ddl_end(), pgguard.truncate_guard(),
    pgguard.truncate_refused(pg_catalog.regclass), pgguard.guard_definition(oid, boolean),
    pgguard.guard_when(oid), pgguard.guard_form_ok(oid, smallint, pg_catalog.pg_node_tree, oid),
    pgguard.guard_form_old(oid, smallint, pg_catalog.pg_node_tree),
    pgguard.on_table_rewrite(),
    pgguard.note_ddl(),
    pgguard.ensure_guard(oid, text),
    pgguard.tamper_override(oid, text), pgguard.authorize_uninstall(),
    pgguard.authorize_exclusion(text[]),
    pgguard.privileges_widened(), pgguard.guarded_table_in_excluded_schema(),
    pgguard.excluded_schemas(), pgguard.ident_path(text[]), pgguard.attach_guards(oid[]),
    pgguard.table_guards(), pgguard.recent_activity(interval), pgguard.refusals_total(),
    pgguard.foreign_owned_objects(), pgguard.on_ddl_start(),
    pgguard.owner_name(), pgguard.owner_oid()
TO PUBLIC;
