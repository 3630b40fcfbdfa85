-- Counts of recent overrides and refusals, for `pgguard status` (which any role may run).
-- SECURITY DEFINER: returns counts only, never the audit rows themselves (those are for
-- members of pgguard_auditor, through `pgguard audit`).

CREATE OR REPLACE FUNCTION pgguard.recent_activity(since interval)
RETURNS TABLE (kind text, events bigint, last_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT a.kind, pg_catalog.count(*), pg_catalog.max(a.at)
      FROM pgguard.audit a
     WHERE a.at > pg_catalog.now() - since
     GROUP BY a.kind
$$;
