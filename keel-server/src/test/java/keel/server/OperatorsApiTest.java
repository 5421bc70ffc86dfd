package keel.server;

import static keel.server.TestServer.applyBody;
import static keel.server.TestServer.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** Operators over real HTTP: tokens, revocation, owner-scoped listings and applies. */
class OperatorsApiTest {

  static String agent(String name, String owner) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: %s}
        spec:
          instructions: Answer.
          model: {provider: scripted, name: s, script: [{turns: [{say: "Hello."}]}]}
        """.formatted(name, owner);
  }

  @TempDir Path dir;
  TestServer api;
  KeelServer server;
  String root;

  @BeforeEach
  void start() throws Exception {
    api = TestServer.start(dir);
    server = api.server();
    root = api.token();
  }

  @AfterEach
  void stop() {
    api.close();
  }

  static String operatorBody(String name, String... roles) {
    ObjectNode o = EventCodec.mapper().createObjectNode().put("name", name);
    var arr = o.putArray("roles");
    for (String r : roles) {
      arr.add(r);
    }
    return o.toString();
  }

  /** Creates an operator as {@code as} and returns its token. */
  String create(String as, String name, String... roles) throws Exception {
    HttpResponse<String> r = api.callAs(as, "POST", "/v1/operators", operatorBody(name, roles));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return json(r).get("token").asString();
  }

  void apply(String token, String yaml) throws Exception {
    HttpResponse<String> r = api.callAs(token, "POST", "/v1/apply", applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String start(String token, String agent) throws Exception {
    HttpResponse<String> r = api.callAs(token, "POST", "/v1/sessions", "{\"agent\":\"" + agent + "\",\"message\":\"hi\"}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return json(r).get("id").asString();
  }

  @Test
  void create_returnsTheTokenOnce_andItIsThatOperator() throws Exception {
    HttpResponse<String> created = api.callAs(root, "POST", "/v1/operators", operatorBody("alice", "approver@finance", "viewer"));
    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
    JsonNode o = json(created);
    String token = o.get("token").asString();
    assertThat(token).startsWith("keel_");
    assertThat(o.get("principal").asString()).isEqualTo("operator:alice");
    assertThat(o.get("created_by").asString()).isEqualTo("operator:admin");

    JsonNode me = json(api.callAs(token, "GET", "/v1/whoami", null));
    assertThat(me.get("principal").asString()).isEqualTo("operator:alice");
    assertThat(me.get("roles")).extracting(JsonNode::asString).containsExactly("approver@finance", "viewer");
    assertThat(json(api.callAs(root, "GET", "/v1/whoami", null)).get("principal").asString()).isEqualTo("operator:admin");

    HttpResponse<String> list = api.callAs(root, "GET", "/v1/operators", null);
    assertThat(list.body()).doesNotContain(token).doesNotContain("\"token\"");
    assertThat(json(list).get("operators")).extracting(n -> n.get("name").asString() + ":" + n.get("status").asString())
        .containsExactly("admin:active", "alice:active");
    assertThat(api.callAs(root, "GET", "/v1/openapi.json", null).body()).contains("/v1/operators/{name}/revoke", "/v1/whoami");
  }

  @Test
  void revoke_refusesTheTokenOnTheNextRequest() throws Exception {
    String token = create(root, "ci", "operator");
    assertThat(api.callAs(token, "GET", "/v1/sessions", null).statusCode()).isEqualTo(200);
    HttpResponse<String> revoked = api.callAs(root, "POST", "/v1/operators/ci/revoke", null);
    assertThat(revoked.statusCode()).as(revoked.body()).isEqualTo(200);
    assertThat(json(revoked).get("status").asString()).isEqualTo("revoked");
    assertThat(json(revoked).get("revoked_by").asString()).isEqualTo("operator:admin");
    HttpResponse<String> refused = api.callAs(token, "GET", "/v1/sessions", null);
    assertThat(refused.statusCode()).isEqualTo(401);
    assertThat(json(refused).get("detail").asString()).contains("revoked");
    assertThat(api.callAs(root, "POST", "/v1/operators/ci/token", null).statusCode()).isEqualTo(409);
    assertThat(api.callAs(root, "POST", "/v1/operators", operatorBody("ci", "viewer")).statusCode()).isEqualTo(409);
  }

  @Test
  void aStreamOpenedWithARevokedToken_endsAtItsNextKeepAlive() throws Exception {
    apply(root, agent("fin-bot", "finance"));
    String id = json(api.callAs(root, "POST", "/v1/sessions", "{\"agent\":\"fin-bot\",\"message\":\"hi\"}")).get("id").asString();
    String token = create(root, "watcher", "viewer@finance");
    java.net.http.HttpRequest req = java.net.http.HttpRequest.newBuilder(java.net.URI.create(api.server().url() + "/v1/sessions/" + id + "/stream"))
        .header("Authorization", "Bearer " + token).build();
    java.util.concurrent.CompletableFuture<java.util.List<String>> lines = java.net.http.HttpClient.newHttpClient()
        .sendAsync(req, HttpResponse.BodyHandlers.ofLines())
        .thenApply(r -> r.body().takeWhile(l -> !l.startsWith("data: {\"detail\"")).toList());
    Thread.sleep(500);
    assertThat(api.callAs(root, "POST", "/v1/operators/watcher/revoke", null).statusCode()).isEqualTo(200);

    // the keep-alive comes every 15 s: by then the stream says why it ends, and ends
    assertThat(lines.get(30, java.util.concurrent.TimeUnit.SECONDS)).contains("event: unauthorized");
  }

  @Test
  void newToken_replacesTheOldOne() throws Exception {
    String first = create(root, "ci", "viewer");
    HttpResponse<String> issued = api.callAs(root, "POST", "/v1/operators/ci/token", null);
    assertThat(issued.statusCode()).as(issued.body()).isEqualTo(200);
    String second = json(issued).get("token").asString();
    assertThat(api.callAs(first, "GET", "/v1/whoami", null).statusCode()).isEqualTo(401);
    assertThat(json(api.callAs(second, "GET", "/v1/whoami", null)).get("principal").asString()).isEqualTo("operator:ci");
  }

  @Test
  void badRequests_sayWhatIsWrong() throws Exception {
    HttpResponse<String> bad = api.callAs(root, "POST", "/v1/operators", operatorBody("Bad Name", "viewr", "approver@"));
    assertThat(bad.statusCode()).isEqualTo(400);
    assertThat(json(bad).get("errors")).hasSize(3);
    assertThat(bad.body()).contains("name: expected", "role \\\"viewr\\\"", "the owner after @ is empty");
    HttpResponse<String> noRoles = api.callAs(root, "POST", "/v1/operators", "{\"name\":\"x\"}");
    assertThat(noRoles.statusCode()).isEqualTo(400);
    assertThat(json(noRoles).get("detail").asString()).contains("roles: expected an array", "(required)");
    assertThat(api.callAs(root, "POST", "/v1/operators", "{\"name\":\"x\",\"roles\":[\"viewer\",3]}").body()).contains("roles[1]: expected a string");
    assertThat(api.callAs(root, "POST", "/v1/operators/ghost/revoke", null).statusCode()).isEqualTo(404);
    HttpResponse<String> bootstrap = api.callAs(root, "POST", "/v1/operators/admin/revoke", null);
    assertThat(bootstrap.statusCode()).isEqualTo(409);
    assertThat(json(bootstrap).get("detail").asString()).contains("admin.token");
  }

  @Test
  void aScopedAdmin_cannotEscalate() throws Exception {
    String finAdmin = create(root, "fin-admin", "admin@finance");
    create(finAdmin, "fin-viewer", "viewer@finance");
    for (String role : List.of("viewer", "admin", "viewer@hr")) {
      HttpResponse<String> r = api.callAs(finAdmin, "POST", "/v1/operators", operatorBody("sneaky", "viewer@finance", role));
      assertThat(r.statusCode()).as(role).isEqualTo(403);
      assertThat(json(r).get("detail").asString()).contains("may not create an operator with the role " + role);
    }
    create(root, "hr-viewer", "viewer@hr");
    assertThat(api.callAs(finAdmin, "POST", "/v1/operators/hr-viewer/revoke", null).statusCode()).isEqualTo(403);
    assertThat(json(api.callAs(finAdmin, "GET", "/v1/operators", null)).get("operators"))
        .extracting(n -> n.get("name").asString()).containsExactly("fin-admin", "fin-viewer");
    assertThat(json(api.callAs(root, "GET", "/v1/operators", null)).get("operators")).hasSize(4);
  }

  @Test
  void listings_showOnlyWhatTheCallersRolesCover() throws Exception {
    apply(root, agent("fin-bot", "finance") + "---\n" + agent("hr-bot", "hr") + "---\n" + agent("ops-bot", "ops"));
    String s1 = start(root, "fin-bot");
    String s2 = start(root, "hr-bot");
    start(root, "ops-bot");
    String s3 = start(root, "fin-bot");
    String finViewer = create(root, "fin-viewer", "viewer@finance");
    String finHr = create(root, "fin-hr", "viewer@finance", "operator@hr");
    String everywhere = create(root, "all-viewer", "viewer");

    assertThat(names(api.callAs(finViewer, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot");
    assertThat(names(api.callAs(finHr, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot", "hr-bot");
    assertThat(names(api.callAs(everywhere, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot", "hr-bot", "ops-bot");
    assertThat(names(api.callAs(finViewer, "GET", "/v1/inventory", null), "descriptors")).containsExactly("fin-bot");

    assertThat(ids(api.callAs(finViewer, "GET", "/v1/sessions", null))).containsExactly(s3, s1);
    assertThat(ids(api.callAs(finHr, "GET", "/v1/sessions?limit=2", null))).as("a full page of what the caller covers").containsExactly(s3, s2);
    assertThat(ids(api.callAs(finHr, "GET", "/v1/sessions?limit=2&before=" + s2, null))).containsExactly(s1);
    assertThat(ids(api.callAs(finViewer, "GET", "/v1/sessions?agent=hr-bot", null))).isEmpty();
    assertThat(ids(api.callAs(everywhere, "GET", "/v1/sessions", null))).hasSize(4);
    assertThat(api.callAs(finViewer, "GET", "/v1/sessions/" + s2, null).statusCode()).isEqualTo(403);
  }

  @Test
  void aSessionStartedByAnOperator_recordsItsPrincipal() throws Exception {
    apply(root, agent("fin-bot", "finance"));
    String op = create(root, "fin-op", "operator@finance");
    String id = start(op, "fin-bot");
    await().atMost(Duration.ofSeconds(10)).until(() -> api.callAs(root, "GET", "/v1/sessions/" + id + "/events", null).body().contains("ModelResponded"));
    assertThat(json(api.callAs(root, "GET", "/v1/sessions/" + id + "/events", null)).get("events").get(0).toString()).contains("operator:fin-op");
  }

  @Test
  void apply_needsAdminForEveryOwner_andARefusalStoresNothing() throws Exception {
    apply(root, agent("fin-bot", "finance"));
    String finAdmin = create(root, "fin-admin", "admin@finance");
    String hrAdmin = create(root, "hr-admin", "admin@hr");

    // its own owner: fine, and recorded as its principal
    apply(finAdmin, agent("fin-bot-2", "finance"));
    assertThat(json(api.callAs(root, "GET", "/v1/agents/fin-bot-2", null)).get("applied_by").asString()).isEqualTo("operator:fin-admin");

    // another owner's agent, by name, with its owner changed: a hijack
    HttpResponse<String> hijack = api.callAs(hrAdmin, "POST", "/v1/apply", applyBody(agent("fin-bot", "hr")));
    assertThat(hijack.statusCode()).isEqualTo(403);
    assertThat(json(hijack).get("detail").asString())
        .contains("nothing was applied", "agent/fin-bot exists with owner \"finance\" (revision 1)");
    JsonNode finBot = json(api.callAs(root, "GET", "/v1/agents/fin-bot", null));
    assertThat(finBot.get("owner").asString()).isEqualTo("finance");
    assertThat(finBot.get("revision").asInt()).isEqualTo(1);

    // a file with one allowed and one refused descriptor stores neither, dry run or not
    String mixed = agent("hr-bot", "hr") + "---\n" + agent("fin-bot-3", "finance");
    for (String path : List.of("/v1/apply?dry_run=true", "/v1/apply")) {
      HttpResponse<String> r = api.callAs(hrAdmin, "POST", path, applyBody(mixed));
      assertThat(r.statusCode()).as(path).isEqualTo(403);
      assertThat(json(r).get("detail").asString()).contains("agent/fin-bot-3 has owner \"finance\"").doesNotContain("agent/hr-bot");
    }
    assertThat(api.callAs(root, "GET", "/v1/agents/hr-bot", null).statusCode()).isEqualTo(404);
    assertThat(api.callAs(root, "GET", "/v1/agents/fin-bot-3", null).statusCode()).isEqualTo(404);

    // moving an agent between owners needs admin for both
    assertThat(api.callAs(finAdmin, "POST", "/v1/apply", applyBody(agent("fin-bot", "hr"))).statusCode()).isEqualTo(403);
    apply(root, agent("fin-bot", "hr"));
    // an owner change widens who may run the agent: it waits for a second person who covers both owners
    assertThat(json(api.callAs(root, "GET", "/v1/agents/fin-bot", null)).get("owner").asString()).isEqualTo("finance");
    String finApprover = create(root, "fin-approver", "approver@finance");
    assertThat(api.callAs(finApprover, "POST", "/v1/agents/fin-bot/revisions/2/approve", null).statusCode()).isEqualTo(403);
    String approver = create(root, "both-approver", "approver@finance", "approver@hr");
    HttpResponse<String> approved = api.callAs(approver, "POST", "/v1/agents/fin-bot/revisions/2/approve", null);
    assertThat(approved.statusCode()).as(approved.body()).isEqualTo(200);
    assertThat(json(api.callAs(root, "GET", "/v1/agents/fin-bot", null)).get("owner").asString()).isEqualTo("hr");

    // a descriptor without an owner is cluster-wide: only an admin of every owner applies it
    String policy = """
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: everywhere}
        spec: {deny_when: "false", reason: test}
        """;
    HttpResponse<String> p = api.callAs(finAdmin, "POST", "/v1/apply", applyBody(policy));
    assertThat(p.statusCode()).as(p.body()).isEqualTo(403);
    assertThat(json(p).get("detail").asString()).contains("no owner (cluster-wide");

    // a viewer may not apply at all
    String viewer = create(root, "v", "viewer");
    assertThat(api.callAs(viewer, "POST", "/v1/apply", applyBody(agent("x", "finance"))).statusCode()).isEqualTo(403);
  }

  private static List<String> names(HttpResponse<String> r, String field) {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return json(r).get(field).valueStream().map(n -> n.get("name").asString()).toList();
  }

  private static List<String> ids(HttpResponse<String> r) {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return json(r).get("sessions").valueStream().map(n -> n.get("id").asString()).toList();
  }
}
