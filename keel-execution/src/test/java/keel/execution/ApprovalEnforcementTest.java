package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.KeelException;
import keel.core.Message;
import keel.core.PolicyReason;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.Approval;
import keel.data.ApprovalStore;
import keel.data.SessionRecord;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The policy enforcement point in the step executor, with scripted models and test external tools
 * on a real SQLite store: thresholds, CEL rules, policies, supervised and shadow modes, several
 * calls at once, edited arguments, expiry.
 */
class ApprovalEnforcementTest {

  @TempDir Path dir;
  Store store;
  SessionService sessions;
  // a Wednesday
  final MutableTestClock clock = new MutableTestClock(java.time.Instant.parse("2026-03-04T10:00:00Z"));
  final java.util.concurrent.ConcurrentLinkedQueue<String> notices = new java.util.concurrent.ConcurrentLinkedQueue<>();

  @BeforeEach
  void open() {
    ApprovalToolProvider.EXECUTED.clear();
    store = Store.sqlite(dir, "node-test", clock, true);
    sessions = SessionService.create(store, ModelProviders.create(Map.of()),
        ToolRegistry.of(new ApprovalToolProvider().tools(null)), clock, ExecutionSettings.defaults("node-test"));
    sessions.addApprovalListener((what, a) -> notices.add(what + " " + a.id() + " " + a.status().wireName()));
  }

  @AfterEach
  void close() {
    sessions.close();
    store.close();
  }

  static String agent(String name, String mode, String approval, String script) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: finance}
        spec:
          instructions: Pay invoices.
          model:
            provider: scripted
            name: s
            script:
        %s
          tools: [mcp://gateway/bank]
          mode: %s
        %s
        """.formatted(name, script.indent(6).stripTrailing(), mode, approval.indent(2).stripTrailing());
  }

  static final String THRESHOLD = """
      approval:
        on_action_value_usd_gt: 1000
        rules:
          - when: 'has(args.to) && args.to == "offshore"'
            reason: payments offshore are checked
        expires_after: 1h
      """;

  /** One turn paying {@code amounts} in one response, then an answer quoting the last result. */
  static String pays(String... calls) {
    return """
        - turns:
            - say: "I will pay the invoices."
              call: [%s]
            - say: "done: {{result}}"
        """.formatted(String.join(", ", List.of(calls)));
  }

  static String pay(String args) {
    return "{tool: bank_pay, args: " + args + "}";
  }

  SessionRecord start(String agent) {
    return sessions.start(new SessionService.Start(agent, "pay", "operator:ann", true, Optional.empty(), Optional.empty()));
  }

  SessionStatus settle(String id) {
    await().atMost(Duration.ofSeconds(10)).until(() -> {
      SessionStatus s = sessions.record(id).effectiveStatus();
      return s == SessionStatus.AWAITING_APPROVAL || s.terminal() || s == SessionStatus.IDLE;
    });
    return sessions.record(id).effectiveStatus();
  }

  List<SessionEvent> events(String id) {
    return sessions.events(id, 0, 1000).stream().map(StoredEvent::event).toList();
  }

  List<Approval> pendingOf(String id) {
    return store.approvals().list(new ApprovalStore.Query(Optional.of(Approval.Status.PENDING), Optional.empty(), Optional.empty(), 100))
        .stream().filter(a -> a.sessionId().equals(id)).sorted(java.util.Comparator.comparing(Approval::callId)).toList();
  }

  List<Message.ToolResult> results(String id) {
    SessionState s = SessionState.fold(sessions.events(id, 0, 1000));
    return s.conversation().stream().filter(m -> m instanceof Message.ToolResult).map(m -> (Message.ToolResult) m).toList();
  }

  @Test
  void belowThreshold_runsAtOnce() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 999}"))));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":999}");
    assertThat(events(s.id())).noneMatch(e -> e instanceof SessionEvent.ApprovalRequested);
  }

  @Test
  void aboveThreshold_waits_withTheInboxRow_andRunsOnceApproved() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 1500, to: acme}"))));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.AWAITING_APPROVAL);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    Approval a = pendingOf(s.id()).getFirst();
    assertThat(a.tool()).isEqualTo("bank/pay");
    assertThat(a.valueUsd()).isEqualByComparingTo("1500");
    assertThat(a.reasons()).extracting(PolicyReason::rule).containsExactly("spec.approval.on_action_value_usd_gt");
    assertThat(a.reasoning()).isEqualTo("I will pay the invoices.");
    assertThat(a.requester()).isEqualTo("operator:ann");
    assertThat(a.expiresAt()).isEqualTo(clock.instant().plus(Duration.ofHours(1)));
    assertThat(notices).contains("requested " + a.id() + " pending");

    sessions.decideApproval(a.id(), true, "operator:bob", "checked the invoice", "");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":1500,\"to\":\"acme\"}");
    SessionEvent.ApprovalDecided d = events(s.id()).stream().filter(e -> e instanceof SessionEvent.ApprovalDecided)
        .map(e -> (SessionEvent.ApprovalDecided) e).findFirst().orElseThrow();
    assertThat(d).isEqualTo(new SessionEvent.ApprovalDecided(a.callId(), a.id(), "approved", "operator:bob", "checked the invoice", ""));
    assertThatThrownBy(() -> sessions.decideApproval(a.id(), false, "operator:eve", "no", ""))
        .isInstanceOf(KeelException.Conflict.class);
    assertThat(ApprovalToolProvider.EXECUTED).hasSize(1);
  }

  @Test
  void denied_isNeverRun_andTheModelReadsWhoAndWhy() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 1500}"))));
    SessionRecord s = start("payer");
    settle(s.id());
    sessions.decideApproval(pendingOf(s.id()).getFirst().id(), false, "operator:bob", "duplicate invoice", "");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    assertThat(results(s.id())).singleElement().satisfies(r -> {
      assertThat(r.error()).isTrue();
      assertThat(r.content().toString()).contains("denied by operator:bob: duplicate invoice");
    });
  }

  @Test
  void celRule_requiresApproval_evenBelowTheThreshold() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 5, to: offshore}"))));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.AWAITING_APPROVAL);
    assertThat(pendingOf(s.id()).getFirst().reasons())
        .containsExactly(new PolicyReason("spec.approval.rules[0]", "payments offshore are checked"));
  }

  @Test
  void policyDeny_refusesTheCall_namingThePolicy() {
    Agents.apply(store, agent("payer", "autonomous", "", pays(pay("{amount: 50, to: casino}"))) + """
        ---
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: no-gambling}
        spec:
          applies_to: {tools: ["bank/pay"]}
          deny_when: 'args.to == "casino"'
          reason: no payments to casinos
        """);
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    assertThat(events(s.id())).filteredOn(e -> e instanceof SessionEvent.ToolCallDenied).singleElement()
        .extracting(e -> ((SessionEvent.ToolCallDenied) e).reason())
        .isEqualTo("denied by policy/no-gambling: no payments to casinos");
  }

  @Test
  void supervised_approvesChangingCalls_butReadOnlyOnesRun() {
    Agents.apply(store, agent("payer", "supervised", "", """
        - turns:
            - call: [{tool: bank_balance}, {tool: bank_pay, args: {amount: 1}}]
            - say: "done"
        """));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.AWAITING_APPROVAL);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/balance {}");
    assertThat(pendingOf(s.id())).singleElement().extracting(Approval::tool).isEqualTo("bank/pay");
  }

  @Test
  void shadow_neverExecutesChangingCalls_andTellsTheModel() {
    Agents.apply(store, agent("payer", "shadow", THRESHOLD, """
        - turns:
            - call: [{tool: bank_balance}, {tool: bank_pay, args: {amount: 5000}}]
            - say: "done"
        """));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/balance {}");
    assertThat(events(s.id())).filteredOn(e -> e instanceof SessionEvent.ActionProposed).singleElement()
        .satisfies(e -> assertThat(((SessionEvent.ActionProposed) e).valueUsd()).isEqualByComparingTo("5000"));
    assertThat(results(s.id()).get(1).content().toString()).contains("shadow mode");
    assertThat(pendingOf(s.id())).isEmpty();
  }

  @Test
  void severalCalls_areApprovedEachOnItsOwn_askedTogether_andRunInTheModelsOrder() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"), pay("{amount: 5}"), pay("{amount: 3000}"))));
    SessionRecord s = start("payer");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.AWAITING_APPROVAL);
    // both approvals were asked at once; the small call after the first waits its turn
    List<Approval> waiting = pendingOf(s.id());
    assertThat(waiting).extracting(a -> a.valueUsd().intValue()).containsExactly(2000, 3000);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    // the third is denied first: nothing runs yet, the first still waits
    sessions.decideApproval(waiting.get(1).id(), false, "operator:bob", "too much", "");
    await().atMost(Duration.ofSeconds(10)).until(() -> events(s.id()).stream().anyMatch(e -> e instanceof SessionEvent.ApprovalDecided));
    assertThat(settle(s.id())).isEqualTo(SessionStatus.AWAITING_APPROVAL);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    sessions.decideApproval(waiting.get(0).id(), true, "operator:bob", "ok", "");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":2000}", "bank/pay {\"amount\":5}");
    List<Message.ToolResult> results = results(s.id());
    assertThat(results).hasSize(3);
    assertThat(results).filteredOn(Message.ToolResult::error).singleElement()
        .satisfies(r -> assertThat(r.content().toString()).contains("too much"));
  }

  @Test
  void editedArguments_areCheckedAgain_andAnEditThatBreaksADenyRuleIsDenied() {
    String policy = """
        ---
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: cap}
        spec:
          deny_when: 'value_usd > 5000.0'
          reason: nothing over 5000 USD
        """;
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"), pay("{amount: 2500}"))) + policy);
    SessionRecord s = start("payer");
    settle(s.id());
    List<Approval> waiting = pendingOf(s.id());
    assertThatThrownBy(() -> sessions.decideApproval(waiting.get(0).id(), true, "operator:bob", "edit", "[1]"))
        .isInstanceOf(KeelException.Invalid.class);
    sessions.decideApproval(waiting.get(0).id(), true, "operator:bob", "raise it", "{\"amount\": 9000}");
    sessions.decideApproval(waiting.get(1).id(), true, "operator:bob", "lower it", "{\"amount\": 1200}");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\": 1200}");
    assertThat(events(s.id())).filteredOn(e -> e instanceof SessionEvent.ToolCallDenied).singleElement()
        .extracting(e -> ((SessionEvent.ToolCallDenied) e).reason()).asString()
        .contains("approved, but the call as approved is denied by policy/cap: nothing over 5000 USD");
  }

  @Test
  void anEditThatBreaksTheSchema_isDenied() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"))));
    SessionRecord s = start("payer");
    settle(s.id());
    sessions.decideApproval(pendingOf(s.id()).getFirst().id(), true, "operator:bob", "edit", "{\"to\": \"x\"}");
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    assertThat(results(s.id()).getFirst().content().toString()).contains("invalid arguments for bank_pay as approved");
  }

  @Test
  void anUnansweredApproval_expires_andCountsAsDenied() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"))));
    SessionRecord s = start("payer");
    settle(s.id());
    Approval a = pendingOf(s.id()).getFirst();
    assertThat(sessions.expireApprovals()).isZero();
    clock.advance(Duration.ofMinutes(61));
    assertThat(sessions.expireApprovals()).isEqualTo(1);
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    assertThat(ApprovalToolProvider.EXECUTED).isEmpty();
    assertThat(store.approvals().find(a.id()).orElseThrow().status()).isEqualTo(Approval.Status.EXPIRED);
    assertThat(results(s.id()).getFirst().content().toString()).contains("expired");
    assertThat(notices).contains("expired " + a.id() + " expired");
    assertThat(sessions.expireApprovals()).isZero();
  }

  @Test
  void aCancelledSession_withdrawsItsPendingApprovals() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"))));
    SessionRecord s = start("payer");
    settle(s.id());
    Approval a = pendingOf(s.id()).getFirst();
    sessions.cancel(s.id(), "operator:ann", "wrong invoice");
    await().atMost(Duration.ofSeconds(10)).until(() -> store.approvals().find(a.id()).orElseThrow().status() == Approval.Status.WITHDRAWN);
    // the inbox's listeners (the stream, the webhook) are told, so the pending list updates live
    await().atMost(Duration.ofSeconds(10)).until(() -> notices.contains("withdrawn " + a.id() + " withdrawn"));
    assertThatThrownBy(() -> sessions.decideApproval(a.id(), true, "operator:bob", "ok", ""))
        .isInstanceOf(KeelException.Conflict.class);
  }

  @Test
  void aServiceRestartedAfterTheDecision_runsTheApprovedCallExactlyOnce() {
    Agents.apply(store, agent("payer", "autonomous", THRESHOLD, pays(pay("{amount: 2000}"))));
    SessionRecord s = start("payer");
    settle(s.id());
    Approval a = pendingOf(s.id()).getFirst();
    sessions.close();
    // decided while no node runs the session: the decision waits durably in its inbox
    store.approvals().decide(a.id(), Approval.Status.APPROVED, "operator:bob", "ok", "", clock.instant());
    sessions = SessionService.create(store, ModelProviders.create(Map.of()),
        ToolRegistry.of(new ApprovalToolProvider().tools(null)), clock, ExecutionSettings.defaults("node-test"));
    sessions.recover();
    assertThat(settle(s.id())).isEqualTo(SessionStatus.COMPLETED);
    sessions.recover();
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":2000}");
  }
}
