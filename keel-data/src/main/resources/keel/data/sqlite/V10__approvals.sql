-- The approvals inbox: one row per external call that waits for a human. A row is written in the
-- same transaction as the session's ApprovalRequested event; a decision updates it only while it is
-- pending (a conditional update, so two deciders on any nodes cannot both win) and puts the
-- decision into the session's inbox in the same transaction.
CREATE TABLE approvals (
  approval_id       TEXT PRIMARY KEY,
  session_id        TEXT NOT NULL,
  call_id           TEXT NOT NULL,
  agent             TEXT NOT NULL,
  owner             TEXT NOT NULL,
  tool              TEXT NOT NULL,
  arguments         TEXT NOT NULL,
  value_usd         TEXT NOT NULL,
  reasons           TEXT NOT NULL,
  principal         TEXT NOT NULL,
  requester         TEXT NOT NULL,
  reasoning         TEXT NOT NULL,
  requested_at      BIGINT NOT NULL,
  expires_at        BIGINT NOT NULL,
  status            TEXT NOT NULL,
  decided_by        TEXT,
  decided_at        BIGINT,
  decision_reason   TEXT,
  decided_arguments TEXT
);
CREATE INDEX approvals_by_status ON approvals (status, expires_at);
CREATE INDEX approvals_by_session ON approvals (session_id);
CREATE INDEX approvals_by_agent ON approvals (agent, requested_at);
