package keel.execution;

import java.util.Objects;
import keel.control.SessionToken;
import keel.core.AgentDescriptor;

/**
 * The context of one tool call.
 *
 * @param agent the calling agent's descriptor at the session's revision
 * @param sessionId the session
 * @param callId the call's id within the session
 * @param idempotencyKey the same on every attempt of this call
 * @param identity the session's token, verified for this call's capability just before it: who the
 *     call is made as and what the session may do. Its {@link SessionToken#compact() signed form}
 *     is a bearer credential a tool may present to a service outside Keel (which can check it
 *     against the server's JWKS); never log it or put it in a result
 */
public record ToolContext(
    AgentDescriptor agent, String sessionId, String callId, String idempotencyKey, SessionToken identity) {
  public ToolContext {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(callId, "callId");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
    Objects.requireNonNull(identity, "identity");
    if (!identity.sessionId().equals(sessionId)) {
      throw new IllegalArgumentException(
          "tool call " + callId + " of session " + sessionId + " carries the identity of session " + identity.sessionId());
    }
  }

  /** The verified principal the call is made as: {@code agent:<name>}. */
  public String principal() {
    return identity.principal();
  }
}
