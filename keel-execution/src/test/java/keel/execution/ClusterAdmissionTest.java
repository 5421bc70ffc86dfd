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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import keel.core.KeelException;
import keel.core.SessionStatus;
import keel.data.PostgresConfig;
import keel.data.Store;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admission bounded cluster-wide: two nodes on one real PostgreSQL database, one step slot each and
 * a model that blocks until the test lets it go, so that sessions pile up waiting for a node. Once
 * the cluster's queue (counted in the store) reaches its capacity, a node whose own queue is far
 * below its own capacity (1,000) refuses new work too, with a retry delay; when the queue drains, it admits again.
 */
class ClusterAdmissionTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: slow, owner: team-a}
      spec:
        instructions: Answer.
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - say: "Done."
      """;

  static final int CLUSTER_CAPACITY = 6;

  @TempDir Path dir;
  final List<AutoCloseable> open = new ArrayList<>();
  final CountDownLatch release = new CountDownLatch(1);
  SessionService nodeA;
  SessionService nodeB;

  @BeforeEach
  void start() {
    PostgresConfig db = TestPostgres.newDatabase("admission");
    Store storeA = Store.postgresql(db, "node-a", Clock.systemUTC());
    open.add(storeA);
    Store storeB = Store.postgresql(db, "node-b", Clock.systemUTC());
    open.add(storeB);
    Agents.apply(storeA, AGENT);
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
        try {
          release.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return scripted.complete(request, stream);
      }
    });
    ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
    // one step at a time per node, a node's own queue far larger than the cluster's
    ExecutionSettings settings = new ExecutionSettings(name, 1, 1000, 4096)
        .withLeaseTtl(Duration.ofSeconds(5)).withClusterAdmissionCapacity(CLUSTER_CAPACITY);
    SessionService s = SessionService.create(store, models, tools, Clock.systemUTC(), settings);
    open.addFirst(s);
    return s;
  }

  @AfterEach
  void stop() throws Exception {
    release.countDown();
    for (AutoCloseable c : open) {
      c.close();
    }
  }

  private String begin(SessionService via, int i) {
    return via.start(new SessionService.Start("slow", "task " + i, "operator:test", false, Optional.empty(), Optional.empty())).id();
  }

  @Test
  @Timeout(120)
  void aFullClusterQueue_isRefusedOnANodeWhoseOwnQueueIsEmpty_withARetryDelay_andAdmitsAgainWhenItDrains() {
    List<String> ids = new ArrayList<>();
    // everything through node A: each node runs one (node B takes one over from the store), the
    // rest wait on node A
    int i = 0;
    KeelException.Overloaded refused = null;
    while (refused == null && i < 50) {
      try {
        ids.add(begin(nodeA, i++));
      } catch (KeelException.Overloaded e) {
        refused = e;
      }
      if (i == 2) {
        // both nodes busy before the queue fills
        await().atMost(Duration.ofSeconds(10)).until(() -> nodeA.scheduler().runningSessions() == 1 && nodeB.scheduler().runningSessions() == 1);
      }
    }
    assertThat(refused).as("node A refused at some point").isNotNull();
    // 2 running + the queue; the count may lag one refresh, never by more than this node admitted
    assertThat(ids.size()).isBetween(CLUSTER_CAPACITY, CLUSTER_CAPACITY + 2 + 1);
    assertThat(refused.getMessage()).contains("the cluster has", "sessions waiting for a node", "capacity " + CLUSTER_CAPACITY);
    assertThat(refused.retryAfterSeconds()).isPositive();

    // node B's own queue is far from its capacity (it holds at most the wake-ups it got by NOTIFY
    // for node A's sessions), and it still refuses: the bound is the cluster's
    assertThat(nodeB.scheduler().waitingSessions()).isLessThan(CLUSTER_CAPACITY + 3);
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
        assertThatThrownBy(() -> begin(nodeB, 100)).isInstanceOf(KeelException.Overloaded.class).hasMessageContaining("the cluster has"));
    // a message to an existing session is new work too
    assertThatThrownBy(() -> nodeB.send(ids.getFirst(), "more", "operator:test", Optional.empty()))
        .isInstanceOf(KeelException.Overloaded.class);

    release.countDown();
    await().atMost(Duration.ofSeconds(60)).until(() -> ids.stream().allMatch(id -> nodeA.record(id).effectiveStatus() == SessionStatus.IDLE));
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(begin(nodeB, 200)).isNotBlank());
  }
}
