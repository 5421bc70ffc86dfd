package keel.gateway;

import io.modelcontextprotocol.client.McpAsyncClient;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.spec.McpClientTransport;
import io.modelcontextprotocol.spec.McpError;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.URI;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import keel.core.McpServerDescriptor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

/**
 * One upstream MCP server: its connection (a child process for stdio), started on first use and
 * restarted with exponential backoff after it breaks, and its rate limit.
 *
 * <p>Design: a connection is an SDK client over a transport plus a future that completes with the
 * reason the transport broke (process exit, garbage, oversized message). Every request waits for
 * the first of its answer, that future and its timeout, so a broken or hung server fails its calls
 * at once or after the timeout, never later. Any such failure closes the connection (killing the
 * child) and starts the backoff; the next use after it starts a new connection. An error the
 * server answers properly (a JSON-RPC error, a tool result with {@code isError}) is not a failure.
 *
 * <p>Thread-safe: {@link #lock} guards the connection and the failure state; calls run
 * concurrently over one connection. {@link #rateLock} guards the rate window.
 */
final class Upstream {

  private static final Logger LOG = LoggerFactory.getLogger(Upstream.class);

  /** An open connection and the future that completes when its transport breaks. */
  private record Connection(McpAsyncClient client, CompletableFuture<String> broken) {}

  private final McpServerDescriptor descriptor;
  private final Map<String, String> environment;
  private final Map<String, String> headers;
  private final Path workingDirectory;
  private final Duration timeout;
  private final int maxOutputBytes;
  private final GatewaySettings settings;
  private final Clock clock;
  private final Consumer<List<McpSchema.Tool>> onListed;
  private final Runnable onListChanged;
  private final McpJsonMapper json = McpJsonDefaults.getMapper();

  private final ReentrantLock lock = new ReentrantLock();
  private Connection connection;
  private int starts;
  private int failuresInARow;
  private String lastError;
  private Instant retryAt;
  private boolean closed;

  private final Redactor redactor;
  private final ReentrantLock rateLock = new ReentrantLock();
  private final ArrayDeque<Instant> recentCalls = new ArrayDeque<>();

  Upstream(
      McpServerDescriptor descriptor,
      Map<String, String> environment,
      Map<String, String> headers,
      Path workingDirectory,
      GatewaySettings settings,
      Clock clock,
      Consumer<List<McpSchema.Tool>> onListed,
      Runnable onListChanged,
      Redactor redactor) {
    this.redactor = redactor;
    this.descriptor = descriptor;
    this.environment = Map.copyOf(environment);
    this.headers = Map.copyOf(headers);
    this.workingDirectory = workingDirectory;
    this.timeout = descriptor.spec().timeout().orElse(settings.defaultTimeout());
    this.maxOutputBytes = descriptor.spec().maxOutputBytes().orElse(settings.defaultMaxOutputBytes());
    this.settings = settings;
    this.clock = clock;
    this.onListed = onListed;
    this.onListChanged = onListChanged;
  }

  String name() {
    return descriptor.metadata().name();
  }

  /** {@code text} with this server's secrets masked. */
  String redact(String text) {
    return redactor.apply(text);
  }

  /** A result with this server's secrets masked in its text and structured content. */
  CallResult redact(CallResult r) {
    return new CallResult(redactor.apply(r.text()), r.error(), r.structuredContent().map(redactor::apply));
  }

  McpServerDescriptor descriptor() {
    return descriptor;
  }

  /** Whether it can be started now (it is not backing off and not closed). */
  boolean startable() {
    lock.lock();
    try {
      return !closed && (retryAt == null || !clock.instant().isBefore(retryAt));
    } finally {
      lock.unlock();
    }
  }

  boolean connected() {
    lock.lock();
    try {
      return connection != null;
    } finally {
      lock.unlock();
    }
  }

  ServerStatus status(List<String> problems) {
    lock.lock();
    try {
      return new ServerStatus(
          name(), descriptor.spec().transport(), connection != null, starts, failuresInARow,
          Optional.ofNullable(lastError), Optional.ofNullable(retryAt), problems);
    } finally {
      lock.unlock();
    }
  }

  /** Lists the server's tools (starting it if needed) and hands them to the catalog. */
  void list() throws UpstreamException {
    boolean fresh = !connected();
    Connection c = connection();
    if (!fresh) {
      // a new connection has just listed its tools
      List<McpSchema.Tool> tools = await(c, c.client().listTools(), "the tools/list request").tools();
      onListed.accept(tools);
    }
  }

  /** Calls one tool; an answer the server gives (even {@code isError}) is a result, not a failure. */
  McpSchema.CallToolResult call(String tool, Map<String, Object> arguments, Map<String, Object> meta)
      throws UpstreamException {
    Connection c = connection();
    McpSchema.CallToolResult result =
        await(c, c.client().callTool(new McpSchema.CallToolRequest(tool, arguments, meta)), "the call of " + tool);
    succeeded();
    return result;
  }

  /**
   * Takes a call from the rate window, if the window has room.
   *
   * @return empty when the call may go ahead, else when the window has room again
   */
  Optional<Instant> takeRate() {
    Optional<Integer> limit = descriptor.spec().callsPerMinute();
    if (limit.isEmpty()) {
      return Optional.empty();
    }
    Instant now = clock.instant();
    rateLock.lock();
    try {
      Instant windowStart = now.minus(Duration.ofMinutes(1));
      while (!recentCalls.isEmpty() && !recentCalls.peekFirst().isAfter(windowStart)) {
        recentCalls.removeFirst();
      }
      if (recentCalls.size() >= limit.get()) {
        return Optional.of(recentCalls.peekFirst().plus(Duration.ofMinutes(1)));
      }
      recentCalls.addLast(now);
      return Optional.empty();
    } finally {
      rateLock.unlock();
    }
  }

  /** The open connection, or a new one (initialized and listed) when none is open and none is backing off. */
  private Connection connection() throws UpstreamException {
    lock.lock();
    try {
      if (closed) {
        throw new UpstreamException("MCP server \"" + name() + "\" was removed from the gateway");
      }
      if (connection != null) {
        return connection;
      }
      Instant now = clock.instant();
      if (retryAt != null && now.isBefore(retryAt)) {
        throw new UpstreamException(
            "MCP server \"" + name() + "\" failed (" + lastError + ") and is restarted with backoff; next start in "
                + Math.max(1, Duration.between(now, retryAt).toMillis()) + " ms");
      }
      starts++;
      CompletableFuture<String> broken = new CompletableFuture<>();
      McpClientTransport transport = transport(broken);
      McpAsyncClient client =
          McpClient.async(transport)
              // the gateway's own wait (await) ends first and says what happened; these are backstops
              .requestTimeout(timeout.plusSeconds(5))
              .initializationTimeout(timeout.plusSeconds(5))
              .clientInfo(new McpSchema.Implementation("keel-gateway", "1"))
              .toolsChangeConsumer(tools -> Mono.fromRunnable(onListChanged))
              .build();
      Connection c = new Connection(client, broken);
      connection = c;
      try {
        await(c, client.initialize(), "the initialize request");
        List<McpSchema.Tool> tools = await(c, client.listTools(), "the tools/list request").tools();
        LOG.info("MCP server {} started ({}; {} tools)", name(), descriptor.spec().transport(), tools.size());
        onListed.accept(tools);
      } catch (UpstreamException e) {
        throw e;
      } catch (RuntimeException e) {
        throw fail(c, "could not be started: " + e.getMessage());
      }
      return c;
    } finally {
      lock.unlock();
    }
  }

  private McpClientTransport transport(CompletableFuture<String> broken) {
    McpServerDescriptor.Spec spec = descriptor.spec();
    return switch (spec.transport()) {
      case "stdio" ->
          new ProcessTransport(name(), spec.command(), environment, workingDirectory, maxOutputBytes, json, broken::complete, redactor);
      case "streamable-http" -> {
        URI uri = URI.create(spec.url().orElseThrow());
        String base = uri.getScheme() + "://" + uri.getRawAuthority();
        String endpoint = uri.getRawPath() + (uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery());
        yield HttpClientStreamableHttpTransport.builder(base)
            .endpoint(endpoint.isEmpty() ? "/" : endpoint)
            .connectTimeout(timeout)
            .maxResponseSize(maxOutputBytes)
            .jsonMapper(json)
            .httpRequestCustomizer((builder, method, endpointUri, body, context) -> headers.forEach(builder::setHeader))
            .build();
      }
      default -> throw new IllegalStateException("unknown transport " + spec.transport());
    };
  }

  /**
   * Waits for a request's answer, its connection breaking, or the timeout, whichever is first. A
   * JSON-RPC error answer is rethrown as a result-level failure without restarting the server.
   */
  private <T> T await(Connection c, Mono<T> request, String what) throws UpstreamException {
    CompletableFuture<T> answer = request.toFuture();
    try {
      CompletableFuture.anyOf(answer, c.broken()).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      answer.cancel(true);
      throw fail(c, "did not answer " + what + " within " + timeout.toMillis() + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      answer.cancel(true);
      throw new UpstreamException("the call to MCP server \"" + name() + "\" was interrupted");
    } catch (ExecutionException e) {
      // one of them failed: looked at below
    }
    if (c.broken().isDone() && !answer.isDone()) {
      throw fail(c, c.broken().join());
    }
    try {
      T value = answer.join();
      if (value == null) {
        throw fail(c, "gave no answer to " + what);
      }
      return value;
    } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      if (cause instanceof McpError mcp && mcp.getJsonRpcError() != null) {
        McpSchema.JSONRPCResponse.JSONRPCError err = mcp.getJsonRpcError();
        throw new UpstreamException(
            "MCP server \"" + name() + "\" answered " + what + " with error " + err.code() + ": " + err.message());
      }
      String reason = c.broken().isDone() ? c.broken().join() : describe(cause);
      throw fail(c, "failed " + what + ": " + reason);
    }
  }

  private static String describe(Throwable t) {
    List<String> parts = new ArrayList<>();
    for (Throwable c = t; c != null && parts.size() < 3; c = c.getCause()) {
      String m = c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
      if (parts.isEmpty() || !parts.getLast().contains(m)) {
        parts.add(m);
      }
    }
    return String.join(": ", parts);
  }

  /** Records a failure of a connection: closes it and starts (or lengthens) the backoff. */
  private UpstreamException fail(Connection c, String why) {
    String reason = redactor.apply(why);
    lock.lock();
    try {
      if (connection == c) {
        connection = null;
        failuresInARow++;
        lastError = reason;
        long factor = 1L << Math.min(failuresInARow - 1, 20);
        Duration backoff = settings.firstBackoff().multipliedBy(factor);
        if (backoff.compareTo(settings.maxBackoff()) > 0) {
          backoff = settings.maxBackoff();
        }
        retryAt = clock.instant().plus(backoff);
        LOG.warn("MCP server {} failed ({}); restarting it in {} ms", name(), reason, backoff.toMillis());
        closeQuietly(c);
      }
    } finally {
      lock.unlock();
    }
    return new UpstreamException("MCP server \"" + name() + "\" " + reason);
  }

  private void succeeded() {
    lock.lock();
    try {
      failuresInARow = 0;
      retryAt = null;
    } finally {
      lock.unlock();
    }
  }

  private static void closeQuietly(Connection c) {
    try {
      c.client().close();
    } catch (RuntimeException e) {
      LOG.debug("closing an MCP client failed", e);
    }
  }

  /** Closes the connection (killing a child process); the upstream cannot be used after. */
  void close() {
    lock.lock();
    try {
      closed = true;
      if (connection != null) {
        Connection c = connection;
        connection = null;
        try {
          c.client().closeGracefully().block(Duration.ofSeconds(5));
        } catch (RuntimeException e) {
          LOG.debug("closing MCP server {} failed", name(), e);
          closeQuietly(c);
        }
      }
    } finally {
      lock.unlock();
    }
  }
}
