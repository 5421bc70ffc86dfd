package keel.data;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import keel.core.KeelException;
import keel.core.PolicyReason;

/**
 * One entry of the approvals inbox: an external call that waits (or waited) for a human.
 *
 * @param id the approval's id, as in the session's {@code ApprovalRequested}
 * @param tool the tool as policies name it, {@code <server>/<tool>}
 * @param arguments the call's arguments as the model wrote them
 * @param valueUsd the action's value
 * @param reasons why it needs approval, each naming its rule
 * @param principal who the call would be made as ({@code agent:<name>})
 * @param requester who started the session; never allowed to decide it
 * @param reasoning the model's text of the step that asked for the call
 * @param decision who decided, when, why and with which arguments; empty while pending
 */
public record Approval(
    String id,
    String sessionId,
    String callId,
    String agent,
    String owner,
    String tool,
    String arguments,
    BigDecimal valueUsd,
    List<PolicyReason> reasons,
    String principal,
    String requester,
    String reasoning,
    Instant requestedAt,
    Instant expiresAt,
    Status status,
    Optional<Decision> decision) {

  public Approval {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(callId, "callId");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(tool, "tool");
    Objects.requireNonNull(arguments, "arguments");
    Objects.requireNonNull(valueUsd, "valueUsd");
    reasons = List.copyOf(reasons);
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(requester, "requester");
    Objects.requireNonNull(reasoning, "reasoning");
    Objects.requireNonNull(requestedAt, "requestedAt");
    Objects.requireNonNull(expiresAt, "expiresAt");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(decision, "decision");
  }

  /** Where an approval is. Only {@link #PENDING} can change, once. */
  public enum Status {
    PENDING,
    APPROVED,
    DENIED,
    EXPIRED,
    /** The call stopped waiting without a decision: its session was interrupted, cancelled or failed. */
    WITHDRAWN;

    public String wireName() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Status fromWire(String s) {
      for (Status v : values()) {
        if (v.wireName().equals(s)) {
          return v;
        }
      }
      throw new KeelException.Invalid(
          "status: expected one of pending, approved, denied, expired, withdrawn, got \"" + s + "\"");
    }
  }

  /**
   * @param by the operator who decided, or {@code keel:expiry}
   * @param arguments the arguments the approver set instead of the model's; empty when unchanged
   */
  public record Decision(String by, Instant at, String reason, String arguments) {
    public Decision {
      Objects.requireNonNull(by, "by");
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(reason, "reason");
      Objects.requireNonNull(arguments, "arguments");
    }
  }

  /** This approval, as newly requested (pending, undecided). */
  public static Approval pending(
      String id, String sessionId, String callId, String agent, String owner, String tool, String arguments,
      BigDecimal valueUsd, List<PolicyReason> reasons, String principal, String requester, String reasoning,
      Instant requestedAt, Instant expiresAt) {
    return new Approval(id, sessionId, callId, agent, owner, tool, arguments, valueUsd, reasons, principal, requester,
        reasoning, requestedAt, expiresAt, Status.PENDING, Optional.empty());
  }
}
