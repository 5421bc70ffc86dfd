-- The MCP gateway's tool catalog: every schema version of every upstream tool. Times are epoch
-- milliseconds. A tool's version is numbered in the order its schemas (by hash) were first seen.
CREATE TABLE mcp_tool_versions (
  server      TEXT NOT NULL,
  tool        TEXT NOT NULL,
  version     INTEGER NOT NULL,
  hash        TEXT NOT NULL,
  schema      TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (server, tool, version),
  UNIQUE (server, tool, hash)
) WITHOUT ROWID;
