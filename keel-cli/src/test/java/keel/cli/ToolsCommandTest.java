package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.mcp.BrokenServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** {@code keel tools} against a real server whose gateway runs testkit's MCP server. */
class ToolsCommandTest {

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

  private record Result(int code, String out, String err) {}

  private Result cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void tools_printsTheCatalogAsATable_andAsJson() throws Exception {
    List<String> command = BrokenServer.command("ok");
    StringBuilder list = new StringBuilder("[");
    for (String part : command) {
      list.append(list.length() > 1 ? ", " : "").append('"').append(part.replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
    }
    list.append(']');
    Path yaml = dir.resolve("rec.yaml");
    Files.writeString(yaml, """
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: rec, owner: team-a}
        spec:
          transport: stdio
          command: %s
          tools:
            echo: {side_effects: idempotent, price_usd_per_call: 0.25}
        """.formatted(list));
    assertThat(cli("apply", "-f", yaml.toString()).code()).isZero();

    Result table = cli("tools");
    Result json = cli("tools", "rec", "-o", "json");
    Result none = cli("tools", "nope");

    assertThat(table.code()).as(table.err()).isZero();
    assertThat(table.out().lines().findFirst().orElseThrow()).startsWith("TOOL").contains("MODEL NAME", "VERSION", "HASH", "SIDE EFFECTS");
    assertThat(table.out()).contains("rec/echo").contains("rec__echo").contains("idempotent").contains("$0.25").contains("sha256:");
    JsonNode tools = EventCodec.mapper().readTree(json.out());
    assertThat(tools.get("tools").get(0).get("version").asInt()).isEqualTo(1);
    assertThat(none.out()).contains("no tools of server nope");
  }
}
