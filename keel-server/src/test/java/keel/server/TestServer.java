package keel.server;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import keel.core.EventCodec;
import tools.jackson.databind.JsonNode;

/**
 * The API tests' fixture: a Keel server started on 127.0.0.1 port 0 over a data directory, and a
 * JSON client that calls it as the bootstrap admin (or as any token). Calls are thread-safe; close
 * it once, after the test.
 */
final class TestServer implements AutoCloseable {

  private final KeelServer server;
  private final String token;
  private final HttpClient http = HttpClient.newHttpClient();

  private TestServer(KeelServer server) throws Exception {
    this.server = server;
    this.token = Files.readString(server.adminTokenFile()).strip();
  }

  /** Starts a server with {@code config}. */
  static TestServer start(ServerConfig config) throws Exception {
    return new TestServer(KeelServer.start(config));
  }

  /** Starts a server over {@code dir} with the given environment. */
  static TestServer start(Path dir, Map<String, String> environment) throws Exception {
    return start(ServerConfig.of(0, dir).withEnvironment(environment));
  }

  /** Starts a server over {@code dir} with an empty environment. */
  static TestServer start(Path dir) throws Exception {
    return start(dir, Map.of());
  }

  KeelServer server() {
    return server;
  }

  /** The bootstrap admin's token. */
  String token() {
    return token;
  }

  HttpClient http() {
    return http;
  }

  /** Calls as the bootstrap admin; {@code body} (JSON) may be null; {@code headers} are name, value pairs. */
  HttpResponse<String> call(String method, String path, String body, String... headers) throws Exception {
    return callAs(token, method, path, body, headers);
  }

  /** Calls with {@code token} as the bearer. */
  HttpResponse<String> callAs(String token, String method, String path, String body, String... headers)
      throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + token);
    for (int i = 0; i < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode json(HttpResponse<String> r) {
    return EventCodec.mapper().readTree(r.body());
  }

  /** The body of {@code POST /v1/apply} for one YAML document. */
  static String applyBody(String yaml) {
    return EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "agents.yaml").toString();
  }

  @Override
  public void close() {
    server.close();
  }
}
