package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedQueue;
import keel.core.PolicyReason;
import keel.core.SessionStatus;
import keel.data.Approval;
import keel.data.ApprovalStore;
import keel.data.McpCallStore;
import keel.data.PostgresConfig;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Approval notifications across two nodes (two stores, two execution planes, under leases) on one
 * real PostgreSQL database: each node's cluster-wide listeners (the approvals stream) hear of every
 * change once, whichever node made it; each change reaches the this-node listeners (the webhook) of
 * exactly one node, the one that made it.
 */
class ClusterApprovalNoticesTest {

  static final Duration TTL = Duration.ofSeconds(2);

  @TempDir Path dir;
  final List<AutoCloseable> open = new ArrayList<>();
  Store storeA;
  Store storeB;
  SessionService nodeA;
  SessionService nodeB;
  final ConcurrentLinkedQueue<String> hereA = new ConcurrentLinkedQueue<>();
  final ConcurrentLinkedQueue<String> hereB = new ConcurrentLinkedQueue<>();
  final ConcurrentLinkedQueue<String> streamA = new ConcurrentLinkedQueue<>();
  final ConcurrentLinkedQueue<String> streamB = new ConcurrentLinkedQueue<>();

  @BeforeEach
  void start() {
    ApprovalToolProvider.EXECUTED.clear();
    PostgresConfig db = TestPostgres.newDatabase("approval_notices");
    storeA = Store.postgresql(db, "node-a", Clock.systemUTC());
    open.add(storeA);
    storeB = Store.postgresql(db, "node-b", Clock.systemUTC());
    open.add(storeB);
    nodeA = node(storeA, "node-a", hereA, streamA);
    nodeB = node(storeB, "node-b", hereB, streamB);
  }

  private SessionService node(Store store, String name, ConcurrentLinkedQueue<String> here, ConcurrentLinkedQueue<String> stream) {
    SessionService s = SessionService.create(store, ModelProviders.create(Map.of()),
        ToolRegistry.of(new ApprovalToolProvider().tools(null)), Clock.systemUTC(),
        ExecutionSettings.defaults(name).withLeaseTtl(TTL));
    s.addApprovalListener((what, a) -> here.add(what + " " + a.id() + " " + a.status().wireName()));
    s.addClusterApprovalListener((what, a) -> stream.add(what + " " + a.id() + " " + a.status().wireName()));
    open.addFirst(s);
    return s;
  }

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : open) {
      c.close();
    }
  }

  private static long count(ConcurrentLinkedQueue<String> notices, String notice) {
    return notices.stream().filter(notice::equals).count();
  }

  /** Both streams carry the notice once; exactly one node's own listeners do. */
  private void toldEverywhereOnce_andByOneNode(String notice) {
    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(10))
        .until(() -> count(streamA, notice) == 1 && count(streamB, notice) == 1);
    // a late duplicate would show up by now
    try {
      Thread.sleep(300);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    assertThat(count(streamA, notice)).as("node A's stream: %s", streamA).isEqualTo(1);
    assertThat(count(streamB, notice)).as("node B's stream: %s", streamB).isEqualTo(1);
    assertThat(count(hereA, notice) + count(hereB, notice)).as("sent once cluster-wide: A %s, B %s", hereA, hereB)
        .isEqualTo(1);
  }

  private Approval pending(Store store, String sessionId) {
    await().atMost(Duration.ofSeconds(20)).until(() -> store.approvals().list(new ApprovalStore.Query(
        Optional.of(Approval.Status.PENDING), Optional.empty(), Optional.empty(), 100)).stream()
        .anyMatch(a -> a.sessionId().equals(sessionId)));
    return store.approvals().list(new ApprovalStore.Query(Optional.of(Approval.Status.PENDING), Optional.empty(), Optional.empty(), 100))
        .stream().filter(a -> a.sessionId().equals(sessionId)).findFirst().orElseThrow();
  }

  @Test
  void requestedDecidedWithdrawnAndExpired_reachBothNodesStreams_andOneNodesWebhook() throws Exception {
    Agents.apply(storeA, ApprovalEnforcementTest.agent("payer", "autonomous", ApprovalEnforcementTest.THRESHOLD,
        ApprovalEnforcementTest.pays(ApprovalEnforcementTest.pay("{amount: 1500}"))));
    SessionRecord s = nodeA.start(new SessionService.Start("payer", "pay", "operator:ann", false, Optional.empty(), Optional.empty()));
    Approval a = pending(storeB, s.id());
    toldEverywhereOnce_andByOneNode("requested " + a.id() + " pending");

    // decided through node B: node A's stream hears of it too
    nodeB.decideApproval(a.id(), true, "operator:bob", "checked", "");
    toldEverywhereOnce_andByOneNode("decided " + a.id() + " approved");
    assertThat(hereB).contains("decided " + a.id() + " approved");
    await().atMost(Duration.ofSeconds(20)).until(() -> nodeA.record(s.id()).effectiveStatus() == SessionStatus.IDLE
        && !ApprovalToolProvider.EXECUTED.isEmpty());
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":1500}");

    // a session cancelled while its approval waits: the withdrawal is a notice on both streams
    SessionRecord c = nodeB.start(new SessionService.Start("payer", "pay", "operator:ann", false, Optional.empty(), Optional.empty()));
    Approval w = pending(storeA, c.id());
    toldEverywhereOnce_andByOneNode("requested " + w.id() + " pending");
    nodeA.cancel(c.id(), "operator:ann", "wrong invoice");
    toldEverywhereOnce_andByOneNode("withdrawn " + w.id() + " withdrawn");

    // expired by whichever node's sweep gets there first, once
    Agents.apply(storeA, ApprovalEnforcementTest.agent("payer", "autonomous", """
        approval:
          on_action_value_usd_gt: 1000
          expires_after: 1s
        """, ApprovalEnforcementTest.pays(ApprovalEnforcementTest.pay("{amount: 2500}"))));
    SessionRecord e = nodeA.start(new SessionService.Start("payer", "pay", "operator:ann", false, Optional.empty(), Optional.empty()));
    Approval x = pending(storeA, e.id());
    toldEverywhereOnce_andByOneNode("requested " + x.id() + " pending");
    await().atMost(Duration.ofSeconds(5)).until(() -> Instant.now().isAfter(x.expiresAt()));
    int expired = nodeB.expireApprovals() + nodeA.expireApprovals();
    assertThat(expired).isLessThanOrEqualTo(1);
    toldEverywhereOnce_andByOneNode("expired " + x.id() + " expired");
  }

  @Test
  void anMcpCallsApproval_requestedThroughOneNode_reachesTheOtherNodesStream() {
    Instant now = Instant.now();
    Approval a = Approval.pending("apr_mcp1", "", "key-1", "", "finance", "bank/pay", "{\"amount\":5000}", new BigDecimal("5000"),
        List.of(new PolicyReason("policy/big", "big")), "operator:alice", "operator:alice", "", now, now.plus(Duration.ofHours(1)));
    // as the gateway's MCP server on node A records it (and tells node A's listeners itself)
    assertThat(storeA.mcpCalls().insert(new McpCallStore.McpCall("operator:alice", "key-1", "bank/pay", "{\"amount\":5000}",
        "apr_mcp1", McpCallStore.Status.AWAITING_APPROVAL, "", false, "", now, now), Optional.of(a), List.of())).isTrue();
    nodeA.approvalRequested(a);
    toldEverywhereOnce_andByOneNode("requested apr_mcp1 pending");
    nodeB.decideApproval("apr_mcp1", false, "operator:carol", "no", "");
    toldEverywhereOnce_andByOneNode("decided apr_mcp1 denied");
  }
}
