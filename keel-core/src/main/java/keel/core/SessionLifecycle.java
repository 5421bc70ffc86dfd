package keel.core;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The session state machine as one table: for each status, the events that may be appended in it.
 * The fold ({@link SessionState#apply}) computes where each event leads; this table says which
 * events are legal at all, so a corrupt or out-of-order log is caught instead of folded.
 */
public final class SessionLifecycle {

  private static final Set<Class<? extends SessionEvent>> STEP_EVENTS =
      Set.of(
          SessionEvent.ModelCalled.class,
          SessionEvent.ModelResponded.class,
          SessionEvent.ModelEscalated.class,
          SessionEvent.ModelDrifted.class,
          SessionEvent.ToolCallAuthorized.class,
          SessionEvent.ToolCallDenied.class,
          SessionEvent.ToolCallStarted.class,
          SessionEvent.ToolCallCompleted.class,
          SessionEvent.ToolOutcomeUnknown.class,
          SessionEvent.SubagentSpawned.class,
          SessionEvent.StepInterrupted.class,
          SessionEvent.InputRejected.class,
          SessionEvent.SessionFailed.class,
          SessionEvent.SessionCancelled.class,
          SessionEvent.BudgetBlocked.class,
          SessionEvent.BudgetWarning.class,
          SessionEvent.ApprovalRequested.class,
          SessionEvent.ApprovalDecided.class,
          SessionEvent.ActionProposed.class);

  private static final Map<SessionStatus, Set<Class<? extends SessionEvent>>> ALLOWED =
      new EnumMap<>(SessionStatus.class);

  static {
    ALLOWED.put(
        SessionStatus.IDLE,
        Set.of(
            SessionEvent.InputReceived.class,
            SessionEvent.InputRejected.class,
            SessionEvent.SessionCompleted.class,
            SessionEvent.SessionFailed.class,
            SessionEvent.SessionCancelled.class));
    ALLOWED.put(
        SessionStatus.RUNNABLE,
        Set.of(
            SessionEvent.InputReceived.class,
            SessionEvent.InputRejected.class,
            SessionEvent.ModelCalled.class,
            SessionEvent.StepInterrupted.class,
            SessionEvent.SessionFailed.class,
            SessionEvent.SessionCancelled.class));
    ALLOWED.put(SessionStatus.RUNNING, STEP_EVENTS);
    ALLOWED.put(
        SessionStatus.AWAITING_APPROVAL,
        Set.of(
            SessionEvent.ToolOutcomeResolved.class,
            SessionEvent.SessionResumed.class,
            // approvals of later calls are requested together, and their decisions arrive in any order
            SessionEvent.ApprovalRequested.class,
            SessionEvent.ApprovalDecided.class,
            SessionEvent.ToolOutcomeUnknown.class,
            SessionEvent.StepInterrupted.class,
            SessionEvent.InputRejected.class,
            SessionEvent.SessionFailed.class,
            SessionEvent.SessionCancelled.class));
    ALLOWED.put(
        SessionStatus.AWAITING_SUBAGENT,
        Set.of(
            SessionEvent.SubagentCompleted.class,
            SessionEvent.ApprovalDecided.class,
            SessionEvent.InputRejected.class,
            SessionEvent.SessionFailed.class,
            SessionEvent.SessionCancelled.class));
    ALLOWED.put(
        SessionStatus.BUDGET_BLOCKED,
        Set.of(
            SessionEvent.BudgetUnblocked.class,
            SessionEvent.InputRejected.class,
            SessionEvent.SessionFailed.class,
            SessionEvent.SessionCancelled.class));
    // An ended session still takes inputs out of its inbox, to record why they were not acted on.
    ALLOWED.put(SessionStatus.COMPLETED, Set.of(SessionEvent.InputRejected.class));
    ALLOWED.put(SessionStatus.FAILED, Set.of(SessionEvent.InputRejected.class));
    ALLOWED.put(SessionStatus.CANCELLED, Set.of(SessionEvent.InputRejected.class));
  }

  private SessionLifecycle() {}

  /** Whether an event of this type may be appended to a session in this status. */
  public static boolean allows(SessionStatus status, Class<? extends SessionEvent> eventType) {
    return ALLOWED.get(status).contains(eventType);
  }

  /** Every event type, for tests that walk the whole table. */
  public static List<Class<?>> eventTypes() {
    return List.of(SessionEvent.class.getPermittedSubclasses());
  }
}
