-- Privileges for the deploy loop and row-loss limits, after 900 has reset everything in schema
-- pgguard: any role may record and verify its own deploys and fire the row-limit trigger; the
-- deploy records are read by pgguard_auditor like the rest of the audit trail.

GRANT SELECT ON pgguard.deploys TO pgguard_auditor;
GRANT EXECUTE ON FUNCTION
    pgguard.deploy_begin(text, timestamptz, pg_lsn, bigint),
    pgguard.deploy_end(bigint, text, integer, jsonb),
    pgguard.deploy_approvals(bigint),
    pgguard.row_limit_guard(),
    pgguard.row_limit_check(oid, text, text, text, bigint, bigint, numeric, bigint),
    pgguard.row_limits(),
    pgguard.token_covers(text, text),
    pgguard.record_row_limits(oid[], text[], boolean, bigint, numeric),
    pgguard.row_limits_recorded(jsonb), pgguard.row_limit_looser(jsonb, jsonb),
    pgguard.row_limit_change(text, jsonb, jsonb),
    pgguard.row_limits_missing(),
    pgguard.row_limits_ensure(oid, text), pgguard.row_limit_tamper(oid, text),
    pgguard.privilege_mode(), pgguard.protect_rows_owned(oid[], text[], bigint, numeric, boolean)
TO PUBLIC;
