-- Keel kernel schema (SQLite). Times are epoch milliseconds.

CREATE TABLE sessions (
  id             TEXT PRIMARY KEY,
  agent          TEXT NOT NULL,
  revision       INTEGER NOT NULL,
  owner          TEXT NOT NULL,
  status         TEXT NOT NULL,
  last_seq       INTEGER NOT NULL,
  trace_id       TEXT NOT NULL,
  parent_id      TEXT,
  root_id        TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  pending_inputs INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX sessions_created ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_agent_created ON sessions (agent, created_at DESC, id DESC);
CREATE INDEX sessions_status ON sessions (status);
CREATE INDEX sessions_pending ON sessions (id) WHERE pending_inputs > 0;

-- One row per event; each holds only what is new. Large payloads live in blobs.
CREATE TABLE events (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  at         INTEGER NOT NULL,
  node       TEXT NOT NULL,
  type       TEXT NOT NULL,
  span_id    TEXT NOT NULL,
  payload    TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Only the latest snapshot of each session is kept, so snapshots cost O(session) in all.
CREATE TABLE snapshots (
  session_id TEXT PRIMARY KEY,
  seq        INTEGER NOT NULL,
  state      TEXT NOT NULL
) WITHOUT ROWID;

-- Inputs are stored here before they are acknowledged. A consumed input keeps its id (so a
-- retried request with the same idempotency key is recognised) but not its body, which the
-- InputReceived event holds.
CREATE TABLE inbox (
  position     INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id   TEXT NOT NULL,
  input_id     TEXT NOT NULL,
  kind         TEXT NOT NULL,
  body         TEXT NOT NULL,
  sender       TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  consumed_seq INTEGER,
  UNIQUE (session_id, input_id)
);
CREATE INDEX inbox_pending ON inbox (session_id, position) WHERE consumed_seq IS NULL;

CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  size   INTEGER NOT NULL,
  body   BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE memory (
  agent      TEXT NOT NULL,
  scope      TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (agent, scope, key)
) WITHOUT ROWID;

CREATE TABLE revisions (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  number     INTEGER NOT NULL,
  owner      TEXT NOT NULL,
  spec       TEXT NOT NULL,
  applied_by TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  PRIMARY KEY (kind, name, number)
) WITHOUT ROWID;
