-- The audit log: append-only and hash-chained (see keel.data.AuditStore and docs/audit.md).
-- seq numbers the global chain from 1 with no gap; at is epoch milliseconds; "" stands for an
-- absent owner, agent, session or tool; detail is canonical JSON; hash = SHA-256(prev_hash bytes ||
-- canonical encoding of the row), in lowercase hex. Keel never updates or deletes a row.
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,
  kind       TEXT NOT NULL,
  actor      TEXT NOT NULL,
  owner      TEXT NOT NULL,
  agent      TEXT NOT NULL,
  session_id TEXT NOT NULL,
  tool       TEXT NOT NULL,
  detail     TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
-- Queries filter by time, session, agent or owner (and page by seq).
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_session ON audit_log (session_id, seq);
CREATE INDEX audit_log_agent ON audit_log (agent, seq);
CREATE INDEX audit_log_owner ON audit_log (owner, seq);

-- The chain head, moved in the same transaction as every append: the last seq and its hash, so
-- that deleting the newest entries is detectable. Appends serialize on this row.
CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
