package keel.cli;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import keel.core.EventCodec;
import tools.jackson.databind.JsonNode;

/**
 * Test helper: a real {@code keel serve} in its own process (the test's class path, so test-only
 * tool providers are found), with the HTTP calls tests make to it. Not thread-safe to restart from
 * several threads; the HTTP helpers are.
 */
final class ServerProcess implements AutoCloseable {

  private final Path data;
  private final Path log;
  private final int port;
  private final Map<String, String> env;
  private final List<String> prefix;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  private Process process;

  /**
   * @param prefix a command the server runs under, such as {@code prlimit --fsize=N}, or empty
   */
  ServerProcess(Path data, Path log, Map<String, String> env, List<String> prefix) throws IOException {
    this.data = data;
    this.log = log;
    this.env = Map.copyOf(env);
    this.prefix = List.copyOf(prefix);
    try (ServerSocket s = new ServerSocket(0)) {
      this.port = s.getLocalPort();
    }
  }

  /** Starts the server (again) on the same port and data directory; returns once it is ready. */
  ServerProcess start() throws Exception {
    return start(prefix);
  }

  ServerProcess start(List<String> under) throws Exception {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> cmd = new ArrayList<>(under);
    cmd.addAll(List.of(java, "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-cp", System.getProperty("java.class.path"),
        "keel.cli.Main", "serve", "--port", Integer.toString(port), "--data-dir", data.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    pb.redirectErrorStream(true);
    pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    process = pb.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError("the server exited with " + process.exitValue() + ":\n" + Files.readString(log));
      }
      try {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base() + "/readyz"))
            .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200) {
          return this;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(50);
    }
    throw new AssertionError("the server did not become ready:\n" + Files.readString(log));
  }

  /** Kills the server with SIGKILL and waits for it to be gone. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(20, TimeUnit.SECONDS);
  }

  /** The running server's process id (its node name ends with it). */
  long pid() {
    return process.pid();
  }

  /** Sends a signal such as {@code STOP} or {@code CONT} to the server. */
  void signal(String name) throws Exception {
    Process p = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
    if (p.waitFor() != 0) {
      throw new AssertionError("kill -" + name + " " + process.pid() + " failed");
    }
  }

  String base() {
    return "http://127.0.0.1:" + port;
  }

  String token() throws IOException {
    return Files.readString(data.resolve("admin.token")).strip();
  }

  HttpRequest.Builder request(String path) throws IOException {
    return HttpRequest.newBuilder(URI.create(base() + path))
        .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + token());
  }

  HttpResponse<String> send(HttpRequest request) throws IOException, InterruptedException {
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  /** GET, expecting 200. */
  JsonNode get(String path) throws Exception {
    HttpResponse<String> r = send(request(path).GET().build());
    if (r.statusCode() != 200) {
      throw new AssertionError(path + " answered " + r.statusCode() + ": " + r.body());
    }
    return EventCodec.mapper().readTree(r.body());
  }

  /** POST of a JSON body, with an idempotency key when not null. */
  HttpResponse<String> post(String path, String body, String key) throws Exception {
    HttpRequest.Builder b = request(path).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
    if (key != null) {
      b.header("Idempotency-Key", key);
    }
    return send(b.build());
  }

  @Override
  public void close() {
    if (process != null) {
      process.destroyForcibly();
    }
  }
}
