-- Keel kernel schema (PostgreSQL): the same tables as the SQLite store's V1, in PostgreSQL's types.
-- Times are timestamptz at millisecond precision. Identifiers and names use the "C" collation, so
-- they order by code point exactly as in SQLite. Free text from people or models that is not
-- JSON (inbox bodies, memory notes) is bytea holding UTF-8, because PostgreSQL text cannot hold
-- U+0000 while SQLite's can; JSON columns are text (Keel's JSON escapes U+0000).

CREATE TABLE sessions (
  id             text COLLATE "C" PRIMARY KEY,
  agent          text COLLATE "C" NOT NULL,
  revision       integer NOT NULL,
  owner          text NOT NULL,
  status         text NOT NULL,
  -- the sequence number of the last event: the one row every append of the session updates, so
  -- the conditional update on it is where appends are ordered and stale writers refused
  last_seq       bigint NOT NULL,
  trace_id       text NOT NULL,
  parent_id      text COLLATE "C",
  root_id        text COLLATE "C" NOT NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  pending_inputs integer NOT NULL DEFAULT 0 CHECK (pending_inputs >= 0)
);
CREATE INDEX sessions_created ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_agent_created ON sessions (agent, created_at DESC, id DESC);
CREATE INDEX sessions_status ON sessions (status);
CREATE INDEX sessions_pending ON sessions (id) WHERE pending_inputs > 0;

-- One row per event; each holds only what is new. Large payloads live in blobs.
CREATE TABLE events (
  session_id text COLLATE "C" NOT NULL,
  seq        bigint NOT NULL,
  at         timestamptz NOT NULL,
  node       text NOT NULL,
  type       text NOT NULL,
  span_id    text NOT NULL,
  payload    text NOT NULL,
  PRIMARY KEY (session_id, seq)
);

-- Only the latest snapshot of each session is kept, so snapshots cost O(session) in all.
CREATE TABLE snapshots (
  session_id text COLLATE "C" PRIMARY KEY,
  seq        bigint NOT NULL,
  state      text NOT NULL
);

-- Inputs are stored here before they are acknowledged. A consumed input keeps its id (so a
-- retried request with the same idempotency key is recognised) but not its body, which the
-- InputReceived event holds.
CREATE TABLE inbox (
  position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id   text COLLATE "C" NOT NULL,
  input_id     text COLLATE "C" NOT NULL,
  kind         text NOT NULL,
  body         bytea NOT NULL,
  sender       text NOT NULL,
  received_at  timestamptz NOT NULL,
  consumed_seq bigint,
  UNIQUE (session_id, input_id)
);
CREATE INDEX inbox_pending ON inbox (session_id, position) WHERE consumed_seq IS NULL;

CREATE TABLE blobs (
  sha256 text COLLATE "C" PRIMARY KEY,
  size   bigint NOT NULL,
  body   bytea NOT NULL
);

-- key and value as UTF-8 bytes; search holds lower(key || ' ' || value) without U+0000, for the
-- word search (whose words never contain a space or U+0000, so it matches exactly what the
-- key or the value contains)
CREATE TABLE memory (
  agent      text COLLATE "C" NOT NULL,
  scope      text COLLATE "C" NOT NULL,
  key        bytea NOT NULL,
  value      bytea NOT NULL,
  search     text NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (agent, scope, key)
);

CREATE TABLE revisions (
  kind       text COLLATE "C" NOT NULL,
  name       text COLLATE "C" NOT NULL,
  number     integer NOT NULL,
  owner      text NOT NULL,
  spec       text NOT NULL,
  applied_by text NOT NULL,
  applied_at timestamptz NOT NULL,
  PRIMARY KEY (kind, name, number)
);
