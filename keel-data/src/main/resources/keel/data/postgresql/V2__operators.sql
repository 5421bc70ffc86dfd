-- Operators (PostgreSQL): the same tables as the SQLite store's V2. Operators are never deleted: a
-- revoked operator keeps its row, so the name that events and revisions record as
-- "operator:<name>" always means the same one.

CREATE TABLE operators (
  name       text COLLATE "C" PRIMARY KEY,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  revoked_by text,
  revoked_at timestamptz
);

-- One row per binding: a role for every owner (owner '') or for one owner.
CREATE TABLE operator_roles (
  operator text COLLATE "C" NOT NULL REFERENCES operators (name),
  position integer NOT NULL,
  role     text NOT NULL,
  owner    text NOT NULL,
  PRIMARY KEY (operator, position),
  UNIQUE (operator, role, owner)
);

-- API tokens, only as the hex SHA-256 of the token; the token itself is shown once and never
-- stored. The primary key is the index every authenticated request looks up. A token works while
-- it is not revoked (issuing a new one revokes the previous) and its operator is not revoked.
CREATE TABLE operator_tokens (
  sha256     text COLLATE "C" PRIMARY KEY,
  operator   text COLLATE "C" NOT NULL REFERENCES operators (name),
  issued_by  text NOT NULL,
  issued_at  timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX operator_tokens_live ON operator_tokens (operator) WHERE revoked_at IS NULL;
