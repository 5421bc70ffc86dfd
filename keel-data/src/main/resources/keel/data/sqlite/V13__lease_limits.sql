-- The limits a session's claims respect cluster-wide (LeaseStore.Limits), recorded by its claims:
-- its partition within its agent (spec.concurrency: per-partition; NULL for none) and its agent's
-- most active sessions (spec.concurrency.max_active_sessions; NULL for no limit). A session is
-- active while a node holds an unexpired lease on it.
ALTER TABLE sessions ADD COLUMN partition_key text;
ALTER TABLE sessions ADD COLUMN max_active integer;
CREATE INDEX sessions_agent_leased ON sessions (agent, partition_key) WHERE lease_node IS NOT NULL;
