package keel.testkit.mcp;

import io.javalin.Javalin;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.HttpServletStreamableServerTransportProvider;
import io.modelcontextprotocol.server.transport.ServerTransportSecurityException;
import io.modelcontextprotocol.server.transport.ServerTransportSecurityValidator;
import io.modelcontextprotocol.spec.McpSchema;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.ee10.servlet.ServletHolder;

/**
 * An MCP server over Streamable HTTP at {@code /mcp} on 127.0.0.1: the SDK's servlet transport
 * mounted on Javalin's Jetty. With a bearer token, every request (POST, GET and DELETE alike) must
 * carry {@code Authorization: Bearer <token>}; others are refused with 401 before the MCP layer
 * sees them, and counted.
 *
 * <p>Thread-safe: requests are served on Jetty's (virtual) threads; the refusal counter is atomic.
 */
final class HttpEndpoint implements AutoCloseable {

  /** The path of the MCP endpoint. */
  static final String PATH = "/mcp";

  private final Javalin app;
  private final McpSyncServer server;
  private final AtomicLong refused;

  private HttpEndpoint(Javalin app, McpSyncServer server, AtomicLong refused) {
    this.app = app;
    this.server = server;
    this.refused = refused;
  }

  /**
   * Starts a server called {@code name} with {@code tools} on 127.0.0.1:{@code port} ({@code 0}: a
   * free port).
   */
  static HttpEndpoint start(
      String name, String instructions, List<SyncToolSpecification> tools, int port, Optional<String> bearerToken) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    AtomicLong refused = new AtomicLong();
    ServerTransportSecurityValidator validator =
        bearerToken
            .<ServerTransportSecurityValidator>map(token -> headers -> checkBearer(headers, token, refused))
            .orElse(ServerTransportSecurityValidator.NOOP);
    HttpServletStreamableServerTransportProvider transport =
        HttpServletStreamableServerTransportProvider.builder()
            .jsonMapper(McpJsonDefaults.getMapper())
            .mcpEndpoint(PATH)
            .securityValidator(validator)
            .build();
    McpSyncServer server =
        McpServer.sync(transport)
            .serverInfo(name, "1.0.0")
            .instructions(instructions)
            .capabilities(McpSchema.ServerCapabilities.builder().tools(false).build())
            .requestTimeout(Duration.ofSeconds(30))
            .tools(tools)
            .build();
    ServletHolder holder = new ServletHolder(transport);
    holder.setAsyncSupported(true);
    Javalin app =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              cfg.jetty.modifyServletContextHandler(h -> h.addServlet(holder, PATH));
            });
    try {
      app.start("127.0.0.1", port);
    } catch (RuntimeException e) {
      server.close();
      throw e;
    }
    return new HttpEndpoint(app, server, refused);
  }

  private static void checkBearer(Map<String, List<String>> headers, String token, AtomicLong refused)
      throws ServerTransportSecurityException {
    byte[] expected = ("Bearer " + token).getBytes(StandardCharsets.UTF_8);
    for (Map.Entry<String, List<String>> h : headers.entrySet()) {
      if (h.getKey().equalsIgnoreCase("Authorization")) {
        for (String value : h.getValue()) {
          if (MessageDigest.isEqual(expected, value.getBytes(StandardCharsets.UTF_8))) {
            return;
          }
        }
      }
    }
    refused.incrementAndGet();
    // never echo the header: it may be someone's real token
    throw new ServerTransportSecurityException(401, "a valid bearer token is required in the Authorization header");
  }

  int port() {
    return app.port();
  }

  /** The endpoint's URL, e.g. {@code http://127.0.0.1:41234/mcp}. */
  String url() {
    return "http://127.0.0.1:" + port() + PATH;
  }

  /** How many requests were refused for a missing or wrong bearer token. */
  long refusedRequests() {
    return refused.get();
  }

  @Override
  public void close() {
    try {
      server.closeGracefully();
    } finally {
      app.stop();
    }
  }

  /** Blocks the calling thread for ever (until the process is stopped); for the servers' mains. */
  static void awaitShutdown(AutoCloseable server) throws InterruptedException {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    server.close();
                  } catch (Exception e) {
                    System.err.println("while stopping: " + e);
                  }
                }));
    new CountDownLatch(1).await();
  }

  /** The value of {@code --port N} in {@code args} ({@code defaultPort} when absent). */
  static int portOption(String[] args, String usage, int defaultPort) {
    int port = defaultPort;
    for (int i = 0; i < args.length; i++) {
      if (!args[i].equals("--port")) {
        throw new IllegalArgumentException("unknown option " + args[i] + "; usage: " + usage);
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException("option --port needs a value; usage: " + usage);
      }
      String value = args[++i];
      try {
        port = Integer.parseInt(value);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("option --port expects a number, got \"" + value + "\"; usage: " + usage, e);
      }
    }
    return port;
  }
}
