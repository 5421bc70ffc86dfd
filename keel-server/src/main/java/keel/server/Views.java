package keel.server;

import java.util.List;
import java.util.Map;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.EventCodec;
import keel.core.Message;
import keel.core.PendingCall;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.core.ToolCall;
import keel.core.Usage;
import keel.data.Input;
import keel.data.InventoryStore;
import keel.data.SessionRecord;
import keel.execution.SessionView;
import keel.execution.Trace;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** How the API writes Keel's objects as JSON: snake_case fields, ISO-8601 times. */
final class Views {

  static final JsonMapper JSON = EventCodec.mapper();

  private Views() {}

  /** An approval of the inbox, with its action, value, reasons, the agent's reasoning and the decision. */
  static ObjectNode approval(keel.data.Approval a) {
    ObjectNode o = JSON.createObjectNode();
    o.put("id", a.id());
    o.put("status", a.status().wireName());
    o.put("session_id", a.sessionId());
    o.put("call_id", a.callId());
    o.put("agent", a.agent());
    o.put("owner", a.owner());
    o.put("tool", a.tool());
    try {
      o.set("arguments", JSON.readTree(a.arguments()));
    } catch (RuntimeException e) {
      o.put("arguments", a.arguments());
    }
    o.put("value_usd", a.valueUsd().toPlainString());
    ArrayNode reasons = o.putArray("reasons");
    for (keel.core.PolicyReason r : a.reasons()) {
      reasons.addObject().put("rule", r.rule()).put("reason", r.reason());
    }
    o.put("principal", a.principal());
    o.put("requester", a.requester());
    o.put("reasoning", a.reasoning());
    o.put("requested_at", a.requestedAt().toString());
    o.put("expires_at", a.expiresAt().toString());
    a.decision().ifPresent(d -> {
      ObjectNode dn = o.putObject("decision");
      dn.put("by", d.by()).put("at", d.at().toString()).put("reason", d.reason());
      if (!d.arguments().isEmpty()) {
        try {
          dn.set("arguments", JSON.readTree(d.arguments()));
        } catch (RuntimeException e) {
          dn.put("arguments", d.arguments());
        }
      }
    });
    return o;
  }

  static ObjectNode session(SessionRecord r) {
    ObjectNode o = JSON.createObjectNode();
    o.put("id", r.id());
    o.put("agent", r.agent());
    o.put("revision", r.revision());
    o.put("owner", r.owner());
    o.put("status", r.effectiveStatus().wireName());
    o.put("last_seq", r.lastSeq());
    o.put("pending_inputs", r.pendingInputs());
    o.put("trace_id", r.traceId());
    r.parentId().ifPresent(p -> o.put("parent_id", p));
    o.put("root_id", r.rootId());
    o.put("created_at", r.createdAt().toString());
    o.put("updated_at", r.updatedAt().toString());
    return o;
  }

  static ObjectNode sessionView(SessionView v) {
    ObjectNode o = session(v.record());
    o.put("status", v.status().wireName());
    o.put("model_calls", v.modelCalls());
    o.set("usage", usage(v.usage()));
    o.put("cost_usd", v.costUsd().stripTrailingZeros().toPlainString());
    if (!v.driftPending().isEmpty()) {
      o.put("waiting_to_accept_model_version", v.driftPending());
    }
    v.budgetBlock().ifPresent(b -> o.putObject("budget_blocked")
        .put("kind", b.kind())
        .put("limit", usd(b.limit()))
        .put("used", usd(b.used()))
        .put("reserved", usd(b.reserved()))
        .put("requested", usd(b.requested()))
        .put("window_end", b.windowEnd().toString()));
    o.put("last_answer", v.lastAnswer());
    ArrayNode grants = o.putArray("grants");
    v.grants().forEach(grants::add);
    ArrayNode chain = o.putArray("delegation_chain");
    v.chain().forEach(chain::add);
    if (!v.failure().isEmpty()) {
      o.put("failure", v.failure());
    }
    ArrayNode conv = o.putArray("conversation");
    for (Message m : v.conversation()) {
      conv.add(message(m));
    }
    ArrayNode pending = o.putArray("pending_tool_calls");
    for (PendingCall p : v.pending()) {
      ObjectNode c = pending.addObject();
      c.put("call_id", p.call().id());
      c.put("name", p.call().name());
      c.put("arguments", p.call().arguments());
      c.put("state", p.state().name().toLowerCase(java.util.Locale.ROOT));
      c.put("attempt", p.attempt());
      if (!p.subagentSessionId().isEmpty()) {
        c.put("subagent_session_id", p.subagentSessionId());
      }
      if (!p.approvalId().isEmpty()) {
        c.put("approval_id", p.approvalId());
      }
    }
    return o;
  }

  static ObjectNode message(Message m) {
    ObjectNode o = JSON.createObjectNode();
    switch (m) {
      case Message.User u -> {
        o.put("role", "user");
        o.put("text", u.text());
      }
      case Message.Assistant a -> {
        o.put("role", "assistant");
        o.put("text", a.text());
        ArrayNode calls = o.putArray("tool_calls");
        for (ToolCall c : a.toolCalls()) {
          calls.addObject().put("id", c.id()).put("name", c.name()).put("arguments", c.arguments());
        }
      }
      case Message.ToolResult r -> {
        o.put("role", "tool");
        o.put("call_id", r.callId());
        o.put("name", r.toolName());
        o.put("error", r.error());
        switch (r.content()) {
          case Content.Inline i -> o.put("text", i.text());
          case Content.Blob b -> {
            o.put("text", b.preview());
            o.put("blob_sha256", b.sha256());
            o.put("blob_bytes", b.bytes());
          }
        }
      }
    }
    return o;
  }

  static ObjectNode usage(Usage u) {
    ObjectNode o = JSON.createObjectNode();
    o.put("input_tokens", u.inputTokens());
    o.put("output_tokens", u.outputTokens());
    o.put("cache_write_tokens", u.cacheWriteTokens());
    o.put("cache_read_tokens", u.cacheReadTokens());
    return o;
  }

  static ObjectNode event(StoredEvent e) {
    ObjectNode o = JSON.createObjectNode();
    o.put("session_id", e.sessionId());
    o.put("seq", e.seq());
    o.put("at", e.at().toString());
    o.put("type", e.event().type());
    o.put("node", e.node());
    o.put("trace_id", e.traceId());
    o.put("span_id", e.spanId());
    o.set("data", JSON.valueToTree(e.event()));
    return o;
  }

  static ObjectNode input(Input in) {
    ObjectNode o = JSON.createObjectNode();
    o.put("session_id", in.sessionId());
    o.put("input_id", in.inputId());
    o.put("kind", in.kind());
    o.put("received_at", in.receivedAt().toString());
    return o;
  }

  static ObjectNode span(Trace.Span s) {
    ObjectNode o = JSON.createObjectNode();
    o.put("span_id", s.id());
    o.put("name", s.name());
    o.put("kind", s.kind());
    o.put("start", s.start().toString());
    s.end().ifPresent(e -> o.put("end", e.toString()));
    s.duration().ifPresent(d -> o.put("duration_ms", d.toMillis()));
    o.put("error", s.error());
    ObjectNode attrs = o.putObject("attributes");
    s.attributes().forEach(attrs::put);
    ArrayNode children = o.putArray("children");
    for (Trace.Span c : s.children()) {
      children.add(span(c));
    }
    return o;
  }

  static ObjectNode agent(AgentDescriptor a, InventoryStore.Revision r, Map<SessionStatus, Long> counts) {
    ObjectNode o = JSON.createObjectNode();
    o.put("name", a.name());
    o.put("owner", a.metadata().owner());
    o.put("revision", r.number());
    o.put("mode", a.spec().mode().name().toLowerCase(java.util.Locale.ROOT));
    ObjectNode model = o.putObject("model");
    model.put("provider", a.spec().model().provider());
    model.put("name", a.spec().model().name());
    a.spec().model().pinnedRevision().ifPresent(p -> model.put("pinned_revision", p));
    ArrayNode tools = o.putArray("tools");
    a.spec().tools().forEach(tools::add);
    ObjectNode sessions = o.putObject("sessions");
    counts.forEach((k, v) -> sessions.put(k.wireName(), v));
    o.put("applied_by", r.appliedBy());
    o.put("applied_at", r.appliedAt().toString());
    return o;
  }

  static ObjectNode revision(InventoryStore.Revision r, boolean withSpec) {
    ObjectNode o = JSON.createObjectNode();
    o.put("kind", r.kind());
    o.put("name", r.name());
    o.put("revision", r.number());
    o.put("owner", r.owner());
    o.put("status", r.status().wireName());
    o.put("applied_by", r.appliedBy());
    o.put("applied_at", r.appliedAt().toString());
    r.activatedAt().ifPresent(t -> o.put("activated_at", t.toString()));
    r.rollbackOf().ifPresent(n -> o.put("rollback_of", n));
    r.decision().ifPresent(d -> {
      o.put("decided_by", d.by());
      o.put("decided_at", d.at().toString());
      if (!d.reason().isEmpty()) {
        o.put("reason", d.reason());
      }
    });
    review(o, r.review());
    if (withSpec) {
      o.set("descriptor", JSON.readTree(r.spec()));
    }
    return o;
  }

  /** A review as {@code widens}, {@code widening} and {@code narrowing}. */
  static void review(ObjectNode o, InventoryStore.Review review) {
    o.put("widens", review.widens());
    ArrayNode w = o.putArray("widening");
    review.widening().forEach(w::add);
    ArrayNode n = o.putArray("narrowing");
    review.narrowing().forEach(n::add);
  }

  /** An operator, never with its token (only the create and token routes add it, once). */
  static ObjectNode operator(keel.control.Operators.Operator op) {
    ObjectNode o = JSON.createObjectNode();
    o.put("name", op.name());
    o.put("principal", op.principal());
    ArrayNode roles = o.putArray("roles");
    op.bindings().forEach(b -> roles.add(b.toString()));
    o.put("status", op.revoked() ? "revoked" : "active");
    o.put("bootstrap", op.bootstrap());
    o.put("created_by", op.createdBy());
    o.put("created_at", op.createdAt().toString());
    op.tokenIssuedAt().ifPresent(t -> o.put("token_issued_at", t.toString()));
    op.revokedAt().ifPresent(t -> o.put("revoked_at", t.toString()));
    op.revokedBy().ifPresent(b -> o.put("revoked_by", b));
    return o;
  }

  /** A dollar amount as an exact decimal string without trailing zeros, e.g. {@code "0.0025"}. */
  static String usd(java.math.BigDecimal d) {
    return d.signum() == 0 ? "0" : d.stripTrailingZeros().toPlainString();
  }

  static ObjectNode costs(CostsQuery q, List<keel.data.CostLedger.Row> rows) {
    ObjectNode o = JSON.createObjectNode();
    o.put("from", q.query().from().toString());
    o.put("to", q.query().to().toString());
    ArrayNode by = o.putArray("group_by");
    q.groupBy().forEach(d -> by.add(d.wireName()));
    q.query().agent().ifPresent(a -> o.put("agent", a));
    q.query().owner().ifPresent(w -> o.put("owner", w));
    o.put("currency", "USD");
    ArrayNode out = o.putArray("rows");
    java.math.BigDecimal total = java.math.BigDecimal.ZERO;
    long entries = 0;
    for (keel.data.CostLedger.Row r : rows) {
      ObjectNode row = out.addObject();
      for (keel.data.CostLedger.Dimension d : q.groupBy()) {
        row.put(d.wireName(), r.group().get(d));
      }
      if (q.groupBy().contains(keel.data.CostLedger.Dimension.KIND)) {
        // quantities of different kinds have different units, so they are shown per kind only
        row.put("quantity", r.quantity());
        row.put("unit", keel.data.CostKind.fromWire(r.group().get(keel.data.CostLedger.Dimension.KIND)).unit());
      }
      row.put("usd", usd(r.usd()));
      row.put("entries", r.entries());
      total = total.add(r.usd());
      entries += r.entries();
    }
    o.putObject("total").put("usd", usd(total)).put("entries", entries);
    return o;
  }

  static ObjectNode budget(String agent, int revision, List<keel.control.Budgets.Status> budgets, long blockedSessions) {
    ObjectNode o = JSON.createObjectNode();
    o.put("agent", agent);
    o.put("revision", revision);
    ArrayNode out = o.putArray("budgets");
    for (keel.control.Budgets.Status b : budgets) {
      ObjectNode x = out.addObject();
      x.put("kind", b.kind().wireName());
      x.put("unit", b.kind().unit());
      x.put("limit", usd(b.limit()));
      x.put("used", usd(b.used()));
      x.put("reserved", usd(b.reserved()));
      x.put("percent", b.percent().toPlainString());
      x.putObject("window").put("start", b.windowStart().toString()).put("end", b.windowEnd().toString());
    }
    o.put("budget_blocked_sessions", blockedSessions);
    return o;
  }

  static ArrayNode array(List<ObjectNode> items) {
    ArrayNode a = JSON.createArrayNode();
    items.forEach(a::add);
    return a;
  }

  /** The MCP gateway's catalog and the state of its servers. */
  static ObjectNode tools(List<keel.gateway.CatalogEntry> entries, List<keel.gateway.ServerStatus> servers) {
    ObjectNode o = JSON.createObjectNode();
    ArrayNode out = o.putArray("tools");
    for (keel.gateway.CatalogEntry e : entries) {
      ObjectNode x = out.addObject();
      x.put("name", e.catalogName());
      x.put("server", e.server());
      x.put("tool", e.tool());
      x.put("owner", e.owner());
      x.put("model_name", e.modelName());
      x.put("version", e.version());
      x.put("hash", e.hash());
      x.put("capability", e.capability());
      ArrayNode versions = x.putArray("versions");
      e.versions().forEach(versions::add);
      x.put("changed", e.changed());
      e.changedAt().ifPresent(t -> x.put("changed_at", t.toString()));
      x.put("side_effects", e.sideEffects().wireName());
      x.put("price_usd_per_call", e.priceUsdPerCall().toPlainString());
      e.valueUsd().ifPresent(v -> x.put("value_usd", v));
      x.put("description", e.description());
      x.set("input_schema", JSON.readTree(e.inputSchema()));
      e.outputSchema().ifPresent(s -> x.set("output_schema", JSON.readTree(s)));
    }
    ArrayNode ss = o.putArray("servers");
    for (keel.gateway.ServerStatus st : servers) {
      ObjectNode x = ss.addObject();
      x.put("name", st.name());
      x.put("transport", st.transport());
      x.put("connected", st.connected());
      x.put("starts", st.starts());
      x.put("failures_in_a_row", st.failuresInARow());
      st.lastError().ifPresent(v -> x.put("last_error", v));
      st.retryAt().ifPresent(v -> x.put("retry_at", v.toString()));
      ArrayNode problems = x.putArray("problems");
      st.problems().forEach(problems::add);
    }
    return o;
  }

  /** A page of audit entries; {@code next_after} pages on when the page is full. */
  static ObjectNode audit(List<keel.data.AuditEntry> entries, int limit) {
    ObjectNode o = JSON.createObjectNode();
    o.set("entries", array(entries.stream().map(Views::auditEntry).toList()));
    if (entries.size() == limit) {
      o.put("next_after", entries.getLast().seq());
    }
    return o;
  }

  static ObjectNode auditEntry(keel.data.AuditEntry e) {
    ObjectNode o = JSON.createObjectNode();
    o.put("seq", e.seq());
    o.put("at", e.at().toString());
    o.put("kind", e.record().kind());
    o.put("actor", e.record().actor());
    o.put("owner", e.record().owner());
    o.put("agent", e.record().agent());
    o.put("session_id", e.record().sessionId());
    o.put("tool", e.record().tool());
    JsonNode detail;
    try {
      detail = JSON.readTree(e.record().detail());
    } catch (RuntimeException notJson) {
      // a row edited outside Keel: shown as stored (verification reports it)
      detail = JSON.getNodeFactory().textNode(e.record().detail());
    }
    o.set("detail", detail);
    o.put("prev_hash", e.prevHash());
    o.put("hash", e.hash());
    return o;
  }

  static ObjectNode auditVerification(keel.data.AuditStore.Verification v) {
    ObjectNode o = JSON.createObjectNode();
    switch (v) {
      case keel.data.AuditStore.Verification.Intact ok -> {
        o.put("ok", true);
        o.put("checked", ok.checked());
        o.put("head_hash", ok.headHash());
        ok.anchorSeq().ifPresent(s -> o.put("anchor_seq", s));
      }
      case keel.data.AuditStore.Verification.Broken b -> {
        o.put("ok", false);
        o.put("checked", b.checked());
        o.put("seq", b.seq());
        o.put("problem", b.problem().wireName());
        o.put("reason", b.reason());
      }
    }
    return o;
  }
}
