-- The audit log (PostgreSQL): append-only and hash-chained (see keel.data.AuditStore and docs/audit.md).
-- seq numbers the global chain from 1 with no gap; at is epoch milliseconds; "" stands for an
-- absent owner, agent, session or tool; detail is canonical JSON; hash = SHA-256(prev_hash bytes ||
-- canonical encoding of the row), in lowercase hex. Keel never updates or deletes a row.
CREATE TABLE audit_log (
  seq        bigint PRIMARY KEY,
  at         bigint NOT NULL,
  kind       text NOT NULL,
  actor      text NOT NULL,
  owner      text NOT NULL,
  agent      text NOT NULL,
  session_id text NOT NULL,
  tool       text NOT NULL,
  detail     text NOT NULL,
  prev_hash  text NOT NULL,
  hash       text NOT NULL
);
-- Queries filter by time, session, agent or owner (and page by seq).
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_session ON audit_log (session_id, seq);
CREATE INDEX audit_log_agent ON audit_log (agent, seq);
CREATE INDEX audit_log_owner ON audit_log (owner, seq);

-- The chain head, moved in the same transaction as every append: the last seq and its hash, so
-- that deleting the newest entries is detectable. Appends lock this row (FOR UPDATE): every node
-- chains from the committed head, so the chain never forks.
CREATE TABLE audit_head (
  id   integer PRIMARY KEY CHECK (id = 1),
  seq  bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
