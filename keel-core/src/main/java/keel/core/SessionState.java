package keel.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The state a step needs, rebuilt by folding a session's events from its latest snapshot on.
 *
 * <p>Not thread-safe: a state belongs to the one step that runs its session. It is mutable so that
 * folding a long session costs time linear in its events; {@link #snapshot()} takes an immutable
 * copy for storage and {@link #restore} rebuilds a state from one.
 */
public final class SessionState {

  /**
   * An immutable copy of a state, as stored in a snapshot.
   *
   * @param budgetBlock the block the session waits on, or null when it is not budget-blocked
   * @param budgetWarnings the budget windows this session has warned about, one {@code
   *     kind@windowEnd} per budget kind
   */
  public record Snapshot(
      String agent,
      int revision,
      String owner,
      boolean task,
      SessionStatus status,
      long lastSeq,
      int stepsSinceInput,
      long modelCalls,
      Usage usage,
      List<Message> conversation,
      List<PendingCall> pending,
      String lastAnswer,
      String failure,
      boolean escalatedSinceInput,
      java.math.BigDecimal costUsd,
      String driftPending,
      List<String> acceptedVersions,
      List<String> grants,
      List<String> chain,
      String parentSessionId,
      SessionEvent.BudgetBlocked budgetBlock,
      List<String> budgetWarnings) {
    public Snapshot {
      conversation = List.copyOf(conversation);
      pending = List.copyOf(pending);
      // snapshots taken before the model gateway lack these
      costUsd = costUsd == null ? java.math.BigDecimal.ZERO : costUsd;
      driftPending = driftPending == null ? "" : driftPending;
      acceptedVersions = acceptedVersions == null ? List.of() : List.copyOf(acceptedVersions);
      // snapshots taken before identities lack these
      grants = grants == null ? List.of() : List.copyOf(grants);
      chain = chain == null ? List.of() : List.copyOf(chain);
      parentSessionId = parentSessionId == null ? "" : parentSessionId;
      // and snapshots taken before budgets lack these
      budgetWarnings = budgetWarnings == null ? List.of() : List.copyOf(budgetWarnings);
    }

    /** A snapshot without identity and budget state. */
    public Snapshot(
        String agent,
        int revision,
        String owner,
        boolean task,
        SessionStatus status,
        long lastSeq,
        int stepsSinceInput,
        long modelCalls,
        Usage usage,
        List<Message> conversation,
        List<PendingCall> pending,
        String lastAnswer,
        String failure,
        boolean escalatedSinceInput,
        java.math.BigDecimal costUsd,
        String driftPending,
        List<String> acceptedVersions) {
      this(agent, revision, owner, task, status, lastSeq, stepsSinceInput, modelCalls, usage, conversation,
          pending, lastAnswer, failure, escalatedSinceInput, costUsd, driftPending, acceptedVersions,
          List.of(), List.of(), "", null, List.of());
    }

    /** A snapshot without model-gateway state. */
    public Snapshot(
        String agent,
        int revision,
        String owner,
        boolean task,
        SessionStatus status,
        long lastSeq,
        int stepsSinceInput,
        long modelCalls,
        Usage usage,
        List<Message> conversation,
        List<PendingCall> pending,
        String lastAnswer,
        String failure) {
      this(agent, revision, owner, task, status, lastSeq, stepsSinceInput, modelCalls, usage, conversation,
          pending, lastAnswer, failure, false, java.math.BigDecimal.ZERO, "", List.of());
    }
  }

  private String agent = "";
  private int revision;
  private String owner = "";
  private boolean task;
  private SessionStatus status;
  private long lastSeq;
  private int stepsSinceInput;
  private long modelCalls;
  private Usage usage = Usage.ZERO;
  private final List<Message> conversation;
  private final List<PendingCall> pending;
  private String lastAnswer = "";
  private String failure = "";
  private boolean escalatedSinceInput;
  private java.math.BigDecimal costUsd = java.math.BigDecimal.ZERO;
  private String driftPending = "";
  private final List<String> acceptedVersions = new ArrayList<>();
  private List<String> grants = List.of();
  private List<String> chain = List.of();
  private String parentSessionId = "";
  private SessionEvent.BudgetBlocked budgetBlock;
  private final List<String> budgetWarnings = new ArrayList<>();

  private SessionState() {
    this.conversation = new ArrayList<>();
    this.pending = new ArrayList<>();
  }

  /** The state of a session that has no events yet. */
  public static SessionState empty() {
    return new SessionState();
  }

  /** Rebuilds a state from a snapshot; fold the events after {@code snapshot.lastSeq()} on it. */
  public static SessionState restore(Snapshot s) {
    SessionState st = new SessionState();
    st.agent = s.agent();
    st.revision = s.revision();
    st.owner = s.owner();
    st.task = s.task();
    st.status = s.status();
    st.lastSeq = s.lastSeq();
    st.stepsSinceInput = s.stepsSinceInput();
    st.modelCalls = s.modelCalls();
    st.usage = s.usage();
    st.conversation.addAll(s.conversation());
    st.pending.addAll(s.pending());
    st.lastAnswer = s.lastAnswer();
    st.failure = s.failure();
    st.escalatedSinceInput = s.escalatedSinceInput();
    st.costUsd = s.costUsd();
    st.driftPending = s.driftPending();
    st.acceptedVersions.addAll(s.acceptedVersions());
    st.grants = s.grants();
    st.chain = s.chain();
    st.parentSessionId = s.parentSessionId();
    st.budgetBlock = s.budgetBlock();
    st.budgetWarnings.addAll(s.budgetWarnings());
    return st;
  }

  /** Folds events in order onto an empty state. */
  public static SessionState fold(Iterable<StoredEvent> events) {
    SessionState st = empty();
    for (StoredEvent e : events) {
      st.apply(e);
    }
    return st;
  }

  public Snapshot snapshot() {
    return new Snapshot(
        agent,
        revision,
        owner,
        task,
        status,
        lastSeq,
        stepsSinceInput,
        modelCalls,
        usage,
        conversation,
        pending,
        lastAnswer,
        failure,
        escalatedSinceInput,
        costUsd,
        driftPending,
        acceptedVersions,
        grants,
        chain,
        parentSessionId,
        budgetBlock,
        budgetWarnings);
  }

  /**
   * Applies one stored event.
   *
   * @throws IllegalStateException if the event does not follow the last one, or is not allowed in
   *     the current status (a corrupt log), naming the session, sequence and status
   */
  public void apply(StoredEvent stored) {
    if (stored.seq() != lastSeq + 1) {
      throw new IllegalStateException(
          "session "
              + stored.sessionId()
              + ": event "
              + stored.seq()
              + " does not follow "
              + lastSeq);
    }
    apply(stored.sessionId(), stored.event());
    lastSeq = stored.seq();
  }

  private void apply(String sessionId, SessionEvent event) {
    if (status == null) {
      if (!(event instanceof SessionEvent.SessionStarted)) {
        throw new IllegalStateException(
            "session " + sessionId + ": the first event must be SessionStarted, got " + event.type());
      }
    } else if (!SessionLifecycle.allows(status, event.getClass())) {
      throw new IllegalStateException(
          "session "
              + sessionId
              + ": "
              + event.type()
              + " is not allowed while "
              + status.wireName());
    }
    switch (event) {
      case SessionEvent.SessionStarted e -> {
        agent = e.agent();
        revision = e.revision();
        owner = e.owner();
        task = e.task();
        grants = e.grants();
        // a log recorded before identities: the chain is who started the session
        chain = e.chain().isEmpty() ? List.of(e.principal()) : e.chain();
        parentSessionId = e.parentSessionId();
        status = SessionStatus.IDLE;
      }
      case SessionEvent.InputReceived e -> {
        conversation.add(new Message.User(e.text()));
        stepsSinceInput = 0;
        escalatedSinceInput = false;
        status = SessionStatus.RUNNABLE;
      }
      case SessionEvent.ModelCalled e -> status = SessionStatus.RUNNING;
      case SessionEvent.ModelResponded e -> {
        conversation.add(new Message.Assistant(e.text(), e.toolCalls()));
        stepsSinceInput++;
        modelCalls++;
        usage = usage.plus(e.usage());
        costUsd = costUsd.add(e.costUsd());
        for (ToolCall call : e.toolCalls()) {
          pending.add(PendingCall.requested(call));
        }
        if (pending.isEmpty()) {
          lastAnswer = e.text();
          status = SessionStatus.IDLE;
        }
      }
      case SessionEvent.ModelEscalated e -> {
        escalatedSinceInput = true;
        usage = usage.plus(e.usage());
        costUsd = costUsd.add(e.costUsd());
      }
      case SessionEvent.ModelDrifted e -> {
        if (e.action().equals("suspend")) {
          driftPending = e.reported();
          status = SessionStatus.AWAITING_APPROVAL;
        }
      }
      case SessionEvent.SessionResumed e -> {
        if (driftPending.isEmpty()) {
          throw new IllegalStateException(
              "session " + sessionId + ": SessionResumed, but the session is not suspended on a model drift");
        }
        acceptedVersions.add(e.acceptedVersion());
        driftPending = "";
        // the model call that drifted is due again
        status = SessionStatus.RUNNING;
      }
      case SessionEvent.ToolCallAuthorized e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        pending.set(
            i,
            new PendingCall(
                p.call(),
                PendingCall.CallState.AUTHORIZED,
                e.capability(),
                e.idempotent(),
                p.attempt(),
                p.idempotencyKey()));
      }
      case SessionEvent.ToolCallDenied e -> {
        PendingCall p = pending.remove(indexOf(sessionId, e.callId()));
        conversation.add(
            new Message.ToolResult(p.call().id(), p.call().name(), Content.inline(e.reason()), true));
        afterCallEnded();
      }
      case SessionEvent.SubagentSpawned e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        if (p.state() != PendingCall.CallState.REQUESTED) {
          throw new IllegalStateException(
              "session " + sessionId + ": SubagentSpawned for tool call \"" + e.callId()
                  + "\", which is " + p.state().name().toLowerCase(java.util.Locale.ROOT) + ", not requested");
        }
        pending.set(
            i,
            new PendingCall(
                p.call(), PendingCall.CallState.SPAWNED, e.capability(), false, 1, "", e.childSessionId()));
        status = SessionStatus.AWAITING_SUBAGENT;
      }
      case SessionEvent.SubagentCompleted e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        if (p.state() != PendingCall.CallState.SPAWNED || !p.subagentSessionId().equals(e.childSessionId())) {
          throw new IllegalStateException(
              "session " + sessionId + ": SubagentCompleted for tool call \"" + e.callId()
                  + "\" and child session " + e.childSessionId() + ", but that call is not waiting for that child");
        }
        pending.remove(i);
        conversation.add(new Message.ToolResult(p.call().id(), p.call().name(), e.result(), e.error()));
        status = pending.isEmpty() ? SessionStatus.RUNNABLE : firstAwaitsApproval() ? SessionStatus.AWAITING_APPROVAL : SessionStatus.RUNNING;
      }
      case SessionEvent.ApprovalRequested e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        if (p.state() != PendingCall.CallState.REQUESTED) {
          throw new IllegalStateException(
              "session " + sessionId + ": ApprovalRequested for tool call \"" + e.callId()
                  + "\", which is " + p.state().name().toLowerCase(java.util.Locale.ROOT) + ", not requested");
        }
        pending.set(i, new PendingCall(p.call(), PendingCall.CallState.AWAITING_APPROVAL, "", false, 0, "", "", e.approvalId()));
        status = statusOfPending();
      }
      case SessionEvent.ApprovalDecided e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        if (p.state() != PendingCall.CallState.AWAITING_APPROVAL || !p.approvalId().equals(e.approvalId())) {
          throw new IllegalStateException(
              "session " + sessionId + ": ApprovalDecided for tool call \"" + e.callId() + "\" and approval "
                  + e.approvalId() + ", but that call is not waiting for that approval");
        }
        if (e.approved()) {
          ToolCall call = e.arguments().isEmpty() ? p.call() : new ToolCall(p.call().id(), p.call().name(), e.arguments());
          pending.set(i, new PendingCall(call, PendingCall.CallState.APPROVED, "", false, 0, "", "", e.approvalId()));
        } else {
          pending.remove(i);
          conversation.add(new Message.ToolResult(p.call().id(), p.call().name(), Content.inline(deniedText(e)), true));
        }
        status = statusOfPending();
      }
      case SessionEvent.ActionProposed e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.remove(i);
        conversation.add(new Message.ToolResult(p.call().id(), p.call().name(), Content.inline(e.told()), false));
        status = statusOfPending();
      }
      case SessionEvent.ToolCallStarted e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        pending.set(
            i,
            new PendingCall(
                p.call(),
                PendingCall.CallState.STARTED,
                p.capability(),
                p.idempotent(),
                e.attempt(),
                e.idempotencyKey()));
      }
      case SessionEvent.ToolCallCompleted e -> {
        PendingCall p = pending.remove(indexOf(sessionId, e.callId()));
        conversation.add(
            new Message.ToolResult(p.call().id(), p.call().name(), e.result(), e.error()));
        afterCallEnded();
      }
      case SessionEvent.ToolOutcomeUnknown e -> {
        int i = indexOf(sessionId, e.callId());
        pending.set(i, pending.get(i).with(PendingCall.CallState.OUTCOME_UNKNOWN));
        status = SessionStatus.AWAITING_APPROVAL;
      }
      case SessionEvent.ToolOutcomeResolved e -> {
        int i = indexOf(sessionId, e.callId());
        PendingCall p = pending.get(i);
        if (p.state() != PendingCall.CallState.OUTCOME_UNKNOWN) {
          throw new IllegalStateException(
              "session "
                  + sessionId
                  + ": ToolOutcomeResolved for tool call \""
                  + e.callId()
                  + "\" whose outcome is not unknown (it is "
                  + p.state().name().toLowerCase(java.util.Locale.ROOT)
                  + ")");
        }
        if (e.resolution().equals("retry")) {
          pending.set(i, p.with(PendingCall.CallState.AUTHORIZED));
        } else {
          pending.remove(i);
          conversation.add(
              new Message.ToolResult(
                  p.call().id(),
                  p.call().name(),
                  Content.inline(e.result()),
                  e.resolution().equals("failed")));
        }
        status =
            pending.stream().anyMatch(c -> c.state() == PendingCall.CallState.OUTCOME_UNKNOWN) || firstAwaitsApproval()
                ? SessionStatus.AWAITING_APPROVAL
                : pending.isEmpty() ? SessionStatus.RUNNABLE : SessionStatus.RUNNING;
      }
      case SessionEvent.StepInterrupted e -> {
        for (PendingCall p : pending) {
          conversation.add(
              new Message.ToolResult(
                  p.call().id(),
                  p.call().name(),
                  Content.inline("not run: " + e.reason()),
                  true));
        }
        pending.clear();
        driftPending = "";
        status = SessionStatus.IDLE;
      }
      case SessionEvent.InputRejected e -> {
        // the status and the conversation are unchanged
      }
      case SessionEvent.SessionCompleted e -> {
        lastAnswer = e.answer();
        status = SessionStatus.COMPLETED;
      }
      case SessionEvent.SessionFailed e -> {
        failure = e.code() + ": " + e.message();
        status = SessionStatus.FAILED;
      }
      case SessionEvent.SessionCancelled e -> {
        failure = "cancelled by " + e.by() + ": " + e.reason();
        status = SessionStatus.CANCELLED;
      }
      case SessionEvent.BudgetBlocked e -> {
        budgetBlock = e;
        status = SessionStatus.BUDGET_BLOCKED;
      }
      case SessionEvent.BudgetUnblocked e -> {
        budgetBlock = null;
        // the call that was refused is due again: a model call when no tool call is pending
        status = SessionStatus.RUNNING;
      }
      case SessionEvent.BudgetWarning e -> {
        budgetWarnings.removeIf(w -> w.startsWith(e.kind() + "@"));
        budgetWarnings.add(warningKey(e.kind(), e.windowEnd()));
      }
    }
  }

  private static String warningKey(String kind, java.time.Instant windowEnd) {
    return kind + "@" + windowEnd;
  }

  private void afterCallEnded() {
    if (pending.isEmpty()) {
      status = SessionStatus.RUNNABLE;
    } else if (firstAwaitsApproval()) {
      // the next call in the model's order waits for a human: nothing runs past it
      status = SessionStatus.AWAITING_APPROVAL;
    }
  }

  private boolean firstAwaitsApproval() {
    return !pending.isEmpty() && pending.getFirst().state() == PendingCall.CallState.AWAITING_APPROVAL;
  }

  /**
   * The status while calls of a step are pending: the calls run in the model's order, so the first
   * pending call says what the session waits for.
   */
  private SessionStatus statusOfPending() {
    if (pending.isEmpty()) {
      return SessionStatus.RUNNABLE;
    }
    if (pending.stream().anyMatch(c -> c.state() == PendingCall.CallState.OUTCOME_UNKNOWN)) {
      return SessionStatus.AWAITING_APPROVAL;
    }
    return switch (pending.getFirst().state()) {
      case AWAITING_APPROVAL, OUTCOME_UNKNOWN -> SessionStatus.AWAITING_APPROVAL;
      case SPAWNED -> SessionStatus.AWAITING_SUBAGENT;
      case REQUESTED, AUTHORIZED, STARTED, APPROVED -> SessionStatus.RUNNING;
    };
  }

  /** What the model reads when a human denied a call, or nobody decided it in time. */
  static String deniedText(SessionEvent.ApprovalDecided e) {
    return e.decision().equals("expired")
        ? "not run: the approval request expired without a decision (" + e.reason() + "); treat it as denied"
        : "not run: denied by " + e.by() + ": " + e.reason();
  }

  private int indexOf(String sessionId, String callId) {
    for (int i = 0; i < pending.size(); i++) {
      if (pending.get(i).call().id().equals(callId)) {
        return i;
      }
    }
    throw new IllegalStateException(
        "session " + sessionId + ": no pending tool call with id \"" + callId + "\"");
  }

  public String agent() {
    return agent;
  }

  public int revision() {
    return revision;
  }

  public String owner() {
    return owner;
  }

  public boolean task() {
    return task;
  }

  /** The status the events say; {@link Optional#empty()} before {@code SessionStarted}. */
  public Optional<SessionStatus> status() {
    return Optional.ofNullable(status);
  }

  public long lastSeq() {
    return lastSeq;
  }

  public int stepsSinceInput() {
    return stepsSinceInput;
  }

  public long modelCalls() {
    return modelCalls;
  }

  public Usage usage() {
    return usage;
  }

  /** The conversation so far, as an unmodifiable view. */
  public List<Message> conversation() {
    return java.util.Collections.unmodifiableList(conversation);
  }

  /** The current step's tool calls that have not completed, in the order the model asked. */
  public List<PendingCall> pending() {
    return java.util.Collections.unmodifiableList(pending);
  }

  /** The text of the last answer the model gave without asking for tools. */
  public String lastAnswer() {
    return lastAnswer;
  }

  /** Whether a step since the latest input went to the main model after the small one. */
  public boolean escalatedSinceInput() {
    return escalatedSinceInput;
  }

  /** What the session's model calls have cost, escalated small-model calls included. */
  public java.math.BigDecimal costUsd() {
    return costUsd;
  }

  /** The model version a suspended session waits on a human to accept, or empty. */
  public String driftPending() {
    return driftPending;
  }

  /** The model versions a human accepted for this session after a drift. */
  public List<String> acceptedVersions() {
    return java.util.Collections.unmodifiableList(acceptedVersions);
  }

  /**
   * The capability URIs recorded at the start as the session's grants; empty for logs recorded
   * before identities (whose grants are their revision's {@code spec.tools}).
   */
  public List<String> grants() {
    return grants;
  }

  /**
   * The delegation chain recorded at the start: who started the root session, then each
   * delegating agent. For a log recorded before identities, the principal that started it; empty
   * only in a state restored from a snapshot taken before identities.
   */
  public List<String> chain() {
    return chain;
  }

  /** The session that spawned this one, or empty for a root session. */
  public String parentSessionId() {
    return parentSessionId;
  }

  /** The budget block the session waits on; empty unless it is budget-blocked. */
  public Optional<SessionEvent.BudgetBlocked> budgetBlock() {
    return Optional.ofNullable(budgetBlock);
  }

  /** Whether this session has already warned that a budget's window ending then is at 80 %. */
  public boolean budgetWarned(String kind, java.time.Instant windowEnd) {
    return budgetWarnings.contains(warningKey(kind, windowEnd));
  }

  /** Why the session failed or was cancelled; empty otherwise. */
  public String failure() {
    return failure;
  }

  @Override
  public String toString() {
    return "SessionState[agent=" + agent + ", status=" + status + ", lastSeq=" + lastSeq + "]";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SessionState other && snapshot().equals(other.snapshot());
  }

  @Override
  public int hashCode() {
    return Objects.hash(agent, lastSeq);
  }
}
