package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.List;
import javax.sql.DataSource;

/**
 * Tool versions in SQLite. {@link #record} reads and inserts in one operation of the single
 * writer, which makes it atomic. Thread-safe.
 */
final class SqliteToolCatalogStore implements ToolCatalogStore {

  private static final String COLUMNS = "server, tool, version, hash, schema, recorded_at";

  private final DataSource readers;
  private final GroupCommitWriter writer;

  SqliteToolCatalogStore(DataSource readers, GroupCommitWriter writer) {
    this.readers = readers;
    this.writer = writer;
  }

  @Override
  public ToolVersion record(String server, String tool, String hash, String schema, Instant now) {
    return writer.execute(
        tx -> {
          PreparedStatement sel =
              tx.prepare("SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? AND hash = ?");
          Jdbc.bind(sel, server, tool, hash);
          try (ResultSet rs = sel.executeQuery()) {
            if (rs.next()) {
              return version(rs);
            }
          }
          PreparedStatement max =
              tx.prepare("SELECT COALESCE(MAX(version), 0) FROM mcp_tool_versions WHERE server = ? AND tool = ?");
          Jdbc.bind(max, server, tool);
          int next;
          try (ResultSet rs = max.executeQuery()) {
            rs.next();
            next = rs.getInt(1) + 1;
          }
          tx.update(
              "INSERT INTO mcp_tool_versions (" + COLUMNS + ") VALUES (?,?,?,?,?,?)",
              server, tool, next, hash, schema, now.toEpochMilli());
          return new ToolVersion(server, tool, next, hash, schema, Instant.ofEpochMilli(now.toEpochMilli()));
        });
  }

  @Override
  public List<ToolVersion> versions(String server, String tool) {
    return Jdbc.list(
        readers,
        "the versions of tool " + server + "/" + tool,
        "SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? ORDER BY version",
        SqliteToolCatalogStore::version,
        server,
        tool);
  }

  private static ToolVersion version(ResultSet rs) throws SQLException {
    return new ToolVersion(
        rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5),
        Instant.ofEpochMilli(rs.getLong(6)));
  }
}
