package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Timestamp;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.stream.Collectors;
import keel.core.EventCodec;
import keel.data.LeaseStore;
import keel.data.PostgresConfig;
import keel.data.Store;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Three real {@code keel serve} processes on one PostgreSQL: a burst of 1,000 requests over 250
 * sessions spread over the nodes, one node killed with SIGKILL mid-burst and another paused with
 * SIGSTOP past its lease time to live, then resumed. Checks that every acknowledged input was
 * processed exactly once, that no session ever had two writers at once (the log's stints: epochs
 * only grow, sequence ranges follow each other), that no non-idempotent call ran twice, and that
 * every session finished; measures the time from the kill to the last orphaned session resuming.
 */
class ClusterFailoverTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: burst, owner: test}
      spec:
        instructions: Record the effect, answer.
        model:
          provider: scripted
          name: burst-script
          script:
            - turns:
                - call: [{tool: effect_record, args: {note: "{{input}}"}}]
                - say: "done: {{input}}"
        tools: [internal://effects]
      """;

  static final int SESSIONS = 250;
  static final int MESSAGES_PER_SESSION = 4;
  static final Duration TTL = Duration.ofSeconds(4);

  @TempDir Path dir;
  final List<ServerProcess> nodes = new ArrayList<>();

  @AfterEach
  void stop() {
    for (ServerProcess n : nodes) {
      n.close();
    }
  }

  @Test
  @Timeout(value = 4, unit = TimeUnit.MINUTES)
  void burstOverThreeNodes_withOneKilledAndOnePaused_processesEveryInputOnce_withOneWriterAtATime() throws Exception {
    PostgresConfig db = TestPostgres.newDatabase("cluster");
    Path effects = dir.resolve("effects.log");
    Map<String, String> env = new HashMap<>();
    env.put("KEEL_STORE", TestPostgres.url(db));
    env.put("KEEL_LEASE_TTL", TTL.toSeconds() + "s");
    env.put("KEEL_TEST_EFFECTS_FILE", effects.toString());
    for (int i = 0; i < 3; i++) {
      Path data = dir.resolve("node" + i);
      Files.createDirectories(data);
      nodes.add(new ServerProcess(data, dir.resolve("node" + i + ".log"), env, List.of()));
    }
    nodes.get(0).start();
    // one admin token for the cluster: the others start with the first one's
    for (int i = 1; i < 3; i++) {
      Files.copy(dir.resolve("node0/admin.token"), dir.resolve("node" + i + "/admin.token"));
    }
    try (ExecutorService starts = Executors.newVirtualThreadPerTaskExecutor()) {
      starts.submit(() -> nodes.get(1).start());
      starts.submit(() -> nodes.get(2).start());
    }
    for (ServerProcess n : nodes) {
      assertThat(n.get("/readyz").path("status").asString()).isEqualTo("ready");
    }
    HttpResponse<String> applied =
        nodes.get(0).post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", AGENT).toString(), null);
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);

    ServerProcess killed = nodes.get(1);
    ServerProcess paused = nodes.get(2);
    String killedNode = "-" + killed.pid();

    // the burst: every session's client sends its messages one after another (each acknowledged
    // before the next), to the nodes in turn; a request a dead or paused node does not answer is
    // sent again, with the same idempotency key, to the next node
    Map<Integer, String> sessionIds = new ConcurrentHashMap<>();
    AtomicInteger acknowledged = new AtomicInteger();
    List<Long> admissionMillis = java.util.Collections.synchronizedList(new ArrayList<>());
    ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
    List<Future<?>> work = new ArrayList<>();
    long burstStarted = System.nanoTime();
    for (int s = 0; s < SESSIONS; s++) {
      int session = s;
      work.add(clients.submit(() -> {
        for (int m = 0; m < MESSAGES_PER_SESSION; m++) {
          String text = "s" + session + "-m" + m;
          int node = (session + m) % 3;
          long began = System.nanoTime();
          if (m == 0) {
            String body = EventCodec.mapper().createObjectNode().put("agent", "burst").put("message", text).toString();
            sessionIds.put(session, postUntilAcknowledged(node, "/v1/sessions", body, "start-" + session).get("id").asString());
          } else {
            String body = EventCodec.mapper().createObjectNode().put("message", text).toString();
            postUntilAcknowledged(node, "/v1/sessions/" + sessionIds.get(session) + "/messages", body, "msg-" + session + "-" + m);
          }
          admissionMillis.add((System.nanoTime() - began) / 1_000_000);
          acknowledged.incrementAndGet();
        }
        return null;
      }));
    }
    int total = SESSIONS * MESSAGES_PER_SESSION;

    // the kill, mid-burst; the sessions whose leases the dead node held are its orphans
    awaitAcknowledged(acknowledged, total / 3);
    Map<String, Long> orphans;
    Instant killedAt;
    try (Connection c = TestPostgres.connect(db)) {
      killed.kill();
      killedAt = Instant.now();
      orphans = leasedBy(c, killedNode);
    }
    // the pause, past the lease time to live, then the resumption
    awaitAcknowledged(acknowledged, total / 2);
    paused.signal("STOP");
    Thread.sleep(TTL.toMillis() + 1500);
    paused.signal("CONT");

    for (Future<?> f : work) {
      f.get(2, TimeUnit.MINUTES);
    }
    long burstMillis = (System.nanoTime() - burstStarted) / 1_000_000;
    assertThat(acknowledged.get()).isEqualTo(total);
    int resolved = settle();

    // every acknowledged input processed once, in order, with one answer each; no effect twice
    Map<String, Long> effectRuns = Files.readAllLines(effects).stream().filter(l -> !l.isBlank())
        .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
    assertThat(effectRuns.values()).as("no non-idempotent call ran twice").allMatch(n -> n == 1L);
    ServerProcess reader = nodes.get(0);
    for (int s = 0; s < SESSIONS; s++) {
      String id = sessionIds.get(s);
      JsonNode events = reader.get("/v1/sessions/" + id + "/events?limit=10000").get("events");
      List<String> inputs = new ArrayList<>();
      List<String> answers = new ArrayList<>();
      for (int i = 0; i < events.size(); i++) {
        JsonNode e = events.get(i);
        assertThat(e.get("seq").asLong()).as("session %s event %d", id, i).isEqualTo(i + 1);
        JsonNode d = e.get("data");
        switch (e.get("type").asString()) {
          case "InputReceived" -> inputs.add(d.get("text").asString());
          case "ModelResponded" -> {
            if (d.get("toolCalls").isEmpty()) {
              answers.add(d.get("text").asString());
            }
          }
          default -> {}
        }
      }
      List<String> expected = new ArrayList<>();
      for (int m = 0; m < MESSAGES_PER_SESSION; m++) {
        expected.add("s" + s + "-m" + m);
      }
      assertThat(inputs).as("inputs of session %s", id).containsExactlyElementsOf(expected);
      assertThat(answers).as("answers of session %s", id).containsExactlyElementsOf(expected.stream().map(t -> "done: " + t).toList());
    }

    // one writer at a time: in every session's log, runs of one epoch each, epochs only growing
    int takeovers = 0;
    try (Store store = Store.postgresql(db, "checker", Clock.systemUTC())) {
      for (String id : sessionIds.values()) {
        List<LeaseStore.Stint> stints = store.leases().writers(id);
        for (int k = 1; k < stints.size(); k++) {
          LeaseStore.Stint before = stints.get(k - 1);
          LeaseStore.Stint after = stints.get(k);
          assertThat(after.epoch()).as("session %s: stint %s after %s", id, after, before).isGreaterThan(before.epoch());
          assertThat(after.firstSeq()).as("session %s", id).isEqualTo(before.lastSeq() + 1);
          if (!after.node().equals(before.node()) && before.node().endsWith(killedNode)) {
            takeovers++;
          }
        }
      }
    }

    // from the kill to the last orphan resuming: its first event written by another node
    long failoverMillis = 0;
    try (Connection c = TestPostgres.connect(db)) {
      for (String id : orphans.keySet()) {
        try (PreparedStatement st = c.prepareStatement(
            "SELECT min(at) FROM events WHERE session_id = ? AND at >= ? AND node NOT LIKE ?")) {
          st.setString(1, id);
          st.setTimestamp(2, Timestamp.from(killedAt));
          st.setString(3, "%" + killedNode);
          try (ResultSet rs = st.executeQuery()) {
            rs.next();
            Timestamp t = rs.getTimestamp(1);
            if (t != null) {
              failoverMillis = Math.max(failoverMillis, Duration.between(killedAt, t.toInstant()).toMillis());
            }
          }
        }
      }
    }
    List<Long> sorted = admissionMillis.stream().sorted().toList();
    long p99 = sorted.get((int) Math.ceil(sorted.size() * 0.99) - 1);
    System.out.printf(
        "cluster failover: %d inputs over %d sessions on 3 nodes in %d ms; admission p50 %d ms, p99 %d ms; %d orphans of the"
            + " killed node, last resumed %d ms after the kill (lease TTL %d ms); %d takeovers; %d outcomes resolved by a human%n",
        total, SESSIONS, burstMillis, sorted.get(sorted.size() / 2), p99, orphans.size(), failoverMillis, TTL.toMillis(),
        takeovers, resolved);
    // the target is the TTL plus a second; on a 2-core machine running three nodes, PostgreSQL and
    // the clients at once the measured time is reported, and bounded here
    assertThat(failoverMillis).as("orphans resume after their leases expire").isLessThan(TTL.toMillis() + 20_000);
    clients.shutdownNow();
  }

  /** Sessions whose lease a node holds now, with their epochs. */
  private static Map<String, Long> leasedBy(Connection c, String nodeSuffix) throws Exception {
    Map<String, Long> held = new HashMap<>();
    try (PreparedStatement st = c.prepareStatement("SELECT id, lease_epoch FROM sessions WHERE lease_node LIKE ?")) {
      st.setString(1, "%" + nodeSuffix);
      try (ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          held.put(rs.getString(1), rs.getLong(2));
        }
      }
    }
    return held;
  }

  private static void awaitAcknowledged(AtomicInteger acknowledged, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (acknowledged.get() < n && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
  }

  /** A human resolves the calls whose outcome the kill made unknown, until every session is idle. */
  private int settle() throws Exception {
    int resolved = 0;
    ServerProcess n = nodes.get(0);
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    while (System.nanoTime() < deadline) {
      JsonNode sessions = n.get("/v1/sessions?limit=1000").get("sessions");
      boolean allIdle = true;
      for (JsonNode s : sessions) {
        String status = s.get("status").asString();
        if (status.equals("awaiting_approval")) {
          for (JsonNode p : n.get("/v1/sessions/" + s.get("id").asString()).get("pending_tool_calls")) {
            if (p.get("state").asString().equals("outcome_unknown")) {
              String body = EventCodec.mapper().createObjectNode()
                  .put("call_id", p.get("call_id").asString()).put("resolution", "succeeded").toString();
              HttpResponse<String> r = n.post("/v1/sessions/" + s.get("id").asString() + "/resolve", body, null);
              assertThat(r.statusCode() / 100).as(r.body()).isEqualTo(2);
              resolved++;
            }
          }
        }
        if (!status.equals("idle") || s.get("pending_inputs").asInt() > 0) {
          allIdle = false;
        }
      }
      if (allIdle && sessions.size() == SESSIONS) {
        return resolved;
      }
      Thread.sleep(200);
    }
    throw new AssertionError("sessions did not all settle: " + n.get("/v1/sessions?limit=1000"));
  }

  private JsonNode postUntilAcknowledged(int first, String path, String body, String key) {
    int node = first;
    while (true) {
      try {
        HttpResponse<String> r = nodes.get(node).post(path, body, key);
        if (r.statusCode() / 100 == 2) {
          return EventCodec.mapper().readTree(r.body());
        }
        if (r.statusCode() != 429 && r.statusCode() != 503) {
          throw new AssertionError(path + " answered " + r.statusCode() + ": " + r.body());
        }
      } catch (IOException downOrPaused) {
        // the node was killed or is paused (the request timed out): the next one, same key
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      node = (node + 1) % nodes.size();
    }
  }
}
