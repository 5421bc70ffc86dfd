package keel.data;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;

/** The audit store contract against the embedded SQLite store; tampering edits the real file. */
class SqliteAuditStoreTest extends AuditStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }

  @Override
  protected Store reopenStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }

  @Override
  protected void tamper(String sql) throws SQLException {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("keel.db"));
        Statement st = c.createStatement()) {
      st.execute("PRAGMA busy_timeout=10000");
      st.executeUpdate(sql);
    }
  }
}
