package keel.execution;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import keel.core.Content;
import keel.core.SessionEvent;
import keel.core.StoredEvent;
import keel.core.ToolCall;

/**
 * A session's logical trace, derived from its event log (so it survives crashes and can always be
 * rebuilt): the session, one span per input turn, and within each turn the model calls and tool
 * calls with their timings, tokens and outcomes.
 */
public final class Trace {

  /** One span of the trace. */
  public record Span(
      String id,
      String name,
      String kind,
      Instant start,
      Optional<Instant> end,
      boolean error,
      Map<String, String> attributes,
      List<Span> children) {
    public Span {
      Objects.requireNonNull(id, "id");
      attributes = Map.copyOf(attributes);
      children = List.copyOf(children);
    }

    /** How long the span took, or empty while it is open. */
    public Optional<Duration> duration() {
      return end.map(e -> Duration.between(start, e));
    }
  }

  /** A span under construction. */
  private static final class Builder {
    String id;
    final String name;
    final String kind;
    Instant start;
    Instant end;
    boolean error;
    final Map<String, String> attributes = new LinkedHashMap<>();
    final List<Builder> children = new ArrayList<>();
    /** Spans built elsewhere: a sub-agent session's trace under the call that spawned it. */
    final List<Span> nested = new ArrayList<>();

    Builder(String id, String name, String kind, Instant start) {
      this.id = id;
      this.name = name;
      this.kind = kind;
      this.start = start;
    }

    Span build() {
      List<Span> built = new ArrayList<>(children.stream().map(Builder::build).toList());
      built.addAll(nested);
      return new Span(id, name, kind, start, Optional.ofNullable(end), error, attributes, built);
    }
  }

  private Trace() {}

  /** Builds the trace of one session from its events, in order. */
  public static Span of(String sessionId, List<StoredEvent> events) {
    return of(sessionId, events, child -> Optional.empty());
  }

  /**
   * Builds the trace of one session from its events, nesting the trace of each sub-agent session
   * it spawned (as {@code subagents} gives it) under the call that spawned it: one trace for a
   * whole delegation tree.
   */
  public static Span of(String sessionId, List<StoredEvent> events, java.util.function.Function<String, Optional<Span>> subagents) {
    if (events.isEmpty()) {
      throw new IllegalArgumentException("session " + sessionId + " has no events");
    }
    StoredEvent first = events.getFirst();
    Builder root = new Builder(first.spanId(), "session " + sessionId, "session", first.at());
    root.attributes.put("keel.session.id", sessionId);
    root.attributes.put("keel.trace.id", first.traceId());
    Builder turn = null;
    Builder model = null;
    Map<String, Builder> toolSpans = new HashMap<>();
    Map<String, ToolCall> calls = new HashMap<>();
    Builder budget = null;
    Map<String, Builder> approvalWaits = new HashMap<>();
    Instant last = first.at();
    for (StoredEvent se : events) {
      last = se.at();
      switch (se.event()) {
        case SessionEvent.SessionStarted e -> {
          root.attributes.put("keel.agent.name", e.agent());
          root.attributes.put("keel.agent.revision", Integer.toString(e.revision()));
          root.attributes.put("keel.agent.owner", e.owner());
          root.attributes.put("keel.principal", e.principal());
          if (!e.chain().isEmpty()) {
            root.attributes.put("keel.delegation.chain", String.join(" → ", e.chain()));
            root.attributes.put("keel.grants", String.join(", ", e.grants()));
          }
          if (!e.parentSessionId().isEmpty()) {
            root.attributes.put("keel.parent.session.id", e.parentSessionId());
          }
        }
        case SessionEvent.InputReceived e -> {
          closeTurn(turn, se.at());
          turn = new Builder(se.spanId(), "turn: " + abbreviate(e.text(), 60), "turn", se.at());
          turn.attributes.put("keel.input.id", e.inputId());
          turn.attributes.put("keel.input.sender", e.sender());
          root.children.add(turn);
        }
        case SessionEvent.ModelCalled e -> {
          model = new Builder(se.spanId(), "model " + e.provider() + "/" + e.model(), "model", se.at());
          model.attributes.put("gen_ai.system", e.provider());
          model.attributes.put("gen_ai.request.model", e.model());
          identity(model, e.principal(), e.tokenId());
          parent(root, turn).children.add(model);
        }
        case SessionEvent.ModelResponded e -> {
          Builder m = model != null ? model : new Builder(se.spanId(), "model", "model", se.at());
          if (model == null) {
            parent(root, turn).children.add(m);
          }
          // ModelCalled is stored under the session's span; the call's own span is its response's
          m.id = se.spanId();
          m.start = se.at().minusMillis(e.latencyMillis());
          m.end = se.at();
          m.attributes.put("gen_ai.response.model", e.modelVersion());
          m.attributes.put("gen_ai.usage.input_tokens", Long.toString(e.usage().inputTokens()));
          m.attributes.put("gen_ai.usage.output_tokens", Long.toString(e.usage().outputTokens()));
          m.attributes.put("keel.model.tool_calls", Integer.toString(e.toolCalls().size()));
          if (!e.provider().isEmpty()) {
            m.attributes.put("gen_ai.system", e.provider());
            m.attributes.put("gen_ai.request.model", e.model());
          }
          m.attributes.put("keel.cost.usd", e.costUsd().toPlainString());
          if (!e.text().isEmpty()) {
            m.attributes.put("keel.model.text", abbreviate(e.text(), 200));
          }
          // Call ids are unique only within one response (models and the scripted provider reuse
          // them across steps), and only the latest response's calls can still be pending.
          toolSpans.clear();
          calls.clear();
          for (ToolCall c : e.toolCalls()) {
            calls.put(c.id(), c);
          }
          model = null;
        }
        case SessionEvent.ModelEscalated e -> {
          Builder m = model != null ? model : new Builder(se.spanId(), "model", "model", se.at());
          if (model == null) {
            parent(root, turn).children.add(m);
            model = m;
          }
          event(m, se, "escalated " + e.fromProvider() + "/" + e.fromModel() + " → " + e.toProvider() + "/" + e.toModel(),
              e.reason() + " (small model cost $" + e.costUsd().toPlainString() + ")", false);
        }
        case SessionEvent.ModelDrifted e -> {
          Builder m = model != null ? model : parent(root, turn);
          event(m, se, "model drift (" + e.action() + ")", "pinned " + e.pinned() + ", answered by " + e.reported(), !e.action().equals("warn"));
        }
        case SessionEvent.SessionResumed e ->
            event(parent(root, turn), se, "resumed", "by " + e.by() + ", accepting " + e.acceptedVersion(), false);
        case SessionEvent.ToolCallAuthorized e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.attributes.put("keel.tool.capability", e.capability());
          t.attributes.put("keel.tool.idempotent", Boolean.toString(e.idempotent()));
          t.attributes.put("keel.decision", "granted by " + e.capability());
          identity(t, e.principal(), e.tokenId());
        }
        case SessionEvent.ToolCallDenied e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.end = se.at();
          t.error = true;
          t.attributes.put("keel.decision", "denied: " + e.reason());
          identity(t, e.principal(), e.tokenId());
        }
        case SessionEvent.SubagentSpawned e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.attributes.put("keel.tool.capability", e.capability());
          t.attributes.put("keel.decision", "delegated by " + e.capability());
          t.attributes.put("keel.subagent.session.id", e.childSessionId());
          t.attributes.put("keel.subagent.agent", e.agent());
          t.attributes.put("keel.subagent.revision", Integer.toString(e.revision()));
          identity(t, e.principal(), e.tokenId());
          subagents.apply(e.childSessionId()).ifPresent(child -> t.nested.add(child));
        }
        case SessionEvent.SubagentCompleted e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.end = se.at();
          t.error = e.error();
          t.attributes.put("keel.subagent.outcome", e.outcome());
          t.attributes.put("keel.tool.result", abbreviate(preview(e.result()), 200));
        }
        case SessionEvent.ToolCallStarted e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.attributes.put("keel.tool.attempts", Integer.toString(e.attempt()));
        }
        case SessionEvent.ToolCallCompleted e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.end = se.at();
          t.start = t.start.isAfter(se.at().minusMillis(e.durationMillis())) ? se.at().minusMillis(e.durationMillis()) : t.start;
          t.error = e.error();
          t.attributes.put("keel.tool.result", abbreviate(preview(e.result()), 200));
        }
        case SessionEvent.ToolOutcomeUnknown e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.error = true;
          t.attributes.put("keel.tool.outcome", "unknown: " + e.reason());
        }
        case SessionEvent.ToolOutcomeResolved e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.end = se.at();
          t.error = !e.resolution().equals("succeeded");
          t.attributes.put("keel.human.decision", e.resolution() + " by " + e.decidedBy());
        }
        case SessionEvent.ApprovalRequested e -> {
          // the human-decision point: a span from the request until someone (or the expiry) decides
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          Builder wait = new Builder(se.spanId() + "-approval-" + se.seq(), "approval wait: " + e.tool(), "approval", se.at());
          wait.attributes.put("keel.approval.id", e.approvalId());
          wait.attributes.put("keel.approval.value_usd", e.valueUsd().toPlainString());
          wait.attributes.put("keel.approval.reasons", String.join("; ", e.reasons().stream().map(Object::toString).toList()));
          wait.attributes.put("keel.approval.expires_at", e.expiresAt().toString());
          wait.attributes.put("keel.approval.requester", e.requester());
          identity(wait, e.principal(), "");
          t.children.add(wait);
          approvalWaits.put(e.callId(), wait);
        }
        case SessionEvent.ApprovalDecided e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          Builder wait = approvalWaits.remove(e.callId());
          if (wait == null) {
            wait = new Builder(se.spanId() + "-approval-" + se.seq(), "approval wait", "approval", se.at());
            t.children.add(wait);
          }
          wait.end = se.at();
          wait.error = !e.approved();
          wait.attributes.put("keel.human.decision", e.decision() + " by " + e.by());
          wait.attributes.put("keel.human.decided_by", e.by());
          wait.attributes.put("keel.human.reason", e.reason());
          if (!e.arguments().isEmpty()) {
            wait.attributes.put("keel.approval.edited_arguments", abbreviate(e.arguments(), 200));
          }
          t.attributes.put("keel.decision", e.decision() + " by " + e.by() + ": " + e.reason());
          if (!e.approved()) {
            t.end = se.at();
            t.error = true;
          }
        }
        case SessionEvent.ActionProposed e -> {
          Builder t = toolSpan(se, e.callId(), calls, toolSpans, parent(root, turn));
          t.end = se.at();
          t.attributes.put("keel.decision", "proposed (shadow mode), not executed");
          t.attributes.put("keel.shadow.value_usd", e.valueUsd().toPlainString());
          identity(t, e.principal(), "");
        }
        case SessionEvent.StepInterrupted e -> event(parent(root, turn), se, "interrupted", e.reason(), false);
        case SessionEvent.InputRejected e -> event(parent(root, turn), se, "input rejected", e.reason(), false);
        case SessionEvent.SessionCompleted e -> root.end = se.at();
        case SessionEvent.SessionFailed e -> {
          event(parent(root, turn), se, "failed", e.code() + ": " + e.message(), true);
          root.error = true;
          root.end = se.at();
        }
        case SessionEvent.SessionCancelled e -> {
          event(parent(root, turn), se, "cancelled", "by " + e.by() + ": " + e.reason(), true);
          root.end = se.at();
        }
        case SessionEvent.BudgetBlocked e -> {
          // the span of the wait: from the refused call until the session may go on
          budget = new Builder(se.spanId() + "-" + se.seq(), "budget blocked: " + e.kind(), "budget", se.at());
          budget.attributes.put("keel.budget.kind", e.kind());
          budget.attributes.put("keel.budget.limit", e.limit().toPlainString());
          budget.attributes.put("keel.budget.used", e.used().toPlainString());
          budget.attributes.put("keel.budget.reserved", e.reserved().toPlainString());
          budget.attributes.put("keel.budget.requested", e.requested().toPlainString());
          budget.attributes.put("keel.budget.window_end", e.windowEnd().toString());
          parent(root, turn).children.add(budget);
        }
        case SessionEvent.BudgetUnblocked e -> {
          if (budget != null) {
            budget.end = se.at();
            budget.attributes.put("keel.budget.resumed", e.reason());
            budget = null;
          } else {
            event(parent(root, turn), se, "budget unblocked", e.reason(), false);
          }
        }
        case SessionEvent.BudgetWarning e ->
            event(parent(root, turn), se, "budget warning: " + e.kind(),
                e.used().toPlainString() + " of " + e.limit().toPlainString() + " in the window ending " + e.windowEnd(), false);
      }
    }
    for (Builder wait : approvalWaits.values()) {
      if (root.end != null) {
        wait.end = root.end;
      }
    }
    if (budget != null && root.end != null) {
      // a session that ended while blocked (cancelled, failed) ends its wait with it
      budget.end = root.end;
    }
    closeTurn(turn, last);
    return root.build();
  }

  /** The principal and token an action was taken as, when the event records them. */
  private static void identity(Builder b, String principal, String tokenId) {
    if (!principal.isEmpty()) {
      b.attributes.put("keel.principal", principal);
    }
    if (!tokenId.isEmpty()) {
      b.attributes.put("keel.token_id", tokenId);
    }
  }

  private static Builder parent(Builder root, Builder turn) {
    return turn != null ? turn : root;
  }

  private static void closeTurn(Builder turn, Instant at) {
    if (turn != null && turn.end == null) {
      turn.end = at;
      for (Builder c : turn.children) {
        if (c.end == null) {
          turn.end = null;
        }
      }
    }
  }

  private static Builder toolSpan(
      StoredEvent se, String callId, Map<String, ToolCall> calls, Map<String, Builder> spans, Builder parent) {
    return spans.computeIfAbsent(
        callId,
        id -> {
          ToolCall c = calls.get(id);
          Builder b = new Builder(se.spanId(), "tool " + (c == null ? id : c.name()), "tool", se.at());
          b.attributes.put("gen_ai.tool.call.id", id);
          if (c != null) {
            b.attributes.put("gen_ai.tool.name", c.name());
            b.attributes.put("keel.tool.arguments", abbreviate(c.arguments(), 200));
          }
          parent.children.add(b);
          return b;
        });
  }

  private static void event(Builder parent, StoredEvent se, String name, String detail, boolean error) {
    Builder b = new Builder(se.spanId() + "-" + se.seq(), name, "event", se.at());
    b.end = se.at();
    b.error = error;
    b.attributes.put("keel.detail", detail);
    parent.children.add(b);
  }

  private static String preview(Content c) {
    return switch (c) {
      case Content.Inline i -> i.text();
      case Content.Blob b -> b.preview() + " … (" + b.bytes() + " bytes)";
    };
  }

  static String abbreviate(String s, int max) {
    String one = s.replace('\n', ' ');
    return one.length() <= max ? one : one.substring(0, max - 1) + "…";
  }
}
