package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** Sub-agents and identities as the CLI shows them, against a real server over HTTP. */
class SubagentCliTest {

  static final String AGENTS =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: planner, owner: team-a}
      spec:
        instructions: Plan.
        model:
          provider: scripted
          name: p
          script:
            - turns:
                - call: [{tool: agent_researcher, args: {task: "research {{input}}"}}]
                - say: "plan: {{result}}"
        tools: [agent://researcher, internal://time]
      ---
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: researcher, owner: team-a}
      spec:
        instructions: Research.
        model:
          provider: scripted
          name: r
          script:
            - turns:
                - call: [{tool: memory_get, args: {key: x}}]
                - say: "found {{input}}"
        tools: [internal://time, internal://memory]
        memory: {type: persistent}
      """;

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", Files.readString(server.adminTokenFile()).strip());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  Result cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void aDelegatingSession_showsItsSubagent_inFollow_events_describe_andTrace() throws Exception {
    Path file = dir.resolve("agents.yaml");
    Files.writeString(file, AGENTS);
    assertThat(cli("apply", "-f", file.toString()).code()).isZero();

    Result run = cli("run", "planner", "invoices", "--task", "--follow");
    assertThat(run.code()).as(run.err()).isZero();
    String parent = run.out().lines().filter(l -> l.startsWith("session ")).findFirst().orElseThrow().split(" ")[1];
    String child = run.out().lines().filter(l -> l.contains("⇢ delegated to agent researcher")).findFirst().orElseThrow()
        .replaceAll(".*\\(session (s_[0-9a-f]+)\\).*", "$1");
    assertThat(run.out()).contains(
        "→ agent_researcher {\"task\":\"research invoices\"}",
        "⇢ delegated to agent researcher (session " + child + "); waiting for its answer",
        "⇠ agent_researcher: found research invoices",
        "assistant: plan: found research invoices");

    Result events = cli("events", parent);
    assertThat(events.out()).contains("SubagentSpawned", "call_0_0 → agent researcher r1 in session " + child + " (as agent:planner, token t_")
        .contains("SubagentCompleted", "call_0_0 ← session " + child + " completed: found research invoices")
        .contains("ModelCalled", "(as agent:planner, token t_");

    Result childEvents = cli("events", child);
    assertThat(childEvents.out()).contains("by agent:planner (sub-agent of " + parent + ")")
        .contains("agent:researcher is not granted internal://memory (its token grants internal://time) (as agent:researcher, to");

    Result describe = cli("describe", "session", child);
    assertThat(describe.out()).contains("Parent", parent + " (root " + parent + ")")
        .contains("Acts as", "agent:researcher, delegated by operator:admin → agent:planner")
        .contains("Grants", "internal://time");

    Result trace = cli("trace", parent);
    assertThat(trace.code()).as(trace.err()).isZero();
    assertThat(trace.out()).contains("sub-agent " + child, "session " + child, "chain operator:admin → agent:planner",
        "as agent:researcher", "decision delegated by agent://researcher");
    JsonNode json = EventCodec.mapper().readTree(cli("describe", "session", child, "-o", "json").out());
    assertThat(json.get("grants").toString()).isEqualTo("[\"internal://time\"]");
  }

  @Test
  void serve_identityOptions_areCheckedBeforeStarting() {
    Result badUnit = cli("serve", "--port", "0", "--data-dir", dir.resolve("x").toString(), "--token-lifetime", "5x");
    assertThat(badUnit.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(badUnit.err()).contains("--token-lifetime: expected a number and a unit (s, m, h or d), e.g. 10m, got \"5x\"");
    Result tooLong = cli("serve", "--port", "0", "--data-dir", dir.resolve("x").toString(), "--token-lifetime", "2h");
    assertThat(tooLong.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(tooLong.err()).contains("token lifetime: expected from 30 s to 1 h (tokens are short-lived), got 7200 s");
    Result rotation = cli("serve", "--port", "0", "--data-dir", dir.resolve("x").toString(), "--key-rotation", "1m");
    assertThat(rotation.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(rotation.err()).contains("key rotation: expected at least the token lifetime (600 s), got 60 s");
  }
}
