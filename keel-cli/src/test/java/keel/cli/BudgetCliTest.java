package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** {@code keel costs}, {@code keel budget} and how a budget-blocked session reads, against a real server. */
class BudgetCliTest {

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  FakeOpenAi fake;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    fake = FakeOpenAi.start();
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", Files.readString(server.adminTokenFile()).strip());
  }

  @AfterEach
  void stop() {
    server.close();
    fake.close();
  }

  Result cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new java.io.ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  String agent(String budgets) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: hourly, owner: team-a}
        spec:
          instructions: Answer.
          model: {provider: openai, name: gpt-4o, base_url: "%s"}
          tools: [internal://time]
          budgets: {%s}
        """.formatted(fake.baseUrl(), budgets);
  }

  Result apply(String yaml) throws Exception {
    Path f = dir.resolve("agent.yaml");
    Files.writeString(f, yaml);
    Result r = cli("apply", "-f", f.toString());
    assertThat(r.code()).as(r.err()).isZero();
    return r;
  }

  @Test
  void aBlockedTurn_saysWhatBlocksIt_andBudgetAndCostsShowTheNumbers() throws Exception {
    apply(agent("calls_per_hour: 2, usd_per_day: 5"));

    Result run = cli("run", "hourly", "steps=3", "--task", "--follow");

    assertThat(run.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(run.out()).contains("! budget calls_per_hour is at 2 of its limit 2")
        .contains("‖ budget calls_per_hour exhausted: 2 used and 0 reserved of 2; this call needs 1")
        .contains("The session waits (budget_blocked)")
        .contains("--follow");
    String id = run.out().lines().filter(l -> l.startsWith("session ")).findFirst().orElseThrow().split(" ")[1];

    Result budget = cli("budget", "hourly");
    assertThat(budget.code()).as(budget.err()).isZero();
    assertThat(budget.out()).containsPattern("calls_per_hour\\s+2\\s+2\\s+0\\s+100.00 %")
        .containsPattern("usd_per_day\\s+5\\s+0\\.\\d+\\s+0\\s+0\\.\\d+ %")
        .contains("1 session waits for a budget (budget_blocked): it goes on by itself");

    assertThat(cli("describe", "session", id).out())
        .contains("Waits for:")
        .contains("budget calls_per_hour: 2 used + 0 reserved of 2, the next call needs 1; goes on when the window ends at");
    Result events = cli("events", id);
    assertThat(events.out()).contains("BudgetBlocked").contains("calls_per_hour: 2 used + 0 reserved + 1 requested > limit 2");

    Result costs = cli("costs", "--by", "agent,kind");
    assertThat(costs.code()).as(costs.err()).isZero();
    assertThat(costs.out()).containsPattern("hourly\\s+model_input\\s+\\d+ tokens\\s+0\\.\\d+\\s+2")
        .containsPattern("hourly\\s+model_output\\s+\\d+ tokens");
    JsonNode api = EventCodec.mapper().readTree(cli("costs", "-o", "json").out());
    String total = api.get("total").get("usd").asString();
    assertThat(costs.out()).contains("Total: " + total + " USD");
    JsonNode view = EventCodec.mapper().readTree(cli("describe", "session", id, "-o", "json").out());
    BigDecimal modelCost = BigDecimal.ZERO;
    for (JsonNode row : EventCodec.mapper().readTree(cli("costs", "--by", "kind", "-o", "json").out()).get("rows")) {
      if (row.get("kind").asString().startsWith("model_")) {
        modelCost = modelCost.add(new BigDecimal(row.get("usd").asString()));
      }
    }
    assertThat(modelCost).isEqualByComparingTo(view.get("cost_usd").asString());

    // a raised budget widens the agent: it applies once someone other than its applier approves it
    Result applied = apply(agent("calls_per_hour: 10, usd_per_day: 5"));
    assertThat(applied.out()).contains("pending");
    Result created = cli("operators", "create", "budget-approver", "--role", "approver");
    assertThat(created.code()).as(created.err()).isZero();
    String admin = env.put("KEEL_TOKEN", created.out().strip());
    Result approved = cli("rollout", "approve", "hourly", "2");
    env.put("KEEL_TOKEN", admin);
    assertThat(approved.code()).as(approved.err()).isZero();
    await().atMost(Duration.ofSeconds(15)).until(() -> cli("get", "sessions", "-o", "json").out().contains("\"completed\""));
  }

  @Test
  void costs_withAnUnknownDimension_isAUsageError() {
    Result r = cli("costs", "--by", "agent,colour");

    assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).contains("--by: unknown dimension \"colour\"; expected a comma-separated list of agent, owner, day, kind");
  }

  @Test
  void budget_ofAnAgentWithoutBudgets_saysSo_andOfAnUnknownOneIsNotFound() throws Exception {
    apply(agent("calls_per_hour: 3").replace("  budgets: {calls_per_hour: 3}\n", ""));

    assertThat(cli("budget", "hourly").out()).contains("Agent hourly (revision 1) sets no budgets (spec.budgets).");
    Result missing = cli("budget", "nobody");
    assertThat(missing.code()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(cli("costs").err()).contains("No costs from");
  }
}
