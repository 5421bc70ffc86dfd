package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The audit store contract against a real PostgreSQL (a fresh schema per test), and two nodes (two
 * stores on one database) appending at once: their entries make one chain, never a fork.
 */
class PostgresAuditStoreTest extends AuditStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("audit");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  private PostgresConfig current;

  @Override
  protected Store openStore(Clock clock) {
    current = DATABASE.withSchema("t" + SCHEMAS.incrementAndGet());
    return Store.postgresql(current, "node-a", clock);
  }

  @Override
  protected Store reopenStore(Clock clock) {
    return Store.postgresql(current, "node-a", clock);
  }

  @Override
  protected void tamper(String sql) throws SQLException {
    try (Connection c = TestPostgres.connect(current);
        Statement st = c.createStatement()) {
      st.executeUpdate(sql);
    }
  }

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void twoNodesAppendingAtOnce_makeOneUnbrokenChain() throws Exception {
    int threadsPerNode = 6;
    int each = 30;
    try (Store other = Store.postgresql(current, "node-b", clock)) {
      List<AuditStore> nodes = List.of(audit, other.audit());
      CyclicBarrier start = new CyclicBarrier(2 * threadsPerNode);
      ExecutorService pool = Executors.newFixedThreadPool(2 * threadsPerNode);
      try {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < 2 * threadsPerNode; t++) {
          AuditStore node = nodes.get(t % 2);
          int thread = t;
          futures.add(pool.submit(() -> {
            start.await();
            for (int i = 0; i < each; i++) {
              node.append(List.of(call(thread * 1000 + i), call(thread * 1000 + i)));
            }
            return null;
          }));
        }
        for (Future<?> f : futures) {
          f.get();
        }
      } finally {
        pool.shutdownNow();
      }
      long expected = 2L * threadsPerNode * each * 2;
      for (AuditStore node : nodes) {
        assertThat(node.verify(Optional.empty())).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
            ok -> assertThat(ok.checked()).isEqualTo(expected));
      }
      // the two records of one append are adjacent: an append holds the head until it commits
      List<AuditEntry> all = new ArrayList<>();
      long after = 0;
      while (true) {
        List<AuditEntry> page = audit.query(AuditQuery.all(1000).withAfter(after));
        if (page.isEmpty()) {
          break;
        }
        all.addAll(page);
        after = page.getLast().seq();
      }
      for (int i = 0; i < all.size(); i += 2) {
        assertThat(all.get(i).record().detail()).isEqualTo(all.get(i + 1).record().detail());
      }
    }
  }
}
