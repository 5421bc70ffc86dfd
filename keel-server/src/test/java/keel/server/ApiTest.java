package keel.server;

import static keel.server.TestServer.applyBody;
import static keel.server.TestServer.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

class ApiTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: notes, owner: team-a}
      spec:
        instructions: Keep notes.
        model:
          provider: scripted
          name: notes-script
          script:
            - when: "remember"
              turns:
                - call: [{tool: memory_put, args: {key: note, value: "{{input}}"}}]
                - say: "Saved."
            - turns:
                - say: "Hello."
        memory: {type: persistent}
        tools: [internal://memory]
      """;

  @TempDir Path dir;
  TestServer api;
  KeelServer server;
  HttpClient http = HttpClient.newHttpClient();
  String token;

  @BeforeEach
  void start() throws Exception {
    api = TestServer.start(dir);
    server = api.server();
    token = api.token();
  }

  @AfterEach
  void stop() {
    api.close();
  }

  @Test
  void adminToken_isOwnerOnly() throws Exception {
    assertThat(Files.getPosixFilePermissions(server.adminTokenFile()))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
  }

  @Test
  void aDataDirectoryTheServerCreates_isOwnerOnly() throws Exception {
    api.close();
    Path fresh = dir.resolve("fresh").resolve("data");
    api = TestServer.start(ServerConfig.of(0, fresh).withEnvironment(Map.of()));
    server = api.server();
    assertThat(Files.getPosixFilePermissions(fresh))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE);
  }

  @Test
  void routes_withoutToken_areRefusedAsProblems() throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/agents")).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
    assertThat(json(r).get("detail").asString()).contains("Authorization: Bearer");
  }

  @Test
  void session_runsAndStreamsAndTraces() throws Exception {
    HttpResponse<String> applied = api.call("POST", "/v1/apply", applyBody(AGENT));
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);
    assertThat(json(applied).get("results").get(0).get("result").asString()).isEqualTo("created");
    assertThat(json(api.call("POST", "/v1/apply", applyBody(AGENT))).get("results").get(0).get("result").asString()).isEqualTo("unchanged");

    HttpResponse<String> started = api.call("POST", "/v1/sessions", "{\"agent\":\"notes\",\"message\":\"remember milk\"}");
    assertThat(started.statusCode()).as(started.body()).isEqualTo(201);
    String id = json(started).get("id").asString();

    HttpRequest sse = HttpRequest.newBuilder(URI.create(server.url() + "/v1/sessions/" + id + "/stream"))
        .header("Authorization", "Bearer " + token).build();
    HttpResponse<InputStream> stream = http.send(sse, HttpResponse.BodyHandlers.ofInputStream());
    List<String> types = new ArrayList<>();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = reader.readLine()) != null) {
        if (line.startsWith("event: ")) {
          types.add(line.substring(7));
          if (types.getLast().equals("ModelResponded") && types.stream().filter(t -> t.equals("ModelResponded")).count() == 2) {
            break;
          }
        }
      }
    }
    assertThat(types).startsWith("SessionStarted", "InputReceived", "ModelCalled", "ModelResponded");

    await().atMost(Duration.ofSeconds(10)).until(() -> json(api.call("GET", "/v1/sessions/" + id, null)).get("status").asString().equals("idle"));
    JsonNode view = json(api.call("GET", "/v1/sessions/" + id, null));
    assertThat(view.get("last_answer").asString()).isEqualTo("Saved.");
    JsonNode trace = json(api.call("GET", "/v1/sessions/" + id + "/trace", null));
    assertThat(trace.get("children").get(0).get("kind").asString()).isEqualTo("turn");
    assertThat(api.call("GET", "/v1/openapi.json", null).body()).contains("/v1/sessions/{id}/stream");
  }

  @Test
  void admission_whenTheNodeIsFull_answers429WithRetryAfter() throws Exception {
    api.close();
    try (keel.testkit.FakeOpenAi fake = keel.testkit.FakeOpenAi.start()) {
      fake.latency(Duration.ofSeconds(3));
      ServerConfig tight = ServerConfig.of(0, dir).withEnvironment(Map.of())
          .withExecution(new keel.execution.ExecutionSettings("node-tight", 1, 1, 1000));
      api = TestServer.start(tight);
      server = api.server();
      String slow = """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: slow, owner: team-a}
          spec:
            instructions: Think slowly.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
          """.formatted(fake.baseUrl());
      assertThat(api.call("POST", "/v1/apply", applyBody(slow)).statusCode()).isEqualTo(200);
      assertThat(api.call("POST", "/v1/sessions", "{\"agent\":\"slow\",\"message\":\"one\"}").statusCode()).isEqualTo(201);
      await().atMost(Duration.ofSeconds(5)).until(() -> server.sessions().scheduler().runningSessions() == 1);
      assertThat(api.call("POST", "/v1/sessions", "{\"agent\":\"slow\",\"message\":\"two\"}").statusCode()).isEqualTo(201);
      await().atMost(Duration.ofSeconds(5)).until(() -> server.sessions().scheduler().waitingSessions() == 1);
      HttpResponse<String> refused = api.call("POST", "/v1/sessions", "{\"agent\":\"slow\",\"message\":\"three\"}");
      assertThat(refused.statusCode()).isEqualTo(429);
      assertThat(refused.headers().firstValue("Retry-After")).hasValueSatisfying(v -> assertThat(Integer.parseInt(v)).isPositive());
      assertThat(json(refused).get("detail").asString()).contains("sessions waiting to run");
      assertThat(json(api.call("GET", "/v1/sessions", null)).get("sessions")).hasSize(2);
    }
  }

  @Test
  void secretsFile_givesTheProviderItsKey_whichNeverReachesTheLog() throws Exception {
    api.close();
    java.nio.file.Path secrets = dir.resolve("secrets.env");
    Files.writeString(secrets, "# provider keys\nOPENAI_API_KEY=sk-test-secret-123\n");
    Files.setPosixFilePermissions(secrets, java.util.Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
    try (keel.testkit.FakeOpenAi fake = keel.testkit.FakeOpenAi.start()) {
      fake.requireApiKey("sk-test-secret-123").script(keel.testkit.FakeOpenAi.Script.text("authorized"));
      api = TestServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()).withSecretsFile(secrets));
      server = api.server();
      String agent = """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: keyed, owner: team-a}
          spec:
            instructions: Answer.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
          """.formatted(fake.baseUrl());
      assertThat(api.call("POST", "/v1/apply", applyBody(agent)).statusCode()).isEqualTo(200);
      String id = json(api.call("POST", "/v1/sessions", "{\"agent\":\"keyed\",\"message\":\"hi\"}")).get("id").asString();
      await().atMost(Duration.ofSeconds(10)).until(() -> json(api.call("GET", "/v1/sessions/" + id, null)).get("status").asString().equals("idle"));
      assertThat(json(api.call("GET", "/v1/sessions/" + id, null)).get("last_answer").asString()).isEqualTo("authorized");
      assertThat(api.call("GET", "/v1/sessions/" + id + "/events", null).body()).doesNotContain("sk-test-secret-123");
      assertThat(api.call("GET", "/v1/sessions/" + id + "/trace", null).body()).doesNotContain("sk-test-secret-123");
    }
  }

  @Test
  void modelText_streamsToSubscribersAsDeltas_andOnlyTheCompleteAnswerIsStored() throws Exception {
    try (keel.testkit.FakeOpenAi fake = keel.testkit.FakeOpenAi.start()) {
      String answer = "one two three four five six seven eight nine ten";
      fake.script(keel.testkit.FakeOpenAi.Script.text(answer)).latency(Duration.ofMillis(700));
      String agent = """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: talker, owner: team-a}
          spec:
            instructions: Talk.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
          """.formatted(fake.baseUrl());
      assertThat(api.call("POST", "/v1/apply", applyBody(agent)).statusCode()).isEqualTo(200);
      String id = json(api.call("POST", "/v1/sessions", "{\"agent\":\"talker\",\"message\":\"hi\"}")).get("id").asString();
      HttpRequest sse = HttpRequest.newBuilder(URI.create(server.url() + "/v1/sessions/" + id + "/stream"))
          .header("Authorization", "Bearer " + token).build();
      HttpResponse<InputStream> stream = http.send(sse, HttpResponse.BodyHandlers.ofInputStream());
      StringBuilder deltas = new StringBuilder();
      int deltaEvents = 0;
      String event = "";
      try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = reader.readLine()) != null) {
          if (line.startsWith("event: ")) {
            event = line.substring(7);
            if (event.equals("ModelResponded")) {
              break;
            }
          } else if (line.startsWith("data: ") && event.equals("delta")) {
            deltas.append(EventCodec.mapper().readTree(line.substring(6)).get("text").asString());
            deltaEvents++;
          }
        }
      }
      assertThat(deltaEvents).isGreaterThan(1);
      assertThat(deltas.toString()).isEqualTo(answer);
      String stored = api.call("GET", "/v1/sessions/" + id + "/events", null).body();
      assertThat(stored).doesNotContain("\"delta\"");
      assertThat(json(api.call("GET", "/v1/sessions/" + id, null)).get("last_answer").asString()).isEqualTo(answer);
    }
  }

  @Test
  void apply_invalidDescriptor_listsEveryProblem() throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", applyBody(AGENT.replace("memory: {type: persistent}", "memory: {type: forever}\n  budgets: {usd_per_day: forty}")));
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(json(r).get("errors")).hasSize(2);
    assertThat(r.body()).contains("agents.yaml: document 1: agent \\\"notes\\\": spec.budgets.usd_per_day: expected a positive number, got \\\"forty\\\"");
    assertThat(json(api.call("GET", "/v1/agents", null)).get("agents")).isEmpty();
  }
}
