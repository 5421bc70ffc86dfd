package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Agent identity over real HTTP: a service outside Keel verifies the token a session's tool
 * presents against the server's public JWKS document, and a sub-agent runs end to end through the
 * API, with its delegation visible in sessions, events and the trace.
 */
class IdentityApiTest {

  @TempDir Path dir;
  KeelServer server;
  HttpServer outside;
  final HttpClient http = HttpClient.newHttpClient();
  final List<String> verifiedByOutside = new CopyOnWriteArrayList<>();
  String token;

  @BeforeEach
  void start() throws Exception {
    // the outside service: it knows nothing of Keel but its JWKS address
    outside = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    outside.createContext("/", exchange -> {
      String answer;
      int status;
      try {
        String bearer = exchange.getRequestHeaders().getFirst("Authorization").substring("Bearer ".length());
        HttpResponse<String> jwks = http.send(
            HttpRequest.newBuilder(URI.create(server.url() + "/.well-known/jwks.json")).build(), HttpResponse.BodyHandlers.ofString());
        DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
        processor.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256, new ImmutableJWKSet<>(JWKSet.parse(jwks.body()))));
        processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(
            new JWTClaimsSet.Builder().issuer("keel").build(), Set.of("sub", "exp", "iat", "jti", "sid", "grants", "chain")));
        JWTClaimsSet claims = processor.process(bearer, null);
        if (!claims.getStringClaim("sid").equals(exchange.getRequestHeaders().getFirst("X-Keel-Session"))) {
          throw new IllegalStateException("token of another session");
        }
        answer = "verified " + claims.getSubject() + " for " + claims.getStringClaim("sid") + " granted "
            + claims.getStringListClaim("grants") + " chain " + claims.getStringListClaim("chain");
        verifiedByOutside.add(answer);
        status = 200;
      } catch (Exception e) {
        answer = "refused: " + e.getMessage();
        status = 401;
      }
      byte[] body = answer.getBytes(StandardCharsets.UTF_8);
      exchange.sendResponseHeaders(status, body.length);
      exchange.getResponseBody().write(body);
      exchange.close();
    });
    outside.start();
    server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(
        Map.of("KEEL_TEST_OUTSIDE_URL", "http://127.0.0.1:" + outside.getAddress().getPort() + "/check")));
    token = Files.readString(server.adminTokenFile()).strip();
  }

  @AfterEach
  void stop() {
    server.close();
    outside.stop(0);
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
    assertThat(r.statusCode()).as(path + ": " + r.body()).isEqualTo(200);
    return EventCodec.mapper().readTree(r.body());
  }

  JsonNode apply(String yaml) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return EventCodec.mapper().readTree(r.body());
  }

  String startTask(String agent, String message) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/sessions",
        EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message).put("task", true).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    String id = EventCodec.mapper().readTree(r.body()).get("id").asString();
    await().atMost(Duration.ofSeconds(20)).until(() -> get("/v1/sessions/" + id).get("status").asString().equals("completed"));
    return id;
  }

  static String agent(String name, String script, String tools) {
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
        """.formatted(name, script.indent(6).stripTrailing(), tools);
  }

  @Test
  void jwks_isPublic_atTheWellKnownPath_andBehindATokenUnderV1() throws Exception {
    HttpResponse<String> open = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/.well-known/jwks.json")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(open.statusCode()).isEqualTo(200);
    assertThat(open.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/json"));
    JWKSet set = JWKSet.parse(open.body());
    assertThat(set.getKeys()).hasSize(1);
    assertThat(set.getKeys().getFirst().isPrivate()).isFalse();
    assertThat(open.body()).doesNotContain("\"d\"");
    assertThat(call("GET", "/v1/jwks", null).body()).isEqualTo(open.body());
    HttpResponse<String> anonymous = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/jwks")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(anonymous.statusCode()).isEqualTo(401);
    JsonNode doc = get("/v1/openapi.json");
    assertThat(doc.path("paths").has("/v1/jwks")).isTrue();
    assertThat(doc.path("info").path("description").asString()).contains("/.well-known/jwks.json").contains("public by design");
  }

  @Test
  void aServiceOutsideKeel_verifiesTheTokenASessionPresents_withTheServersJwks() throws Exception {
    apply(agent("outsider", """
        - turns:
            - call: [{tool: call_outside}]
            - say: "{{result}}"
        """, "internal://outside, internal://time"));
    String id = startTask("outsider", "check me");
    assertThat(verifiedByOutside).containsExactly(
        "verified agent:outsider for " + id + " granted [internal://outside, internal://time] chain [operator:admin]");
    assertThat(get("/v1/sessions/" + id).get("last_answer").asString()).isEqualTo(verifiedByOutside.getFirst());
    // the token travelled to the tool and the outside service only: not into events or answers
    JsonNode events = get("/v1/sessions/" + id + "/events").get("events");
    String authorized = "";
    for (JsonNode e : events) {
      assertThat(e.toString()).doesNotContain("eyJ");
      if (e.get("type").asString().equals("ToolCallAuthorized")) {
        authorized = e.get("data").get("tokenId").asString();
      }
    }
    assertThat(authorized).startsWith("t_");
  }

  @Test
  void aSubagent_runsEndToEndThroughTheApi_withItsDelegationVisibleEverywhere() throws Exception {
    JsonNode applied = apply(agent("planner", """
        - turns:
            - call: [{tool: agent_researcher, args: {task: "find {{input}}"}}]
            - say: "planner: {{result}}"
        """, "agent://researcher, agent://missing, internal://time")
        + "---\n" + agent("researcher", """
        - turns:
            - call: [{tool: time_now}, {tool: call_outside}]
            - say: "researcher found it"
        """, "internal://time, internal://outside"));
    assertThat(applied.get("results").get(0).get("warnings").toString())
        .contains("spec.tools[1]: there is no agent \\\"missing\\\" yet");
    assertThat(applied.get("results").get(0).get("warnings").toString()).doesNotContain("researcher");

    String id = startTask("planner", "the invoice");
    JsonNode parent = get("/v1/sessions/" + id);
    assertThat(parent.get("last_answer").asString()).isEqualTo("planner: researcher found it");
    assertThat(parent.get("delegation_chain").toString()).isEqualTo("[\"operator:admin\"]");

    JsonNode child = null;
    for (JsonNode s : get("/v1/sessions?limit=100").get("sessions")) {
      if (s.path("parent_id").asString("").equals(id)) {
        child = s;
      }
    }
    assertThat(child).as("the child session is listed").isNotNull();
    assertThat(child.get("agent").asString()).isEqualTo("researcher");
    assertThat(child.get("root_id").asString()).isEqualTo(id);
    assertThat(child.get("trace_id").asString()).isEqualTo(parent.get("trace_id").asString());
    String childId = child.get("id").asString();
    JsonNode childView = get("/v1/sessions/" + childId);
    assertThat(childView.get("status").asString()).isEqualTo("completed");
    // the intersection: the planner may not call the outside service, so neither may its researcher
    assertThat(childView.get("grants").toString()).isEqualTo("[\"internal://time\"]");
    assertThat(childView.get("delegation_chain").toString()).isEqualTo("[\"operator:admin\",\"agent:planner\"]");
    assertThat(verifiedByOutside).isEmpty();

    List<String> types = new ArrayList<>();
    JsonNode spawned = null;
    for (JsonNode e : get("/v1/sessions/" + id + "/events").get("events")) {
      types.add(e.get("type").asString());
      if (e.get("type").asString().equals("SubagentSpawned")) {
        spawned = e.get("data");
      }
    }
    assertThat(types).containsSubsequence("SubagentSpawned", "SubagentCompleted", "SessionCompleted");
    assertThat(spawned.get("childSessionId").asString()).isEqualTo(childId);
    assertThat(spawned.get("principal").asString()).isEqualTo("agent:planner");
    assertThat(spawned.get("tokenId").asString()).startsWith("t_");
    JsonNode denied = null;
    for (JsonNode e : get("/v1/sessions/" + childId + "/events").get("events")) {
      if (e.get("type").asString().equals("ToolCallDenied")) {
        denied = e.get("data");
      }
    }
    assertThat(denied.get("reason").asString()).isEqualTo("agent:researcher is not granted internal://outside (its token grants internal://time)");
    assertThat(denied.get("principal").asString()).isEqualTo("agent:researcher");

    // one trace: the child's session hangs under the call that spawned it, with who acted and how
    String trace = get("/v1/sessions/" + id + "/trace").toString();
    assertThat(trace).contains("\"keel.subagent.session.id\":\"" + childId + "\"")
        .contains("\"keel.session.id\":\"" + childId + "\"")
        .contains("\"keel.principal\":\"agent:researcher\"")
        .contains("\"keel.delegation.chain\":\"operator:admin → agent:planner\"")
        .contains("\"keel.token_id\":\"t_");
  }
}
