package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import keel.core.KeelException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class GroupCommitWriterTest {

  private static final String INSERT = "INSERT INTO t (x) VALUES (?)";

  @TempDir Path dir;
  private String url;
  private GroupCommitWriter writer;

  @BeforeEach
  void open() throws SQLException {
    url = "jdbc:sqlite:" + dir.resolve("w.db");
    Connection c = DriverManager.getConnection(url);
    try (Statement st = c.createStatement()) {
      st.execute("PRAGMA journal_mode=WAL");
      st.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    }
    writer = new GroupCommitWriter("test", c);
  }

  @AfterEach
  void close() {
    writer.close();
  }

  private List<Long> rows() throws SQLException {
    try (Connection c = DriverManager.getConnection(url);
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT x FROM t ORDER BY x")) {
      List<Long> out = new ArrayList<>();
      while (rs.next()) {
        out.add(rs.getLong(1));
      }
      return out;
    }
  }

  private Void insert(GroupCommitWriter.Tx tx, long x) throws SQLException {
    PreparedStatement ps = tx.prepare(INSERT);
    ps.setLong(1, x);
    ps.executeUpdate();
    return null;
  }

  @Test
  void committedWrites_areVisible_andResultsReturned() throws SQLException {
    Void none = writer.execute(tx -> insert(tx, 1));
    Integer answer = writer.execute(tx -> 42);
    assertThat(none).isNull();
    assertThat(answer).isEqualTo(42);
    assertThat(rows()).containsExactly(1L);
  }

  @Test
  void failedOp_isRolledBack_andItsErrorReachesTheCaller() throws SQLException {
    assertThatThrownBy(
            () ->
                writer.execute(
                    tx -> {
                      insert(tx, 1);
                      throw new KeelException.Conflict("no");
                    }))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessage("no");
    writer.execute(tx -> insert(tx, 2));
    assertThat(rows()).containsExactly(2L);
  }

  @Test
  void sqlError_isUnavailable_namingTheStore() {
    writer.execute(tx -> insert(tx, 1));
    assertThatThrownBy(() -> writer.execute(tx -> insert(tx, 1)))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("could not write to test (nothing of this write was stored)")
        .hasMessageContaining("UNIQUE");
  }

  @Test
  void opThatFailedAfterBatchingRows_leavesNoRowsForTheNextOp() throws SQLException {
    // regression: the cached statement kept the failed op's batch, and the next op wrote it
    assertThatThrownBy(
            () ->
                writer.execute(
                    tx -> {
                      PreparedStatement ps = tx.prepare(INSERT);
                      ps.setLong(1, 666);
                      ps.addBatch();
                      throw new IllegalStateException("encoding failed half way");
                    }))
        .isInstanceOf(KeelException.Unavailable.class);
    writer.execute(
        tx -> {
          PreparedStatement ps = tx.prepare(INSERT);
          ps.setLong(1, 7);
          ps.addBatch();
          ps.executeBatch();
          return null;
        });
    assertThat(rows()).containsExactly(7L);
  }

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void opThrowingAnError_failsOnlyThatCall_andTheWriterGoesOn() throws SQLException {
    // regression: an Error escaped the writer loop and killed its thread; every later call hung
    assertThatThrownBy(
            () ->
                writer.execute(
                    tx -> {
                      throw new StackOverflowError("deep");
                    }))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasRootCauseInstanceOf(StackOverflowError.class);
    writer.execute(tx -> insert(tx, 3));
    assertThat(rows()).containsExactly(3L);
  }

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void closing_whileManyThreadsWrite_answersEveryCall() throws Exception {
    // regression: a call enqueued just as the writer stopped waited for an answer forever
    for (int round = 0; round < 20; round++) {
      GroupCommitWriter w = writer;
      int threads = 16;
      CountDownLatch running = new CountDownLatch(threads);
      ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
      AtomicLong next = new AtomicLong(round * 1_000_000L);
      List<Thread> ts = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        ts.add(
            Thread.ofPlatform()
                .start(
                    () -> {
                      running.countDown();
                      try {
                        while (true) {
                          long x = next.incrementAndGet();
                          w.execute(tx -> insert(tx, x));
                        }
                      } catch (KeelException.Unavailable closed) {
                        if (!closed.getMessage().contains("closed")) {
                          unexpected.add(closed);
                        }
                      } catch (Throwable t) {
                        unexpected.add(t);
                      }
                    }));
      }
      running.await();
      Thread.sleep(5);
      w.close();
      for (Thread t : ts) {
        assertThat(t.join(java.time.Duration.ofSeconds(20))).as("a writer thread finished").isTrue();
      }
      assertThat(unexpected).isEmpty();
      writer = new GroupCommitWriter("test", DriverManager.getConnection(url));
    }
  }
}
