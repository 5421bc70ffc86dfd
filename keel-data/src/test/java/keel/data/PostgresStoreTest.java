package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import keel.core.BudgetKind;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What only the PostgreSQL store has: a server to reach, a shared database many nodes write to,
 * and text columns that cannot hold U+0000. The store contract runs in {@link PostgresEventStoreTest}.
 */
class PostgresStoreTest {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("store");
  private static int schemas;

  private final MutableClock clock = new MutableClock(Instant.parse("2025-03-01T10:00:00Z"));
  private PostgresConfig config;
  private Store store;

  @BeforeEach
  void open() {
    config = DATABASE.withSchema("s" + (++schemas));
    store = Store.postgresql(config, "node-a", clock);
  }

  @AfterEach
  void close() {
    store.close();
  }

  private void create(Store on, String id) {
    clock.advance(Duration.ofSeconds(1));
    on.events()
        .create(
            new NewSession(
                id, "helper", 1, "team-a", EventStoreContract.TRACE, Optional.empty(), id,
                List.of(pe(new SessionEvent.SessionStarted("helper", 1, "team-a", "user:ann", false))),
                SessionStatus.IDLE, Optional.empty()));
  }

  private static PendingEvent pe(SessionEvent e) {
    return new PendingEvent(e, "00f067aa0ba902b7");
  }

  private static SessionEvent received(String id, String text) {
    return new SessionEvent.InputReceived(id, text, "user:ann");
  }

  private static Append append(String id, long expected, SessionEvent... events) {
    return new Append(
        id, expected, java.util.Arrays.stream(events).map(PostgresStoreTest::pe).toList(), SessionStatus.RUNNABLE,
        List.of(), Optional.empty());
  }

  private long count(String sql) throws SQLException {
    try (Connection c = TestPostgres.connect(config);
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private void execute(String sql) throws SQLException {
    try (Connection c = TestPostgres.connect(config);
        Statement st = c.createStatement()) {
      st.executeUpdate(sql);
    }
  }

  @Test
  void describe_namesServerDatabaseAndUser_neverThePassword() {
    PostgresConfig withPassword = config.withPassword("s3cret-pw");
    try (Store s = Store.postgresql(withPassword, "node-a", clock)) {
      assertThat(s.describe()).isEqualTo(config.describe()).startsWith("postgresql://postgres@localhost:")
          .contains("/" + config.database()).doesNotContain("s3cret-pw");
      assertThat(s.healthy()).isTrue();
    }
    assertThat(withPassword.toString()).doesNotContain("s3cret-pw");
  }

  @Test
  @Timeout(30)
  void unreachableServer_isAClearError_namingWhereAndWhatToCheck() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    PostgresConfig nowhere = PostgresConfig.parse("postgresql://keel:pw-never-shown@127.0.0.1:" + port + "/keel");
    assertThatThrownBy(() -> Store.postgresql(nowhere, "node-a", clock))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("cannot connect to the PostgreSQL store postgresql://keel@127.0.0.1:" + port + "/keel")
        .hasMessageContaining("Check that the PostgreSQL server is running and reachable.")
        .hasMessageNotContaining("pw-never-shown");
  }

  @Test
  void passwordLogin_works_andAWrongPasswordIsAClearError_thatNeverShowsIt() {
    PostgresConfig login = TestPostgres.newDatabaseWithPasswordLogin("login", "right-horse-battery");
    try (Store s = Store.postgresql(login, "node-a", clock)) {
      create(s, "s1");
      assertThat(s.events().session("s1")).isPresent();
    }
    assertThatThrownBy(() -> Store.postgresql(login.withPassword("wrong-horse-battery"), "node-a", clock))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("cannot connect to the PostgreSQL store " + login.describe())
        .hasMessageContaining("Check the user and password of the store")
        .hasMessageNotContaining("horse-battery");
  }

  @Test
  void missingDatabase_isAClearError() {
    PostgresConfig missing = config.withDatabase("keel_no_such_database");
    assertThatThrownBy(() -> Store.postgresql(missing, "node-a", clock))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("keel_no_such_database")
        .hasMessageContaining("does not exist")
        .hasMessageContaining("CREATE DATABASE");
  }

  @Test
  void aSchemaHoldingSomethingElse_isRefused_andLeftAlone() throws Exception {
    PostgresConfig foreign = DATABASE.withSchema("foreign_app");
    try (Connection c = TestPostgres.connect(DATABASE);
        Statement st = c.createStatement()) {
      st.execute("CREATE SCHEMA foreign_app");
      st.execute("CREATE TABLE foreign_app.invoices (id int PRIMARY KEY)");
      st.execute("INSERT INTO foreign_app.invoices VALUES (7)");
    }
    assertThatThrownBy(() -> Store.postgresql(foreign, "node-a", clock))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("cannot migrate the PostgreSQL store")
        .hasMessageContaining("foreign_app");
    try (Connection c = TestPostgres.connect(DATABASE);
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) FROM foreign_app.invoices")) {
      rs.next();
      assertThat(rs.getLong(1)).isEqualTo(1);
    }
  }

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void twoNodes_racingOnOneSession_exactlyOneAppendWinsEachRound() throws Exception {
    create(store, "s1");
    try (Store other = Store.postgresql(config, "node-b", clock);
        ExecutorService pool = Executors.newFixedThreadPool(8)) {
      Store[] nodes = {store, other};
      int rounds = 30;
      for (int round = 0; round < rounds; round++) {
        long expected = 1 + round;
        CyclicBarrier go = new CyclicBarrier(8);
        List<Future<String>> attempts = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
          Store node = nodes[w % 2];
          String writer = "w" + w;
          attempts.add(
              pool.submit(
                  () -> {
                    go.await();
                    try {
                      node.events().append(append("s1", expected, received(writer, writer)));
                      return "won";
                    } catch (KeelException.Conflict e) {
                      return "conflict";
                    }
                  }));
        }
        List<String> outcomes = new ArrayList<>();
        for (Future<String> f : attempts) {
          outcomes.add(f.get());
        }
        assertThat(outcomes).as("round %d", round).containsOnlyOnce("won");
      }
      List<StoredEvent> log = other.events().events("s1", 0, 1000);
      assertThat(log).extracting(StoredEvent::seq)
          .containsExactlyElementsOf(IntStream.rangeClosed(1, rounds + 1).mapToObj(Long::valueOf).toList());
      assertThat(log).extracting(StoredEvent::node).containsOnly("node-a", "node-b");
      assertThat(store.events().session("s1").orElseThrow().lastSeq()).isEqualTo(rounds + 1);
    }
  }

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void twoNodes_reservingOneBudget_togetherNeverHoldMoreThanItsLimit_toTheLastUnit() throws Exception {
    // the dollar limit is ten of the smallest units the store keeps: exactly ten reservations fit
    BigDecimal unit = new BigDecimal("0.0000000001");
    List<BudgetStore.Claim> claims = List.of(
        new BudgetStore.Claim(BudgetKind.CALLS_PER_HOUR, new BigDecimal(1000), BigDecimal.ONE),
        new BudgetStore.Claim(BudgetKind.USD_PER_DAY, unit.multiply(BigDecimal.TEN), unit));
    java.util.concurrent.atomic.AtomicInteger ids = new java.util.concurrent.atomic.AtomicInteger();
    int workers = 8;
    try (Store other = Store.postgresql(config, "node-b", clock);
        ExecutorService pool = Executors.newFixedThreadPool(workers)) {
      Store[] nodes = {store, other};
      CyclicBarrier go = new CyclicBarrier(workers);
      List<Future<Integer>> granted = new ArrayList<>();
      for (int w = 0; w < workers; w++) {
        Store node = nodes[w % 2];
        granted.add(pool.submit(() -> {
          go.await();
          int n = 0;
          for (int i = 0; i < 5; i++) {
            BudgetStore.Outcome o = node.budgets().reserve(new BudgetStore.Request(
                "r" + ids.incrementAndGet(), "helper", "s1", clock.instant(), Duration.ofMinutes(5), claims));
            if (o instanceof BudgetStore.Outcome.Granted) {
              n++;
            }
          }
          return n;
        }));
      }
      int total = 0;
      for (Future<Integer> f : granted) {
        total += f.get();
      }
      assertThat(total).isEqualTo(10);
      assertThat(other.budgets().levels("helper", clock.instant()))
          .filteredOn(l -> l.kind() == BudgetKind.USD_PER_DAY)
          .singleElement()
          .satisfies(l -> assertThat(l.reserved()).isEqualByComparingTo(unit.multiply(BigDecimal.TEN)))
          .satisfies(l -> assertThat(l.used()).isZero());
      assertThat(store.budgets().levels("helper", clock.instant()))
          .filteredOn(l -> l.kind() == BudgetKind.CALLS_PER_HOUR)
          .singleElement()
          .satisfies(l -> assertThat(l.reserved()).isEqualByComparingTo(BigDecimal.TEN));
    }
  }

  @Test
  void upgradingFromTheKernelSchema_makesTheNewestRevisionActive_andTheOthersSuperseded() throws Exception {
    PostgresConfig old = DATABASE.withSchema("upgraded" + schemas);
    try (Connection c = TestPostgres.connect(old)) {
      org.flywaydb.core.Flyway.configure()
          .dataSource(old.jdbcUrl(), old.user().orElse(null), old.password().orElse(null))
          .schemas(old.schema()).defaultSchema(old.schema())
          .locations("classpath:keel/data/postgresql").target("1").load().migrate();
      try (Statement st = c.createStatement()) {
        st.execute("SET search_path TO " + old.schema());
        st.executeUpdate("INSERT INTO revisions VALUES ('Agent','a',1,'t','{\"v\":1}','op:ann','1970-01-01 00:00:01+00')");
        st.executeUpdate("INSERT INTO revisions VALUES ('Agent','a',2,'t','{\"v\":2}','op:ann','1970-01-01 00:00:02+00')");
        st.executeUpdate("INSERT INTO revisions VALUES ('Policy','p',1,'t','{}','op:ann','1970-01-01 00:00:01.5+00')");
      }
    }
    try (Store upgraded = Store.postgresql(old, "node-a", clock)) {
      InventoryStore inv = upgraded.inventory();
      assertThat(inv.history("Agent", "a"))
          .extracting(r -> r.number() + ":" + r.status().wireName() + ":" + r.activatedAt().orElseThrow().toEpochMilli())
          .containsExactly("1:superseded:1000", "2:active:2000");
      assertThat(inv.latest("Policy", "p")).isPresent();
      assertThat(inv.latest("Agent", "a").orElseThrow().review()).isEqualTo(InventoryStore.Review.NONE);
      assertThat(inv.latest("Agent", "a").orElseThrow().decision()).isEmpty();
    }
  }

  @Test
  void theSchema_refusesASecondActiveOrPendingRevision() throws Exception {
    store.inventory().apply(List.of(new InventoryStore.Change("Agent", "a", "t", "{}")), "op:ann");
    String insert = "INSERT INTO " + config.schema() + ".revisions (kind, name, number, owner, spec, applied_by, applied_at, status)"
        + " VALUES ('Agent','a',%d,'t','{\"x\":%d}','op:ann',now(),'%s')";
    assertThatThrownBy(() -> execute(insert.formatted(2, 1, "active")))
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("revisions_one_active");
    execute(insert.formatted(2, 1, "pending"));
    assertThatThrownBy(() -> execute(insert.formatted(3, 2, "pending")))
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("revisions_one_pending");
  }

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void nodesStartingTogether_migrateOnce_andAllOpen() throws Exception {
    PostgresConfig fresh = DATABASE.withSchema("together");
    int nodes = 4;
    CyclicBarrier go = new CyclicBarrier(nodes);
    try (ExecutorService pool = Executors.newFixedThreadPool(nodes)) {
      List<Future<Store>> opened = new ArrayList<>();
      for (int i = 0; i < nodes; i++) {
        String node = "node-" + i;
        opened.add(pool.submit(() -> {
          go.await();
          return Store.postgresql(fresh, node, clock);
        }));
      }
      for (Future<Store> f : opened) {
        try (Store s = f.get()) {
          assertThat(s.healthy()).isTrue();
        }
      }
    }
    try (Connection c = TestPostgres.connect(fresh);
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) FROM together.flyway_schema_history WHERE version = '1' AND success")) {
      rs.next();
      assertThat(rs.getLong(1)).isEqualTo(1);
    }
  }

  @Test
  void textWithNulCharacters_roundTrips_inInputsEventsAndNotes() {
    String nul = "before\u0000after é";
    create(store, "s1");
    Input in = new Input("s1", "in-1", "message", nul, "user:ann", clock.instant());
    assertThat(store.events().enqueue(in)).isEqualTo(in);
    assertThat(store.events().pendingInputs("s1")).containsExactly(in);
    store.events().append(
        new Append("s1", 1, List.of(pe(received("in-1", nul))), SessionStatus.RUNNABLE, List.of("in-1"), Optional.empty()));
    assertThat(store.events().events("s1", 1, 10).getFirst().event()).isEqualTo(received("in-1", nul));

    store.memory().put("helper", "", "k\u0000ey", nul);
    assertThat(store.memory().get("helper", "", "k\u0000ey")).map(MemoryStore.Note::value).contains(nul);
    assertThat(store.memory().get("helper", "", "k")).isEmpty();
    assertThat(store.memory().search("helper", "", "AFTER", 10)).extracting(MemoryStore.Note::value).containsExactly(nul);
    assertThat(store.memory().search("helper", "", "beforeafter", 10)).isEmpty();
  }

  @Test
  void onlyTheLatestSnapshotRow_isKept() throws Exception {
    create(store, "s1");
    SessionState state = SessionState.fold(store.events().events("s1", 0, 100));
    for (int i = 0; i < 5; i++) {
      long seq = state.lastSeq() + 1;
      SessionEvent e = received("in-" + i, "m");
      state.apply(new StoredEvent("s1", seq, clock.instant(), "node-a", EventStoreContract.TRACE, "00f067aa0ba902b7", e));
      store.events().append(
          new Append("s1", seq - 1, List.of(pe(e)), SessionStatus.RUNNABLE, List.of(), Optional.of(state.snapshot())));
    }
    assertThat(count("SELECT count(*) FROM snapshots")).isEqualTo(1);
    assertThat(count("SELECT seq FROM snapshots WHERE session_id = 's1'")).isEqualTo(6);
  }

  @Test
  void sameLargeText_isOneBlobRow() throws Exception {
    String text = "z".repeat(100_000);
    store.blobs().store(text);
    store.blobs().store(text);
    store.blobs().store(text + "!");
    assertThat(count("SELECT count(*) FROM blobs")).isEqualTo(2);
  }

  @Test
  void consumedInput_keepsItsIdButNotItsBody() throws Exception {
    create(store, "s1");
    store.events().enqueue(new Input("s1", "in-1", "message", "a long message that the event now holds", "user:ann", clock.instant()));
    store.events().append(
        new Append("s1", 1, List.of(pe(received("in-1", "a long message"))), SessionStatus.RUNNABLE, List.of("in-1"),
            Optional.empty()));
    assertThat(count("SELECT count(*) FROM inbox WHERE input_id = 'in-1' AND length(body) = 0 AND consumed_seq = 2"))
        .isEqualTo(1);
  }

  @Test
  void corruptEventRow_isReported_namingTheSessionAndSequence() throws Exception {
    create(store, "s1");
    store.events().append(append("s1", 1, received("in-1", "hi"), new SessionEvent.ModelCalled(1, "openai", "gpt-test")));
    execute("UPDATE events SET payload = '{\"step\": \"not a number\"' WHERE session_id = 's1' AND seq = 3");
    assertThatThrownBy(() -> store.events().events("s1", 0, 100))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("session s1")
        .hasMessageContaining("event 3")
        .hasMessageContaining("ModelCalled");
    assertThat(store.events().events("s1", 0, 2)).hasSize(2);
  }

  @Test
  void failedAppend_amongConcurrentOnes_doesNotUndoTheOthers() {
    create(store, "s1");
    create(store, "s2");
    for (int i = 0; i < 30; i++) {
      int n = i;
      Thread bad = Thread.ofVirtual().start(() -> {
        try {
          store.events().append(append("s1", 0, received("x" + n, "x")));
        } catch (KeelException.Conflict expected) {
          // the point of this thread
        }
      });
      store.events().append(append("s2", 1 + n, received("in-" + n, "m")));
      try {
        bad.join();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
    assertThat(store.events().events("s1", 0, 100)).hasSize(1);
    assertThat(store.events().events("s2", 0, 100)).hasSize(31);
  }

  @Test
  @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void serverRestart_failsWritesClearly_losesNothingAcknowledged_andTheStoreReconnects(@TempDir Path pgData)
      throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    EmbeddedPostgres.Builder server =
        EmbeddedPostgres.builder().setDataDirectory(pgData).setCleanDataDirectory(false).setPort(port)
            .setServerConfig("fsync", "on").setServerConfig("synchronous_commit", "on");
    EmbeddedPostgres pg = server.start();
    PostgresConfig own = PostgresConfig.parse("postgresql://postgres@localhost:" + port + "/postgres?pool_timeout=2");
    try (Store s = Store.postgresql(own, "node-a", clock)) {
      create(s, "s1");
      s.events().append(append("s1", 1, received("in-1", "acknowledged")));

      pg.close();
      assertThat(s.healthy()).isFalse();
      assertThatThrownBy(() -> s.events().append(append("s1", 2, received("in-2", "refused"))))
          .isInstanceOf(KeelException.Unavailable.class)
          .hasMessageContaining(own.describe());
      assertThatThrownBy(() -> s.events().session("s1")).isInstanceOf(KeelException.Unavailable.class);

      pg = server.start();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (!s.healthy() && System.nanoTime() < deadline) {
        Thread.sleep(100);
      }
      assertThat(s.healthy()).isTrue();
      assertThat(s.events().events("s1", 0, 10)).extracting(e -> e.event()).containsExactly(
          new SessionEvent.SessionStarted("helper", 1, "team-a", "user:ann", false), received("in-1", "acknowledged"));
      assertThat(s.events().append(append("s1", 2, received("in-2", "after the restart")))).isEqualTo(3);
    } finally {
      pg.close();
    }
  }
}
