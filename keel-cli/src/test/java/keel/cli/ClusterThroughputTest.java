package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import keel.core.EventCodec;
import keel.data.PostgresConfig;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Durable steps per second on PostgreSQL with 1, 2 and 3 real {@code keel serve} processes on one
 * database (a fresh database per count): sessions started round-robin over the nodes, each a
 * number of tool steps (a scripted model call and a {@code time_now} call per step, every event
 * committed before the next step), until every session is idle. Checks that every session finished
 * with all its steps, each log written by one node at a time (epochs grow stint by stint), and
 * prints the throughput ({@code cluster throughput:} lines in the test's output; BENCHMARKS.md).
 * The size is small by default so the suite stays fast; {@code -Dkeel.cluster.sessions=N} and
 * {@code -Dkeel.cluster.steps=K} make it larger for the benchmark figures.
 */
class ClusterThroughputTest {

  static final int SESSIONS = Integer.getInteger("keel.cluster.sessions", 60);
  static final int STEPS = Integer.getInteger("keel.cluster.steps", 5);

  @TempDir Path dir;
  final List<ServerProcess> nodes = new ArrayList<>();

  static String agent(int steps) {
    StringBuilder turns = new StringBuilder();
    for (int i = 0; i < steps; i++) {
      turns.append("                - call: [{tool: time_now}]\n");
    }
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: stepper, owner: test}
        spec:
          instructions: Step.
          model:
            provider: scripted
            name: steps
            script:
              - turns:
        %s                - say: "done"
          tools: [internal://time]
        """.formatted(turns);
  }

  @AfterEach
  void stop() {
    for (ServerProcess n : nodes) {
      n.close();
    }
  }

  @Test
  @Timeout(value = 6, unit = TimeUnit.MINUTES)
  void durableSteps_onOneTwoAndThreeNodes_allFinish_withOneWriterAtATime() throws Exception {
    for (int count = 1; count <= 3; count++) {
      run(count);
      for (ServerProcess n : nodes) {
        n.close();
      }
      nodes.clear();
    }
  }

  private void run(int count) throws Exception {
    PostgresConfig db = TestPostgres.newDatabase("throughput" + count);
    Map<String, String> env = new HashMap<>();
    env.put("KEEL_STORE", TestPostgres.url(db));
    for (int i = 0; i < count; i++) {
      Path data = Files.createDirectories(dir.resolve("n" + count + "-" + i));
      nodes.add(new ServerProcess(data, dir.resolve("n" + count + "-" + i + ".log"), env, List.of()));
    }
    nodes.getFirst().start();
    for (int i = 1; i < count; i++) {
      Files.copy(dir.resolve("n" + count + "-0/admin.token"), dir.resolve("n" + count + "-" + i + "/admin.token"));
    }
    try (ExecutorService starts = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 1; i < count; i++) {
        ServerProcess n = nodes.get(i);
        starts.submit(() -> n.start());
      }
    }
    HttpResponse<String> applied =
        nodes.getFirst().post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", agent(STEPS)).toString(), null);
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);

    long began = System.nanoTime();
    List<String> ids = new ArrayList<>();
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<String>> started = new ArrayList<>();
      java.util.concurrent.Semaphore inFlight = new java.util.concurrent.Semaphore(64);
      for (int s = 0; s < SESSIONS; s++) {
        ServerProcess via = nodes.get(s % count);
        String body = EventCodec.mapper().createObjectNode().put("agent", "stepper").put("message", "go " + s).toString();
        String key = "start-" + s;
        started.add(clients.submit(() -> {
          // as many requests in flight as a client pool would have; a reset connection is retried
          // with the same idempotency key
          inFlight.acquire();
          try {
            for (int attempt = 1; ; attempt++) {
              try {
                HttpResponse<String> r = via.post("/v1/sessions", body, key);
                assertThat(r.statusCode()).as(r.body()).isIn(200, 201, 202);
                return EventCodec.mapper().readTree(r.body()).path("id").asString();
              } catch (java.io.IOException e) {
                if (attempt == 5) {
                  throw e;
                }
                Thread.sleep(100L * attempt);
              }
            }
          } finally {
            inFlight.release();
          }
        }));
      }
      for (Future<String> f : started) {
        ids.add(f.get(60, TimeUnit.SECONDS));
      }
    }
    long expectedSteps = (long) SESSIONS * (STEPS + 1);
    long steps = 0;
    try (Connection c = TestPostgres.connect(db);
        Statement st = c.createStatement()) {
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
      while (System.nanoTime() < deadline) {
        try (ResultSet rs = st.executeQuery("SELECT count(*) FROM sessions WHERE status = 'idle' AND pending_inputs = 0")) {
          rs.next();
          if (rs.getLong(1) == SESSIONS) {
            break;
          }
        }
        Thread.sleep(20);
      }
      long took = System.nanoTime() - began;
      try (ResultSet rs = st.executeQuery("SELECT count(*) FROM events WHERE type = 'ModelResponded'")) {
        rs.next();
        steps = rs.getLong(1);
      }
      assertThat(steps).as("model steps of %d sessions, all idle", SESSIONS).isEqualTo(expectedSteps);
      // one writer at a time: within each session, the epochs of consecutive stints only grow
      try (ResultSet rs = st.executeQuery(
          "SELECT count(*) FROM (SELECT epoch, lag(epoch) OVER (PARTITION BY session_id ORDER BY seq) AS prev FROM events) e"
              + " WHERE e.prev IS NOT NULL AND e.epoch < e.prev")) {
        rs.next();
        assertThat(rs.getLong(1)).as("events written under an older epoch after a newer one").isZero();
      }
      try (ResultSet rs = st.executeQuery("SELECT count(DISTINCT node) FROM events WHERE epoch > 0")) {
        rs.next();
        assertThat(rs.getLong(1)).as("nodes that ran steps").isEqualTo(count);
      }
      double seconds = took / 1e9;
      System.out.printf("cluster throughput: %d node(s), %d sessions x %d steps: %d durable steps in %.2f s = %.0f steps/s%n",
          count, SESSIONS, STEPS + 1, steps, seconds, steps / seconds);
    }
    assertThat(ids).hasSize(SESSIONS).doesNotContain("");
  }
}
