package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.List;
import keel.core.KeelException;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The contract against the embedded SQLite store, plus what only SQLite has: files. */
class SqliteEventStoreTest extends EventStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }

  @Override
  protected Store reopenStore(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }

  private long count(String sql) throws SQLException {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("keel.db"));
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private void execute(String sql) throws SQLException {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("keel.db"));
        Statement st = c.createStatement()) {
      st.execute("PRAGMA busy_timeout=10000");
      st.executeUpdate(sql);
    }
  }

  @Test
  void describe_namesTheDatabaseFile() {
    assertThat(store.describe()).isEqualTo("sqlite:" + dir.resolve("keel.db").toAbsolutePath());
    assertThat(store.healthy()).isTrue();
  }

  @Test
  void store_opens_andReadsThroughItsReadOnlyPool() throws Exception {
    // regression: sqlite-jdbc refused Hikari's setReadOnly on open connections, so no store opened
    create("s1", "helper");
    assertThat(events.session("s1")).isPresent();
    restart();
    assertThat(events.session("s1")).isPresent();
  }

  @Test
  void failedOpen_canBeRetriedOnceTheFileIsFixed() throws Exception {
    Path other = Files.createDirectory(dir.resolve("other"));
    Path db = Files.writeString(other.resolve("keel.db"), "garbage".repeat(1000));
    assertThatThrownBy(() -> Store.sqlite(other, NODE, clock, true)).isInstanceOf(KeelException.Unavailable.class);
    Files.delete(db);
    try (Store fixed = Store.sqlite(other, NODE, clock, true)) {
      assertThat(fixed.healthy()).isTrue();
    }
  }

  @Test
  void onlyTheLatestSnapshotRow_isKept() throws Exception {
    create("s1", "helper");
    SessionState state = SessionState.fold(all("s1"));
    for (int i = 0; i < 5; i++) {
      long seq = state.lastSeq() + 1;
      var e = received("in-" + i, "m");
      state.apply(new StoredEvent("s1", seq, clock.instant(), NODE, TRACE, SPAN, e));
      events.append(withSnapshot("s1", seq - 1, SessionStatus.RUNNABLE, state.snapshot(), e));
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
    create("s1", "helper");
    events.enqueue(input("s1", "in-1", "a long message that the event now holds"));
    events.append(consuming("s1", 1, SessionStatus.RUNNABLE, List.of("in-1"), received("in-1", "a long message")));
    assertThat(count("SELECT count(*) FROM inbox WHERE input_id = 'in-1' AND body = '' AND consumed_seq = 2"))
        .isEqualTo(1);
  }

  @Test
  void openingAFileAsTheDataDirectory_isAClearError_namingThePath() throws Exception {
    Path file = Files.writeString(dir.resolve("not-a-dir"), "hello");
    assertThatThrownBy(() -> Store.sqlite(file, NODE, clock, true))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining(file.toString())
        .hasMessageContaining("not a directory");
    assertThat(Files.readString(file)).isEqualTo("hello");
  }

  @Test
  void openingAFileThatIsNotADatabase_isAClearError_andLeavesTheFileAlone() throws Exception {
    Path other = Files.createDirectory(dir.resolve("other"));
    Path db = Files.writeString(other.resolve("keel.db"), "this is not an SQLite database, it is a note".repeat(100));
    byte[] before = Files.readAllBytes(db);
    assertThatThrownBy(() -> Store.sqlite(other, NODE, clock, true))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining(db.toAbsolutePath().toString());
    assertThat(Files.readAllBytes(db)).isEqualTo(before);
  }

  @Test
  void corruptEventRow_isReported_namingTheSessionAndSequence() throws Exception {
    createRunning("s1", "helper");
    execute("UPDATE events SET payload = '{\"step\": \"not a number\"' WHERE session_id = 's1' AND seq = 3");
    assertThatThrownBy(() -> all("s1"))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("session s1")
        .hasMessageContaining("event 3")
        .hasMessageContaining("ModelCalled");
    // the rest of the log is still readable
    assertThat(events.events("s1", 0, 2)).hasSize(2);
  }

  @Test
  void failedWrite_inABatch_doesNotUndoTheOthers() throws Exception {
    // a conflicting append and a good one submitted together: the good one is stored
    create("s1", "helper");
    create("s2", "helper");
    for (int i = 0; i < 50; i++) {
      int n = i;
      Thread bad =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      events.append(append("s1", 0, SessionStatus.RUNNABLE, received("x" + n, "x")));
                    } catch (KeelException.Conflict expected) {
                      // the point of this thread
                    }
                  });
      events.append(append("s2", 1 + n, SessionStatus.RUNNABLE, received("in-" + n, "m")));
      bad.join();
    }
    assertThat(all("s1")).hasSize(1);
    assertThat(all("s2")).hasSize(51);
  }

  @Test
  void upgradingFromTheKernelSchema_makesTheNewestRevisionActive_andTheOthersSuperseded() throws Exception {
    Path old = Files.createDirectory(dir.resolve("old"));
    String url = "jdbc:sqlite:" + old.resolve("keel.db");
    org.flywaydb.core.Flyway.configure().dataSource(url, null, null).locations("classpath:keel/data/sqlite").target("1")
        .load().migrate();
    try (Connection c = DriverManager.getConnection(url);
        Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO revisions VALUES ('Agent','a',1,'t','{\"v\":1}','op:ann',1000)");
      st.executeUpdate("INSERT INTO revisions VALUES ('Agent','a',2,'t','{\"v\":2}','op:ann',2000)");
      st.executeUpdate("INSERT INTO revisions VALUES ('Policy','p',1,'t','{}','op:ann',1500)");
    }
    try (Store upgraded = Store.sqlite(old, NODE, clock, true)) {
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
    assertThatThrownBy(() -> execute(
            "INSERT INTO revisions (kind, name, number, owner, spec, applied_by, applied_at, status)"
                + " VALUES ('Agent','a',2,'t','{\"x\":1}','op:ann',0,'active')"))
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("UNIQUE");
    execute("INSERT INTO revisions (kind, name, number, owner, spec, applied_by, applied_at, status)"
        + " VALUES ('Agent','a',2,'t','{\"x\":1}','op:ann',0,'pending')");
    assertThatThrownBy(() -> execute(
            "INSERT INTO revisions (kind, name, number, owner, spec, applied_by, applied_at, status)"
                + " VALUES ('Agent','a',3,'t','{\"x\":2}','op:ann',0,'pending')"))
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("UNIQUE");
  }
}
