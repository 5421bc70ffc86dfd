package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.data.ToolCatalogStore.ToolVersion;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The contract of {@link ToolCatalogStore}, run against every store implementation: versions
 * numbered in the order schemas are first seen, a known schema keeps its number, racing writers
 * agree, and versions survive a restart.
 */
public abstract class ToolCatalogStoreContract {

  protected static final Instant START = Instant.parse("2025-03-01T10:00:00Z");
  protected final MutableClock clock = new MutableClock(START);
  protected Store store;

  /** Opens a new, empty store. */
  protected abstract Store openStore(Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed. */
  protected abstract Store reopenStore(Clock clock);

  @BeforeEach
  final void open() {
    store = openStore(clock);
  }

  @AfterEach
  final void close() {
    store.close();
  }

  @Test
  void record_firstSchema_isVersionOne() {
    ToolVersion v = store.toolCatalog().record("fs", "read_file", "sha256:a", "{\"a\":1}", clock.instant());

    assertThat(v.version()).isEqualTo(1);
    assertThat(v.schema()).isEqualTo("{\"a\":1}");
    assertThat(store.toolCatalog().versions("fs", "read_file")).containsExactly(v);
    assertThat(store.toolCatalog().versions("fs", "other")).isEmpty();
    assertThat(store.toolCatalog().latest("fs", "other")).isEmpty();
  }

  @Test
  void record_changedSchema_isTheNextVersion_andAKnownSchemaKeepsItsNumber() {
    ToolCatalogStore c = store.toolCatalog();
    c.record("fs", "read_file", "sha256:a", "A", clock.instant());
    clock.advance(Duration.ofMinutes(1));
    ToolVersion two = c.record("fs", "read_file", "sha256:b", "B", clock.instant());
    clock.advance(Duration.ofMinutes(1));
    ToolVersion back = c.record("fs", "read_file", "sha256:a", "A", clock.instant());
    ToolVersion again = c.record("fs", "read_file", "sha256:b", "B", clock.instant());

    assertThat(two.version()).isEqualTo(2);
    assertThat(back.version()).isEqualTo(1);
    assertThat(back.recordedAt()).isEqualTo(START);
    assertThat(again).isEqualTo(two);
    assertThat(c.versions("fs", "read_file")).extracting(ToolVersion::version).containsExactly(1, 2);
    assertThat(c.latest("fs", "read_file")).contains(two);
    // versions are per tool and per server
    assertThat(c.record("other", "read_file", "sha256:b", "B", clock.instant()).version()).isEqualTo(1);
  }

  @Test
  void record_racingWriters_agreeOnOneVersion() throws Exception {
    int n = 8;
    CyclicBarrier barrier = new CyclicBarrier(n);
    List<Future<ToolVersion>> futures = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(n)) {
      for (int i = 0; i < n; i++) {
        String hash = "sha256:" + (i % 2);
        futures.add(pool.submit(() -> {
          barrier.await();
          return store.toolCatalog().record("srv", "t", hash, hash, clock.instant());
        }));
      }
      List<ToolVersion> got = new ArrayList<>();
      for (Future<ToolVersion> f : futures) {
        got.add(f.get());
      }
      assertThat(got).extracting(ToolVersion::version).containsOnly(1, 2);
      assertThat(got.stream().map(v -> v.hash() + "=" + v.version()).distinct()).hasSize(2);
    }
    assertThat(store.toolCatalog().versions("srv", "t")).hasSize(2);
  }

  @Test
  void versions_surviveARestart() {
    ToolVersion v = store.toolCatalog().record("fs", "read_file", "sha256:a", "A", clock.instant());
    store.close();
    store = reopenStore(clock);

    assertThat(store.toolCatalog().versions("fs", "read_file")).containsExactly(v);
  }
}
