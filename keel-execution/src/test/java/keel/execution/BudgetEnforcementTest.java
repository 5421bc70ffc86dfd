package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.BudgetKind;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.CostKind;
import keel.data.CostLedger;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Budgets enforced by the step executor, and the cost ledger it writes, on a real SQLite store with
 * a clock the tests move: a call that would exceed a limit suspends the session with {@code
 * BudgetBlocked} instead of failing it, and the session goes on by itself when its window ends or
 * its limit is raised.
 */
class BudgetEnforcementTest {

  static final Instant START = Instant.parse("2026-06-01T10:59:59Z");

  @TempDir Path dir;
  final MutableTestClock clock = new MutableTestClock(START);
  Store store;
  SessionService sessions;
  FakeOpenAi fake;

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", clock, false);
    sessions = service();
    fake = FakeOpenAi.start();
    PricedToolProvider.CALLS.set(0);
  }

  SessionService service() {
    List<Tool> tools = new ArrayList<>(new InternalTools().tools(new ToolEnvironment(store, clock, dir, Map.of())));
    tools.addAll(new PricedToolProvider().tools(new ToolEnvironment(store, clock, dir, Map.of())));
    return SessionService.create(store, ModelProviders.create(Map.of()), ToolRegistry.of(tools), clock,
        ExecutionSettings.defaults("node-test"), PriceTable.builtIn(), CostSettings.defaults().withOutputTokenEstimate(16));
  }

  @AfterEach
  void close() {
    fake.close();
    sessions.close();
    store.close();
  }

  /** A scripted agent: each rule's turns, and a budgets line such as {@code calls_per_hour: 2}. */
  static String scripted(String name, String budgets, String turns, String tools) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: team-a}
        spec:
          instructions: Test agent.
          model:
            provider: scripted
            name: s
            script:
              - turns:
        %s
          tools: [%s]
          budgets: {%s}
        """.formatted(name, turns.indent(10).stripTrailing(), tools, budgets);
  }

  /** {@code n} calls of {@code tool}, then an answer. */
  static String calls(int n, String tool) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < n; i++) {
      b.append("- call: [{tool: ").append(tool).append("}]\n");
    }
    return b.append("- say: \"done\"\n").toString();
  }

  String openAi(String name, String budgets) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: team-b}
        spec:
          instructions: Answer.
          model: {provider: openai, name: gpt-4o, base_url: "%s"}
          tools: [internal://time]
          budgets: {%s}
        """.formatted(name, fake.baseUrl(), budgets);
  }

  SessionRecord start(String agent, String message, boolean task) {
    return sessions.start(new SessionService.Start(agent, message, "operator:test", task, Optional.empty(), Optional.empty()));
  }

  List<SessionEvent> events(String id) {
    return sessions.events(id, 0, 10_000).stream().map(StoredEvent::event).toList();
  }

  <T extends SessionEvent> List<T> of(String id, Class<T> type) {
    return events(id).stream().filter(type::isInstance).map(type::cast).toList();
  }

  void awaitStatus(String id, SessionStatus status) {
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(id).effectiveStatus() == status);
  }

  SessionState state(String id) {
    return SessionLoader.load(store.events(), id);
  }

  @Test
  void callsPerHour_blocksTheSession_andItGoesOnByItselfWhenTheHourEnds() {
    Agents.apply(store, scripted("hourly", "calls_per_hour: 2", calls(2, "time_now"), "internal://time"));
    SessionRecord r = start("hourly", "go", true);

    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).hasSize(2);
    SessionEvent.BudgetBlocked blocked = of(r.id(), SessionEvent.BudgetBlocked.class).getFirst();
    assertThat(blocked.kind()).isEqualTo("calls_per_hour");
    assertThat(blocked.limit()).isEqualByComparingTo("2");
    assertThat(blocked.used()).isEqualByComparingTo("2");
    assertThat(blocked.requested()).isEqualByComparingTo("1");
    assertThat(blocked.windowEnd()).isEqualTo(Instant.parse("2026-06-01T11:00:00Z"));
    assertThat(sessions.view(r.id()).failure()).isEmpty();

    clock.advance(Duration.ofSeconds(2)); // the timer for 11:00 fires about a second from now

    awaitStatus(r.id(), SessionStatus.COMPLETED);
    assertThat(of(r.id(), SessionEvent.BudgetUnblocked.class)).singleElement()
        .satisfies(u -> assertThat(u.reason()).startsWith("window_ended"));
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).hasSize(3);
  }

  @Test
  void raisingTheLimit_letsBlockedSessionsGoOn_whenTheAgentChanges() {
    Agents.apply(store, scripted("raise", "calls_per_hour: 1", "- say: \"hi\"", "internal://time"));
    SessionRecord r = start("raise", "one", false);
    awaitStatus(r.id(), SessionStatus.IDLE);
    sessions.send(r.id(), "two", "operator:test", Optional.empty());
    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);

    Agents.apply(store, scripted("raise", "calls_per_hour: 5", "- say: \"hi\"", "internal://time"));
    assertThat(sessions.agentChanged("raise")).isEqualTo(1);

    awaitStatus(r.id(), SessionStatus.IDLE);
    assertThat(of(r.id(), SessionEvent.BudgetUnblocked.class)).singleElement()
        .satisfies(u -> assertThat(u.reason()).isEqualTo("limit_raised: calls_per_hour is now 5 (was 1)"));
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).hasSize(2);
  }

  @Test
  void aLimitNotRaisedEnough_keepsTheSessionBlocked_withoutNewEvents() {
    Agents.apply(store, scripted("still", "calls_per_hour: 1", "- say: \"hi\"", "internal://time"));
    SessionRecord r = start("still", "one", false);
    awaitStatus(r.id(), SessionStatus.IDLE);
    sessions.send(r.id(), "two", "operator:test", Optional.empty());
    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    long seq = sessions.record(r.id()).lastSeq();

    Agents.apply(store, scripted("still", "calls_per_hour: 1, usd_per_day: 3", "- say: \"hi\"", "internal://time"));
    sessions.agentChanged("still");

    await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(5))
        .until(() -> !sessions.scheduler().busy(r.id()) && sessions.record(r.id()).lastSeq() == seq);
    assertThat(sessions.record(r.id()).effectiveStatus()).isEqualTo(SessionStatus.BUDGET_BLOCKED);
  }

  @Test
  void aWarningAt80Percent_isRecordedOncePerWindowAndSession() {
    Agents.apply(store, scripted("warn", "calls_per_hour: 10", calls(8, "time_now"), "internal://time"));
    SessionRecord r = start("warn", "go", true);

    awaitStatus(r.id(), SessionStatus.COMPLETED);
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).hasSize(9);
    assertThat(of(r.id(), SessionEvent.BudgetWarning.class)).singleElement().satisfies(w -> {
      assertThat(w.kind()).isEqualTo("calls_per_hour");
      assertThat(w.used()).isEqualByComparingTo("8");
      assertThat(w.limit()).isEqualByComparingTo("10");
    });
  }

  @Test
  void pricedToolCalls_reserveTheirPrice_areRecordedAsExternalActions_andBlockAtTheLimit() {
    Agents.apply(store, scripted("payer", "usd_per_day: 0.60", calls(3, "charge_card"), "internal://payments"));
    SessionRecord r = start("payer", "pay", true);

    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    assertThat(PricedToolProvider.CALLS.get()).isEqualTo(2);
    SessionEvent.BudgetBlocked blocked = of(r.id(), SessionEvent.BudgetBlocked.class).getFirst();
    assertThat(blocked.kind()).isEqualTo("usd_per_day");
    assertThat(blocked.used()).isEqualByComparingTo("0.50");
    assertThat(blocked.requested()).isEqualByComparingTo("0.25");
    assertThat(state(r.id()).pending()).singleElement()
        .satisfies(p -> assertThat(p.state()).isEqualTo(keel.core.PendingCall.CallState.REQUESTED));
    assertThat(externalActions(r.id())).containsExactly("charge_card 1 0.2500000000", "charge_card 1 0.2500000000");

    Agents.apply(store, scripted("payer", "usd_per_day: 1", calls(3, "charge_card"), "internal://payments"));
    sessions.agentChanged("payer");

    awaitStatus(r.id(), SessionStatus.COMPLETED);
    assertThat(PricedToolProvider.CALLS.get()).isEqualTo(3);
    assertThat(externalActions(r.id())).hasSize(3);
    assertThat(sessions.budgets().status("payer")).singleElement().satisfies(s -> {
      assertThat(s.kind()).isEqualTo(BudgetKind.USD_PER_DAY);
      assertThat(s.used()).isEqualByComparingTo("0.75");
      assertThat(s.reserved()).isEqualByComparingTo("0");
    });
  }

  List<String> externalActions(String id) {
    return store.ledger().entries(id).stream().filter(e -> e.kind() == CostKind.EXTERNAL_ACTION)
        .map(e -> e.detail() + " " + e.quantity() + " " + e.usd().toPlainString()).toList();
  }

  @Test
  void toolCallsPerHour_blocksTheNextToolCall_beforeItIsAuthorized() {
    Agents.apply(store, scripted("tools", "tool_calls_per_hour: 1", calls(2, "time_now"), "internal://time"));
    SessionRecord r = start("tools", "go", true);

    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    assertThat(of(r.id(), SessionEvent.ToolCallCompleted.class)).hasSize(1);
    assertThat(of(r.id(), SessionEvent.ToolCallAuthorized.class)).hasSize(1);
    assertThat(of(r.id(), SessionEvent.BudgetBlocked.class).getFirst().kind()).isEqualTo("tool_calls_per_hour");
  }

  @Test
  void usdPerDay_blocksAModelCall_whenItsEstimateDoesNotFit_andUsedIsExactlyWhatWasRecorded() {
    Agents.apply(store, openAi("spender", "usd_per_day: 0.0015"));
    SessionRecord r = start("spender", "steps=6", true);

    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    SessionEvent.BudgetBlocked blocked = of(r.id(), SessionEvent.BudgetBlocked.class).getFirst();
    SessionState s = state(r.id());
    assertThat(s.costUsd()).isPositive();
    assertThat(blocked.used()).isEqualTo(s.costUsd().setScale(10));
    assertThat(blocked.used().add(blocked.requested())).isGreaterThan(blocked.limit());
    assertThat(blocked.used()).isLessThanOrEqualTo(blocked.limit());
    assertThat(of(r.id(), SessionEvent.BudgetWarning.class)).hasSize(1);
  }

  @Test
  void theLedger_addsUpExactlyToTheSessionsRecordedCosts() {
    Agents.apply(store, openAi("ledgered", "calls_per_hour: 1000"));
    List<SessionRecord> started = new ArrayList<>();
    for (int i = 1; i <= 4; i++) {
      started.add(start("ledgered", "steps=" + i, true));
    }
    for (SessionRecord r : started) {
      awaitStatus(r.id(), SessionStatus.COMPLETED);
    }

    BigDecimal recorded = BigDecimal.ZERO;
    long inputTokens = 0;
    long outputTokens = 0;
    for (SessionRecord r : started) {
      SessionState s = state(r.id());
      recorded = recorded.add(s.costUsd());
      inputTokens += s.usage().inputTokens();
      outputTokens += s.usage().outputTokens();
      List<StoredEvent> log = sessions.events(r.id(), 0, 10_000);
      for (CostLedger.Entry e : store.ledger().entries(r.id())) {
        assertThat(e.agent()).isEqualTo("ledgered");
        assertThat(e.owner()).isEqualTo("team-b");
        assertThat(e.rootSessionId()).isEqualTo(r.id());
        SessionEvent recordedBy = log.get((int) e.seq() - 1).event();
        switch (e.kind()) {
          case MODEL_INPUT, MODEL_OUTPUT, MODEL_CACHE_WRITE, MODEL_CACHE_READ ->
              assertThat(recordedBy).isInstanceOfAny(SessionEvent.ModelResponded.class, SessionEvent.ModelEscalated.class);
          case COMPUTE_TOOL, EXTERNAL_ACTION -> assertThat(recordedBy).isInstanceOf(SessionEvent.ToolCallCompleted.class);
          case COMPUTE_STEP -> assertThat(e.detail()).isEqualTo("step");
        }
        assertThat(log.get((int) e.seq() - 1).at()).isEqualTo(e.at());
      }
    }
    CostLedger.Query q = new CostLedger.Query(START.minus(Duration.ofDays(1)), START.plus(Duration.ofDays(1)),
        java.util.Set.of(CostLedger.Dimension.KIND), Optional.of("ledgered"), Optional.empty());
    Map<CostKind, CostLedger.Row> byKind = new java.util.EnumMap<>(CostKind.class);
    for (CostLedger.Row row : store.ledger().totals(q, o -> true)) {
      byKind.put(CostKind.fromWire(row.group().get(CostLedger.Dimension.KIND)), row);
    }
    BigDecimal model = byKind.values().stream().filter(row -> CostKind.fromWire(row.group().get(CostLedger.Dimension.KIND)).model())
        .map(CostLedger.Row::usd).reduce(BigDecimal.ZERO, BigDecimal::add);
    assertThat(recorded).isPositive();
    assertThat(model).isEqualByComparingTo(recorded);
    assertThat(byKind.get(CostKind.MODEL_INPUT).quantity()).isEqualTo(inputTokens);
    assertThat(byKind.get(CostKind.MODEL_OUTPUT).quantity()).isEqualTo(outputTokens);
  }

  @Test
  void aBudgetBlockedSession_canBeCancelled() {
    Agents.apply(store, scripted("cancel", "calls_per_hour: 1", calls(1, "time_now"), "internal://time"));
    SessionRecord r = start("cancel", "go", true);
    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);

    sessions.cancel(r.id(), "operator:test", "enough");

    awaitStatus(r.id(), SessionStatus.CANCELLED);
    Trace.Span root = Trace.of(r.id(), sessions.events(r.id(), 0, 1000));
    Trace.Span wait = find(root, "budget");
    assertThat(wait.name()).isEqualTo("budget blocked: calls_per_hour");
    assertThat(wait.end()).isPresent();
  }

  @Test
  void theTrace_showsTheWaitAsABudgetSpan_endedWhenTheSessionWentOn() {
    Agents.apply(store, scripted("traced", "calls_per_hour: 1", calls(1, "time_now"), "internal://time"));
    SessionRecord r = start("traced", "go", true);
    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    clock.advance(Duration.ofMillis(500)); // still inside the hour
    Agents.apply(store, scripted("traced", "calls_per_hour: 2", calls(1, "time_now"), "internal://time"));
    sessions.agentChanged("traced");
    awaitStatus(r.id(), SessionStatus.COMPLETED);

    Trace.Span wait = find(Trace.of(r.id(), sessions.events(r.id(), 0, 1000)), "budget");

    assertThat(wait.attributes()).containsEntry("keel.budget.kind", "calls_per_hour")
        .containsEntry("keel.budget.limit", "1")
        .containsEntry("keel.budget.window_end", "2026-06-01T11:00:00Z");
    assertThat(wait.attributes().get("keel.budget.resumed")).startsWith("limit_raised");
    assertThat(wait.duration()).hasValue(Duration.ofMillis(500));
  }

  static Trace.Span find(Trace.Span span, String kind) {
    if (span.kind().equals(kind)) {
      return span;
    }
    for (Trace.Span c : span.children()) {
      Trace.Span f = find(c, kind);
      if (f != null) {
        return f;
      }
    }
    return null;
  }

  @Test
  void aBlockedSession_afterARestart_waitsAgain_andGoesOnWhenItsWindowHasEnded() {
    Agents.apply(store, scripted("restart", "calls_per_hour: 1", calls(1, "time_now"), "internal://time"));
    SessionRecord r = start("restart", "go", true);
    awaitStatus(r.id(), SessionStatus.BUDGET_BLOCKED);
    sessions.close();

    clock.advance(Duration.ofMinutes(5));
    sessions = service();
    sessions.recover();

    awaitStatus(r.id(), SessionStatus.COMPLETED);
    assertThat(of(r.id(), SessionEvent.BudgetUnblocked.class)).singleElement()
        .satisfies(u -> assertThat(u.reason()).startsWith("window_ended"));
  }
}
