package keel.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import keel.core.McpServerDescriptor;
import keel.core.Metadata;
import keel.data.Store;
import keel.testkit.mcp.LedgerServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Many sessions asking for the catalog of a server that is not started yet, at once (the first
 * moments of an approval storm): nobody deadlocks, every caller sees the tools.
 */
class GatewayConcurrencyTest {

  @TempDir Path dataDir;

  /**
   * Regression: catalogOf held catalogLock while asking an upstream whether it was startable (its
   * lock), while the upstream being started held its lock and handed its tool list to the catalog
   * (catalogLock): three sessions starting together hung for ever.
   */
  @Test
  void concurrentFirstCatalogs_andStatusReads_neverDeadlock() throws Exception {
    try (LedgerServer ledger = LedgerServer.start();
        Store store = Store.sqlite(dataDir, "node-a", Clock.systemUTC(), false)) {
      for (int round = 0; round < 8; round++) {
        try (Gateway gateway = new Gateway(store.toolCatalog(), dataDir, Map.of(), Clock.systemUTC(),
            GatewaySettings.defaults(), CatalogListener.NONE)) {
          gateway.configure(List.of(new McpServerDescriptor(new Metadata("ledger", "team-a", Map.of()),
              new McpServerDescriptor.Spec("streamable-http", List.of(), Optional.of(ledger.url()), Map.of(), Map.of(), Map.of(),
                  Optional.empty(), Optional.of(Duration.ofSeconds(10)), Optional.empty()))));
          CountDownLatch go = new CountDownLatch(1);
          try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Integer>> seen = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
              boolean status = i % 4 == 3;
              seen.add(pool.submit(() -> {
                go.await();
                return status ? gateway.servers().size() : gateway.catalog().size();
              }));
            }
            go.countDown();
            for (int i = 0; i < seen.size(); i++) {
              int n = seen.get(i).get(20, TimeUnit.SECONDS); // a deadlock times out here
              assertThat(n).as("caller %d", i).isPositive();
            }
          }
          assertThat(gateway.catalog()).extracting(CatalogEntry::catalogName).contains("ledger/post-entry", "ledger/read-entries");
        }
      }
    }
  }
}
