package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.testkit.mcp.BrokenServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The MCP gateway in a running server: an applied McpServer becomes a gateway upstream, its tools
 * are listed by {@code GET /v1/tools} and called by sessions; applying a changed McpServer
 * reconfigures the gateway.
 */
class GatewayApiTest {

  @TempDir Path dir;
  TestServer api;

  @BeforeEach
  void start() throws Exception {
    api = TestServer.start(dir, Map.of("PATH", System.getenv("PATH"), "RECORD_FILE", dir.resolve("meta.jsonl").toString()));
  }

  @AfterEach
  void stop() {
    api.close();
  }

  private static String yamlList(List<String> items) {
    List<String> quoted = new ArrayList<>();
    items.forEach(i -> quoted.add("\"" + i.replace("\\", "\\\\").replace("\"", "\\\"") + "\""));
    return "[" + String.join(", ", quoted) + "]";
  }

  private void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  private static String server(String sideEffects) {
    return """
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: rec, owner: team-a}
        spec:
          transport: stdio
          command: %s
          env: {BROKEN_RECORD: {secret: RECORD_FILE}}
          tools:
            echo: {side_effects: %s, price_usd_per_call: 0.002}
            whoami: {side_effects: read-only}
          rate_limit: {calls_per_minute: 100}
          timeout: 20s
          max_output_bytes: 1048576
        """.formatted(yamlList(BrokenServer.command("ok")), sideEffects);
  }

  @Test
  void anAppliedMcpServer_isListedByGetTools_andASessionCallsItsTool() throws Exception {
    apply(server("idempotent"));
    apply("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: clerk, owner: team-a}
        spec:
          instructions: Test agent.
          model:
            provider: scripted
            name: s
            script:
              - turns:
                  - call: [{tool: rec__echo, args: {message: "from the api"}}]
                  - say: "told: {{result}}"
          tools: [mcp://gateway/rec/echo]
        """);

    JsonNode tools = TestServer.json(api.call("GET", "/v1/tools", null));
    JsonNode echo = tools.get("tools").get(0);
    assertThat(echo.get("name").asString()).isEqualTo("rec/echo");
    assertThat(echo.get("model_name").asString()).isEqualTo("rec__echo");
    assertThat(echo.get("version").asInt()).isEqualTo(1);
    assertThat(echo.get("hash").asString()).startsWith("sha256:");
    assertThat(echo.get("side_effects").asString()).isEqualTo("idempotent");
    assertThat(echo.get("price_usd_per_call").asString()).isEqualTo("0.002");
    assertThat(echo.get("changed").asBoolean()).isFalse();
    assertThat(echo.get("output_schema").get("properties").has("echoed")).isTrue();
    assertThat(tools.get("servers").get(0).get("connected").asBoolean()).isTrue();

    HttpResponse<String> started = api.call("POST", "/v1/sessions", "{\"agent\":\"clerk\",\"message\":\"go\"}");
    assertThat(started.statusCode()).as(started.body()).isIn(200, 201, 202);
    String id = TestServer.json(started).get("id").asString();
    await().atMost(Duration.ofSeconds(30)).until(() ->
        TestServer.json(api.call("GET", "/v1/sessions/" + id, null)).toString().contains("told: {\\\"echoed\\\":\\\"from the api\\\"}"));

    // the catalog's change and the call are in the audit log, and its chain is intact
    JsonNode catalog = TestServer.json(api.call("GET", "/v1/audit?kind=catalog_change&tool=rec/echo", null)).get("entries");
    assertThat(catalog).isNotEmpty();
    assertThat(catalog.get(0).get("owner").asString()).isEqualTo("team-a");
    assertThat(catalog.get(0).toString()).contains("\"change\":\"added\"").contains("sha256:");
    JsonNode calls = TestServer.json(api.call("GET", "/v1/audit?session=" + id, null)).get("entries");
    assertThat(calls).extracting(e -> e.get("kind").asString()).containsSubsequence("policy_decision", "tool_call", "tool_result");
    assertThat(TestServer.json(api.call("GET", "/v1/audit/verify", null)).get("ok").asBoolean()).isTrue();
  }

  @Test
  void anAgentGrantedAnotherOwnersServer_isDeniedItsTools_andIsNotOfferedThem() throws Exception {
    apply(server("idempotent"));
    apply("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: borrower, owner: team-b}
        spec:
          instructions: Test agent.
          model:
            provider: scripted
            name: s
            script:
              - turns:
                  - call: [{tool: rec__echo, args: {message: "with team-a's credentials"}}]
                  - say: "told: {{result}}"
          tools: [mcp://gateway/rec/echo]
        """);

    HttpResponse<String> started = api.call("POST", "/v1/sessions", "{\"agent\":\"borrower\",\"message\":\"go\"}");
    assertThat(started.statusCode()).as(started.body()).isIn(200, 201, 202);
    String id = TestServer.json(started).get("id").asString();
    await().atMost(Duration.ofSeconds(30)).until(() ->
        TestServer.json(api.call("GET", "/v1/sessions/" + id, null)).path("last_answer").asString("").startsWith("told:"));
    assertThat(TestServer.json(api.call("GET", "/v1/sessions/" + id, null)).get("last_answer").asString())
        .contains("belongs to an MCP server of owner \"team-a\", not \"team-b\"");
    // the call never started: the audit log has its denial and no tool_call, and the server (which
    // records the _meta of every call it receives) got none
    List<String> kinds = new ArrayList<>();
    TestServer.json(api.call("GET", "/v1/audit?session=" + id, null)).get("entries").forEach(e -> kinds.add(e.get("kind").asString()));
    assertThat(kinds).containsExactly("policy_decision");
    assertThat(dir.resolve("meta.jsonl")).doesNotExist();
  }

  @Test
  void getTools_showsOnlyServersOfOwnersTheCallerMayView() throws Exception {
    apply(server("read-only"));
    HttpResponse<String> created = api.call("POST", "/v1/operators", "{\"name\":\"outsider\",\"roles\":[\"viewer@elsewhere\"]}");
    String token = TestServer.json(created).get("token").asString();

    JsonNode seen = TestServer.json(api.callAs(token, "GET", "/v1/tools", null));

    assertThat(seen.get("tools")).isEmpty();
    assertThat(seen.get("servers")).isEmpty();
  }

  @Test
  void reapplyingAChangedMcpServer_reconfiguresTheGateway() throws Exception {
    apply(server("read-only"));
    assertThat(TestServer.json(api.call("GET", "/v1/tools?server=rec", null)).get("tools").get(0).get("side_effects").asString())
        .isEqualTo("read-only");

    apply(server("side-effecting"));

    JsonNode after = TestServer.json(api.call("GET", "/v1/tools?server=rec", null));
    assertThat(after.get("tools").get(0).get("side_effects").asString()).isEqualTo("side-effecting");
    assertThat(after.get("servers").get(0).get("starts").asInt()).isEqualTo(1);
  }
}
