-- Privilege mode: who may call what. Runs after 900_privileges.sql (which gives every
-- function to pgguard_owner and revokes it from PUBLIC first). The executor is for the app roles recorded at install
-- (pgguard.settings 'app_roles'), not for PUBLIC: a read-only role gets no schema changes.

GRANT EXECUTE ON FUNCTION
    pgguard.guarded_schemas(), pgguard.owner_oid(), pgguard.owner_name(), pgguard.ownership_drift(),
    pgguard.owner_takeover_paths(), pgguard.trusted_function(oid), pgguard.self_digest(),
    pgguard.statement_words(text), pgguard.statement_refusal(text[]),
    pgguard.statement_tag(text[]), pgguard.shell_quote(text)
TO PUBLIC;

DO $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT pg_catalog.jsonb_array_elements_text(s.value) FROM pgguard.settings s
              WHERE s.name = 'app_roles' LOOP
        IF pg_catalog.to_regrole(pg_catalog.quote_ident(r)) IS NOT NULL THEN
            EXECUTE pg_catalog.format(
                'GRANT EXECUTE ON FUNCTION pgguard.run_ddl(text, name[]) TO %I', r);
        END IF;
    END LOOP;
END
$$;
