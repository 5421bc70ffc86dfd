package keel.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Properties of the fold over random valid histories. Histories come from a small driver that, at
 * each step, picks one of the events the lifecycle allows in the current state; the random choices
 * are a list of integers, so jqwik shrinks a failing history to a short one.
 */
class SessionStatePropertiesTest {

  @Provide
  Arbitrary<List<StoredEvent>> histories() {
    return Arbitraries.integers().between(0, 999).list().ofMinSize(1).ofMaxSize(80).map(Driver::history);
  }

  @Property(tries = 300)
  void restoringAnyPrefixSnapshot_andFoldingTheRest_equalsFoldingEverything(
      @ForAll("histories") List<StoredEvent> history) {
    SessionState whole = SessionState.fold(history);
    for (int k = 0; k <= history.size(); k++) {
      SessionState prefix = SessionState.fold(history.subList(0, k));
      SessionState.Snapshot snap = prefix.snapshot();
      SessionState.Snapshot viaJson = EventCodec.decodeSnapshot(EventCodec.encodeSnapshot(snap));
      assertThat(viaJson).isEqualTo(snap);
      SessionState restored = SessionState.restore(viaJson);
      for (StoredEvent e : history.subList(k, history.size())) {
        restored.apply(e);
      }
      assertThat(restored.snapshot()).as("restored at %d of %d", k, history.size()).isEqualTo(whole.snapshot());
    }
  }

  @Property(tries = 300)
  void everyEvent_roundTripsThroughTheCodec(@ForAll("histories") List<StoredEvent> history) {
    for (StoredEvent e : history) {
      String json = EventCodec.encode(e.event());
      assertThat(EventCodec.decode(e.event().type(), json)).isEqualTo(e.event());
    }
  }

  @Property(tries = 300)
  void everyAnsweredToolCall_hasExactlyOneResult_andPendingOnesNone(
      @ForAll("histories") List<StoredEvent> history) {
    SessionState s = SessionState.fold(history);
    List<String> pending = s.pending().stream().map(p -> p.call().id()).toList();
    for (Map.Entry<String, Integer> e : Log.resultsPerCall(s.conversation()).entrySet()) {
      assertThat(e.getValue()).as("results for call %s", e.getKey()).isEqualTo(pending.contains(e.getKey()) ? 0 : 1);
    }
  }

  @Example
  void driver_reachesEveryEventType() {
    java.util.Random random = new java.util.Random(42);
    java.util.Set<String> seen = new java.util.HashSet<>();
    int longest = 0;
    for (int i = 0; i < 300; i++) {
      List<StoredEvent> h = Driver.history(random.ints(80, 0, 1000).boxed().toList());
      longest = Math.max(longest, h.size());
      h.forEach(e -> seen.add(e.event().type()));
    }
    assertThat(seen).hasSize(SessionLifecycle.eventTypes().size());
    assertThat(longest).isGreaterThan(40);
  }

  /** Builds a valid history by letting each random choice pick among the allowed next events. */
  static final class Driver {
    private final SessionState state = SessionState.empty();
    private final List<StoredEvent> events = new ArrayList<>();
    private int calls;
    private int inputs;
    private int steps;

    static List<StoredEvent> history(List<Integer> choices) {
      Driver d = new Driver();
      for (int choice : choices) {
        if (!d.step(choice)) {
          break;
        }
      }
      return List.copyOf(d.events);
    }

    private boolean step(int choice) {
      if (state.status().isEmpty()) {
        append(choice % 3 == 0
            ? new SessionEvent.SessionStarted("helper", 2, "team-a", "user:ann", choice % 2 == 0)
            : new SessionEvent.SessionStarted("helper", 2, "team-a", "agent:planner", choice % 2 == 0,
                List.of("internal://time", "agent://child"), List.of("operator:ann", "agent:planner"), "s-parent"));
        return true;
      }
      SessionStatus status = state.status().get();
      if (status.terminal()) {
        if (choice % 3 == 0) {
          append(new SessionEvent.InputRejected("late-" + choice, "the session is " + status.wireName()));
          return true;
        }
        return false;
      }
      // one choice in fifty ends the session, so histories are mostly long
      if (choice % 50 == 0) {
        append(
            switch (choice % 3) {
              case 0 -> new SessionEvent.SessionFailed("step_limit", "too many steps", false);
              case 1 -> new SessionEvent.SessionCancelled("op:bob", "enough");
              default ->
                  status == SessionStatus.IDLE
                      ? new SessionEvent.SessionCompleted(state.lastAnswer())
                      : new SessionEvent.SessionFailed("boom", "it broke", true);
            });
        return true;
      }
      List<SessionEvent> options = options(status, choice);
      append(options.get(Math.floorMod(choice / 50, options.size())));
      return true;
    }

    private List<SessionEvent> options(SessionStatus status, int choice) {
      List<SessionEvent> out = new ArrayList<>();
      switch (status) {
        case IDLE -> {
          out.add(input());
          if (choice % 5 == 0) {
            out.add(new SessionEvent.InputRejected("stale-" + choice, "nothing waits for a decision"));
          }
        }
        case RUNNABLE -> {
          out.add(new SessionEvent.ModelCalled(++steps, "openai", "gpt-test", "agent:helper", "jti-" + choice));
          out.add(new SessionEvent.ModelCalled(steps, "openai", "gpt-test"));
          out.add(input());
          if (choice % 7 == 0) {
            out.add(new SessionEvent.StepInterrupted("new message"));
          }
        }
        case RUNNING -> {
          if (state.pending().isEmpty()) {
            int n = choice % 4;
            List<ToolCall> toolCalls = new ArrayList<>();
            for (int i = 0; i < n; i++) {
              toolCalls.add(new ToolCall("c" + (++calls), "tool_" + (choice % 3), "{\"n\":" + i + "}"));
            }
            out.add(
                new SessionEvent.ModelResponded(
                    steps, "text " + choice, toolCalls, new Usage(choice, n, 0, choice % 5), "v1", choice,
                    "openai", "large", java.math.BigDecimal.valueOf(choice, 6)));
            if (choice % 3 == 0) {
              out.add(new SessionEvent.ModelEscalated(steps, "openai", "small", "openai", "large", "empty_answer",
                  new Usage(choice, 1, 0, 0), java.math.BigDecimal.valueOf(choice, 7)));
            }
            if (choice % 13 == 0) {
              out.add(new SessionEvent.ModelDrifted(steps, "large", "2026-01-01", "large-v" + choice, choice % 2 == 0 ? "warn" : "suspend"));
            }
          }
          for (PendingCall p : state.pending()) {
            String id = p.call().id();
            switch (p.state()) {
              case REQUESTED -> {
                out.add(new SessionEvent.ToolCallAuthorized(id, "mcp://tools/" + id, choice % 2 == 0, "agent:helper", "jti-" + choice));
                out.add(new SessionEvent.ToolCallAuthorized(id, "mcp://tools/" + id, false));
                out.add(new SessionEvent.ToolCallDenied(id, "policy says no", "agent:helper", "jti-" + choice));
                if (choice % 4 == 1) {
                  out.add(new SessionEvent.SubagentSpawned(id, "agent://child", "s-child-" + id, "child", 3, "agent:helper", "jti-" + choice));
                }
                if (choice % 3 == 2) {
                  out.add(approvalRequested(id, choice));
                }
                if (choice % 5 == 3) {
                  out.add(new SessionEvent.ActionProposed(id, "ledger/post", p.call().arguments(),
                      java.math.BigDecimal.valueOf(choice, 2), "agent:helper"));
                }
              }
              case AWAITING_APPROVAL -> out.addAll(decisions(p, choice));
              case APPROVED -> {
                out.add(new SessionEvent.ToolCallAuthorized(id, "mcp://gateway/ledger", false, "agent:helper", "jti-" + choice));
                out.add(new SessionEvent.ToolCallDenied(id, "the edited call breaks policy/no-big", "agent:helper", "jti-" + choice));
              }
              case AUTHORIZED -> out.add(new SessionEvent.ToolCallStarted(id, p.attempt() + 1, "key-" + id));
              case STARTED -> {
                Content result =
                    choice % 3 == 0
                        ? new Content.Blob("ab".repeat(32), 10_000 + choice, "preview " + id)
                        : Content.inline("result of " + id);
                out.add(new SessionEvent.ToolCallCompleted(id, result, choice % 5 == 0, choice));
                out.add(new SessionEvent.ToolCallCompleted(id, result, false, choice));
                out.add(new SessionEvent.ToolOutcomeUnknown(id, "node died"));
              }
              case OUTCOME_UNKNOWN, SPAWNED -> {}
            }
          }
          if (choice % 11 == 0 || out.isEmpty()) {
            out.add(new SessionEvent.StepInterrupted("new message"));
          }
          String kind = BudgetKind.values()[choice % BudgetKind.values().length].wireName();
          java.time.Instant windowEnd = java.time.Instant.EPOCH.plusSeconds(3600L * (1 + choice % 3));
          if (choice % 4 == 0) {
            out.add(new SessionEvent.BudgetWarning(kind, java.math.BigDecimal.TEN, java.math.BigDecimal.valueOf(8), windowEnd));
          }
          if (choice % 9 == 0) {
            out.add(new SessionEvent.BudgetBlocked(kind, java.math.BigDecimal.TEN, java.math.BigDecimal.valueOf(choice % 10),
                java.math.BigDecimal.ONE, java.math.BigDecimal.valueOf(choice, 3), windowEnd));
          }
        }
        case BUDGET_BLOCKED -> {
          String kind = state.budgetBlock().orElseThrow().kind();
          out.add(new SessionEvent.BudgetUnblocked(kind, choice % 2 == 0 ? "window_ended" : "limit_raised"));
        }
        case AWAITING_APPROVAL -> {
          if (!state.driftPending().isEmpty()) {
            out.add(new SessionEvent.SessionResumed("op:bob", state.driftPending()));
          }
          for (PendingCall p : state.pending()) {
            String id = p.call().id();
            if (p.state() == PendingCall.CallState.OUTCOME_UNKNOWN) {
              out.add(new SessionEvent.ToolOutcomeResolved(id, "succeeded", "it worked", "op:bob"));
              out.add(new SessionEvent.ToolOutcomeResolved(id, "failed", "it did not", "op:bob"));
              out.add(new SessionEvent.ToolOutcomeResolved(id, "retry", "", "op:bob"));
            } else if (p.state() == PendingCall.CallState.STARTED) {
              out.add(new SessionEvent.ToolOutcomeUnknown(id, "node died"));
            } else if (p.state() == PendingCall.CallState.AWAITING_APPROVAL) {
              out.addAll(decisions(p, choice));
            } else if (p.state() == PendingCall.CallState.REQUESTED && choice % 2 == 0) {
              out.add(approvalRequested(id, choice));
            }
          }
          out.add(new SessionEvent.StepInterrupted("operator"));
        }
        case AWAITING_SUBAGENT -> {
          for (PendingCall p : state.pending()) {
            if (p.state() == PendingCall.CallState.SPAWNED) {
              out.add(new SessionEvent.SubagentCompleted(p.call().id(), p.subagentSessionId(), "completed",
                  Content.inline("child says " + choice), false));
              out.add(new SessionEvent.SubagentCompleted(p.call().id(), p.subagentSessionId(), choice % 2 == 0 ? "failed" : "cancelled",
                  Content.inline("child ended: " + choice), true));
            }
          }
          if (choice % 9 == 0) {
            out.add(new SessionEvent.InputRejected("early-" + choice, "the session waits for a sub-agent"));
          }
          for (PendingCall p : state.pending()) {
            if (p.state() == PendingCall.CallState.AWAITING_APPROVAL) {
              out.addAll(decisions(p, choice));
            }
          }
        }
        default -> throw new IllegalStateException("the driver never reaches " + status);
      }
      return out;
    }

    private static SessionEvent approvalRequested(String callId, int choice) {
      return new SessionEvent.ApprovalRequested(callId, "apr-" + callId + "-" + choice, "ledger/post", "{\"amount\":" + choice + "}",
          java.math.BigDecimal.valueOf(choice, 1),
          List.of(new PolicyReason("spec.approval.on_action_value_usd_gt", "over 10 USD")),
          java.time.Instant.EPOCH.plusSeconds(choice), "agent:helper", "operator:ann");
    }

    private static List<SessionEvent> decisions(PendingCall p, int choice) {
      String id = p.call().id();
      return List.of(
          new SessionEvent.ApprovalDecided(id, p.approvalId(), "approved", "operator:bob", "fine",
              choice % 2 == 0 ? "" : "{\"amount\":1}"),
          new SessionEvent.ApprovalDecided(id, p.approvalId(), "denied", "operator:bob", "too much", ""),
          new SessionEvent.ApprovalDecided(id, p.approvalId(), "expired", "keel:expiry", "no decision in 24h", ""));
    }

    private SessionEvent input() {
      inputs++;
      return new SessionEvent.InputReceived("in-" + inputs, "message " + inputs, "user:ann");
    }

    private void append(SessionEvent e) {
      assertThat(SessionLifecycle.allows(state.status().orElse(SessionStatus.IDLE), e.getClass())
              || e instanceof SessionEvent.SessionStarted)
          .as("driver picked %s while %s", e.type(), state.status())
          .isTrue();
      StoredEvent stored = Log.stored("s-prop", events.size() + 1, e);
      state.apply(stored);
      events.add(stored);
    }
  }
}
