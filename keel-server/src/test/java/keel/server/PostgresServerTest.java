package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.data.PostgresConfig;
import keel.data.TestPostgres;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * A real server on a real PostgreSQL (embedded, or {@code KEEL_TEST_POSTGRES_URL}): a session end
 * to end over HTTP, everything it wrote in PostgreSQL and nothing in the data directory's SQLite,
 * and a restart (on another data directory, as another node would) that finds it all again.
 */
class PostgresServerTest {

  @TempDir Path dir;
  final HttpClient http = HttpClient.newHttpClient();
  KeelServer server;
  String token;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  private void start(Path data, PostgresConfig store, Map<String, String> env) throws Exception {
    server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(env).withPostgres(store));
    token = Files.readString(server.adminTokenFile()).strip();
  }

  private HttpResponse<String> call(String method, String path, String body) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + token);
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private JsonNode json(String method, String path, String body) throws Exception {
    HttpResponse<String> r = call(method, path, body);
    assertThat(r.statusCode() / 100).as(method + " " + path + ": " + r.body()).isEqualTo(2);
    return EventCodec.mapper().readTree(r.body());
  }

  private String status(String id) throws Exception {
    return json("GET", "/v1/sessions/" + id, null).get("status").asString();
  }

  private static long count(PostgresConfig db, String sql) throws Exception {
    try (Connection c = TestPostgres.connect(db);
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  @Test
  void session_runsEndToEnd_overHttp_storedInPostgres_andSurvivesARestartOnAnotherNode() throws Exception {
    PostgresConfig db = TestPostgres.newDatabase("server");
    start(dir.resolve("node-1"), db, Map.of());

    JsonNode ready = json("GET", "/readyz", null);
    assertThat(ready.get("status").asString()).isEqualTo("ready");
    assertThat(ready.get("store").asString()).isEqualTo(db.describe()).startsWith("postgresql://");

    assertThat(json("POST", "/v1/apply", TestServer.applyBody(ApiTest.AGENT)).get("results").get(0).get("result").asString())
        .isEqualTo("created");
    String id = json("POST", "/v1/sessions", "{\"agent\":\"notes\",\"message\":\"remember milk\"}").get("id").asString();
    await().atMost(Duration.ofSeconds(20)).until(() -> status(id).equals("idle"));
    assertThat(json("GET", "/v1/sessions/" + id, null).get("last_answer").asString()).isEqualTo("Saved.");

    List<String> types = new ArrayList<>();
    json("GET", "/v1/sessions/" + id + "/events", null).get("events").forEach(e -> types.add(e.get("type").asString()));
    assertThat(types)
        .startsWith("SessionStarted", "InputReceived", "ModelCalled", "ModelResponded", "ToolCallAuthorized")
        .contains("ToolCallCompleted")
        .endsWith("ModelResponded");
    assertThat(json("GET", "/v1/sessions/" + id + "/trace", null).get("children").get(0).get("kind").asString())
        .isEqualTo("turn");

    // it is all in PostgreSQL, and SQLite was never opened
    assertThat(count(db, "SELECT count(*) FROM events WHERE session_id = '" + id + "'")).isEqualTo(types.size());
    assertThat(count(db, "SELECT count(*) FROM memory WHERE agent = 'notes'")).isEqualTo(1);
    assertThat(count(db, "SELECT count(*) FROM revisions")).isEqualTo(1);
    assertThat(dir.resolve("node-1").resolve("keel.db")).doesNotExist();

    // another node (its own data directory) on the same store finds the session and goes on with it
    server.close();
    server = null;
    start(dir.resolve("node-2"), db, Map.of());
    assertThat(status(id)).isEqualTo("idle");
    HttpResponse<String> sent = call("POST", "/v1/sessions/" + id + "/messages", "{\"message\":\"hello again\"}");
    assertThat(sent.statusCode()).as(sent.body()).isEqualTo(202);
    await().atMost(Duration.ofSeconds(20))
        .until(() -> status(id).equals("idle") && json("GET", "/v1/sessions/" + id, null).get("last_answer").asString().equals("Hello."));
    JsonNode events = json("GET", "/v1/sessions/" + id + "/events", null).get("events");
    for (int i = 0; i < events.size(); i++) {
      assertThat(events.get(i).get("seq").asLong()).isEqualTo(i + 1);
    }
    assertThat(json("GET", "/v1/agents/notes", null).toString()).contains("notes");
  }

  @Test
  void passwordFromKeelStorePassword_whenTheUrlHasNone_andAClearErrorWithoutIt() throws Exception {
    PostgresConfig login = TestPostgres.newDatabaseWithPasswordLogin("server_login", "pg-secret-123");
    PostgresConfig noPassword = PostgresConfig.parse(TestPostgres.url(login).replace(":pg-secret-123@", "@"));
    assertThat(noPassword.password()).isEmpty();

    assertThatThrownBy(() -> KeelServer.start(ServerConfig.of(0, dir.resolve("a")).withEnvironment(Map.of()).withPostgres(noPassword)))
        .isInstanceOf(KeelException.Unavailable.class)
        .hasMessageContaining("cannot connect to the PostgreSQL store " + login.describe())
        .hasMessageContaining("no password was provided").hasMessageContaining("KEEL_STORE_PASSWORD");
    // a failed start leaves the data directory unlocked: the next start may use it
    start(dir.resolve("a"), noPassword, Map.of(ServerConfig.STORE_PASSWORD, "pg-secret-123"));
    assertThat(json("GET", "/readyz", null).get("store").asString()).isEqualTo(login.describe()).doesNotContain("pg-secret");
  }
}
