-- Deploy records (`pgguard deploy`, `snapshot` + `verify`): deploy_begin / deploy_end write
-- pgguard.deploys, deploy_approvals reads back the overrides used while a deploy ran.
-- SECURITY DEFINER: the table is pgguard_owner's; who and when are filled in here, never taken
-- from the caller, and a deploy row can be finished or read back only by the role that began it.

CREATE OR REPLACE FUNCTION pgguard.deploy_begin(
    command text, restore_time timestamptz, restore_lsn pg_lsn, restore_txid bigint)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    INSERT INTO pgguard.deploys (command, restore_time, restore_lsn, restore_txid)
    VALUES (command, restore_time, restore_lsn, restore_txid)
    RETURNING id
$$;

-- Finish a running deploy of this session's role: outcome, exit code, the report's summary.
CREATE OR REPLACE FUNCTION pgguard.deploy_end(
    deploy_id bigint, outcome text, exit_code integer, summary jsonb)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
BEGIN
    UPDATE pgguard.deploys d
       SET finished_at = pg_catalog.clock_timestamp(), outcome = deploy_end.outcome,
           exit_code = deploy_end.exit_code, summary = deploy_end.summary
     WHERE d.id = deploy_id AND d.outcome = 'running' AND d.session_user_name = session_user;
    RETURN FOUND;
END
$$;

-- The overrides recorded since this role's deploy began (and before it finished): what
-- approved the tables, columns and rows the deploy removed. Others' deploys yield nothing.
CREATE OR REPLACE FUNCTION pgguard.deploy_approvals(deploy_id bigint)
RETURNS TABLE (at timestamptz, op text, object text, session_user_name text, jti text,
               sub text, why text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT a.at, a.op, a.object, a.session_user_name, a.jti, a.sub, a.why
      FROM pgguard.deploys d
      JOIN pgguard.audit a ON a.at >= d.started_at
                          AND a.at <= COALESCE(d.finished_at, 'infinity')
     WHERE d.id = deploy_id AND d.session_user_name = session_user AND a.kind = 'override'
     ORDER BY a.at, a.id
$$;
