package keel.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNoException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import keel.core.PendingCall.CallState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Walks every (status × event type) pair. The expected table is written out here on purpose: a
 * change to {@link SessionLifecycle} must change this test too, so it is never made by accident.
 */
class SessionLifecycleTest {

  private static final Map<SessionStatus, Set<String>> EXPECTED = new EnumMap<>(SessionStatus.class);

  static {
    EXPECTED.put(
        SessionStatus.IDLE, names("InputReceived InputRejected SessionCompleted SessionFailed SessionCancelled"));
    EXPECTED.put(
        SessionStatus.RUNNABLE,
        names("InputReceived InputRejected ModelCalled StepInterrupted SessionFailed SessionCancelled"));
    EXPECTED.put(
        SessionStatus.RUNNING,
        names(
            "ModelCalled ModelResponded ModelEscalated ModelDrifted ToolCallAuthorized ToolCallDenied ToolCallStarted"
                + " ToolCallCompleted ToolOutcomeUnknown SubagentSpawned StepInterrupted InputRejected SessionFailed"
                + " SessionCancelled BudgetBlocked BudgetWarning ApprovalRequested ApprovalDecided ActionProposed"));
    EXPECTED.put(
        SessionStatus.AWAITING_APPROVAL,
        names("ToolOutcomeResolved SessionResumed ToolOutcomeUnknown StepInterrupted InputRejected SessionFailed SessionCancelled"
            + " ApprovalRequested ApprovalDecided"));
    EXPECTED.put(
        SessionStatus.AWAITING_SUBAGENT, names("SubagentCompleted ApprovalDecided InputRejected SessionFailed SessionCancelled"));
    EXPECTED.put(SessionStatus.BUDGET_BLOCKED, names("BudgetUnblocked InputRejected SessionFailed SessionCancelled"));
    // an ended session still takes inputs out of its inbox, recording why they were not acted on
    EXPECTED.put(SessionStatus.COMPLETED, names("InputRejected"));
    EXPECTED.put(SessionStatus.FAILED, names("InputRejected"));
    EXPECTED.put(SessionStatus.CANCELLED, names("InputRejected"));
  }

  private static Set<String> names(String spaceSeparated) {
    return Set.of(spaceSeparated.split(" "));
  }

  /**
   * One instance of every event type; call events name c1 (started), c2 (outcome unknown), c3
   * (requested, a sub-agent call), c4 (spawned, waiting for child s-c4) or c5 (waiting for
   * approval apr-5).
   */
  private static final List<SessionEvent> SAMPLES =
      List.of(
          new SessionEvent.SessionStarted("helper", 1, "team-a", "user:ann", false),
          Log.input("in-9", "hello"),
          new SessionEvent.InputRejected("in-8", "the session ended"),
          Log.called(5),
          Log.responded(5, "answer", Log.call("c9")),
          new SessionEvent.ModelEscalated(5, "openai", "small", "openai", "large", "empty_answer", Usage.ZERO, java.math.BigDecimal.ONE),
          new SessionEvent.ModelDrifted(5, "large", "2026-01-01", "large-2026-02-02", "warn"),
          new SessionEvent.SessionResumed("op:bob", "large-2026-02-02"),
          Log.authorized("c1"),
          new SessionEvent.ToolCallDenied("c1", "no"),
          Log.started("c1", 2),
          Log.completed("c1", "done"),
          new SessionEvent.ToolOutcomeUnknown("c1", "crash"),
          new SessionEvent.ToolOutcomeResolved("c2", "succeeded", "ok", "op:bob"),
          new SessionEvent.SubagentSpawned("c3", "agent://helper", "s-c3", "helper", 1, "agent:helper", "jti-1"),
          new SessionEvent.SubagentCompleted("c4", "s-c4", "completed", Content.inline("child answer"), false),
          new SessionEvent.StepInterrupted("new message"),
          new SessionEvent.SessionCompleted("answer"),
          new SessionEvent.SessionFailed("boom", "it broke", true),
          new SessionEvent.SessionCancelled("op:bob", "enough"),
          new SessionEvent.BudgetBlocked(
              "usd_per_day", java.math.BigDecimal.TEN, new java.math.BigDecimal("9.5"), java.math.BigDecimal.ONE,
              java.math.BigDecimal.ONE, java.time.Instant.parse("2026-01-02T00:00:00Z")),
          new SessionEvent.BudgetUnblocked("usd_per_day", "window_ended"),
          new SessionEvent.ApprovalRequested("c3", "apr-3", "ledger/post", "{}", java.math.BigDecimal.TEN,
              List.of(new PolicyReason("spec.mode", "supervised")), java.time.Instant.parse("2026-01-02T00:00:00Z"),
              "agent:helper", "user:ann"),
          new SessionEvent.ApprovalDecided("c5", "apr-5", "approved", "op:bob", "ok", ""),
          new SessionEvent.ActionProposed("c3", "ledger/post", "{}", java.math.BigDecimal.ONE, "agent:helper"),
          new SessionEvent.BudgetWarning(
              "calls_per_hour", java.math.BigDecimal.TEN, java.math.BigDecimal.valueOf(8),
              java.time.Instant.parse("2026-01-01T11:00:00Z")));

  @Test
  void samples_coverEveryEventType() {
    assertThat(SAMPLES.stream().map(SessionEvent::type).collect(Collectors.toSet()))
        .isEqualTo(
            SessionLifecycle.eventTypes().stream().map(Class::getSimpleName).collect(Collectors.toSet()));
    assertThat(EXPECTED).containsOnlyKeys(SessionStatus.values());
  }

  static Stream<Arguments> everyStatusAndEvent() {
    List<Arguments> out = new ArrayList<>();
    for (SessionStatus status : SessionStatus.values()) {
      for (SessionEvent event : SAMPLES) {
        boolean allowed = EXPECTED.get(status).contains(event.type());
        out.add(
            Arguments.argumentSet(
                status.wireName() + " + " + event.type() + (allowed ? " folds" : " is rejected"),
                status,
                event,
                allowed));
      }
    }
    return out.stream();
  }

  @ParameterizedTest
  @MethodSource("everyStatusAndEvent")
  void transition(SessionStatus status, SessionEvent event, boolean allowed) {
    assertThat(SessionLifecycle.allows(status, event.getClass()))
        .as("SessionLifecycle.allows(%s, %s)", status, event.type())
        .isEqualTo(allowed);
    SessionState state = stateIn(status);
    StoredEvent next = Log.stored("s1", state.lastSeq() + 1, event);
    if (allowed) {
      assertThatNoException().isThrownBy(() -> state.apply(next));
      assertThat(state.lastSeq()).isEqualTo(next.seq());
    } else {
      SessionState.Snapshot before = state.snapshot();
      assertThatThrownBy(() -> state.apply(next))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("session s1: " + event.type() + " is not allowed while " + status.wireName());
      assertThat(state.snapshot()).isEqualTo(before);
    }
  }

  static Stream<Arguments> everyEventBeforeTheStart() {
    return SAMPLES.stream()
        .map(e -> Arguments.argumentSet("no status + " + e.type(), e));
  }

  @ParameterizedTest
  @MethodSource("everyEventBeforeTheStart")
  void onlySessionStarted_canOpenALog(SessionEvent event) {
    SessionState state = SessionState.empty();
    StoredEvent first = Log.stored("s1", 1, event);
    if (event instanceof SessionEvent.SessionStarted) {
      state.apply(first);
      assertThat(state.status()).contains(SessionStatus.IDLE);
    } else {
      assertThatThrownBy(() -> state.apply(first))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("session s1: the first event must be SessionStarted, got " + event.type());
    }
  }

  @Test
  void terminalStatuses_allowNothingButRecordingARejectedInput() {
    for (SessionStatus s : SessionStatus.values()) {
      boolean anythingElse =
          SessionLifecycle.eventTypes().stream()
              .filter(c -> c != SessionEvent.InputRejected.class)
              .anyMatch(c -> SessionLifecycle.allows(s, c.asSubclass(SessionEvent.class)));
      assertThat(anythingElse).as(s.wireName()).isEqualTo(!s.terminal());
    }
  }

  @Test
  void eventTypes_areTheSealedSet() {
    assertThat(SessionLifecycle.eventTypes())
        .containsExactlyInAnyOrder(SessionEvent.class.getPermittedSubclasses())
        .hasSize(26);
    assertThat(Arrays.stream(SessionEvent.class.getPermittedSubclasses()).map(Class::getSimpleName))
        .doesNotHaveDuplicates();
  }

  /**
   * A state in the given status, with four pending calls: c1 started, c2 whose outcome is unknown,
   * c3 requested and c4 spawned. It is built from a snapshot, for every status alike.
   */
  private static SessionState stateIn(SessionStatus status) {
    ToolCall c1 = Log.call("c1");
    ToolCall c2 = Log.call("c2");
    ToolCall c3 = new ToolCall("c3", "agent_helper", "{\"task\":\"t\"}");
    ToolCall c4 = new ToolCall("c4", "agent_helper", "{\"task\":\"u\"}");
    ToolCall c5 = new ToolCall("c5", "ledger_post", "{\"amount\":5}");
    return SessionState.restore(
        new SessionState.Snapshot(
            "helper",
            1,
            "team-a",
            false,
            status,
            10,
            1,
            1,
            Log.USAGE,
            List.of(new Message.User("hi"), new Message.Assistant("", List.of(c1, c2, c3, c4, c5))),
            List.of(
                new PendingCall(c1, CallState.STARTED, "mcp://x", false, 1, "k1"),
                new PendingCall(c2, CallState.OUTCOME_UNKNOWN, "mcp://x", false, 1, "k2"),
                new PendingCall(c3, CallState.REQUESTED, "", false, 0, ""),
                new PendingCall(c4, CallState.SPAWNED, "agent://helper", false, 1, "", "s-c4"),
                new PendingCall(c5, CallState.AWAITING_APPROVAL, "", false, 0, "", "", "apr-5")),
            "",
            "",
            false,
            java.math.BigDecimal.ZERO,
            "large-2026-02-02",
            List.of()));
  }
}
