package keel.testkit.mcp;

import static keel.testkit.mcp.Clients.call;
import static keel.testkit.mcp.Clients.structured;
import static keel.testkit.mcp.Clients.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.ProtocolVersions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The invoices server as a real child process, driven by the MCP SDK's stdio client. */
class InvoicesServerTest {

  private static final String TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  @TempDir Path dir;
  private InvoicesServer.Files files;
  private McpSyncClient client;

  @BeforeEach
  void start() {
    files = InvoicesServer.Files.in(dir);
    client = Clients.stdio(files.serverParameters());
  }

  @AfterEach
  void stop() {
    client.closeGracefully();
  }

  @Test
  @SuppressWarnings("unchecked")
  void initialize_speaksTheCurrentProtocol_andListsThreeToolsWithSchemasAndAnnotations() {
    assertThat(client.getCurrentInitializationResult().protocolVersion()).isEqualTo(ProtocolVersions.MCP_2025_11_25);
    assertThat(client.getServerInfo().name()).isEqualTo(InvoicesServer.NAME);

    List<McpSchema.Tool> tools = client.listTools().tools();
    assertThat(tools).extracting(McpSchema.Tool::name).containsExactly("list-open", "get-supplier", "schedule-payment");
    for (McpSchema.Tool t : tools) {
      assertThat(t.inputSchema()).as(t.name()).containsEntry("type", "object");
      assertThat(t.outputSchema()).as(t.name()).containsEntry("type", "object").containsKey("properties");
      assertThat(t.description()).as(t.name()).isNotBlank();
    }
    McpSchema.Tool pay = tools.get(2);
    assertThat((List<Object>) pay.inputSchema().get("required")).containsExactly("invoice_id", "amount", "currency");
    assertThat(pay.annotations().readOnlyHint()).isFalse();
    assertThat(pay.annotations().destructiveHint()).isTrue();
    assertThat(tools.get(0).annotations().readOnlyHint()).isTrue();
  }

  @Test
  void listOpen_andGetSupplier_answerStructuredContent_withTheSameJsonAsText() {
    McpSchema.CallToolResult open = client.callTool(call("list-open", Map.of(), Map.of()));
    assertThat(open.isError()).isFalse();
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> invoices = (List<Map<String, Object>>) structured(open).get("invoices");
    assertThat(invoices).extracting(i -> i.get("id")).containsExactly("INV-1001", "INV-1002", "INV-1003", "INV-1004");
    assertThat(invoices.get(1)).containsEntry("supplier_id", "sup-globex").containsEntry("currency", "USD");
    assertThat(((Number) invoices.get(1).get("amount")).doubleValue()).isEqualTo(12500.0); // above a 1,000 threshold
    assertThat(((Number) invoices.get(0).get("amount")).doubleValue()).isEqualTo(420.0); // below it
    assertThat(Json.same(Json.readObject(text(open), "text"), structured(open))).isTrue();

    McpSchema.CallToolResult acme = client.callTool(call("list-open", Map.of("supplier_id", "sup-acme"), Map.of()));
    assertThat(structured(acme).get("invoices").toString()).contains("INV-1001", "INV-1003").doesNotContain("INV-1002");

    McpSchema.CallToolResult supplier = client.callTool(call("get-supplier", Map.of("supplier_id", "sup-acme"), Map.of()));
    assertThat(structured(supplier))
        .containsEntry("name", "Acme Paper Co.")
        .containsEntry("email", "billing@example-supplier.com")
        .containsEntry("payment_terms", "net 30");

    McpSchema.CallToolResult unknown = client.callTool(call("get-supplier", Map.of("supplier_id", "sup-nope"), Map.of()));
    assertThat(unknown.isError()).isTrue();
    assertThat(text(unknown)).contains("no supplier \"sup-nope\"");
  }

  @Test
  void schedulePayment_withOneIdempotencyKey_paysOnce_evenAfterTheServerRestarts() {
    Map<String, Object> args = Map.of("invoice_id", "INV-1002", "amount", 12500.00, "currency", "USD");
    Map<String, Object> meta = Map.of(McpMeta.IDEMPOTENCY_KEY, "call-7f3a", McpMeta.TRACEPARENT, TRACEPARENT);

    McpSchema.CallToolResult first = client.callTool(call("schedule-payment", args, meta));
    assertThat(first.isError()).as(text(first)).isFalse();
    assertThat(structured(first))
        .containsEntry("payment_id", "PAY-0001")
        .containsEntry("invoice_id", "INV-1002")
        .containsEntry("status", "scheduled");
    assertThat(first.meta()).isNull();

    McpSchema.CallToolResult again = client.callTool(call("schedule-payment", args, meta));
    assertThat(Json.same(structured(again), structured(first))).isTrue();
    assertThat(again.meta()).containsEntry(McpMeta.REPLAYED, true);

    // a new process over the same files still knows the key
    client.closeGracefully();
    client = Clients.stdio(files.serverParameters());
    McpSchema.CallToolResult afterRestart = client.callTool(call("schedule-payment", args, meta));
    assertThat(Json.same(structured(afterRestart), structured(first))).isTrue();

    List<JournalEntry> payments = files.payments();
    assertThat(payments).hasSize(1);
    assertThat(payments.getFirst().idempotencyKey()).contains("call-7f3a");
    assertThat(payments.getFirst().traceparent()).contains(TRACEPARENT);
    assertThat(payments.getFirst().result()).containsEntry("payment_id", "PAY-0001");

    // paid in full: the invoice is no longer open, and a new key cannot pay it again
    assertThat(structured(client.callTool(call("list-open", Map.of(), Map.of()))).get("invoices").toString())
        .doesNotContain("INV-1002");
    McpSchema.CallToolResult twice =
        client.callTool(call("schedule-payment", args, Map.of(McpMeta.IDEMPOTENCY_KEY, "call-other")));
    assertThat(twice.isError()).isTrue();
    assertThat(text(twice)).contains("INV-1002 is already paid in full");
    assertThat(files.payments()).hasSize(1);
  }

  @Test
  void schedulePayment_withoutKey_paysEachCall_andPartialPaymentsLowerTheOpenAmount() {
    Map<String, Object> args = Map.of("invoice_id", "INV-1003", "amount", 500.25, "currency", "USD");
    assertThat(structured(client.callTool(call("schedule-payment", args, Map.of()))))
        .containsEntry("payment_id", "PAY-0001");
    McpSchema.CallToolResult second = client.callTool(call("schedule-payment", args, Map.of()));
    assertThat(second.isError()).isTrue();
    assertThat(text(second)).contains("500.25 is more than the 480.25 USD still open on invoice INV-1003");
    McpSchema.CallToolResult rest =
        client.callTool(call("schedule-payment", Map.of("invoice_id", "INV-1003", "amount", 480.25, "currency", "USD"), Map.of()));
    assertThat(structured(rest)).containsEntry("payment_id", "PAY-0002");
    assertThat(((Number) structured(rest).get("remaining_amount")).doubleValue()).isZero();
    assertThat(files.payments()).extracting(JournalEntry::sequence).containsExactly(1L, 2L);
  }

  @Test
  void schedulePayment_badInput_isAToolError_sayingWhat_andPaysNothing() {
    record Case(Map<String, Object> args, Map<String, Object> meta, String message) {}
    client.callTool(
        call("schedule-payment", Map.of("invoice_id", "INV-1001", "amount", 20, "currency", "USD"), Map.of(McpMeta.IDEMPOTENCY_KEY, "k1")));
    List<Case> cases =
        List.of(
            new Case(Map.of("invoice_id", "INV-9999", "amount", 10, "currency", "USD"), Map.of(), "no invoice \"INV-9999\""),
            new Case(Map.of("invoice_id", "INV-1001", "amount", 10, "currency", "EUR"), Map.of(), "INV-1001 is in USD, not EUR"),
            new Case(Map.of("invoice_id", "INV-1001", "amount", 10.005, "currency", "USD"), Map.of(), "at most two decimals"),
            new Case(Map.of("invoice_id", "INV-1001", "amount", 401, "currency", "USD"), Map.of(), "more than the 400.00 USD"),
            new Case(
                Map.of("invoice_id", "INV-1001", "amount", 30, "currency", "USD"),
                Map.of(McpMeta.IDEMPOTENCY_KEY, "k1"),
                "idempotency key \"k1\" was first used for schedule-payment with other arguments"));
    for (Case c : cases) {
      McpSchema.CallToolResult r = client.callTool(call("schedule-payment", c.args(), c.meta()));
      assertThat(r.isError()).as(c.message()).isTrue();
      assertThat(text(r)).contains(c.message());
    }
    McpSchema.CallToolResult schemaViolation =
        client.callTool(call("schedule-payment", Map.of("invoice_id", "INV-1001", "amount", "ten"), Map.of()));
    assertThat(schemaViolation.isError()).isTrue();
    assertThat(files.payments()).hasSize(1);
  }

  @Test
  void everyReceivedCall_isLogged_withItsMeta() {
    client.callTool(call("list-open", Map.of(), Map.of(McpMeta.TRACEPARENT, TRACEPARENT)));
    client.callTool(call("get-supplier", Map.of("supplier_id", "sup-globex"), Map.of()));
    List<ReceivedCall> calls = files.receivedCalls();
    assertThat(calls).extracting(ReceivedCall::tool).containsExactly("list-open", "get-supplier");
    assertThat(calls.get(0).traceparent()).contains(TRACEPARENT);
    assertThat(calls.get(1).arguments()).containsEntry("supplier_id", "sup-globex");
    assertThat(calls.get(1).traceparent()).isEmpty();
  }

  @Test
  void anEditedDatabase_isWhatTheServerReads() throws IOException {
    Files.writeString(
        files.db(),
        """
        {"suppliers": [{"id": "s1", "name": "Solo", "email": "a@b.example", "payment_terms": "now"}],
         "invoices": [{"id": "X-1", "supplier_id": "s1", "amount": 1000.01, "currency": "USD", "due": "2026-12-01"}]}""");
    McpSchema.CallToolResult open = client.callTool(call("list-open", Map.of(), Map.of()));
    assertThat(structured(open).get("invoices").toString()).contains("X-1").doesNotContain("INV-1001");
  }

  @Test
  void stdinClosedRightAfterACall_theCallIsStillAnswered_thenTheProcessExits() throws Exception {
    ProcessBuilder pb = new ProcessBuilder(InvoicesServer.command()).redirectError(ProcessBuilder.Redirect.DISCARD);
    pb.environment().putAll(InvoicesServer.Files.in(dir.resolve("piped")).environment());
    Files.createDirectories(dir.resolve("piped"));
    Process p = pb.start();
    p.getOutputStream()
        .write(
            """
            {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}
            {"jsonrpc":"2.0","method":"notifications/initialized"}
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-supplier","arguments":{"supplier_id":"sup-globex"}}}
            """
                .getBytes(StandardCharsets.UTF_8));
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isZero();
    assertThat(out.lines()).hasSize(2);
    assertThat(out.lines().toList().get(1)).contains("\"id\":2", "\"structuredContent\"", "Globex Logistics");
  }

  @Test
  void main_withoutItsDatabaseVariable_exitsWithAMessage() throws Exception {
    List<String> command = InvoicesServer.command();
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().remove(InvoicesServer.DB_ENV);
    Process p = pb.start();
    p.getOutputStream().close();
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.exitValue()).isEqualTo(2);
    assertThat(out).contains("INVOICES_DB is not set");
  }
}
