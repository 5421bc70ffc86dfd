package keel.core;

import static keel.core.Log.authorized;
import static keel.core.Log.call;
import static keel.core.Log.called;
import static keel.core.Log.completed;
import static keel.core.Log.input;
import static keel.core.Log.responded;
import static keel.core.Log.started;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import keel.core.PendingCall.CallState;
import org.junit.jupiter.api.Test;

class SessionStateTest {

  @Test
  void emptyState_hasNoStatus() {
    SessionState s = SessionState.empty();
    assertThat(s.status()).isEmpty();
    assertThat(s.lastSeq()).isZero();
    assertThat(s.conversation()).isEmpty();
  }

  @Test
  void sessionStarted_makesTheSessionIdle_withItsAgentRevision() {
    SessionState s = Log.conversation("s1").fold();
    assertThat(s.status()).contains(SessionStatus.IDLE);
    assertThat(s.agent()).isEqualTo("helper");
    assertThat(s.revision()).isEqualTo(3);
    assertThat(s.owner()).isEqualTo("team-a");
    assertThat(s.task()).isFalse();
    assertThat(s.lastSeq()).isEqualTo(1);
  }

  @Test
  void fullConversation_withTwoToolCalls_foldsStepByStep() {
    Log log = Log.conversation("s1");
    SessionState s = log.fold();

    apply(s, log, input("in-1", "what is in a.txt and b.txt?"));
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(s.conversation()).containsExactly(new Message.User("what is in a.txt and b.txt?"));

    apply(s, log, called(1));
    assertThat(s.status()).contains(SessionStatus.RUNNING);

    apply(s, log, responded(1, "let me look", call("c1"), call("c2")));
    assertThat(s.status()).contains(SessionStatus.RUNNING);
    assertThat(s.pending()).extracting(PendingCall::state).containsExactly(CallState.REQUESTED, CallState.REQUESTED);
    assertThat(s.modelCalls()).isEqualTo(1);
    assertThat(s.stepsSinceInput()).isEqualTo(1);

    apply(s, log, authorized("c1"), authorized("c2"));
    assertThat(s.pending()).allSatisfy(p -> {
      assertThat(p.state()).isEqualTo(CallState.AUTHORIZED);
      assertThat(p.capability()).isEqualTo("mcp://files/" + p.call().id());
    });

    apply(s, log, started("c1", 1), started("c2", 1));
    assertThat(s.pending()).allSatisfy(p -> {
      assertThat(p.state()).isEqualTo(CallState.STARTED);
      assertThat(p.attempt()).isEqualTo(1);
      assertThat(p.idempotencyKey()).isEqualTo("key-" + p.call().id());
    });

    apply(s, log, completed("c1", "contents of a"));
    assertThat(s.status()).contains(SessionStatus.RUNNING);
    assertThat(s.pending()).extracting(p -> p.call().id()).containsExactly("c2");

    apply(s, log, completed("c2", "contents of b"));
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(s.pending()).isEmpty();

    apply(s, log, called(2), responded(2, "a has a, b has b"));
    assertThat(s.status()).contains(SessionStatus.IDLE);
    assertThat(s.lastAnswer()).isEqualTo("a has a, b has b");
    assertThat(s.modelCalls()).isEqualTo(2);
    assertThat(s.stepsSinceInput()).isEqualTo(2);
    assertThat(s.usage()).isEqualTo(Log.USAGE.plus(Log.USAGE));
    assertThat(s.lastSeq()).isEqualTo(12);
    assertThat(s.conversation())
        .containsExactly(
            new Message.User("what is in a.txt and b.txt?"),
            new Message.Assistant("let me look", List.of(call("c1"), call("c2"))),
            new Message.ToolResult("c1", "tool_c1", Content.inline("contents of a"), false),
            new Message.ToolResult("c2", "tool_c2", Content.inline("contents of b"), false),
            new Message.Assistant("a has a, b has b", List.of()));

    // folding the whole log at once gives the same state as applying step by step
    assertThat(log.fold()).isEqualTo(s);
  }

  @Test
  void newInput_resetsStepsSinceInput() {
    Log log = Log.conversation("s1").add(input("in-1", "hi"), called(1), responded(1, "hello"));
    assertThat(log.fold().stepsSinceInput()).isEqualTo(1);
    log.add(input("in-2", "again"));
    assertThat(log.fold().stepsSinceInput()).isZero();
    assertThat(log.fold().status()).contains(SessionStatus.RUNNABLE);
  }

  @Test
  void deniedCall_becomesAnErrorResultWithTheReason() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "delete everything"), called(1), responded(1, "", call("c1")))
            .add(new SessionEvent.ToolCallDenied("c1", "policy no-deletes forbids it"));
    SessionState s = log.fold();
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(s.pending()).isEmpty();
    assertThat(s.conversation().getLast())
        .isEqualTo(new Message.ToolResult("c1", "tool_c1", Content.inline("policy no-deletes forbids it"), true));
  }

  @Test
  void deniedCall_whileAnotherIsPending_keepsTheStepRunning() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1"), call("c2")))
            .add(new SessionEvent.ToolCallDenied("c1", "no"));
    SessionState s = log.fold();
    assertThat(s.status()).contains(SessionStatus.RUNNING);
    assertThat(s.pending()).extracting(p -> p.call().id()).containsExactly("c2");
  }

  private static Log unknownOutcome() {
    return Log.conversation("s1")
        .add(input("in-1", "pay the invoice"), called(1), responded(1, "", call("c1")))
        .add(authorized("c1"), started("c1", 1))
        .add(new SessionEvent.ToolOutcomeUnknown("c1", "node-a died while the call ran"));
  }

  @Test
  void outcomeUnknown_waitsForAHuman() {
    SessionState s = unknownOutcome().fold();
    assertThat(s.status()).contains(SessionStatus.AWAITING_APPROVAL);
    assertThat(s.pending()).singleElement().extracting(PendingCall::state).isEqualTo(CallState.OUTCOME_UNKNOWN);
  }

  @Test
  void outcomeResolvedAsSucceeded_givesTheModelTheHumansResult() {
    SessionState s =
        unknownOutcome().add(new SessionEvent.ToolOutcomeResolved("c1", "succeeded", "paid, ref 42", "op:bob")).fold();
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(s.pending()).isEmpty();
    assertThat(s.conversation().getLast())
        .isEqualTo(new Message.ToolResult("c1", "tool_c1", Content.inline("paid, ref 42"), false));
  }

  @Test
  void outcomeResolvedAsFailed_givesTheModelAnError() {
    SessionState s =
        unknownOutcome().add(new SessionEvent.ToolOutcomeResolved("c1", "failed", "not paid", "op:bob")).fold();
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(s.conversation().getLast())
        .isEqualTo(new Message.ToolResult("c1", "tool_c1", Content.inline("not paid"), true));
  }

  @Test
  void outcomeResolvedAsRetry_authorizesTheCallAgain_andItRunsWithTheSameKey() {
    Log log = unknownOutcome().add(new SessionEvent.ToolOutcomeResolved("c1", "retry", "", "op:bob"));
    SessionState s = log.fold();
    assertThat(s.status()).contains(SessionStatus.RUNNING);
    assertThat(s.pending()).singleElement().satisfies(p -> {
      assertThat(p.state()).isEqualTo(CallState.AUTHORIZED);
      assertThat(p.capability()).isEqualTo("mcp://files/c1");
      assertThat(p.idempotencyKey()).isEqualTo("key-c1");
    });

    s = log.add(started("c1", 2), completed("c1", "paid")).fold();
    assertThat(s.status()).contains(SessionStatus.RUNNABLE);
    assertThat(Log.resultsPerCall(s.conversation())).containsExactly(Map.entry("c1", 1));
  }

  @Test
  void outcomeResolved_whileAnotherCallIsStillPending_keepsTheStepRunning() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1"), call("c2")))
            .add(authorized("c1"), authorized("c2"), started("c1", 1), started("c2", 1))
            .add(new SessionEvent.ToolOutcomeUnknown("c1", "crash"))
            .add(new SessionEvent.ToolOutcomeUnknown("c2", "crash"))
            .add(new SessionEvent.ToolOutcomeResolved("c1", "succeeded", "ok", "op:bob"));
    assertThat(log.fold().status()).contains(SessionStatus.AWAITING_APPROVAL);
    log.add(new SessionEvent.ToolOutcomeResolved("c2", "retry", "", "op:bob"));
    assertThat(log.fold().status()).contains(SessionStatus.RUNNING);
  }

  @Test
  void outcomeResolved_forACallWhoseOutcomeIsKnown_isRejected() {
    // regression: a resolution for a call that is still running was folded as its result
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1"), call("c2")))
            .add(authorized("c1"), authorized("c2"), started("c1", 1), started("c2", 1))
            .add(new SessionEvent.ToolOutcomeUnknown("c1", "crash"))
            .add(new SessionEvent.ToolOutcomeResolved("c2", "succeeded", "ok", "op:bob"));
    assertThatThrownBy(log::fold)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("session s1")
        .hasMessageContaining("c2")
        .hasMessageContaining("outcome is not unknown");
  }

  @Test
  void outcomeResolved_withAnUnknownResolution_isRejected() {
    // regression: any resolution other than "failed" or "retry" (a typo) was folded as "succeeded"
    assertThatThrownBy(() -> new SessionEvent.ToolOutcomeResolved("c1", "sucess", "ok", "op:bob"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("\"sucess\"")
        .hasMessageContaining("succeeded, failed or retry");
  }

  @Test
  void interrupt_abandonsPendingCalls_andEveryToolCallStillGetsExactlyOneResult() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1"), call("c2"), call("c3")))
            .add(authorized("c1"), started("c1", 1), completed("c1", "done"), authorized("c2"))
            .add(new SessionEvent.StepInterrupted("a new message arrived"));
    SessionState s = log.fold();
    assertThat(s.status()).contains(SessionStatus.IDLE);
    assertThat(s.pending()).isEmpty();
    assertThat(Log.resultsPerCall(s.conversation()))
        .containsExactly(Map.entry("c1", 1), Map.entry("c2", 1), Map.entry("c3", 1));
    assertThat(s.conversation().getLast())
        .isEqualTo(new Message.ToolResult("c3", "tool_c3", Content.inline("not run: a new message arrived"), true));

    // the session goes on with the next message
    s = log.add(input("in-2", "instead do y"), called(2), responded(2, "ok")).fold();
    assertThat(s.status()).contains(SessionStatus.IDLE);
  }

  @Test
  void interrupt_whileAwaitingApproval_abandonsTheUnknownCall() {
    SessionState s = unknownOutcome().add(new SessionEvent.StepInterrupted("operator")).fold();
    assertThat(s.status()).contains(SessionStatus.IDLE);
    assertThat(Log.resultsPerCall(s.conversation())).containsExactly(Map.entry("c1", 1));
  }

  @Test
  void task_completesAfterItsAnswer_andAcceptsNothingMore() {
    Log log =
        Log.task("s1")
            .add(input("in-1", "summarise"), called(1), responded(1, "the summary"))
            .add(new SessionEvent.SessionCompleted("the summary"));
    SessionState s = log.fold();
    assertThat(s.task()).isTrue();
    assertThat(s.status()).contains(SessionStatus.COMPLETED);
    assertThat(s.status().orElseThrow().terminal()).isTrue();
    assertThat(s.lastAnswer()).isEqualTo("the summary");

    log.add(input("in-2", "more?"));
    assertThatThrownBy(log::fold)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: InputReceived is not allowed while completed");
  }

  @Test
  void failure_isRecordedAsData() {
    SessionState s =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1))
            .add(new SessionEvent.SessionFailed("step_limit", "more than 20 steps", false))
            .fold();
    assertThat(s.status()).contains(SessionStatus.FAILED);
    assertThat(s.failure()).isEqualTo("step_limit: more than 20 steps");
  }

  @Test
  void cancel_whileAwaitingApproval_recordsWhoCancelled() {
    SessionState s = unknownOutcome().add(new SessionEvent.SessionCancelled("op:bob", "wrong invoice")).fold();
    assertThat(s.status()).contains(SessionStatus.CANCELLED);
    assertThat(s.failure()).isEqualTo("cancelled by op:bob: wrong invoice");
  }

  @Test
  void sequenceGap_isRejected_namingSessionAndSequence() {
    SessionState s = Log.conversation("s1").fold();
    StoredEvent third = Log.stored("s1", 3, input("in-1", "x"));
    assertThatThrownBy(() -> s.apply(third))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: event 3 does not follow 1");
    assertThat(s.lastSeq()).isEqualTo(1);
  }

  @Test
  void repeatedSequence_isRejected() {
    Log log = Log.conversation("s1");
    SessionState s = log.fold();
    assertThatThrownBy(() -> s.apply(log.last()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: event 1 does not follow 1");
  }

  @Test
  void firstEvent_mustBeSessionStarted() {
    Log log = new Log("s1").add(input("in-1", "x"));
    assertThatThrownBy(log::fold)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: the first event must be SessionStarted, got InputReceived");
  }

  @Test
  void eventNotAllowedInStatus_isRejected_andLeavesTheStateUnchanged() {
    Log log = Log.conversation("s1");
    SessionState s = log.fold();
    SessionState.Snapshot before = s.snapshot();
    assertThatThrownBy(() -> s.apply(Log.stored("s1", 2, called(1))))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: ModelCalled is not allowed while idle");
    assertThat(s.snapshot()).isEqualTo(before);
  }

  @Test
  void eventForAnUnknownCall_isRejected() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1")))
            .add(authorized("nope"));
    assertThatThrownBy(log::fold)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("session s1: no pending tool call with id \"nope\"");
  }

  @Test
  void snapshotThenTail_equalsFoldFromScratch_atEveryPoint() {
    Log log =
        Log.conversation("s1")
            .add(input("in-1", "x"), called(1), responded(1, "", call("c1"), call("c2")))
            .add(authorized("c1"), new SessionEvent.ToolCallDenied("c2", "no"), started("c1", 1))
            .add(new SessionEvent.ToolOutcomeUnknown("c1", "crash"))
            .add(new SessionEvent.ToolOutcomeResolved("c1", "retry", "", "op:bob"))
            .add(started("c1", 2), completed("c1", "ok"), called(2), responded(2, "answer"));
    List<StoredEvent> all = log.events();
    SessionState whole = SessionState.fold(all);
    for (int k = 1; k <= all.size(); k++) {
      SessionState.Snapshot snap = SessionState.fold(all.subList(0, k)).snapshot();
      assertThat(snap.lastSeq()).isEqualTo(k);
      SessionState restored = SessionState.restore(EventCodec.decodeSnapshot(EventCodec.encodeSnapshot(snap)));
      assertThat(restored).isEqualTo(SessionState.restore(snap));
      for (StoredEvent e : all.subList(k, all.size())) {
        restored.apply(e);
      }
      assertThat(restored).as("restored at %d, folded the rest", k).isEqualTo(whole);
      assertThat(restored.snapshot()).isEqualTo(whole.snapshot());
    }
  }

  @Test
  void snapshot_isNotChangedByLaterEvents() {
    Log log = Log.conversation("s1").add(input("in-1", "x"), called(1));
    SessionState s = log.fold();
    SessionState.Snapshot snap = s.snapshot();
    apply(s, log, responded(1, "", call("c1")));
    assertThat(snap.conversation()).hasSize(1);
    assertThat(snap.pending()).isEmpty();
    assertThat(snap.status()).isEqualTo(SessionStatus.RUNNING);

    SessionState restored = SessionState.restore(snap);
    restored.apply(log.last());
    assertThat(snap.conversation()).hasSize(1);
    assertThatThrownBy(() -> restored.conversation().add(new Message.User("sneaky")))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  private static void apply(SessionState s, Log log, SessionEvent... events) {
    for (SessionEvent e : events) {
      log.add(e);
      s.apply(log.last());
    }
  }
}
