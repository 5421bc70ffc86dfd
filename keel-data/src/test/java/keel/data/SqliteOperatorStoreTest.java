package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The operator contract against the embedded SQLite store, plus how SQLite finds a token. */
class SqliteOperatorStoreTest extends OperatorStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }

  @Override
  protected Store reopenStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }

  @Test
  void theTokenLookup_usesThePrimaryKey_notAScan() throws Exception {
    operators.create("alice", List.of(), sha256("t1"), "operator:admin");
    StringBuilder plan = new StringBuilder();
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("keel.db"));
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(
            "EXPLAIN QUERY PLAN SELECT t.operator FROM operator_tokens t WHERE t.sha256 = '" + sha256("t1") + "' AND t.revoked_at IS NULL")) {
      while (rs.next()) {
        plan.append(rs.getString("detail")).append('\n');
      }
    }
    assertThat(plan.toString()).contains("SEARCH t USING PRIMARY KEY (sha256=?)").doesNotContain("SCAN");
  }
}
