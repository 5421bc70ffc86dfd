package keel.gateway;

import static org.assertj.core.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import keel.core.McpServerDescriptor;
import keel.core.Metadata;

/**
 * The reference MCP servers from npm ({@code @modelcontextprotocol/server-everything} and {@code
 * server-filesystem}), installed by the build into {@code target/mcp-servers}. A missing install is
 * a test failure, never a skip.
 */
final class ReferenceServers {

  private ReferenceServers() {}

  static Path modules() {
    String dir = System.getProperty("keel.mcpServers", "target/mcp-servers/node_modules");
    Path p = Path.of(dir);
    if (!Files.isDirectory(p.resolve("@modelcontextprotocol/server-everything"))) {
      fail("the reference MCP servers are not installed in " + p.toAbsolutePath()
          + "; the build installs them with npm ci (keel-gateway/src/test/npm): run ./mvnw test -pl keel-gateway -am");
    }
    return p;
  }

  static Path everything() {
    return modules().resolve("@modelcontextprotocol/server-everything/dist/index.js");
  }

  static Path filesystem() {
    return modules().resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
  }

  static String node() {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      Path n = Path.of(dir, "node");
      if (Files.isExecutable(n)) {
        return n.toString();
      }
    }
    return fail("node is not on the PATH; the gateway tests run the reference MCP servers with Node.js");
  }

  static McpServerDescriptor stdio(String name, List<String> command, Map<String, McpServerDescriptor.ValueSource> env,
      Map<String, McpServerDescriptor.ToolSettings> tools) {
    return new McpServerDescriptor(
        new Metadata(name, "team-a", Map.of()),
        new McpServerDescriptor.Spec("stdio", command, java.util.Optional.empty(), env, Map.of(), tools,
            java.util.Optional.empty(), java.util.Optional.of(java.time.Duration.ofSeconds(20)), java.util.Optional.empty()));
  }

  static McpServerDescriptor http(String name, String url, Map<String, McpServerDescriptor.ValueSource> headers) {
    return new McpServerDescriptor(
        new Metadata(name, "team-a", Map.of()),
        new McpServerDescriptor.Spec("streamable-http", List.of(), java.util.Optional.of(url), Map.of(), headers, Map.of(),
            java.util.Optional.empty(), java.util.Optional.of(java.time.Duration.ofSeconds(20)), java.util.Optional.empty()));
  }

  static McpServerDescriptor.ValueSource literal(String v) {
    return new McpServerDescriptor.ValueSource(java.util.Optional.of(v), java.util.Optional.empty());
  }

  static McpServerDescriptor.ValueSource secret(String name) {
    return new McpServerDescriptor.ValueSource(java.util.Optional.empty(), java.util.Optional.of(name));
  }

  /** server-everything in its Streamable HTTP mode on a free port of 127.0.0.1; close it to stop it. */
  static final class HttpEverything implements AutoCloseable {
    final Process process;
    final int port;

    HttpEverything() throws IOException, InterruptedException {
      try (ServerSocket s = new ServerSocket(0)) {
        port = s.getLocalPort();
      }
      ProcessBuilder pb = new ProcessBuilder(node(), everything().toString(), "streamableHttp");
      pb.environment().put("PORT", Integer.toString(port));
      pb.redirectErrorStream(true);
      process = pb.start();
      CompletableFuture<Void> up = new CompletableFuture<>();
      Thread.ofVirtual().start(() -> {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = r.readLine()) != null) {
            if (line.contains("listening on port")) {
              up.complete(null);
            }
          }
        } catch (IOException e) {
          up.completeExceptionally(e);
        }
      });
      try {
        up.get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        process.destroyForcibly();
        fail("server-everything (streamableHttp) did not start on port " + port, e);
      }
    }

    String url() {
      return "http://127.0.0.1:" + port + "/mcp";
    }

    @Override
    public void close() {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
  }
}
