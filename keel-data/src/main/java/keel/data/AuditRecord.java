package keel.data;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What an audit entry records, before the store numbers, stamps and chains it.
 *
 * @param kind what happened, a lowercase word such as {@code tool_call}, {@code tool_result},
 *     {@code policy_decision}, {@code approval_requested}, {@code approval_decided}, {@code
 *     catalog_change} or {@code action_proposed}; an open set (see docs/audit.md)
 * @param actor the principal that acted ({@code agent:invoices}, {@code operator:alice}, {@code
 *     system})
 * @param owner the owner of the agent or resource concerned ("" when none)
 * @param agent the agent concerned ("" when none)
 * @param sessionId the session concerned ("" when none)
 * @param tool the tool concerned, as {@code <server>/<tool>} ("" when none)
 * @param detail a JSON object with the rest (arguments, decision, reason…); the store checks it and
 *     keeps it in a canonical form (keys sorted, no insignificant spaces); "" stands for {@code {}}
 */
public record AuditRecord(
    String kind, String actor, String owner, String agent, String sessionId, String tool, String detail) {

  private static final Pattern KIND = Pattern.compile("[a-z][a-z0-9_.]{0,63}");

  public AuditRecord {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(actor, "actor");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(tool, "tool");
    Objects.requireNonNull(detail, "detail");
    if (!KIND.matcher(kind).matches()) {
      throw new IllegalArgumentException(
          "audit record kind: expected a lowercase word of letters, digits, '_' or '.' (at most 64), got \""
              + kind + "\"");
    }
    if (actor.isBlank()) {
      throw new IllegalArgumentException("audit record of kind " + kind + ": the actor is empty");
    }
  }
}
