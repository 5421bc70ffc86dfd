package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.SessionStatus;
import keel.data.LeaseStore;
import keel.data.PostgresConfig;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Two nodes (two stores, two execution planes) on one real PostgreSQL database, running under leases. */
class LeasedNodesTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: hello, owner: team-a}
      spec:
        instructions: Greet.
        model:
          provider: scripted
          name: hello-script
          script:
            - turns:
                - say: "Hello."
        tools: [internal://time]
      """;

  static final Duration TTL = Duration.ofSeconds(2);

  @TempDir Path dir;
  final List<AutoCloseable> open = new ArrayList<>();
  Store storeA;
  Store storeB;
  SessionService nodeA;
  SessionService nodeB;

  @BeforeEach
  void start() {
    PostgresConfig db = TestPostgres.newDatabase("leased_nodes");
    storeA = Store.postgresql(db, "node-a", Clock.systemUTC());
    open.add(storeA);
    storeB = Store.postgresql(db, "node-b", Clock.systemUTC());
    open.add(storeB);
    Agents.apply(storeA, AGENT);
    nodeA = node(storeA, "node-a");
    nodeB = node(storeB, "node-b");
  }

  private SessionService node(Store store, String name) {
    ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
    SessionService s = SessionService.create(store, ModelProviders.create(Map.of()), tools, Clock.systemUTC(),
        ExecutionSettings.defaults(name).withLeaseTtl(TTL));
    open.addFirst(s);
    return s;
  }

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : open) {
      c.close();
    }
  }

  @Test
  void sessionsOnTwoNodes_runUnderLeases_withOneWriterAtATime_andReleaseTheirLeasesWhenIdle() {
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      SessionService via = i % 2 == 0 ? nodeA : nodeB;
      ids.add(via.start(new SessionService.Start("hello", "hi " + i, "operator:test", false, Optional.empty(), Optional.empty())).id());
    }
    await().atMost(Duration.ofSeconds(30)).until(() -> ids.stream().allMatch(id -> idleWithAnswers(id, 1)));
    // a second message to each, through the other node
    for (int i = 0; i < ids.size(); i++) {
      (i % 2 == 0 ? nodeB : nodeA).send(ids.get(i), "again", "operator:test", Optional.empty());
    }
    await().atMost(Duration.ofSeconds(30)).until(() -> ids.stream().allMatch(id -> idleWithAnswers(id, 2)));
    for (String id : ids) {
      List<LeaseStore.Stint> stints = storeA.leases().writers(id);
      assertThat(stints.getFirst().epoch()).as("the session's creation is written without a lease").isZero();
      for (int k = 1; k < stints.size(); k++) {
        assertThat(stints.get(k).epoch()).as("session %s: epochs grow run by run", id).isGreaterThan(stints.get(k - 1).epoch());
        assertThat(stints.get(k).firstSeq()).isEqualTo(stints.get(k - 1).lastSeq() + 1);
      }
      assertThat(stints.stream().skip(1).map(LeaseStore.Stint::node)).allMatch(n -> n.equals("node-a") || n.equals("node-b"));
      assertThat(stints.size()).as("session %s ran twice, each run under a lease", id).isGreaterThanOrEqualTo(3);
      // released on suspending: any node may claim it at once
      assertThat(storeB.leases().claim(id, "node-c", TTL)).isPresent();
    }
  }

  @Test
  void aDeadNodesSession_isTakenOverWhenItsLeaseExpires_underANewEpoch() {
    SessionRecord r = nodeA.start(new SessionService.Start("hello", "hi", "operator:test", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(20)).until(() -> idleWithAnswers(r.id(), 1));
    // a node that then died holds the session
    LeaseStore.Lease dead = storeA.leases().claim(r.id(), "node-dead", TTL).orElseThrow();
    nodeB.send(r.id(), "anyone there?", "operator:test", Optional.empty());
    long sent = System.nanoTime();
    await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(20)).until(() -> idleWithAnswers(r.id(), 2));
    Duration took = Duration.ofNanos(System.nanoTime() - sent);
    assertThat(took).as("waits for the dead node's lease").isGreaterThanOrEqualTo(TTL.minusMillis(200));
    assertThat(took).as("taken over within a second of the expiry").isLessThan(TTL.plusSeconds(1));
    LeaseStore.Stint last = storeA.leases().writers(r.id()).getLast();
    assertThat(last.epoch()).isGreaterThan(dead.epoch());
    assertThat(storeA.leases().release(dead)).as("the dead node's lease is gone").isFalse();
  }

  @Test
  void anInputWrittenWithoutAWake_reachesTheSessionByNotify_fasterThanThePoll() {
    SessionRecord r = nodeA.start(new SessionService.Start("hello", "hi", "operator:test", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(20)).until(() -> idleWithAnswers(r.id(), 1));
    List<Long> millis = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      // straight into the store, as another node's API would: no scheduler here is told
      long sent = System.nanoTime();
      storeB.events().enqueue(new keel.data.Input(r.id(), "in_notify_" + i, "message", "ping " + i, "operator:test",
          java.time.Instant.now()));
      int answers = i + 2;
      await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(5)).until(() -> idleWithAnswers(r.id(), answers));
      millis.add(Duration.ofNanos(System.nanoTime() - sent).toMillis());
    }
    List<Long> sorted = millis.stream().sorted().toList();
    // polling alone (every 500 ms here) would take about 250 ms for half of them
    assertThat(sorted.get(sorted.size() / 2)).as("median latency in ms, all: %s", millis).isLessThan(120);
  }

  @Test
  void aSessionsEvents_canBeFollowedFromEitherNode_eachOnceInOrder() throws Exception {
    SessionRecord r = nodeA.start(new SessionService.Start("hello", "hi", "operator:test", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(20)).until(() -> idleWithAnswers(r.id(), 1));
    List<Long> seenOnA = java.util.Collections.synchronizedList(new ArrayList<>());
    List<Long> seenOnB = java.util.Collections.synchronizedList(new ArrayList<>());
    try (AutoCloseable a = nodeA.subscribe(r.id(), f -> {
          if (f instanceof SessionFrame.Event e) {
            seenOnA.add(e.event().seq());
          }
        });
        AutoCloseable b = nodeB.subscribe(r.id(), f -> {
          if (f instanceof SessionFrame.Event e) {
            seenOnB.add(e.event().seq());
          }
        })) {
      long before = nodeA.record(r.id()).lastSeq();
      for (int i = 0; i < 3; i++) {
        (i % 2 == 0 ? nodeA : nodeB).send(r.id(), "more " + i, "operator:test", Optional.empty());
        int answers = i + 2;
        await().atMost(Duration.ofSeconds(20)).until(() -> idleWithAnswers(r.id(), answers));
      }
      long last = nodeA.record(r.id()).lastSeq();
      List<Long> expected = java.util.stream.LongStream.rangeClosed(before + 1, last).boxed().toList();
      await().atMost(Duration.ofSeconds(5)).until(() -> seenOnA.size() >= expected.size() && seenOnB.size() >= expected.size());
      assertThat(seenOnA).containsExactlyElementsOf(expected);
      assertThat(seenOnB).containsExactlyElementsOf(expected);
    }
  }

  private boolean idleWithAnswers(String id, int answers) {
    SessionRecord rec = nodeA.record(id);
    if (rec.effectiveStatus() != SessionStatus.IDLE) {
      return false;
    }
    return nodeA.events(id, 0, 1000).stream().filter(e -> e.event().type().equals("ModelResponded")).count() == answers;
  }
}
