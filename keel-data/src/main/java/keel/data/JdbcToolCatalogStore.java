package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.List;

/**
 * Tool versions, one implementation for SQLite and PostgreSQL. {@link #record} reads and inserts in
 * one write transaction: on SQLite the single writer makes it atomic; on PostgreSQL it first takes
 * a transaction-scoped advisory lock on the tool, so nodes that see a new schema together agree on
 * its number. Thread-safe.
 */
final class JdbcToolCatalogStore implements ToolCatalogStore {

  private static final String COLUMNS = "server, tool, version, hash, schema, recorded_at";

  private final JdbcBudgetStore.Transactions transactions;
  /** PostgreSQL: an advisory lock per tool, and {@code recorded_at} as a timestamp (epoch millis on SQLite). */
  private final boolean postgres;

  JdbcToolCatalogStore(JdbcBudgetStore.Transactions transactions, boolean postgres) {
    this.transactions = transactions;
    this.postgres = postgres;
  }

  @Override
  public ToolVersion record(String server, String tool, String hash, String schema, Instant now) {
    return transactions.write("a version of tool " + server + "/" + tool, tx -> {
      if (postgres) {
        PreparedStatement lock = tx.prepare("SELECT pg_advisory_xact_lock(hashtextextended(?, 11))");
        Jdbc.bind(lock, server + "/" + tool).executeQuery().close();
      }
      PreparedStatement sel =
          tx.prepare("SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? AND hash = ?");
      List<ToolVersion> known = Jdbc.list(Jdbc.bind(sel, server, tool, hash), this::version);
      if (!known.isEmpty()) {
        return known.getFirst();
      }
      PreparedStatement max =
          tx.prepare("SELECT COALESCE(MAX(version), 0) FROM mcp_tool_versions WHERE server = ? AND tool = ?");
      int next = Jdbc.list(Jdbc.bind(max, server, tool), rs -> rs.getInt(1)).getFirst() + 1;
      long millis = now.toEpochMilli();
      tx.update("INSERT INTO mcp_tool_versions (" + COLUMNS + ") VALUES (?,?,?,?,?,?)",
          server, tool, next, hash, schema, postgres ? PostgresEventStore.time(millis) : millis);
      return new ToolVersion(server, tool, next, hash, schema, Instant.ofEpochMilli(millis));
    });
  }

  @Override
  public List<ToolVersion> versions(String server, String tool) {
    return transactions.read("the versions of tool " + server + "/" + tool, c -> {
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT " + COLUMNS + " FROM mcp_tool_versions WHERE server = ? AND tool = ? ORDER BY version")) {
        return Jdbc.list(Jdbc.bind(ps, server, tool), this::version);
      }
    });
  }

  private ToolVersion version(ResultSet rs) throws SQLException {
    return new ToolVersion(
        rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5),
        postgres ? PostgresEventStore.instant(rs, 6) : Instant.ofEpochMilli(rs.getLong(6)));
  }
}
