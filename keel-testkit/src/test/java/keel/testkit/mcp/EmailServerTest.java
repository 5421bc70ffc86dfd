package keel.testkit.mcp;

import static keel.testkit.mcp.Clients.call;
import static keel.testkit.mcp.Clients.structured;
import static keel.testkit.mcp.Clients.text;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The email server on real HTTP: its bearer check, idempotent drafts and the recorded {@code _meta}. */
class EmailServerTest {

  private static final String TOKEN = "test-email-token-5d1c";
  private static final String TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

  private EmailServer email;

  @BeforeEach
  void start() {
    email = EmailServer.start(TOKEN);
  }

  @AfterEach
  void stop() {
    email.close();
  }

  @Test
  void withTheToken_draftsAreIdempotentByKey_andTheMetaIsRecorded() {
    McpSyncClient client = Clients.http(email.url(), Optional.of(TOKEN));
    try {
      List<McpSchema.Tool> tools = client.listTools().tools();
      assertThat(tools).extracting(McpSchema.Tool::name).containsExactly("draft");
      assertThat(tools.getFirst().annotations().idempotentHint()).isTrue();
      assertThat(tools.getFirst().annotations().readOnlyHint()).isFalse();
      assertThat(tools.getFirst().outputSchema()).containsKey("properties");

      Map<String, Object> args =
          Map.of("to", "billing@example-supplier.com", "subject", "INV-1003: amount differs", "body", "Our ledger has 890.50.");
      Map<String, Object> meta = Map.of(McpMeta.IDEMPOTENCY_KEY, "draft-1", McpMeta.TRACEPARENT, TRACEPARENT);
      McpSchema.CallToolResult first = client.callTool(call("draft", args, meta));
      assertThat(first.isError()).as(text(first)).isFalse();
      assertThat(structured(first)).containsEntry("draft_id", "DRAFT-0001").containsEntry("status", "draft");
      McpSchema.CallToolResult again = client.callTool(call("draft", args, meta));
      assertThat(structured(again)).isEqualTo(structured(first));
      McpSchema.CallToolResult other = client.callTool(call("draft", args, Map.of(McpMeta.IDEMPOTENCY_KEY, "draft-2")));
      assertThat(structured(other)).containsEntry("draft_id", "DRAFT-0002");

      assertThat(email.drafts()).hasSize(2);
      assertThat(email.drafts().getFirst().arguments()).containsEntry("body", "Our ledger has 890.50.");
      assertThat(email.drafts().getFirst().traceparent()).contains(TRACEPARENT);
      assertThat(email.receivedCalls()).hasSize(3);
      assertThat(email.receivedCalls().get(1).idempotencyKey()).contains("draft-1");
      assertThat(email.receivedCalls().get(1).traceparent()).contains(TRACEPARENT);
      assertThat(email.refusedRequests()).isZero();

      McpSchema.CallToolResult bad = client.callTool(call("draft", Map.of("to", "not an address", "subject", "s", "body", "b"), Map.of()));
      assertThat(bad.isError()).isTrue();
      assertThat(text(bad)).contains("argument \"to\": expected one email address");
      assertThat(email.drafts()).hasSize(2);
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void withoutOrWithAWrongToken_theSdkClientCannotConnect_andNothingIsRecorded() {
    assertThatThrownBy(() -> Clients.http(email.url(), Optional.empty())).isInstanceOf(RuntimeException.class);
    assertThatThrownBy(() -> Clients.http(email.url(), Optional.of("wrong"))).isInstanceOf(RuntimeException.class);
    assertThat(email.refusedRequests()).isGreaterThanOrEqualTo(2);
    assertThat(email.receivedCalls()).isEmpty();
    assertThat(email.drafts()).isEmpty();
  }

  @Test
  void aRawRequestWithoutTheToken_gets401_withoutTheTokenEchoed() throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    String body =
        """
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
         "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}""";
    for (Optional<String> auth : List.of(Optional.<String>empty(), Optional.of("Bearer not-it"), Optional.of(TOKEN))) {
      HttpRequest.Builder r =
          HttpRequest.newBuilder(URI.create(email.url()))
              .header("Content-Type", "application/json")
              .header("Accept", "application/json, text/event-stream")
              .POST(HttpRequest.BodyPublishers.ofString(body));
      auth.ifPresent(a -> r.header("Authorization", a));
      HttpResponse<String> response = http.send(r.build(), HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).as(auth.toString()).isEqualTo(401);
      assertThat(response.body()).doesNotContain("not-it", TOKEN);
    }
    HttpResponse<String> ok =
        http.send(
            HttpRequest.newBuilder(URI.create(email.url()))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json, text/event-stream")
                .header("Authorization", "Bearer " + TOKEN)
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(ok.statusCode()).isEqualTo(200);
    assertThat(ok.headers().firstValue("mcp-session-id")).isPresent();
    assertThat(email.refusedRequests()).isEqualTo(3);
  }

  @Test
  void start_withABlankToken_isRefused() {
    assertThatThrownBy(() -> EmailServer.start(" ")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bearer token");
  }
}
