-- Counts of recent overrides and of refusals since install, for `pgguard status` (which any
-- role may run). SECURITY DEFINER: returns counts only, never the audit rows themselves (those
-- are for members of pgguard_auditor, through `pgguard audit`).

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

-- Refusals since install: the refused transactions rolled back, but the number each drew
-- from pgguard.refusal_seq did not.
CREATE OR REPLACE FUNCTION pgguard.refusals_total() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pgguard, pg_temp
AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM pgguard.refusal_seq s
$$;
