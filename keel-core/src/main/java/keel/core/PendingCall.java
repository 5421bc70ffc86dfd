package keel.core;

import java.util.Objects;

/**
 * A tool call of the current step that has not completed yet, and where it is in its lifecycle.
 *
 * @param capability the capability URI that authorized it, empty until authorized
 * @param attempt how many times it has been started
 * @param idempotencyKey the key given to the tool on every attempt, empty until started
 * @param subagentSessionId for a call of a sub-agent, the child session it spawned; empty otherwise
 * @param approvalId the approval the call waits for or was approved by; empty otherwise
 */
public record PendingCall(
    ToolCall call,
    CallState state,
    String capability,
    boolean idempotent,
    int attempt,
    String idempotencyKey,
    String subagentSessionId,
    String approvalId) {

  /** Where a pending tool call is. Completed calls are no longer pending. */
  public enum CallState {
    REQUESTED,
    AUTHORIZED,
    STARTED,
    OUTCOME_UNKNOWN,
    /** A sub-agent call whose child session runs; the session waits for its result. */
    SPAWNED,
    /** An external call waiting for a human's decision ({@code ApprovalRequested}). */
    AWAITING_APPROVAL,
    /** An external call a human approved; it is checked again before it runs. */
    APPROVED
  }

  public PendingCall {
    Objects.requireNonNull(call, "call");
    Objects.requireNonNull(state, "state");
    Objects.requireNonNull(capability, "capability");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
    // snapshots taken before sub-agents lack it
    subagentSessionId = subagentSessionId == null ? "" : subagentSessionId;
    // and snapshots taken before approvals lack this
    approvalId = approvalId == null ? "" : approvalId;
  }

  /** A pending call that waits for no approval. */
  public PendingCall(
      ToolCall call,
      CallState state,
      String capability,
      boolean idempotent,
      int attempt,
      String idempotencyKey,
      String subagentSessionId) {
    this(call, state, capability, idempotent, attempt, idempotencyKey, subagentSessionId, "");
  }

  /** A pending call that is not a sub-agent's. */
  public PendingCall(
      ToolCall call, CallState state, String capability, boolean idempotent, int attempt, String idempotencyKey) {
    this(call, state, capability, idempotent, attempt, idempotencyKey, "", "");
  }

  static PendingCall requested(ToolCall call) {
    return new PendingCall(call, CallState.REQUESTED, "", false, 0, "", "", "");
  }

  PendingCall with(CallState newState) {
    return new PendingCall(call, newState, capability, idempotent, attempt, idempotencyKey, subagentSessionId, approvalId);
  }
}
