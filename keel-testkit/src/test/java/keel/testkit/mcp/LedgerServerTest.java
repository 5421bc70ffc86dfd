package keel.testkit.mcp;

import static keel.testkit.mcp.Clients.call;
import static keel.testkit.mcp.Clients.structured;
import static keel.testkit.mcp.Clients.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.ProtocolVersions;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The ledger server on real HTTP, driven by the MCP SDK's Streamable HTTP client. */
class LedgerServerTest {

  private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-16T09:30:00Z"), ZoneOffset.UTC);

  private LedgerServer ledger;
  private McpSyncClient client;

  @BeforeEach
  void start() {
    ledger = LedgerServer.start(0, CLOCK);
    client = Clients.http(ledger.url(), Optional.empty());
  }

  @AfterEach
  void stop() {
    client.closeGracefully();
    ledger.close();
  }

  @Test
  void listTools_givesReadEntriesAndPostEntry_withSchemas() {
    assertThat(ledger.url()).isEqualTo("http://127.0.0.1:" + ledger.port() + "/mcp");
    assertThat(client.getCurrentInitializationResult().protocolVersion()).isEqualTo(ProtocolVersions.MCP_2025_11_25);
    List<McpSchema.Tool> tools = client.listTools().tools();
    assertThat(tools).extracting(McpSchema.Tool::name).containsExactly("read-entries", "post-entry");
    assertThat(tools).allSatisfy(t -> assertThat(t.outputSchema()).containsKey("properties"));
    assertThat(tools.get(0).annotations().readOnlyHint()).isTrue();
    assertThat(tools.get(1).annotations().destructiveHint()).isTrue();
  }

  @Test
  void readEntries_filtersBySupplier_andShowsTheSeededMismatch() {
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> acme =
        (List<Map<String, Object>>)
            structured(client.callTool(call("read-entries", Map.of("supplier_id", "sup-acme"), Map.of()))).get("entries");
    assertThat(acme).extracting(e -> e.get("invoice_id")).containsExactly("INV-1001", "INV-1003");
    assertThat(((Number) acme.get(1).get("amount")).doubleValue()).isEqualTo(890.50); // the invoice says 980.50

    McpSchema.CallToolResult none = client.callTool(call("read-entries", Map.of("invoice_id", "INV-1004"), Map.of()));
    assertThat(structured(none).get("entries")).asList().isEmpty();
  }

  @Test
  void postEntry_isBooked_once_perIdempotencyKey() {
    Map<String, Object> args =
        Map.of("invoice_id", "INV-1004", "supplier_id", "sup-initech", "amount", 75, "currency", "USD", "memo", "licence renewal");
    Map<String, Object> meta = Map.of(McpMeta.IDEMPOTENCY_KEY, "post-1");
    McpSchema.CallToolResult first = client.callTool(call("post-entry", args, meta));
    assertThat(first.isError()).as(text(first)).isFalse();
    assertThat(structured(first)).containsEntry("id", "LE-0004").containsEntry("booked", "2026-11-16");
    McpSchema.CallToolResult again = client.callTool(call("post-entry", args, meta));
    assertThat(Json.same(structured(again), structured(first))).isTrue();
    assertThat(again.meta()).containsEntry(McpMeta.REPLAYED, true);

    assertThat(ledger.posted()).hasSize(1);
    assertThat(ledger.entries()).hasSize(4);
    assertThat(ledger.receivedCalls()).extracting(ReceivedCall::idempotencyKey).containsOnly(Optional.of("post-1"));
    McpSchema.CallToolResult read = client.callTool(call("read-entries", Map.of("invoice_id", "INV-1004"), Map.of()));
    assertThat(structured(read).get("entries").toString()).contains("LE-0004");
  }

  @Test
  void postEntry_fromManyClientsAtOnce_withOneKey_booksOnce() throws Exception {
    Map<String, Object> args = Map.of("invoice_id", "INV-1003", "supplier_id", "sup-acme", "amount", 90, "currency", "USD");
    int n = 8;
    List<McpSyncClient> clients = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      clients.add(Clients.http(ledger.url(), Optional.empty()));
    }
    try (ExecutorService pool = Executors.newFixedThreadPool(n)) {
      List<Future<McpSchema.CallToolResult>> results = new ArrayList<>();
      for (McpSyncClient c : clients) {
        results.add(pool.submit(() -> c.callTool(call("post-entry", args, Map.of(McpMeta.IDEMPOTENCY_KEY, "same")))));
      }
      for (Future<McpSchema.CallToolResult> r : results) {
        assertThat(structured(r.get(30, TimeUnit.SECONDS))).containsEntry("id", "LE-0004");
      }
    } finally {
      clients.forEach(McpSyncClient::closeGracefully);
    }
    assertThat(ledger.posted()).hasSize(1);
  }

  @Test
  void postEntry_badAmount_isAToolError() {
    McpSchema.CallToolResult r =
        client.callTool(
            call("post-entry", Map.of("invoice_id", "INV-1", "supplier_id", "s", "amount", -3, "currency", "USD"), Map.of()));
    assertThat(r.isError()).isTrue();
    assertThat(ledger.posted()).isEmpty();
  }

  @Test
  void main_startsOnTheGivenPort_andPrintsItsUrl() throws Exception {
    List<String> command = new ArrayList<>(InvoicesServer.command());
    command.set(command.size() - 1, LedgerServer.class.getName());
    command.addAll(List.of("--port", "0"));
    Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String url = out.readLine();
      assertThat(url).matches("http://127\\.0\\.0\\.1:\\d+/mcp");
      McpSyncClient remote = Clients.http(url, Optional.empty());
      try {
        assertThat(remote.listTools().tools()).hasSize(2);
      } finally {
        remote.closeGracefully();
      }
    } finally {
      p.destroy();
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }

    Process bad = new ProcessBuilder(List.of(command.get(0), command.get(1), command.get(2), LedgerServer.class.getName(), "--port", "x"))
        .redirectErrorStream(true)
        .start();
    assertThat(bad.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(bad.exitValue()).isEqualTo(2);
    assertThat(new String(bad.getInputStream().readAllBytes(), StandardCharsets.UTF_8))
        .contains("option --port expects a number, got \"x\"");
  }
}
