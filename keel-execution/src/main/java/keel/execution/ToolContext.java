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
 * @param traceparent the W3C {@code traceparent} naming this call's span (empty when untraced): a
 *     tool that calls another system (an MCP server, an HTTP API) sends it so the callee's spans
 *     join the session's trace
 */
public record ToolContext(
    AgentDescriptor agent, String sessionId, String callId, String idempotencyKey, SessionToken identity, String traceparent) {

  /** A context without trace propagation. */
  public ToolContext(AgentDescriptor agent, String sessionId, String callId, String idempotencyKey, SessionToken identity) {
    this(agent, sessionId, callId, idempotencyKey, identity, "");
  }

  public ToolContext {
    Objects.requireNonNull(traceparent, "traceparent");
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
