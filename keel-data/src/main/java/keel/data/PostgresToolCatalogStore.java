package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Tool versions in PostgreSQL. {@link #record} takes a transaction-scoped advisory lock on the
 * tool before it reads, so nodes that see a new schema together agree on its number. Thread-safe.
 */
final class PostgresToolCatalogStore implements ToolCatalogStore {

  private static final String COLUMNS = "server, tool, version, hash, schema, recorded_at";

  private final PostgresTransactions pg;

  PostgresToolCatalogStore(PostgresTransactions pg) {
    this.pg = pg;
  }

  @Override
  public ToolVersion record(String server, String tool, String hash, String schema, Instant now) {
    return pg.writeTx(
        "a version of tool " + server + "/" + tool,
        tx -> {
          PreparedStatement lock = tx.prepare("SELECT pg_advisory_xact_lock(hashtextextended(?, 11))");
          lock.setString(1, server + "/" + tool);
          lock.executeQuery().close();
          PreparedStatement sel =
              tx.prepare("SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? AND hash = ?");
          sel.setString(1, server);
          sel.setString(2, tool);
          sel.setString(3, hash);
          try (ResultSet rs = sel.executeQuery()) {
            if (rs.next()) {
              return version(rs);
            }
          }
          PreparedStatement max =
              tx.prepare("SELECT COALESCE(MAX(version), 0) FROM mcp_tool_versions WHERE server = ? AND tool = ?");
          max.setString(1, server);
          max.setString(2, tool);
          int next;
          try (ResultSet rs = max.executeQuery()) {
            rs.next();
            next = rs.getInt(1) + 1;
          }
          PreparedStatement ins = tx.prepare("INSERT INTO mcp_tool_versions (" + COLUMNS + ") VALUES (?,?,?,?,?,?)");
          ins.setString(1, server);
          ins.setString(2, tool);
          ins.setInt(3, next);
          ins.setString(4, hash);
          ins.setString(5, schema);
          ins.setObject(6, PostgresEventStore.time(now.toEpochMilli()));
          ins.executeUpdate();
          return new ToolVersion(server, tool, next, hash, schema, Instant.ofEpochMilli(now.toEpochMilli()));
        });
  }

  @Override
  public List<ToolVersion> versions(String server, String tool) {
    return pg.read(
        "the versions of tool " + server + "/" + tool,
        c -> {
          try (PreparedStatement ps = c.prepareStatement(
              "SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? ORDER BY version")) {
            ps.setString(1, server);
            ps.setString(2, tool);
            List<ToolVersion> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(version(rs));
              }
            }
            return out;
          }
        });
  }

  private static ToolVersion version(ResultSet rs) throws SQLException {
    return new ToolVersion(
        rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5),
        PostgresEventStore.instant(rs, 6));
  }
}
