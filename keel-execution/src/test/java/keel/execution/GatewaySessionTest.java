package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.McpServerDescriptor;
import keel.core.Metadata;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.gateway.CatalogListener;
import keel.gateway.Gateway;
import keel.gateway.GatewaySettings;
import keel.testkit.mcp.BrokenServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Sessions calling MCP tools through the gateway: a real step executor, a real SQLite store, a
 * scripted model, and testkit's MCP server as a real child process.
 */
class GatewaySessionTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  @TempDir Path dir;
  private Store store;
  private Gateway gateway;
  private SessionService sessions;
  private Path record;

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), true);
    gateway = new Gateway(store.toolCatalog(), dir, Map.of("PATH", System.getenv("PATH")), Clock.systemUTC(),
        GatewaySettings.defaults(), CatalogListener.NONE);
    record = dir.resolve("meta.jsonl");
    gateway.configure(List.of(new McpServerDescriptor(new Metadata("rec", "team-a", Map.of()),
        new McpServerDescriptor.Spec("stdio", BrokenServer.command("ok"), Optional.empty(),
            Map.of("BROKEN_RECORD", new McpServerDescriptor.ValueSource(Optional.of(record.toString()), Optional.empty())),
            Map.of(), Map.of("echo", new McpServerDescriptor.ToolSettings("read-only", Optional.empty(), Optional.empty()),
                "whoami", new McpServerDescriptor.ToolSettings("read-only", Optional.empty(), Optional.empty())),
            Optional.empty(), Optional.of(Duration.ofSeconds(20)), Optional.empty()))));
    ToolRegistry tools = ToolRegistry.of(new InternalTools().tools(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of())))
        .withGateway(gateway);
    sessions = SessionService.create(store, ModelProviders.create(Map.of()), tools, Clock.systemUTC(),
        ExecutionSettings.defaults("node-test"));
  }

  @AfterEach
  void close() {
    sessions.close();
    gateway.close();
    store.close();
  }

  private static String agent(String name, String script, String tools) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: team-a}
        spec:
          instructions: Test agent.
          model:
            provider: scripted
            name: s
            script:
        %s
          tools: [%s]
          max_steps: 10
        """.formatted(name, script.indent(6).stripTrailing(), tools);
  }

  private List<SessionEvent> events(String id) {
    return sessions.events(id, 0, 10_000).stream().map(StoredEvent::event).toList();
  }

  private <T extends SessionEvent> List<T> events(String id, Class<T> type) {
    return events(id).stream().filter(type::isInstance).map(type::cast).toList();
  }

  private SessionRecord run(String agent) {
    SessionRecord r = sessions.start(new SessionService.Start(agent, "go", "operator:ann", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(30)).until(() -> sessions.record(r.id()).effectiveStatus() == SessionStatus.IDLE);
    return r;
  }

  @Test
  void aSessionCallsAnMcpTool_throughTheGateway_andGetsItsResult_withTraceAndKeyInMeta() throws Exception {
    Agents.apply(store, agent("clerk", """
        - turns:
            - call: [{tool: rec__echo, args: {message: "invoice 42"}}]
            - say: "told: {{result}}"
        """, "mcp://gateway/rec/echo"));

    SessionRecord r = run("clerk");

    SessionEvent.ToolCallAuthorized authorized = events(r.id(), SessionEvent.ToolCallAuthorized.class).getFirst();
    assertThat(authorized.capability()).isEqualTo("mcp://gateway/rec/echo@1");
    assertThat(authorized.idempotent()).isTrue();
    SessionEvent.ToolCallCompleted done = events(r.id(), SessionEvent.ToolCallCompleted.class).getFirst();
    assertThat(done.error()).isFalse();
    assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("told: {\"echoed\":\"invoice 42\"}");
    SessionEvent.ToolCallStarted started = events(r.id(), SessionEvent.ToolCallStarted.class).getFirst();
    JsonNode meta = JSON.readTree(Files.readAllLines(record).getFirst());
    assertThat(meta.get("dev.keel/idempotency-key").asString()).isEqualTo(started.idempotencyKey()).isNotEmpty();
    assertThat(meta.get("dev.keel/session").asString()).isEqualTo(r.id());
    assertThat(meta.get("dev.keel/principal").asString()).isEqualTo("agent:clerk");
    assertThat(meta.get("traceparent").asString()).matches("00-" + r.traceId() + "-[0-9a-f]{16}-01");
  }

  @Test
  void aPromptInjectedModel_askingForAnUngrantedMcpTool_isDenied_andTheSessionGoesOn() throws Exception {
    Agents.apply(store, agent("clerk", """
        - turns:
            - call: [{tool: rec__whoami, args: {}}, {tool: rec__echo, args: {message: "still working"}}]
            - say: "done"
        """, "mcp://gateway/rec/echo"));

    SessionRecord r = run("clerk");

    SessionEvent.ToolCallDenied denied = events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).contains("agent:clerk is not granted mcp://gateway/rec/whoami@1");
    assertThat(events(r.id(), SessionEvent.ToolCallCompleted.class)).hasSize(1);
    assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("done");
    // the ungranted tool never ran: the server saw only the echo
    assertThat(Files.readAllLines(record)).hasSize(1);
  }

  @Test
  void aPinToAnotherVersion_doesNotCoverTheTool_soItIsNeitherOfferedNorRun() throws Exception {
    Agents.apply(store, agent("pinned", """
        - turns:
            - call: [{tool: rec__echo, args: {message: "hi"}}]
            - say: "told: {{result}}"
        """, "mcp://gateway/rec/echo@2, mcp://gateway/rec/whoami@1"));

    SessionRecord r = run("pinned");

    SessionEvent.ToolCallDenied denied = events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).contains("is not granted mcp://gateway/rec/echo@1");
    assertThat(Files.exists(record)).isFalse();
    ToolRegistry registry = ToolRegistry.of(List.of()).withGateway(gateway);
    assertThat(registry.granted(List.of("mcp://gateway/rec/echo@2", "mcp://gateway/rec/whoami@1")))
        .extracting(t -> t.spec().name()).containsExactly("rec__whoami");
    assertThat(registry.granted(List.of("mcp://gateway/rec/echo@1")))
        .extracting(t -> t.spec().name()).containsExactly("rec__echo");
  }
}
