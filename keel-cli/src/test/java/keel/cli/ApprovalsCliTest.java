package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import keel.core.EventCodec;
import keel.execution.ApprovalToolProvider;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** {@code keel approvals}, {@code keel approve} and {@code keel deny} against a real server. */
class ApprovalsCliTest {

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  Map<String, String> env;

  @BeforeEach
  void start() {
    ApprovalToolProvider.EXECUTED.clear();
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  Result cli(String token, String... args) {
    env.put("KEEL_TOKEN", token);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new java.io.ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  String admin() throws Exception {
    return Files.readString(server.adminTokenFile()).strip();
  }

  String operator(String name, String role) throws Exception {
    Result r = cli(admin(), "operators", "create", name, "--role", role, "-o", "json");
    assertThat(r.code()).as(r.err() + r.out()).isZero();
    return EventCodec.mapper().readTree(r.out()).get("token").asString();
  }

  JsonNode pendingApproval() throws Exception {
    Path f = dir.resolve("payer.yaml");
    Files.writeString(f, """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: payer, owner: finance}
        spec:
          instructions: Pay.
          model: {provider: scripted, name: s, script: [{turns: [{say: "paying", call: [{tool: bank_pay, args: {amount: 2000}}, {tool: bank_pay, args: {amount: 3000}}]}, {say: "done"}]}]}
          tools: [mcp://gateway/bank]
          approval: {on_action_value_usd_gt: 1000}
        """);
    assertThat(cli(admin(), "apply", "-f", f.toString()).code()).isZero();
    Result run = cli(admin(), "run", "payer", "pay", "--task", "-o", "json");
    assertThat(run.code()).as(run.err()).isZero();
    JsonNode[] list = new JsonNode[1];
    await().atMost(Duration.ofSeconds(10)).until(() -> {
      list[0] = EventCodec.mapper().readTree(cli(admin(), "approvals", "-o", "json").out()).get("approvals");
      return list[0].size() == 2;
    });
    return list[0];
  }

  @Test
  void approvals_listsTheInbox_andApproveAndDenyDecide() throws Exception {
    JsonNode list = pendingApproval();
    Result table = cli(admin(), "approvals");
    assertThat(table.out()).contains("ID", "bank/pay", "2000", "spec.approval.on_action_value_usd_gt");
    String approver = operator("fay", "approver@finance");
    String first = list.get(1).get("value_usd").asString().equals("2000") ? list.get(1).get("id").asString() : list.get(0).get("id").asString();
    String second = first.equals(list.get(0).get("id").asString()) ? list.get(1).get("id").asString() : list.get(0).get("id").asString();

    Result noReason = cli(approver, "deny", second);
    assertThat(noReason.code()).isEqualTo(ExitCodes.USAGE);
    Result badArgs = cli(approver, "approve", first, "--arguments", "[1]");
    assertThat(badArgs.code()).isEqualTo(ExitCodes.USAGE);
    Result denied = cli(approver, "deny", second, "--reason", "duplicate");
    assertThat(denied.code()).as(denied.err()).isZero();
    assertThat(denied.out()).contains("approval " + second + " denied");
    Result approved = cli(approver, "approve", first, "--reason", "ok", "--arguments", "{\"amount\": 900}");
    assertThat(approved.code()).as(approved.err()).isZero();
    assertThat(approved.out()).contains("approved");
    Result again = cli(approver, "approve", first);
    assertThat(again.code()).isEqualTo(ExitCodes.CONFLICT);
    assertThat(again.err()).contains("already approved");
    await().atMost(Duration.ofSeconds(10)).until(() -> ApprovalToolProvider.EXECUTED.size() == 1);
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":900}");
    assertThat(cli(admin(), "approvals", "--status", "all", "--agent", "payer").out()).contains("approved", "denied");
    Result refused = cli(operator("vic", "viewer@finance"), "approve", second);
    assertThat(refused.code()).isNotZero();
  }
}
