-- Calls that outside MCP clients make through the gateway's MCP server (/mcp), one row per caller
-- and idempotency key: a call is executed only by the request that moves its row to 'started'
-- (a conditional insert or update), so the same key never runs the upstream tool twice. A call
-- that needs approval waits in 'awaiting_approval' with its (sessionless) approval's id.
CREATE TABLE mcp_calls (
  principal        TEXT NOT NULL,
  idempotency_key  TEXT NOT NULL,
  tool             TEXT NOT NULL,
  arguments        TEXT NOT NULL,
  approval_id      TEXT NOT NULL,
  status           TEXT NOT NULL,
  result           TEXT NOT NULL,
  is_error         INTEGER NOT NULL,
  structured       TEXT NOT NULL,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  PRIMARY KEY (principal, idempotency_key)
);
