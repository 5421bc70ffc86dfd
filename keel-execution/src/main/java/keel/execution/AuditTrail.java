package keel.execution;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import keel.core.Content;
import keel.core.EventCodec;
import keel.core.PendingCall;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.data.AuditRecord;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Which session events go to the audit log, and as what. The step executor asks for the records
 * of each event it stages, before folding it, and writes them in the same append as the event (see
 * {@link keel.data.Append#audit()}), so an external call and its audit record are durable together.
 *
 * <p>Audited now: the authorization ({@code policy_decision}, allow), start ({@code tool_call}) and
 * completion ({@code tool_result}) of calls to external capabilities (MCP tools, {@code mcp://}),
 * the denial of such a call or of a call to a tool that does not exist ({@code policy_decision},
 * deny), and a human's resolution of a call whose outcome was unknown ({@code
 * tool_outcome_resolved}), every approval requested ({@code approval_requested}, with its reasons,
 * each naming its rule) and decided ({@code approval_decided}: approved, denied or expired, by whom,
 * why, with any edited arguments), and every shadow-mode proposal ({@code action_proposed}, never
 * executed). Internal tools and sub-agent calls are not audited: they are in the
 * session's log and trace.
 *
 * <p>Pure and stateless; thread-safe.
 */
final class AuditTrail {

  /** The URI scheme of external capabilities. */
  static final String EXTERNAL = "mcp://";
  /** The most characters of an error result an audit record quotes. */
  static final int MAX_QUOTE = 500;

  private AuditTrail() {}

  /**
   * The audit records of one event.
   *
   * @param before the session's state before the event is folded (it knows the pending call)
   * @param sessionId the session
   * @param event the event being staged
   * @param tools the session's tools by model-facing name
   */
  static List<AuditRecord> of(
      SessionState before, String sessionId, SessionEvent event, Function<String, Optional<Tool>> tools) {
    return switch (event) {
      case SessionEvent.ToolCallAuthorized e -> call(before, e.callId(), tools)
          .filter(c -> c.external() || e.capability().startsWith(EXTERNAL))
          .map(c -> {
            ObjectNode d = detail(e.callId());
            d.put("decision", "allow");
            d.put("capability", e.capability());
            d.put("token_id", e.tokenId());
            return List.of(record("policy_decision", actor(e.principal(), before), before, sessionId, c.tool(), d));
          })
          .orElse(List.of());
      case SessionEvent.ToolCallDenied e -> call(before, e.callId(), tools)
          .filter(c -> c.external() || c.unknown())
          .map(c -> {
            ObjectNode d = detail(e.callId());
            d.put("decision", "deny");
            d.put("reason", e.reason());
            d.put("token_id", e.tokenId());
            if (c.unknown()) {
              d.put("unknown_tool", true);
            }
            return List.of(record("policy_decision", actor(e.principal(), before), before, sessionId, c.tool(), d));
          })
          .orElse(List.of());
      case SessionEvent.ToolCallStarted e -> call(before, e.callId(), tools)
          .filter(Call::external)
          .map(c -> {
            ObjectNode d = detail(e.callId());
            d.put("attempt", e.attempt());
            d.put("idempotency_key", e.idempotencyKey());
            d.set("arguments", arguments(c.pending().call().arguments()));
            return List.of(record("tool_call", actor("", before), before, sessionId, c.tool(), d));
          })
          .orElse(List.of());
      case SessionEvent.ToolCallCompleted e -> call(before, e.callId(), tools)
          .filter(Call::external)
          .map(c -> {
            ObjectNode d = detail(e.callId());
            d.put("error", e.error());
            d.put("duration_ms", e.durationMillis());
            switch (e.result()) {
              case Content.Inline in -> {
                byte[] bytes = in.text().getBytes(StandardCharsets.UTF_8);
                d.put("result_sha256", sha256(bytes));
                d.put("result_bytes", bytes.length);
                if (e.error()) {
                  d.put("error_message", in.text().length() > MAX_QUOTE ? in.text().substring(0, MAX_QUOTE) : in.text());
                }
              }
              case Content.Blob b -> {
                d.put("result_sha256", b.sha256());
                d.put("result_bytes", b.bytes());
              }
            }
            return List.of(record("tool_result", actor("", before), before, sessionId, c.tool(), d));
          })
          .orElse(List.of());
      case SessionEvent.ToolOutcomeResolved e -> call(before, e.callId(), tools)
          .filter(Call::external)
          .map(c -> {
            ObjectNode d = detail(e.callId());
            d.put("resolution", e.resolution());
            d.put("result", e.result());
            return List.of(record("tool_outcome_resolved", e.decidedBy().isBlank() ? "unknown" : e.decidedBy(), before,
                sessionId, c.tool(), d));
          })
          .orElse(List.of());
      case SessionEvent.ApprovalRequested e -> {
        ObjectNode d = detail(e.callId());
        d.put("approval_id", e.approvalId());
        d.set("arguments", arguments(e.arguments()));
        d.put("value_usd", e.valueUsd().toPlainString());
        d.put("expires_at", e.expiresAt().toString());
        d.put("requester", e.requester());
        var reasons = d.putArray("reasons");
        for (keel.core.PolicyReason r : e.reasons()) {
          reasons.addObject().put("rule", r.rule()).put("reason", r.reason());
        }
        yield List.of(record("approval_requested", actor(e.principal(), before), before, sessionId, e.tool(), d));
      }
      case SessionEvent.ApprovalDecided e -> {
        ObjectNode d = detail(e.callId());
        d.put("approval_id", e.approvalId());
        d.put("decision", e.decision());
        d.put("reason", e.reason());
        if (!e.arguments().isEmpty()) {
          d.set("edited_arguments", arguments(e.arguments()));
        }
        String tool = call(before, e.callId(), tools).map(Call::tool).orElse("");
        yield List.of(record("approval_decided", e.by().isBlank() ? "unknown" : e.by(), before, sessionId, tool, d));
      }
      case SessionEvent.ActionProposed e -> {
        ObjectNode d = detail(e.callId());
        d.set("arguments", arguments(e.arguments()));
        d.put("value_usd", e.valueUsd().toPlainString());
        d.put("executed", false);
        yield List.of(record("action_proposed", actor(e.principal(), before), before, sessionId, e.tool(), d));
      }
      default -> List.of();
    };
  }

  /** A pending call, the tool it names (if any) and whether it is external. */
  private record Call(PendingCall pending, Optional<Tool> resolved) {
    boolean external() {
      return resolved.map(Tool::external).orElse(false) || pending.capability().startsWith(EXTERNAL);
    }

    /** No tool of that name, and not a sub-agent call: a call the model was never offered. */
    boolean unknown() {
      return resolved.isEmpty() && !pending.call().name().startsWith(Subagents.TOOL_PREFIX)
          && !pending.capability().startsWith(Subagents.PREFIX);
    }

    String tool() {
      return resolved.map(Tool::catalogName).orElse(pending.call().name());
    }
  }

  private static Optional<Call> call(SessionState before, String callId, Function<String, Optional<Tool>> tools) {
    return before.pending().stream()
        .filter(p -> p.call().id().equals(callId))
        .findFirst()
        .map(p -> new Call(p, tools.apply(p.call().name())));
  }

  private static String actor(String principal, SessionState before) {
    return principal.isBlank() ? "agent:" + before.agent() : principal;
  }

  private static ObjectNode detail(String callId) {
    ObjectNode d = EventCodec.mapper().createObjectNode();
    d.put("call_id", callId);
    return d;
  }

  private static AuditRecord record(
      String kind, String actor, SessionState before, String sessionId, String tool, ObjectNode detail) {
    return new AuditRecord(kind, actor, before.owner(), before.agent(), sessionId, tool,
        EventCodec.mapper().writeValueAsString(detail));
  }

  /** The arguments as JSON when they are, else as the text the model wrote. */
  private static JsonNode arguments(String text) {
    try {
      return EventCodec.mapper().readTree(text == null || text.isBlank() ? "{}" : text);
    } catch (RuntimeException e) {
      return EventCodec.mapper().getNodeFactory().textNode(text);
    }
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256", e);
    }
  }
}
