package keel.execution;

import java.util.Objects;
import keel.core.AgentDescriptor;

/**
 * The context of one tool call.
 *
 * @param agent the calling agent's descriptor at the session's revision
 * @param sessionId the session
 * @param callId the call's id within the session
 * @param idempotencyKey the same on every attempt of this call
 */
public record ToolContext(
    AgentDescriptor agent, String sessionId, String callId, String idempotencyKey) {
  public ToolContext {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(callId, "callId");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
  }

  /** The principal the call is made as: {@code agent:<name>}. */
  public String principal() {
    return "agent:" + agent.name();
  }
}
