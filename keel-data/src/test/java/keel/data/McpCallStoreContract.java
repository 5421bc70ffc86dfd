package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.PolicyReason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link McpCallStore} passes: one call per caller and idempotency key, claimed
 * by exactly one of many racing threads (on two nodes, two stores on one database, where the
 * database takes many writers); a call awaiting
 * approval is started by exactly one request; a completed call keeps its result; a started call
 * whose node stopped stays started (outcome unknown) until an operator resolves it; and every
 * change writes its audit records in the same transaction, or neither.
 */
public abstract class McpCallStoreContract {

  protected static final Instant START = Instant.parse("2026-05-04T09:00:00Z");
  private static final int THREADS = 8;

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  private final List<Store> peers = new ArrayList<>();

  protected abstract Store openStore(String node, Clock clock);

  /** A second store on the database {@link #openStore} opened last, as another node opens it. */
  protected abstract Store openPeer(String node, Clock clock);

  /**
   * Whether many nodes may write one database at once (PostgreSQL). SQLite is one node's store: its
   * races are between the threads of one store, and a second store on the file only reads.
   */
  protected abstract boolean manyWriters();

  /** Where the racing threads write: both nodes when the database takes many writers. */
  private Store racer(int thread, Store peer) {
    return manyWriters() && thread % 2 == 1 ? peer : store;
  }

  @BeforeEach
  final void open() {
    store = openStore("node-a", clock);
  }

  @AfterEach
  final void close() {
    peers.forEach(Store::close);
    store.close();
  }

  private Store peer() {
    Store p = openPeer("node-b", clock);
    peers.add(p);
    return p;
  }

  private McpCallStore.McpCall call(String principal, String key, McpCallStore.Status status, String approvalId) {
    return new McpCallStore.McpCall(principal, key, "ledger/post-entry", "{\"amount\":12}", approvalId, status, "", false, "",
        clock.instant(), clock.instant());
  }

  private static AuditRecord audit(String kind, String principal, String key) {
    return new AuditRecord(kind, principal, "finance", "", "", "ledger/post-entry",
        "{\"via\":\"mcp\",\"idempotency_key\":\"" + key + "\"}");
  }

  private Approval approval(String id, String principal, String key) {
    return Approval.pending(id, "", key, "", "finance", "ledger/post-entry", "{\"amount\":12}", new BigDecimal("12"),
        List.of(new PolicyReason("policy/big", "needs a look")), principal, principal, "", clock.instant(),
        clock.instant().plus(Duration.ofHours(1)));
  }

  private List<AuditEntry> audited(String kind) {
    return store.audit().query(AuditQuery.all(1000).withKind(kind));
  }

  @Test
  void insert_recordsTheCallAndItsAudit_andASecondInsertOfTheKeyWritesNothing() {
    McpCallStore.McpCall c = call("operator:ann", "k1", McpCallStore.Status.STARTED, "");
    assertThat(store.mcpCalls().insert(c, Optional.empty(), List.of(audit("tool_call", "operator:ann", "k1")))).isTrue();
    assertThat(store.mcpCalls().find("operator:ann", "k1")).contains(c);
    assertThat(store.mcpCalls().find("operator:ann", "k2")).isEmpty();
    assertThat(store.mcpCalls().find("operator:bob", "k1")).isEmpty();

    McpCallStore.McpCall other = new McpCallStore.McpCall("operator:ann", "k1", "email/draft", "{}", "", McpCallStore.Status.STARTED,
        "", false, "", clock.instant(), clock.instant());
    assertThat(store.mcpCalls().insert(other, Optional.empty(), List.of(audit("tool_call", "operator:ann", "k1")))).isFalse();
    assertThat(store.mcpCalls().find("operator:ann", "k1")).contains(c);
    assertThat(audited("tool_call")).hasSize(1);
    // the same key is another call for another caller
    assertThat(store.mcpCalls().insert(call("agent:payer", "k1", McpCallStore.Status.STARTED, ""), Optional.empty(), List.of()))
        .isTrue();
  }

  @Test
  @Timeout(120)
  void racingInserts_ofOneKey_exactlyOneWins_andOnlyItsAuditIsWritten() throws Exception {
    Store peer = peer();
    for (int round = 0; round < 10; round++) {
      String key = "race-" + round;
      CyclicBarrier barrier = new CyclicBarrier(THREADS);
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      try {
        List<Future<Boolean>> results = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          Store on = racer(t, peer);
          String mark = "t" + t;
          results.add(pool.submit(() -> {
            barrier.await();
            return on.mcpCalls().insert(
                new McpCallStore.McpCall("agent:payer", key, "ledger/post-entry", "{\"by\":\"" + mark + "\"}", "",
                    McpCallStore.Status.STARTED, "", false, "", clock.instant(), clock.instant()),
                Optional.empty(), List.of(audit("tool_call", "agent:payer", key)));
          }));
        }
        int wins = 0;
        for (Future<Boolean> f : results) {
          wins += f.get() ? 1 : 0;
        }
        assertThat(wins).as("round %d", round).isEqualTo(1);
      } finally {
        pool.shutdownNow();
      }
    }
    assertThat(audited("tool_call")).hasSize(10);
    assertThat(store.audit().verify(Optional.empty())).isInstanceOf(AuditStore.Verification.Intact.class);
  }

  @Test
  void aCallNeedingApproval_isInsertedWithItsApproval_inOneTransaction() {
    McpCallStore.McpCall c = call("operator:ann", "k-apr", McpCallStore.Status.AWAITING_APPROVAL, "apr_1");
    assertThat(store.mcpCalls().insert(c, Optional.of(approval("apr_1", "operator:ann", "k-apr")),
        List.of(audit("policy_decision", "operator:ann", "k-apr"), audit("approval_requested", "operator:ann", "k-apr"))))
        .isTrue();
    assertThat(store.approvals().find("apr_1")).hasValueSatisfying(a -> {
      assertThat(a.status()).isEqualTo(Approval.Status.PENDING);
      assertThat(a.sessionId()).isEmpty();
    });
    assertThat(audited("approval_requested")).singleElement()
        .satisfies(e -> assertThat(e.record().detail()).contains("k-apr"));

    // a losing insert of the key writes neither another approval nor audit
    assertThat(store.mcpCalls().insert(c, Optional.of(approval("apr_2", "operator:ann", "k-apr")),
        List.of(audit("approval_requested", "operator:ann", "k-apr")))).isFalse();
    assertThat(store.approvals().find("apr_2")).isEmpty();
    assertThat(audited("approval_requested")).hasSize(1);
  }

  @Test
  @Timeout(120)
  void racingStarts_ofAnApprovedCall_exactlyOneRunsIt() throws Exception {
    Store peer = peer();
    for (int round = 0; round < 10; round++) {
      String key = "approved-" + round;
      store.mcpCalls().insert(call("operator:ann", key, McpCallStore.Status.AWAITING_APPROVAL, "apr-" + round),
          Optional.of(approval("apr-" + round, "operator:ann", key)), List.of());
      CyclicBarrier barrier = new CyclicBarrier(THREADS);
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      try {
        List<Future<Boolean>> results = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          Store on = racer(t, peer);
          results.add(pool.submit(() -> {
            barrier.await();
            return on.mcpCalls().start("operator:ann", key, "{\"amount\":9}", clock.instant(),
                List.of(audit("tool_call", "operator:ann", key)));
          }));
        }
        int wins = 0;
        for (Future<Boolean> f : results) {
          wins += f.get() ? 1 : 0;
        }
        assertThat(wins).as("round %d", round).isEqualTo(1);
      } finally {
        pool.shutdownNow();
      }
      assertThat(store.mcpCalls().find("operator:ann", key)).hasValueSatisfying(c -> {
        assertThat(c.status()).isEqualTo(McpCallStore.Status.STARTED);
        assertThat(c.arguments()).as("the arguments as approved").isEqualTo("{\"amount\":9}");
      });
    }
    assertThat(audited("tool_call")).hasSize(10);
    // a call that never waited for approval cannot be started again
    store.mcpCalls().insert(call("operator:ann", "direct", McpCallStore.Status.STARTED, ""), Optional.empty(), List.of());
    assertThat(store.mcpCalls().start("operator:ann", "direct", "{}", clock.instant(), List.of(audit("tool_call", "operator:ann", "direct"))))
        .isFalse();
    assertThat(store.mcpCalls().start("operator:ann", "absent", "{}", clock.instant(), List.of())).isFalse();
    assertThat(audited("tool_call")).hasSize(10);
  }

  @Test
  void complete_storesTheResult_once_withItsAudit() {
    store.mcpCalls().insert(call("operator:ann", "k1", McpCallStore.Status.STARTED, ""), Optional.empty(), List.of());
    clock.advance(Duration.ofSeconds(2));
    store.mcpCalls().complete("operator:ann", "k1", "posted entry 7", false, "{\"entry\":7}", clock.instant(),
        List.of(audit("tool_result", "operator:ann", "k1")));
    McpCallStore.McpCall done = store.mcpCalls().find("operator:ann", "k1").orElseThrow();
    assertThat(done.status()).isEqualTo(McpCallStore.Status.COMPLETED);
    assertThat(done.result()).isEqualTo("posted entry 7");
    assertThat(done.error()).isFalse();
    assertThat(done.structured()).isEqualTo("{\"entry\":7}");
    assertThat(done.createdAt()).isEqualTo(START);
    assertThat(done.updatedAt()).isEqualTo(START.plusSeconds(2));

    // a second completion (a late duplicate) changes nothing and audits nothing
    clock.advance(Duration.ofSeconds(2));
    store.mcpCalls().complete("operator:ann", "k1", "other", true, "", clock.instant(), List.of(audit("tool_result", "operator:ann", "k1")));
    assertThat(store.mcpCalls().find("operator:ann", "k1")).contains(done);
    assertThat(audited("tool_result")).hasSize(1);
  }

  @Test
  void aCallStartedOnANodeThatStopped_staysStarted_onAnyNode_untilResolvedOnce() {
    store.mcpCalls().insert(call("agent:payer", "lost", McpCallStore.Status.STARTED, ""), Optional.empty(),
        List.of(audit("tool_call", "agent:payer", "lost")));
    store.mcpCalls().insert(call("agent:payer", "fresh", McpCallStore.Status.STARTED, ""), Optional.empty(), List.of());
    store.mcpCalls().insert(call("agent:payer", "waits", McpCallStore.Status.AWAITING_APPROVAL, "apr-w"),
        Optional.of(approval("apr-w", "agent:payer", "waits")), List.of());
    // node A stops mid-call: another node sees the row as started, its outcome unknown
    Store peer = peer();
    assertThat(peer.mcpCalls().find("agent:payer", "lost").orElseThrow().status()).isEqualTo(McpCallStore.Status.STARTED);
    clock.advance(Duration.ofMinutes(10));
    assertThat(peer.mcpCalls().unfinished(START, 10)).isEmpty();
    assertThat(peer.mcpCalls().unfinished(START.plusMillis(1), 10))
        .extracting(McpCallStore.McpCall::idempotencyKey).containsExactly("fresh", "lost");
    assertThat(peer.mcpCalls().unfinished(START.plusMillis(1), 1)).hasSize(1);

    Store resolver = manyWriters() ? peer : store;
    assertThat(resolver.mcpCalls().resolve("agent:payer", "lost", "resolved by operator:carol: the entry was posted", false,
        clock.instant(), List.of(audit("tool_outcome_resolved", "operator:carol", "lost")))).isTrue();
    McpCallStore.McpCall resolved = store.mcpCalls().find("agent:payer", "lost").orElseThrow();
    assertThat(resolved.status()).isEqualTo(McpCallStore.Status.COMPLETED);
    assertThat(resolved.result()).isEqualTo("resolved by operator:carol: the entry was posted");
    assertThat(resolved.error()).isFalse();
    // once: a second resolution, or one of a call not started, writes nothing
    assertThat(store.mcpCalls().resolve("agent:payer", "lost", "again", true, clock.instant(),
        List.of(audit("tool_outcome_resolved", "operator:carol", "lost")))).isFalse();
    assertThat(store.mcpCalls().resolve("agent:payer", "waits", "x", true, clock.instant(), List.of())).isFalse();
    assertThat(store.mcpCalls().resolve("agent:payer", "absent", "x", true, clock.instant(), List.of())).isFalse();
    assertThat(audited("tool_outcome_resolved")).hasSize(1);
    // the node that ran it comes back and completes late: the resolution stands
    store.mcpCalls().complete("agent:payer", "lost", "late", true, "", clock.instant(), List.of(audit("tool_result", "agent:payer", "lost")));
    assertThat(store.mcpCalls().find("agent:payer", "lost")).contains(resolved);
    assertThat(audited("tool_result")).isEmpty();
    assertThat(store.mcpCalls().unfinished(clock.instant(), 10)).extracting(McpCallStore.McpCall::idempotencyKey)
        .containsExactly("fresh");
  }
}
