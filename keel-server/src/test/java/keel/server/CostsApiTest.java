package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.math.BigDecimal;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * {@code GET /v1/costs} and {@code GET /v1/agents/{name}/budget} over real HTTP, against sessions
 * that really ran (OpenAI wire format against a fake, list prices, a priced external action): the
 * ledger's totals add up exactly to the sessions' recorded costs, however they are grouped.
 */
class CostsApiTest {

  @TempDir Path dir;
  KeelServer server;
  FakeOpenAi payments;
  FakeOpenAi helper;
  final HttpClient http = HttpClient.newHttpClient();
  String token;

  @BeforeEach
  void start() throws Exception {
    payments = FakeOpenAi.start().answerToolLoop("charge_card");
    helper = FakeOpenAi.start();
    server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()));
    token = Files.readString(server.adminTokenFile()).strip();
  }

  @AfterEach
  void stop() {
    server.close();
    payments.close();
    helper.close();
  }

  HttpResponse<String> call(String method, String path, String body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + token);
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  JsonNode get(String path) throws Exception {
    HttpResponse<String> r = call("GET", path, null);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return EventCodec.mapper().readTree(r.body());
  }

  void apply(String yaml) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String startTask(String agent, String message) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/sessions",
        EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message).put("task", true).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return EventCodec.mapper().readTree(r.body()).get("id").asString();
  }

  void awaitStatus(String id, String status) {
    await().atMost(Duration.ofSeconds(20)).until(() -> get("/v1/sessions/" + id).get("status").asString().equals(status));
  }

  static String agent(String name, String owner, String model, String baseUrl, String tools, String budgets) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: %s}
        spec:
          instructions: Answer.
          model: {provider: openai, name: %s, base_url: "%s"}
          tools: [%s]
          budgets: {%s}
        """.formatted(name, owner, model, baseUrl, tools, budgets);
  }

  static BigDecimal usd(JsonNode n) {
    return new BigDecimal(n.asString());
  }

  static BigDecimal sum(JsonNode rows) {
    BigDecimal s = BigDecimal.ZERO;
    for (JsonNode r : rows) {
      s = s.add(usd(r.get("usd")));
    }
    return s;
  }

  @Test
  void costs_addUpExactlyToTheSessionsRecordedCosts_howeverTheyAreGrouped() throws Exception {
    String firstDay = LocalDate.now(ZoneOffset.UTC).toString();
    apply(agent("billing", "finance", "gpt-4o", payments.baseUrl(), "internal://payments", "usd_per_day: 100"));
    apply(agent("helper", "team-a", "gpt-4o-mini", helper.baseUrl(), "internal://time", "calls_per_hour: 100"));
    List<String> billing = new ArrayList<>();
    for (int k = 1; k <= 3; k++) {
      billing.add(startTask("billing", "steps=" + k));
    }
    List<String> helping = List.of(startTask("helper", "steps=2"), startTask("helper", "steps=1"));
    BigDecimal recordedBilling = BigDecimal.ZERO;
    BigDecimal recordedHelper = BigDecimal.ZERO;
    for (String id : billing) {
      awaitStatus(id, "completed");
      recordedBilling = recordedBilling.add(usd(get("/v1/sessions/" + id).get("cost_usd")));
    }
    for (String id : helping) {
      awaitStatus(id, "completed");
      recordedHelper = recordedHelper.add(usd(get("/v1/sessions/" + id).get("cost_usd")));
    }
    assertThat(recordedBilling).isPositive();
    assertThat(recordedHelper).isPositive();
    BigDecimal actions = PricedTools.PRICE.multiply(BigDecimal.valueOf(1 + 2 + 3));

    JsonNode byKind = get("/v1/costs?group_by=kind");
    BigDecimal model = BigDecimal.ZERO;
    for (JsonNode row : byKind.get("rows")) {
      String kind = row.get("kind").asString();
      if (kind.startsWith("model_")) {
        model = model.add(usd(row.get("usd")));
        assertThat(row.get("unit").asString()).isEqualTo("tokens");
      }
      if (kind.equals("external_action")) {
        assertThat(usd(row.get("usd"))).isEqualByComparingTo(actions);
        assertThat(row.get("quantity").asLong()).isEqualTo(6);
        assertThat(row.get("unit").asString()).isEqualTo("calls");
      }
    }
    assertThat(model).isEqualByComparingTo(recordedBilling.add(recordedHelper));

    BigDecimal total = usd(get("/v1/costs").get("total").get("usd"));
    BigDecimal compute = BigDecimal.ZERO;
    for (JsonNode row : byKind.get("rows")) {
      if (row.get("kind").asString().startsWith("compute_")) {
        compute = compute.add(usd(row.get("usd")));
      }
    }
    assertThat(total).isEqualByComparingTo(model.add(actions).add(compute));
    assertThat(sum(byKind.get("rows"))).isEqualByComparingTo(total);
    assertThat(sum(get("/v1/costs?group_by=agent,owner,day").get("rows"))).isEqualByComparingTo(total);
    assertThat(sum(get("/v1/costs?group_by=day,kind,agent,owner").get("rows"))).isEqualByComparingTo(total);

    JsonNode byOwner = get("/v1/costs?group_by=owner,kind&owner=finance");
    assertThat(byOwner.get("rows")).allSatisfy(r -> assertThat(r.get("owner").asString()).isEqualTo("finance"));
    BigDecimal financeModel = BigDecimal.ZERO;
    for (JsonNode row : byOwner.get("rows")) {
      if (row.get("kind").asString().startsWith("model_")) {
        financeModel = financeModel.add(usd(row.get("usd")));
      }
    }
    assertThat(financeModel).isEqualByComparingTo(recordedBilling);
    JsonNode helperOnly = get("/v1/costs?agent=helper&group_by=agent");
    assertThat(helperOnly.get("rows")).singleElement().satisfies(r -> assertThat(r.get("agent").asString()).isEqualTo("helper"));

    String today = LocalDate.now(ZoneOffset.UTC).toString();
    if (today.equals(firstDay)) { // the test did not run across midnight UTC
      assertThat(get("/v1/costs?from=" + today + "&to=" + today + "&group_by=day").get("rows"))
          .singleElement().satisfies(r -> assertThat(r.get("day").asString()).isEqualTo(today));
    }
    assertThat(get("/v1/costs?to=" + LocalDate.now(ZoneOffset.UTC).minusDays(2)).get("rows")).isEmpty();

    JsonNode budget = get("/v1/agents/billing/budget");
    BigDecimal billingSpent = recordedBilling.add(actions);
    assertThat(budget.get("budgets")).singleElement().satisfies(b -> {
      assertThat(b.get("kind").asString()).isEqualTo("usd_per_day");
      assertThat(usd(b.get("limit"))).isEqualByComparingTo("100");
      // what the agent spent against its budget: its model calls and its external actions
      assertThat(usd(b.get("used"))).isEqualByComparingTo(billingSpent);
      assertThat(usd(b.get("reserved"))).isEqualByComparingTo("0");
      assertThat(b.get("window").get("end").asString()).endsWith("T00:00:00Z");
    });
  }

  @Test
  void costs_withBadParameters_areRefusedWithWhatWasWrong() throws Exception {
    HttpResponse<String> r = call("GET", "/v1/costs?group_by=agent,color", null);
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(r.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
    assertThat(r.body()).contains("group_by: unknown dimension \\\"color\\\"");

    HttpResponse<String> from = call("GET", "/v1/costs?from=" + URLEncoder.encode("last tuesday", StandardCharsets.UTF_8), null);
    assertThat(from.statusCode()).isEqualTo(400);
    assertThat(from.body()).contains("from: expected a date (2026-11-21) or a UTC instant");

    HttpResponse<String> backwards = call("GET", "/v1/costs?from=2026-03-05&to=2026-03-01", null);
    assertThat(backwards.statusCode()).isEqualTo(400);
    assertThat(backwards.body()).contains("to: expected a time after from");

    assertThat(call("GET", "/v1/agents/nobody/budget", null).statusCode()).isEqualTo(404);
  }

  @Test
  void aBudgetBlockedSession_showsInTheBudget_andGoesOnWhenARaisedLimitIsApproved() throws Exception {
    apply(agent("hourly", "team-a", "gpt-4o-mini", helper.baseUrl(), "internal://time", "calls_per_hour: 2"));
    String id = startTask("hourly", "steps=3");
    awaitStatus(id, "budget_blocked");

    JsonNode budget = get("/v1/agents/hourly/budget");
    String window = budget.get("budgets").get(0).get("window").get("start").asString();
    assertThat(budget.get("budget_blocked_sessions").asLong()).isEqualTo(1);
    assertThat(budget.get("budgets")).singleElement().satisfies(b -> {
      assertThat(b.get("kind").asString()).isEqualTo("calls_per_hour");
      assertThat(b.get("used").asString()).isEqualTo("2");
      assertThat(b.get("percent").asString()).isEqualTo("100.00");
    });
    String events = call("GET", "/v1/sessions/" + id + "/events", null).body();
    assertThat(events).contains("\"BudgetWarning\"").contains("\"BudgetBlocked\"");

    // raising a budget widens what the agent may do: it waits for a second person's approval
    apply(agent("hourly", "team-a", "gpt-4o-mini", helper.baseUrl(), "internal://time", "calls_per_hour: 10"));
    assertThat(get("/v1/agents/hourly/budget").get("budgets").get(0).get("limit").asString()).isEqualTo("2");
    assertThat(get("/v1/sessions/" + id).get("status").asString()).isEqualTo("budget_blocked");
    HttpResponse<String> approver = call("POST", "/v1/operators", "{\"name\":\"budget-approver\",\"roles\":[\"approver@team-a\"]}");
    assertThat(approver.statusCode()).as(approver.body()).isEqualTo(201);
    String admin = token;
    token = EventCodec.mapper().readTree(approver.body()).get("token").asString();
    try {
      HttpResponse<String> approved = call("POST", "/v1/agents/hourly/revisions/2/approve", null);
      assertThat(approved.statusCode()).as(approved.body()).isEqualTo(200);
    } finally {
      token = admin;
    }

    awaitStatus(id, "completed");
    assertThat(call("GET", "/v1/sessions/" + id + "/events", null).body()).contains("\"BudgetUnblocked\"");
    JsonNode after = get("/v1/agents/hourly/budget").get("budgets").get(0);
    if (after.get("window").get("start").asString().equals(window)) { // the hour did not end meanwhile
      assertThat(after.get("used").asString()).isEqualTo("4");
    }
    assertThat(call("GET", "/v1/openapi.json", null).body()).contains("/v1/costs").contains("/v1/agents/{name}/budget");
  }
}
