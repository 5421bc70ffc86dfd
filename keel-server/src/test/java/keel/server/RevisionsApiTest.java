package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import keel.control.ChangeReview;
import keel.core.Descriptors;
import keel.core.EventCodec;
import keel.data.InventoryStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Revisions and change approval over real HTTP. Only one principal can call this server today (the
 * admin token's {@code operator:admin}); where a second person is needed, the change is applied
 * through the server's own store as {@code operator:alice}, and the admin decides over HTTP.
 */
class RevisionsApiTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: greeter, owner: team-a}
      spec:
        instructions: Greet.
        model: {provider: scripted, name: g, script: [{turns: [{say: "Hi."}]}]}
        budgets: {usd_per_day: 5}
        max_steps: 10
      """;

  static final String WIDER = AGENT.replace("usd_per_day: 5", "usd_per_day: 50").replace("Greet.", "Greet warmly.");
  static final String NARROWER = AGENT.replace("max_steps: 10", "max_steps: 5");

  @TempDir Path dir;
  KeelServer server;
  final HttpClient http = HttpClient.newHttpClient();
  String token;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()));
    token = Files.readString(server.adminTokenFile()).strip();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  HttpResponse<String> call(String method, String path, String body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + token);
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode json(HttpResponse<String> r) {
    return EventCodec.mapper().readTree(r.body());
  }

  JsonNode ok(HttpResponse<String> r) {
    assertThat(r.statusCode()).as(r.body()).isBetween(200, 299);
    return json(r);
  }

  JsonNode problem(HttpResponse<String> r, int status) {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    assertThat(r.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
    return json(r);
  }

  JsonNode apply(String yaml) throws Exception {
    return ok(call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "greeter.yaml").toString()))
        .get("results").get(0);
  }

  /** Applies as another operator, through the server's store, with the same review as the API's. */
  void applyAsAlice(String yaml) {
    var d = Descriptors.parse(yaml, "alice.yaml").getFirst();
    server.store().inventory().apply(
        List.of(new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d))),
        "operator:alice", ChangeReview.reviewer());
  }

  int sessionRevision() throws Exception {
    JsonNode s = ok(call("POST", "/v1/sessions", "{\"agent\":\"greeter\",\"message\":\"hello\",\"task\":true}"));
    String id = s.get("id").asString();
    await().atMost(Duration.ofSeconds(10)).until(() -> json(call("GET", "/v1/sessions/" + id, null)).get("status").asString().equals("completed"));
    return s.get("revision").asInt();
  }

  @Test
  void aWideningApply_isPendingWithItsReasons_andSessionsKeepUsingTheActiveRevision() throws Exception {
    assertThat(apply(AGENT).get("result").asString()).isEqualTo("created");
    JsonNode r = apply(WIDER);
    assertThat(r.get("result").asString()).isEqualTo("pending_approval");
    assertThat(r.get("revision").asInt()).isEqualTo(2);
    assertThat(r.get("status").asString()).isEqualTo("pending");
    assertThat(r.get("widens").asBoolean()).isTrue();
    assertThat(r.get("widening").get(0).asString()).isEqualTo("spec.budgets.usd_per_day: raised from 5 to 50");
    assertThat(r.get("narrowing").get(0).asString()).isEqualTo("spec.instructions: changed");
    // applying it again changes nothing
    JsonNode again = apply(WIDER);
    assertThat(again.get("result").asString()).isEqualTo("unchanged");
    assertThat(again.get("status").asString()).isEqualTo("pending");

    JsonNode agents = ok(call("GET", "/v1/agents", null)).get("agents");
    assertThat(agents.get(0).get("revision").asInt()).isEqualTo(1);
    assertThat(agents.get(0).get("pending").get("revision").asInt()).isEqualTo(2);
    JsonNode described = ok(call("GET", "/v1/agents/greeter", null));
    assertThat(described.get("revision").asInt()).isEqualTo(1);
    assertThat(described.get("descriptor").get("spec").get("budgets").get("usd_per_day").asInt()).isEqualTo(5);
    assertThat(described.get("pending").get("widening").get(0).asString()).contains("usd_per_day");
    JsonNode inventory = ok(call("GET", "/v1/inventory", null)).get("descriptors");
    assertThat(inventory).extracting(n -> n.get("revision").asInt() + ":" + n.get("status").asString())
        .containsExactly("1:active", "2:pending");
    assertThat(sessionRevision()).isEqualTo(1);
  }

  @Test
  void approvingYourOwnChange_isForbidden_andChangesNothing() throws Exception {
    apply(AGENT);
    apply(WIDER);
    JsonNode p = problem(call("POST", "/v1/agents/greeter/revisions/2/approve", null), 403);
    assertThat(p.get("detail").asString())
        .contains("operator:admin applied revision 2 of agent \"greeter\", so it may not approve it")
        .contains("needs a second person");
    assertThat(ok(call("GET", "/v1/agents/greeter/revisions/2", null)).get("status").asString()).isEqualTo("pending");
  }

  @Test
  void anotherPrincipalsChange_isApprovedOverHttp_andNewSessionsUseIt() throws Exception {
    apply(AGENT);
    applyAsAlice(WIDER);
    JsonNode approved = ok(call("POST", "/v1/agents/greeter/revisions/2/approve", null));
    assertThat(approved.get("status").asString()).isEqualTo("active");
    assertThat(approved.get("applied_by").asString()).isEqualTo("operator:alice");
    assertThat(approved.get("decided_by").asString()).isEqualTo("operator:admin");
    assertThat(approved.has("decided_at")).isTrue();
    assertThat(ok(call("GET", "/v1/agents/greeter", null)).get("revision").asInt()).isEqualTo(2);
    assertThat(sessionRevision()).isEqualTo(2);
    // a decided revision cannot be decided again
    assertThat(problem(call("POST", "/v1/agents/greeter/revisions/2/approve", null), 409).get("detail").asString())
        .contains("already active");
  }

  @Test
  void reject_needsAReason_andKeepsTheActiveRevision() throws Exception {
    apply(AGENT);
    applyAsAlice(WIDER);
    assertThat(problem(call("POST", "/v1/agents/greeter/revisions/2/reject", "{}"), 400).get("detail").asString())
        .contains("reason: required");
    JsonNode rejected = ok(call("POST", "/v1/agents/greeter/revisions/2/reject", "{\"reason\":\"ten times the budget? no\"}"));
    assertThat(rejected.get("status").asString()).isEqualTo("rejected");
    assertThat(rejected.get("reason").asString()).isEqualTo("ten times the budget? no");
    assertThat(rejected.get("decided_by").asString()).isEqualTo("operator:admin");
    assertThat(problem(call("POST", "/v1/agents/greeter/revisions/2/reject", "{\"reason\":\"again\"}"), 409).get("detail").asString())
        .contains("rejected by operator:admin");
    assertThat(sessionRevision()).isEqualTo(1);
  }

  @Test
  void history_showsEveryRevision_withStatusDecisionAndReasons() throws Exception {
    apply(AGENT);
    applyAsAlice(WIDER);
    ok(call("POST", "/v1/agents/greeter/revisions/2/reject", "{\"reason\":\"no\"}"));
    apply(NARROWER);
    JsonNode h = ok(call("GET", "/v1/agents/greeter/revisions", null));
    assertThat(h.get("active_revision").asInt()).isEqualTo(3);
    assertThat(h.has("pending_revision")).isFalse();
    assertThat(h.get("revisions")).extracting(n -> n.get("revision").asInt() + ":" + n.get("status").asString() + ":" + n.get("applied_by").asString())
        .containsExactly("1:superseded:operator:admin", "2:rejected:operator:alice", "3:active:operator:admin");
    JsonNode two = h.get("revisions").get(1);
    assertThat(two.get("widening").get(0).asString()).isEqualTo("spec.budgets.usd_per_day: raised from 5 to 50");
    assertThat(two.get("decided_by").asString()).isEqualTo("operator:admin");
    assertThat(two.get("reason").asString()).isEqualTo("no");
    assertThat(h.get("revisions").get(2).get("narrowing").get(0).asString()).isEqualTo("spec.max_steps: lowered from 10 to 5");
    problem(call("GET", "/v1/agents/nobody/revisions", null), 404);
  }

  @Test
  void diff_isAUnifiedDiffOfTheCanonicalYaml_withTheClassification() throws Exception {
    apply(AGENT);
    apply(WIDER);
    JsonNode d = ok(call("GET", "/v1/agents/greeter/diff?from=1&to=2", null));
    assertThat(d.get("diff").asString())
        .startsWith("--- agent/greeter revision 1\n+++ agent/greeter revision 2\n@@ ")
        .contains("\n-    usd_per_day: 5\n", "\n+    usd_per_day: 50\n", "\n-  instructions: Greet.\n", "\n+  instructions: Greet warmly.\n");
    assertThat(d.get("widens").asBoolean()).isTrue();
    assertThat(d.get("widening").get(0).asString()).contains("raised from 5 to 50");
    assertThat(d.get("from").get("status").asString()).isEqualTo("active");
    assertThat(d.get("to").get("status").asString()).isEqualTo("pending");
    assertThat(ok(call("GET", "/v1/agents/greeter/diff?from=2&to=1", null)).get("widens").asBoolean()).isFalse();
    assertThat(ok(call("GET", "/v1/agents/greeter/diff?from=1&to=1", null)).get("diff").asString()).isEmpty();
    assertThat(problem(call("GET", "/v1/agents/greeter/diff?to=2", null), 400).get("detail").asString()).contains("from: required");
    assertThat(problem(call("GET", "/v1/agents/greeter/diff?from=x&to=2", null), 400).get("detail").asString())
        .contains("from: expected a revision number");
    assertThat(problem(call("GET", "/v1/agents/greeter/diff?from=1&to=9", null), 404).get("detail").asString())
        .contains("has no revision 9");
  }

  @Test
  void rollback_narrowingIsActiveAtOnce_wideningWaits() throws Exception {
    apply(AGENT);
    apply(NARROWER); // revision 2, active at once
    // undo: back to revision 1, which allowed more steps: it widens, so it waits
    JsonNode undo = ok(call("POST", "/v1/agents/greeter/rollback", "{}"));
    assertThat(undo.get("result").asString()).isEqualTo("pending_approval");
    assertThat(undo.get("revision").asInt()).isEqualTo(3);
    assertThat(undo.get("rollback_of").asInt()).isEqualTo(1);
    assertThat(undo.get("widening").get(0).asString()).isEqualTo("spec.max_steps: raised from 5 to 10");
    problem(call("POST", "/v1/agents/greeter/revisions/3/approve", null), 403);
    ok(call("POST", "/v1/agents/greeter/revisions/3/reject", "{\"reason\":\"keep it tight\"}"));

    // a rollback to a narrower revision is active at once
    applyAsAlice(WIDER);
    ok(call("POST", "/v1/agents/greeter/revisions/4/approve", null));
    JsonNode back = ok(call("POST", "/v1/agents/greeter/rollback", "{\"revision\":2}"));
    assertThat(back.get("result").asString()).isEqualTo("rolled_back");
    assertThat(back.get("status").asString()).isEqualTo("active");
    assertThat(back.get("revision").asInt()).isEqualTo(5);
    assertThat(ok(call("GET", "/v1/agents/greeter", null)).get("revision").asInt()).isEqualTo(5);
    assertThat(sessionRevision()).isEqualTo(5);

    assertThat(problem(call("POST", "/v1/agents/greeter/rollback", "{\"revision\":3}"), 409).get("detail").asString())
        .contains("was never active");
    assertThat(problem(call("POST", "/v1/agents/greeter/rollback", "{\"revision\":\"two\"}"), 400).get("detail").asString())
        .contains("revision: expected a revision number");
    problem(call("POST", "/v1/agents/greeter/rollback", "{\"revision\":99}"), 404);
    problem(call("POST", "/v1/agents/nobody/rollback", "{}"), 404);
  }

  @Test
  void dryRun_saysAChangeWouldWaitForApproval_andStoresNothing() throws Exception {
    apply(AGENT);
    JsonNode r = ok(call("POST", "/v1/apply?dry_run=true",
        EventCodec.mapper().createObjectNode().put("yaml", WIDER).put("source", "greeter.yaml").toString())).get("results").get(0);
    assertThat(r.get("result").asString()).isEqualTo("pending_approval");
    assertThat(r.get("widening").get(0).asString()).contains("usd_per_day");
    assertThat(ok(call("GET", "/v1/agents/greeter/revisions", null)).get("revisions")).hasSize(1);
  }

  @Test
  void theApiDocument_listsTheRevisionRoutes_withTheirAccess() throws Exception {
    JsonNode paths = ok(call("GET", "/v1/openapi.json", null)).get("paths");
    assertThat(paths.get("/v1/agents/{name}/revisions/{revision}/approve").get("post").get("x-keel-access").asString())
        .isEqualTo("approver for the owner of agent {name}");
    assertThat(paths.get("/v1/agents/{name}/rollback").get("post").get("x-keel-access").asString())
        .isEqualTo("admin for the owner of agent {name}");
    assertThat(paths.has("/v1/agents/{name}/diff")).isTrue();
    assertThat(paths.get("/v1/agents/{name}/revisions").has("get")).isTrue();
    assertThat(paths.get("/v1/agents/{name}/revisions/{revision}/reject").has("post")).isTrue();
  }
}
