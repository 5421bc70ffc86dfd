-- Operators: the people and scripts that use the API, their role bindings and their API tokens.
-- Times are epoch milliseconds. Operators are never deleted: a revoked operator keeps its row, so
-- the name that events and revisions record as "operator:<name>" always means the same one.

CREATE TABLE operators (
  name       TEXT PRIMARY KEY,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_by TEXT,
  revoked_at INTEGER
) WITHOUT ROWID;

-- One row per binding: a role for every owner (owner '') or for one owner.
CREATE TABLE operator_roles (
  operator TEXT NOT NULL REFERENCES operators (name),
  position INTEGER NOT NULL,
  role     TEXT NOT NULL,
  owner    TEXT NOT NULL,
  PRIMARY KEY (operator, position),
  UNIQUE (operator, role, owner)
) WITHOUT ROWID;

-- API tokens, only as the hex SHA-256 of the token; the token itself is shown once and never
-- stored. The primary key is the index every authenticated request looks up. A token works while
-- it is not revoked (issuing a new one revokes the previous) and its operator is not revoked.
CREATE TABLE operator_tokens (
  sha256     TEXT PRIMARY KEY,
  operator   TEXT NOT NULL REFERENCES operators (name),
  issued_by  TEXT NOT NULL,
  issued_at  INTEGER NOT NULL,
  revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX operator_tokens_live ON operator_tokens (operator) WHERE revoked_at IS NULL;
