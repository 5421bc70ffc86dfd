package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.KeelException;
import keel.core.SessionStatus;
import keel.data.PostgresConfig;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code spec.concurrency: per-partition} and {@code max_active_sessions} across two nodes (two
 * stores, two execution planes) on one real PostgreSQL database: sessions of one partition never
 * run at once anywhere while other partitions run in parallel, and an agent never has more sessions
 * running in the cluster than its limit. The model is slow on purpose (150 ms a call) and counts the
 * calls in flight by partition and by agent.
 */
class PartitionedNodesTest {

  static final String LEDGER =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: ledger, owner: team-a}
      spec:
        instructions: Book invoices.
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - say: "Booked."
        concurrency:
          mode: per-partition
          partition_key: input.supplier.id
      """;

  static final String CAPPED =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: capped, owner: team-a}
      spec:
        instructions: Answer.
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - say: "Done."
        concurrency:
          max_active_sessions: 2
      """;

  static final Duration TTL = Duration.ofSeconds(2);
  static final long CALL_MILLIS = 150;

  @TempDir Path dir;
  final List<AutoCloseable> open = new ArrayList<>();
  Store storeA;
  SessionService nodeA;
  SessionService nodeB;

  /** The partition of each session, as the test started it; "" for the capped agent. */
  final Map<String, String> partitionOf = new ConcurrentHashMap<>();
  final Map<String, AtomicInteger> inFlight = new ConcurrentHashMap<>();
  final Map<String, AtomicInteger> maxInFlight = new ConcurrentHashMap<>();

  @BeforeEach
  void start() {
    PostgresConfig db = TestPostgres.newDatabase("partitions");
    storeA = Store.postgresql(db, "node-a", Clock.systemUTC());
    open.add(storeA);
    Store storeB = Store.postgresql(db, "node-b", Clock.systemUTC());
    open.add(storeB);
    Agents.apply(storeA, LEDGER);
    Agents.apply(storeA, CAPPED);
    nodeA = node(storeA, "node-a");
    nodeB = node(storeB, "node-b");
  }

  private SessionService node(Store store, String name) {
    ScriptedModelProvider scripted = new ScriptedModelProvider();
    ModelProviders models = ModelProviders.create(Map.of()).register(new ModelProvider() {
      @Override
      public String name() {
        return ScriptedModelProvider.NAME;
      }

      @Override
      public ModelResponse complete(ModelRequest request, ModelStream stream) {
        await().atMost(Duration.ofSeconds(5)).until(() -> partitionOf.containsKey(request.sessionId()));
        String key = request.agent() + "/" + partitionOf.get(request.sessionId());
        String agentKey = request.agent();
        List<String> keys = request.agent().equals("ledger") ? List.of(key, agentKey) : List.of(agentKey);
        for (String k : keys) {
          int now = inFlight.computeIfAbsent(k, x -> new AtomicInteger()).incrementAndGet();
          maxInFlight.computeIfAbsent(k, x -> new AtomicInteger()).accumulateAndGet(now, Math::max);
        }
        try {
          Thread.sleep(CALL_MILLIS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        } finally {
          keys.forEach(k -> inFlight.get(k).decrementAndGet());
        }
        return scripted.complete(request, stream);
      }
    });
    ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
    SessionService s = SessionService.create(store, models, tools, Clock.systemUTC(),
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

  private String begin(SessionService via, String agent, String message, String partition) {
    SessionRecord r = via.start(new SessionService.Start(agent, message, "operator:test", false, Optional.empty(), Optional.empty()));
    partitionOf.put(r.id(), partition);
    return r.id();
  }

  @Test
  @Timeout(120)
  void sessionsOfOnePartition_runOneAtATimeAcrossBothNodes_whileOtherPartitionsRunInParallel() {
    List<String> ids = new ArrayList<>();
    List<String> suppliers = List.of("acme", "globex", "initech");
    for (int i = 0; i < 12; i++) {
      String supplier = suppliers.get(i % 3);
      ids.add(begin(i % 2 == 0 ? nodeA : nodeB, "ledger",
          "{\"supplier\": {\"id\": \"" + supplier + "\"}, \"invoice\": " + i + "}", supplier));
    }
    // and a second message to each, through the other node
    await().atMost(Duration.ofSeconds(60)).until(() -> ids.stream().allMatch(id -> idleWithAnswers(id, 1)));
    for (int i = 0; i < ids.size(); i++) {
      (i % 2 == 0 ? nodeB : nodeA).send(ids.get(i), "{\"note\": \"and again\"}", "operator:test", Optional.empty());
    }
    await().atMost(Duration.ofSeconds(60)).until(() -> ids.stream().allMatch(id -> idleWithAnswers(id, 2)));

    for (String supplier : suppliers) {
      assertThat(maxInFlight.get("ledger/" + supplier).get()).as("model calls of partition %s at once", supplier).isEqualTo(1);
    }
    assertThat(maxInFlight.get("ledger").get()).as("partitions ran in parallel").isGreaterThan(1);
    // both nodes ran sessions
    assertThat(ids.stream().flatMap(id -> storeA.leases().writers(id).stream()).map(s -> s.node()).distinct())
        .contains("node-a", "node-b");
  }

  @Test
  @Timeout(120)
  void maxActiveSessions_holdsAcrossBothNodes() {
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      ids.add(begin(i % 2 == 0 ? nodeA : nodeB, "capped", "task " + i, ""));
    }
    await().atMost(Duration.ofSeconds(60)).until(() -> ids.stream().allMatch(id -> idleWithAnswers(id, 1)));
    assertThat(maxInFlight.get("capped").get()).as("sessions of the agent running at once in the cluster").isEqualTo(2);
  }

  @Test
  void aPerPartitionAgent_refusesAFirstMessageThatNamesNoPartition_sayingWhatItNeeds() {
    assertThatThrownBy(() -> nodeA.start(new SessionService.Start("ledger", "book it", "operator:test", false, Optional.empty(), Optional.empty())))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("input.supplier.id")
        .hasMessageContaining("not JSON");
    assertThatThrownBy(() -> nodeA.start(new SessionService.Start("ledger", "{\"supplier\": {}}", "operator:test", false, Optional.empty(), Optional.empty())))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("supplier.id is missing");
  }

  private boolean idleWithAnswers(String id, int answers) {
    SessionRecord rec = nodeA.record(id);
    if (rec.effectiveStatus() != SessionStatus.IDLE) {
      return false;
    }
    return nodeA.events(id, 0, 1000).stream().filter(e -> e.event().type().equals("ModelResponded")).count() == answers;
  }
}
