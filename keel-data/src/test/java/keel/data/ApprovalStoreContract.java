package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.PolicyReason;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.ToolCall;
import keel.core.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link ApprovalStore} passes: a row exists exactly when the append that
 * requests it is stored; a decision marks it once and puts the decision in the session's inbox in
 * the same transaction; a second decision, on any node, is a conflict and changes nothing.
 */
public abstract class ApprovalStoreContract {

  protected static final Instant START = Instant.parse("2026-04-01T08:00:00Z");
  private static final String SPAN = "00f067aa0ba902b7";

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  private final List<Store> peers = new ArrayList<>();

  protected abstract Store openStore(String node, Clock clock);

  /** A second store on the database {@link #openStore} opened last, as another node opens it. */
  protected abstract Store openPeer(String node, Clock clock);

  @BeforeEach
  final void open() {
    store = openStore("node-a", clock);
  }

  @AfterEach
  final void close() {
    peers.forEach(Store::close);
    store.close();
  }

  private void session(String id, String owner) {
    store.events().create(new NewSession(id, "payer", 1, owner, EventStoreContract.TRACE, Optional.empty(), id,
        List.of(new PendingEvent(new SessionEvent.SessionStarted("payer", 1, owner, "operator:ann", false), SPAN)),
        SessionStatus.IDLE, Optional.empty()));
  }

  private Approval request(String session, String owner, String approvalId, Duration expiresIn) {
    ToolCall call = new ToolCall("c-" + approvalId, "bank_pay", "{\"amount\":1500}");
    Approval a = Approval.pending(approvalId, session, call.id(), "payer", owner, "bank/pay", call.arguments(),
        new BigDecimal("1500"), List.of(new PolicyReason("spec.approval.on_action_value_usd_gt", "over 1000 USD")),
        "agent:payer", "operator:ann", "I will pay the invoice", clock.instant(), clock.instant().plus(expiresIn));
    long last = store.events().session(session).orElseThrow().lastSeq();
    List<PendingEvent> events = List.of(
        new PendingEvent(new SessionEvent.ApprovalRequested(call.id(), approvalId, a.tool(), a.arguments(), a.valueUsd(),
            a.reasons(), a.expiresAt(), a.principal(), a.requester()), SPAN));
    store.events().append(new Append(session, last, events, SessionStatus.AWAITING_APPROVAL, List.of(), Optional.empty(),
        List.of(), List.of(), List.of(), List.of(a)));
    return a;
  }

  @Test
  void anApprovalAppended_isInTheInbox_asRequested() {
    session("s1", "finance");
    Approval a = request("s1", "finance", "apr-1", Duration.ofHours(24));
    assertThat(store.approvals().find("apr-1")).contains(a);
    assertThat(store.approvals().list(new ApprovalStore.Query(Optional.of(Approval.Status.PENDING), Optional.empty(), Optional.empty(), 10)))
        .containsExactly(a);
    assertThat(store.approvals().find("apr-404")).isEmpty();
  }

  @Test
  void anAppendThatFails_leavesNoApproval() {
    session("s1", "finance");
    Approval a = Approval.pending("apr-x", "s1", "c1", "payer", "finance", "bank/pay", "{}", BigDecimal.ONE, List.of(),
        "agent:payer", "operator:ann", "", clock.instant(), clock.instant().plusSeconds(60));
    // a stale expected sequence: another writer appended first
    assertThatThrownBy(() -> store.events().append(new Append("s1", 7, List.of(new PendingEvent(
        new SessionEvent.InputRejected("in", "x"), SPAN)), SessionStatus.IDLE, List.of(), Optional.empty(), List.of(),
        List.of(), List.of(), List.of(a)))).isInstanceOf(KeelException.Conflict.class);
    assertThat(store.approvals().find("apr-x")).isEmpty();
  }

  @Test
  void decide_marksTheRow_andPutsTheDecisionInTheSessionsInbox_once() {
    session("s1", "finance");
    request("s1", "finance", "apr-1", Duration.ofHours(24));
    clock.advance(Duration.ofMinutes(5));
    Approval decided = store.approvals().decide("apr-1", Approval.Status.APPROVED, "operator:bob", "fine", "{\"amount\":1000}", clock.instant());
    assertThat(decided.status()).isEqualTo(Approval.Status.APPROVED);
    assertThat(decided.decision()).contains(new Approval.Decision("operator:bob", clock.instant(), "fine", "{\"amount\":1000}"));
    List<Input> inbox = store.events().pendingInputs("s1");
    assertThat(inbox).singleElement().satisfies(in -> {
      assertThat(in.kind()).isEqualTo(ApprovalStore.DECISION_KIND);
      assertThat(in.inputId()).isEqualTo("approval-apr-1");
      assertThat(in.sender()).isEqualTo("operator:bob");
      var body = EventCodec.mapper().readTree(in.body());
      assertThat(body.path("decision").asString()).isEqualTo("approved");
      assertThat(body.path("call_id").asString()).isEqualTo("c-apr-1");
      assertThat(body.path("arguments").asString()).isEqualTo("{\"amount\":1000}");
    });
    assertThatThrownBy(() -> store.approvals().decide("apr-1", Approval.Status.DENIED, "operator:eve", "no", "", clock.instant()))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("approval apr-1 is already approved (by operator:bob");
    assertThat(store.approvals().find("apr-1").orElseThrow().status()).isEqualTo(Approval.Status.APPROVED);
    assertThat(store.events().pendingInputs("s1")).hasSize(1);
    assertThatThrownBy(() -> store.approvals().decide("apr-404", Approval.Status.DENIED, "operator:eve", "no", "", clock.instant()))
        .isInstanceOf(KeelException.NotFound.class);
  }

  @Test
  @Timeout(60)
  void racingDeciders_onTwoNodes_exactlyOneWins() throws Exception {
    session("s1", "finance");
    Store peer = openPeer("node-b", clock);
    peers.add(peer);
    for (int round = 0; round < 10; round++) {
      String id = "apr-" + round;
      request("s1", "finance", id, Duration.ofHours(1));
      CyclicBarrier barrier = new CyclicBarrier(2);
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        List<Future<Boolean>> results = new ArrayList<>();
        for (Store on : List.of(store, peer)) {
          results.add(pool.submit(() -> {
            barrier.await();
            try {
              on.approvals().decide(id, Approval.Status.DENIED, "operator:" + on.describe().length(), "no", "", clock.instant());
              return true;
            } catch (KeelException.Conflict lost) {
              return false;
            }
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
    assertThat(store.events().pendingInputs("s1")).hasSize(10);
  }

  @Test
  void list_filtersByStatusAgentAndOwners_newestFirst() {
    session("s1", "finance");
    session("s2", "ops");
    request("s1", "finance", "apr-1", Duration.ofHours(1));
    clock.advance(Duration.ofSeconds(1));
    request("s2", "ops", "apr-2", Duration.ofHours(1));
    clock.advance(Duration.ofSeconds(1));
    request("s1", "finance", "apr-3", Duration.ofHours(1));
    store.approvals().decide("apr-3", Approval.Status.DENIED, "operator:bob", "no", "", clock.instant());
    var all = new ApprovalStore.Query(Optional.empty(), Optional.empty(), Optional.empty(), 10);
    assertThat(store.approvals().list(all)).extracting(Approval::id).containsExactly("apr-3", "apr-2", "apr-1");
    assertThat(store.approvals().list(new ApprovalStore.Query(Optional.of(Approval.Status.PENDING), Optional.empty(), Optional.of(Set.of("finance")), 10)))
        .extracting(Approval::id).containsExactly("apr-1");
    assertThat(store.approvals().list(new ApprovalStore.Query(Optional.empty(), Optional.of("nobody"), Optional.empty(), 10))).isEmpty();
    assertThat(store.approvals().list(new ApprovalStore.Query(Optional.empty(), Optional.empty(), Optional.of(Set.of()), 10))).isEmpty();
  }

  @Test
  void due_listsPendingApprovalsPastTheirExpiry_andWithdrawClosesThem() {
    session("s1", "finance");
    request("s1", "finance", "apr-soon", Duration.ofMinutes(1));
    request("s1", "finance", "apr-late", Duration.ofHours(1));
    assertThat(store.approvals().due(clock.instant(), 10)).isEmpty();
    clock.advance(Duration.ofMinutes(2));
    assertThat(store.approvals().due(clock.instant(), 10)).extracting(Approval::id).containsExactly("apr-soon");
    store.approvals().decide("apr-soon", Approval.Status.EXPIRED, "keel:expiry", "no decision in 1m", "", clock.instant());
    assertThat(store.approvals().due(clock.instant(), 10)).isEmpty();
    assertThat(store.approvals().withdraw("s1", Set.of("apr-soon", "apr-late"), "cancelled", clock.instant())).isEqualTo(1);
    assertThat(store.approvals().find("apr-late").orElseThrow().status()).isEqualTo(Approval.Status.WITHDRAWN);
    assertThat(store.approvals().find("apr-soon").orElseThrow().status()).isEqualTo(Approval.Status.EXPIRED);
  }

  @Test
  void aDecisionForAnEndedSession_withdrawsTheApproval_andDeliversNothing() {
    session("s1", "finance");
    request("s1", "finance", "apr-1", Duration.ofHours(1));
    long last = store.events().session("s1").orElseThrow().lastSeq();
    store.events().append(new Append("s1", last, List.of(new PendingEvent(new SessionEvent.SessionCancelled("operator:ann", "stop"), SPAN)),
        SessionStatus.CANCELLED, List.of(), Optional.empty()));
    Approval a = store.approvals().decide("apr-1", Approval.Status.APPROVED, "operator:bob", "ok", "", clock.instant());
    // nothing waits for it any more: it is withdrawn, not approved
    assertThat(a.status()).isEqualTo(Approval.Status.WITHDRAWN);
    assertThat(store.approvals().find("apr-1").orElseThrow().status()).isEqualTo(Approval.Status.WITHDRAWN);
    assertThat(store.events().pendingInputs("s1")).isEmpty();
  }

  @Test
  void anOverdueApproval_canNoLongerBeApprovedOrDenied_onlyExpired() {
    session("s1", "finance");
    request("s1", "finance", "apr-1", Duration.ofMinutes(1));
    clock.advance(Duration.ofMinutes(2));
    // the sweep has not marked it yet: past its expiry it counts as denied all the same
    assertThatThrownBy(() -> store.approvals().decide("apr-1", Approval.Status.APPROVED, "operator:bob", "late", "", clock.instant()))
        .isInstanceOf(KeelException.Conflict.class).hasMessageContaining("expired at");
    assertThat(store.events().pendingInputs("s1")).isEmpty();
    assertThat(store.approvals().decide("apr-1", Approval.Status.EXPIRED, "keel:expiry", "no decision", "", clock.instant()).status())
        .isEqualTo(Approval.Status.EXPIRED);
  }
}
