package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Clock;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The lease store contract, unchanged, against a real PostgreSQL: a fresh schema for every test,
 * and the second node's store a separate pool on the same schema.
 */
class PostgresLeaseStoreTest extends LeaseStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("leases");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  private PostgresConfig current;

  @Override
  protected Store openStore(String node, Clock clock) {
    current = DATABASE.withSchema("t" + SCHEMAS.incrementAndGet());
    return Store.postgresql(current, node, clock);
  }

  @Override
  protected Store openPeer(String node, Clock clock) {
    return Store.postgresql(current, node, clock);
  }

  @Test
  @Timeout(60)
  void claimRunnable_skipsASessionRowAnotherTransactionHoldsLocked_insteadOfWaitingForIt() throws Exception {
    create("w1", Optional.of("in-1"));
    create("w2", Optional.of("in-1"));
    try (Connection other = TestPostgres.connect(current)) {
      other.setAutoCommit(false);
      try (Statement st = other.createStatement()) {
        // another node in the middle of claiming (or appending to) w1
        st.execute("SELECT 1 FROM sessions WHERE id = 'w1' FOR UPDATE");
      }
      assertThat(leases.claimRunnable("node-a", 10, TTL)).extracting(LeaseStore.Lease::sessionId).containsExactly("w2");
      other.rollback();
    }
    assertThat(leases.claimRunnable("node-b", 10, TTL)).extracting(LeaseStore.Lease::sessionId).containsExactly("w1");
  }
}
