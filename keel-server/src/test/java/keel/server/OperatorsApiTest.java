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
  KeelServer server;
  HttpClient http = HttpClient.newHttpClient();
  String root;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()));
    root = Files.readString(server.adminTokenFile()).strip();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  HttpResponse<String> call(String token, String method, String path, String body) throws Exception {
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

  static String operatorBody(String name, String... roles) {
    ObjectNode o = EventCodec.mapper().createObjectNode().put("name", name);
    var arr = o.putArray("roles");
    for (String r : roles) {
      arr.add(r);
    }
    return o.toString();
  }

  static String applyBody(String yaml) {
    return EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "agents.yaml").toString();
  }

  /** Creates an operator as {@code as} and returns its token. */
  String create(String as, String name, String... roles) throws Exception {
    HttpResponse<String> r = call(as, "POST", "/v1/operators", operatorBody(name, roles));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return json(r).get("token").asString();
  }

  void apply(String token, String yaml) throws Exception {
    HttpResponse<String> r = call(token, "POST", "/v1/apply", applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String start(String token, String agent) throws Exception {
    HttpResponse<String> r = call(token, "POST", "/v1/sessions", "{\"agent\":\"" + agent + "\",\"message\":\"hi\"}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return json(r).get("id").asString();
  }

  @Test
  void create_returnsTheTokenOnce_andItIsThatOperator() throws Exception {
    HttpResponse<String> created = call(root, "POST", "/v1/operators", operatorBody("alice", "approver@finance", "viewer"));
    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
    JsonNode o = json(created);
    String token = o.get("token").asString();
    assertThat(token).startsWith("keel_");
    assertThat(o.get("principal").asString()).isEqualTo("operator:alice");
    assertThat(o.get("created_by").asString()).isEqualTo("operator:admin");

    JsonNode me = json(call(token, "GET", "/v1/whoami", null));
    assertThat(me.get("principal").asString()).isEqualTo("operator:alice");
    assertThat(me.get("roles")).extracting(JsonNode::asString).containsExactly("approver@finance", "viewer");
    assertThat(json(call(root, "GET", "/v1/whoami", null)).get("principal").asString()).isEqualTo("operator:admin");

    HttpResponse<String> list = call(root, "GET", "/v1/operators", null);
    assertThat(list.body()).doesNotContain(token).doesNotContain("\"token\"");
    assertThat(json(list).get("operators")).extracting(n -> n.get("name").asString() + ":" + n.get("status").asString())
        .containsExactly("admin:active", "alice:active");
    assertThat(call(root, "GET", "/v1/openapi.json", null).body()).contains("/v1/operators/{name}/revoke", "/v1/whoami");
  }

  @Test
  void revoke_refusesTheTokenOnTheNextRequest() throws Exception {
    String token = create(root, "ci", "operator");
    assertThat(call(token, "GET", "/v1/sessions", null).statusCode()).isEqualTo(200);
    HttpResponse<String> revoked = call(root, "POST", "/v1/operators/ci/revoke", null);
    assertThat(revoked.statusCode()).as(revoked.body()).isEqualTo(200);
    assertThat(json(revoked).get("status").asString()).isEqualTo("revoked");
    assertThat(json(revoked).get("revoked_by").asString()).isEqualTo("operator:admin");
    HttpResponse<String> refused = call(token, "GET", "/v1/sessions", null);
    assertThat(refused.statusCode()).isEqualTo(401);
    assertThat(json(refused).get("detail").asString()).contains("revoked");
    assertThat(call(root, "POST", "/v1/operators/ci/token", null).statusCode()).isEqualTo(409);
    assertThat(call(root, "POST", "/v1/operators", operatorBody("ci", "viewer")).statusCode()).isEqualTo(409);
  }

  @Test
  void newToken_replacesTheOldOne() throws Exception {
    String first = create(root, "ci", "viewer");
    HttpResponse<String> issued = call(root, "POST", "/v1/operators/ci/token", null);
    assertThat(issued.statusCode()).as(issued.body()).isEqualTo(200);
    String second = json(issued).get("token").asString();
    assertThat(call(first, "GET", "/v1/whoami", null).statusCode()).isEqualTo(401);
    assertThat(json(call(second, "GET", "/v1/whoami", null)).get("principal").asString()).isEqualTo("operator:ci");
  }

  @Test
  void badRequests_sayWhatIsWrong() throws Exception {
    HttpResponse<String> bad = call(root, "POST", "/v1/operators", operatorBody("Bad Name", "viewr", "approver@"));
    assertThat(bad.statusCode()).isEqualTo(400);
    assertThat(json(bad).get("errors")).hasSize(3);
    assertThat(bad.body()).contains("name: expected", "role \\\"viewr\\\"", "the owner after @ is empty");
    HttpResponse<String> noRoles = call(root, "POST", "/v1/operators", "{\"name\":\"x\"}");
    assertThat(noRoles.statusCode()).isEqualTo(400);
    assertThat(json(noRoles).get("detail").asString()).contains("roles: expected an array", "(required)");
    assertThat(call(root, "POST", "/v1/operators", "{\"name\":\"x\",\"roles\":[\"viewer\",3]}").body()).contains("roles[1]: expected a string");
    assertThat(call(root, "POST", "/v1/operators/ghost/revoke", null).statusCode()).isEqualTo(404);
    HttpResponse<String> bootstrap = call(root, "POST", "/v1/operators/admin/revoke", null);
    assertThat(bootstrap.statusCode()).isEqualTo(409);
    assertThat(json(bootstrap).get("detail").asString()).contains("admin.token");
  }

  @Test
  void aScopedAdmin_cannotEscalate() throws Exception {
    String finAdmin = create(root, "fin-admin", "admin@finance");
    create(finAdmin, "fin-viewer", "viewer@finance");
    for (String role : List.of("viewer", "admin", "viewer@hr")) {
      HttpResponse<String> r = call(finAdmin, "POST", "/v1/operators", operatorBody("sneaky", "viewer@finance", role));
      assertThat(r.statusCode()).as(role).isEqualTo(403);
      assertThat(json(r).get("detail").asString()).contains("may not create an operator with the role " + role);
    }
    create(root, "hr-viewer", "viewer@hr");
    assertThat(call(finAdmin, "POST", "/v1/operators/hr-viewer/revoke", null).statusCode()).isEqualTo(403);
    assertThat(json(call(finAdmin, "GET", "/v1/operators", null)).get("operators"))
        .extracting(n -> n.get("name").asString()).containsExactly("fin-admin", "fin-viewer");
    assertThat(json(call(root, "GET", "/v1/operators", null)).get("operators")).hasSize(4);
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

    assertThat(names(call(finViewer, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot");
    assertThat(names(call(finHr, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot", "hr-bot");
    assertThat(names(call(everywhere, "GET", "/v1/agents", null), "agents")).containsExactly("fin-bot", "hr-bot", "ops-bot");
    assertThat(names(call(finViewer, "GET", "/v1/inventory", null), "descriptors")).containsExactly("fin-bot");

    assertThat(ids(call(finViewer, "GET", "/v1/sessions", null))).containsExactly(s3, s1);
    assertThat(ids(call(finHr, "GET", "/v1/sessions?limit=2", null))).as("a full page of what the caller covers").containsExactly(s3, s2);
    assertThat(ids(call(finHr, "GET", "/v1/sessions?limit=2&before=" + s2, null))).containsExactly(s1);
    assertThat(ids(call(finViewer, "GET", "/v1/sessions?agent=hr-bot", null))).isEmpty();
    assertThat(ids(call(everywhere, "GET", "/v1/sessions", null))).hasSize(4);
    assertThat(call(finViewer, "GET", "/v1/sessions/" + s2, null).statusCode()).isEqualTo(403);
  }

  @Test
  void aSessionStartedByAnOperator_recordsItsPrincipal() throws Exception {
    apply(root, agent("fin-bot", "finance"));
    String op = create(root, "fin-op", "operator@finance");
    String id = start(op, "fin-bot");
    await().atMost(Duration.ofSeconds(10)).until(() -> call(root, "GET", "/v1/sessions/" + id + "/events", null).body().contains("ModelResponded"));
    assertThat(json(call(root, "GET", "/v1/sessions/" + id + "/events", null)).get("events").get(0).toString()).contains("operator:fin-op");
  }

  @Test
  void apply_needsAdminForEveryOwner_andARefusalStoresNothing() throws Exception {
    apply(root, agent("fin-bot", "finance"));
    String finAdmin = create(root, "fin-admin", "admin@finance");
    String hrAdmin = create(root, "hr-admin", "admin@hr");

    // its own owner: fine, and recorded as its principal
    apply(finAdmin, agent("fin-bot-2", "finance"));
    assertThat(json(call(root, "GET", "/v1/agents/fin-bot-2", null)).get("applied_by").asString()).isEqualTo("operator:fin-admin");

    // another owner's agent, by name, with its owner changed: a hijack
    HttpResponse<String> hijack = call(hrAdmin, "POST", "/v1/apply", applyBody(agent("fin-bot", "hr")));
    assertThat(hijack.statusCode()).isEqualTo(403);
    assertThat(json(hijack).get("detail").asString())
        .contains("nothing was applied", "agent/fin-bot exists with owner \"finance\" (revision 1)");
    JsonNode finBot = json(call(root, "GET", "/v1/agents/fin-bot", null));
    assertThat(finBot.get("owner").asString()).isEqualTo("finance");
    assertThat(finBot.get("revision").asInt()).isEqualTo(1);

    // a file with one allowed and one refused descriptor stores neither, dry run or not
    String mixed = agent("hr-bot", "hr") + "---\n" + agent("fin-bot-3", "finance");
    for (String path : List.of("/v1/apply?dry_run=true", "/v1/apply")) {
      HttpResponse<String> r = call(hrAdmin, "POST", path, applyBody(mixed));
      assertThat(r.statusCode()).as(path).isEqualTo(403);
      assertThat(json(r).get("detail").asString()).contains("agent/fin-bot-3 has owner \"finance\"").doesNotContain("agent/hr-bot");
    }
    assertThat(call(root, "GET", "/v1/agents/hr-bot", null).statusCode()).isEqualTo(404);
    assertThat(call(root, "GET", "/v1/agents/fin-bot-3", null).statusCode()).isEqualTo(404);

    // moving an agent between owners needs admin for both
    assertThat(call(finAdmin, "POST", "/v1/apply", applyBody(agent("fin-bot", "hr"))).statusCode()).isEqualTo(403);
    apply(root, agent("fin-bot", "hr"));
    // an owner change widens who may run the agent: it waits for a second person who covers both owners
    assertThat(json(call(root, "GET", "/v1/agents/fin-bot", null)).get("owner").asString()).isEqualTo("finance");
    String finApprover = create(root, "fin-approver", "approver@finance");
    assertThat(call(finApprover, "POST", "/v1/agents/fin-bot/revisions/2/approve", null).statusCode()).isEqualTo(403);
    String approver = create(root, "both-approver", "approver@finance", "approver@hr");
    HttpResponse<String> approved = call(approver, "POST", "/v1/agents/fin-bot/revisions/2/approve", null);
    assertThat(approved.statusCode()).as(approved.body()).isEqualTo(200);
    assertThat(json(call(root, "GET", "/v1/agents/fin-bot", null)).get("owner").asString()).isEqualTo("hr");

    // a descriptor without an owner is cluster-wide: only an admin of every owner applies it
    String policy = """
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: everywhere}
        spec: {deny_when: "false", reason: test}
        """;
    HttpResponse<String> p = call(finAdmin, "POST", "/v1/apply", applyBody(policy));
    assertThat(p.statusCode()).as(p.body()).isEqualTo(403);
    assertThat(json(p).get("detail").asString()).contains("no owner (cluster-wide");

    // a viewer may not apply at all
    String viewer = create(root, "v", "viewer");
    assertThat(call(viewer, "POST", "/v1/apply", applyBody(agent("x", "finance"))).statusCode()).isEqualTo(403);
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
