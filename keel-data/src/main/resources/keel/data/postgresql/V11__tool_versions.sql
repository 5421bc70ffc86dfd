-- The MCP gateway's tool catalog (PostgreSQL): the same table as the SQLite store's V11.
-- A tool's version is numbered in the order its schemas (by hash) were first seen.
CREATE TABLE mcp_tool_versions (
  server      text COLLATE "C" NOT NULL,
  tool        text COLLATE "C" NOT NULL,
  version     integer NOT NULL,
  hash        text NOT NULL,
  schema      text NOT NULL,
  recorded_at timestamptz NOT NULL,
  PRIMARY KEY (server, tool, version),
  UNIQUE (server, tool, hash)
);
