package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.testkit.mcp.InvoicesServer;
import keel.testkit.mcp.JournalEntry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The finance scenario end to end on a real server: the demo invoices MCP server runs as a stdio
 * child process behind the gateway; an agent pays two invoices in one model turn. The one below
 * the approval threshold is paid at once; the one above waits in the inbox until an approver (not
 * the operator who started the session) decides. Approved, it is paid exactly once; denied, the
 * model reads the reason and nothing is paid. Every step is in the hash-chained audit log.
 */
class FinanceScenarioTest {

  @TempDir Path dir;
  TestServer api;
  InvoicesServer.Files files;

  @BeforeEach
  void start() throws Exception {
    files = InvoicesServer.Files.in(dir);
    Map<String, String> env = new HashMap<>(files.environment());
    env.put("PATH", System.getenv("PATH"));
    api = TestServer.start(dir.resolve("data"), env);
    apply("""
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: invoices, owner: finance}
        spec:
          transport: stdio
          command: %s
          env:
            INVOICES_DB: {secret: INVOICES_DB}
            INVOICES_JOURNAL: {secret: INVOICES_JOURNAL}
            INVOICES_CALLS: {secret: INVOICES_CALLS}
          tools:
            list-open: {side_effects: read-only}
            get-supplier: {side_effects: read-only}
            schedule-payment: {side_effects: side-effecting, value_usd: args.amount, price_usd_per_call: 0.002}
          timeout: 30s
        ---
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: payer, owner: finance}
        spec:
          instructions: Pay the open invoices you are asked to pay.
          model:
            provider: scripted
            name: s
            script:
              - turns:
                  - say: "INV-1001 and INV-1002 are due; paying both"
                    call:
                      - {tool: invoices__schedule-payment, args: {invoice_id: INV-1001, amount: 420.00, currency: USD}}
                      - {tool: invoices__schedule-payment, args: {invoice_id: INV-1002, amount: 12500.00, currency: USD}}
                  - say: "done: {{result}}"
          tools: [mcp://gateway/invoices]
          approval: {on_action_value_usd_gt: 1000, expires_after: 1h}
        """.formatted(yamlList(InvoicesServer.command())));
  }

  @AfterEach
  void stop() {
    api.close();
  }

  @Test
  void anInvoiceAboveTheThreshold_waitsForAnApprover_andOneBelowItDoesNot() throws Exception {
    String approver = operator("bea", "approver@finance");
    String session = startSession();

    JsonNode approval = awaitPendingApproval(session);
    // the approval is requested with the model's response; the 420 USD invoice is paid without
    // waiting for it, then the session waits for the 12,500 USD one
    await().atMost(Duration.ofSeconds(60)).until(() -> status(session).equals("awaiting_approval"));
    assertThat(paidInvoices()).containsExactly("INV-1001");
    assertThat(approval.get("tool").asString()).isEqualTo("invoices/schedule-payment");
    assertThat(new java.math.BigDecimal(approval.get("value_usd").asString())).isEqualByComparingTo("12500");
    assertThat(approval.get("arguments").get("invoice_id").asString()).isEqualTo("INV-1002");
    assertThat(approval.get("reasoning").asString()).contains("paying both");

    // the operator who started the session may not approve its own request
    String id = approval.get("id").asString();
    assertThat(api.call("POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"mine\"}").statusCode()).isEqualTo(403);
    HttpResponse<String> approved = api.callAs(approver, "POST", "/v1/approvals/" + id + "/approve",
        "{\"reason\":\"matches the ledger\"}");
    assertThat(approved.statusCode()).as(approved.body()).isEqualTo(200);

    await().atMost(Duration.ofSeconds(60)).until(() -> answer(session).startsWith("done:"));
    assertThat(paidInvoices()).containsExactly("INV-1001", "INV-1002");
    List<JournalEntry> payments = files.payments();
    assertThat(payments.get(0).idempotencyKey()).isPresent().isNotEqualTo(payments.get(1).idempotencyKey());
    assertThat(payments.get(1).traceparent()).hasValueSatisfying(t -> assertThat(t).startsWith("00-"));

    List<String> kinds = auditKinds(session);
    // the approval is requested with the response, before the first call runs; each call is
    // authorized, started and completed in the model's order
    assertThat(kinds).containsExactly("approval_requested", "policy_decision", "tool_call", "tool_result",
        "approval_decided", "policy_decision", "tool_call", "tool_result");
    JsonNode decided = audit(session, "approval_decided").get(0);
    assertThat(decided.get("actor").asString()).isEqualTo("operator:bea");
    assertThat(decided.get("detail").get("reason").asString()).isEqualTo("matches the ledger");
    assertThat(TestServer.json(api.call("GET", "/v1/audit/verify", null)).get("ok").asBoolean()).isTrue();

    // the human decision is in the metrics: requested, decided, and how long it waited
    String metrics = api.call("GET", "/metrics", null).body();
    assertThat(metrics).contains("keel_approvals_requested_total{agent=\"payer\"} 1.0")
        .contains("keel_approvals_decided_total{agent=\"payer\",decision=\"approved\"} 1.0")
        .contains("keel_approval_wait_seconds_count{agent=\"payer\"} 1");
  }

  @Test
  void aDeniedPayment_isNeverMade_andTheModelReadsTheReason() throws Exception {
    String approver = operator("bea", "approver@finance");
    String session = startSession();
    JsonNode approval = awaitPendingApproval(session);

    HttpResponse<String> denied = api.callAs(approver, "POST", "/v1/approvals/" + approval.get("id").asString() + "/deny",
        "{\"reason\":\"the supplier disputes this invoice\"}");
    assertThat(denied.statusCode()).as(denied.body()).isEqualTo(200);

    await().atMost(Duration.ofSeconds(60)).until(() -> answer(session).startsWith("done:"));
    assertThat(answer(session)).contains("the supplier disputes this invoice");
    assertThat(paidInvoices()).containsExactly("INV-1001");
    assertThat(audit(session, "approval_decided").get(0).get("detail").get("decision").asString()).isEqualTo("denied");
  }

  private String startSession() throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/sessions", "{\"agent\":\"payer\",\"message\":\"pay INV-1001 and INV-1002\"}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("id").asString();
  }

  private JsonNode awaitPendingApproval(String session) {
    JsonNode[] found = new JsonNode[1];
    await().atMost(Duration.ofSeconds(60)).until(() -> {
      for (JsonNode a : TestServer.json(api.call("GET", "/v1/approvals?agent=payer", null)).get("approvals")) {
        if (a.get("session_id").asString().equals(session)) {
          found[0] = a;
          return true;
        }
      }
      return false;
    });
    return found[0];
  }

  private List<String> paidInvoices() {
    return files.payments().stream().map(p -> String.valueOf(p.arguments().get("invoice_id"))).toList();
  }

  private String status(String session) throws Exception {
    return TestServer.json(api.call("GET", "/v1/sessions/" + session, null)).get("status").asString();
  }

  private String answer(String session) throws Exception {
    JsonNode s = TestServer.json(api.call("GET", "/v1/sessions/" + session, null));
    return s.path("last_answer").asString("");
  }

  private JsonNode audit(String session, String kind) throws Exception {
    return TestServer.json(api.call("GET", "/v1/audit?session=" + session + "&kind=" + kind, null)).get("entries");
  }

  private List<String> auditKinds(String session) throws Exception {
    List<String> out = new ArrayList<>();
    TestServer.json(api.call("GET", "/v1/audit?session=" + session, null)).get("entries").forEach(e -> out.add(e.get("kind").asString()));
    return out;
  }

  private String operator(String name, String role) throws Exception {
    var body = EventCodec.mapper().createObjectNode().put("name", name);
    body.putArray("roles").add(role);
    HttpResponse<String> r = api.call("POST", "/v1/operators", body.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("token").asString();
  }

  private void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  private static String yamlList(List<String> items) {
    List<String> quoted = new ArrayList<>();
    items.forEach(i -> quoted.add("\"" + i.replace("\\", "\\\\").replace("\"", "\\\"") + "\""));
    return "[" + String.join(", ", quoted) + "]";
  }
}
