package keel.core;

import java.util.Objects;

/**
 * A tool call of the current step that has not completed yet, and where it is in its lifecycle.
 *
 * @param capability the capability URI that authorized it, empty until authorized
 * @param attempt how many times it has been started
 * @param idempotencyKey the key given to the tool on every attempt, empty until started
 */
public record PendingCall(
    ToolCall call,
    CallState state,
    String capability,
    boolean idempotent,
    int attempt,
    String idempotencyKey) {

  /** Where a pending tool call is. Completed calls are no longer pending. */
  public enum CallState {
    REQUESTED,
    AUTHORIZED,
    STARTED,
    OUTCOME_UNKNOWN
  }

  public PendingCall {
    Objects.requireNonNull(call, "call");
    Objects.requireNonNull(state, "state");
    Objects.requireNonNull(capability, "capability");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
  }

  static PendingCall requested(ToolCall call) {
    return new PendingCall(call, CallState.REQUESTED, "", false, 0, "");
  }

  PendingCall with(CallState newState) {
    return new PendingCall(call, newState, capability, idempotent, attempt, idempotencyKey);
  }
}
