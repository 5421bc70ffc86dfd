package keel.gateway;

import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.TypeRef;
import io.modelcontextprotocol.spec.McpClientTransport;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.JSONRPCMessage;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Schedulers;

/**
 * The stdio transport of an upstream MCP server: a child process speaking newline-delimited
 * JSON-RPC on its standard input and output.
 *
 * <p>Written here rather than taken from the SDK because the SDK's {@code StdioClientTransport}
 * starts the child with the whole parent environment (plus HOME, PATH, SHELL, TERM, USER), which
 * would hand every secret of the Keel server to every MCP server. This one starts the child with
 * exactly the environment it is given, in its own working directory, reads at most {@code
 * maxMessageBytes} per message, and reports the first thing that breaks the connection (an exit, a
 * line that is not JSON-RPC, an oversized message) to {@code onBroken} once; the process is then
 * killed, so every call in flight fails at once instead of waiting for its timeout.
 *
 * <p>Thread-safe: writes are serialized by {@link #writeLock}; one virtual thread reads stdout and
 * one drains stderr into a bounded tail kept for error messages.
 */
final class ProcessTransport implements McpClientTransport {

  private static final Logger LOG = LoggerFactory.getLogger(ProcessTransport.class);
  private static final int STDERR_LINES = 20;
  private static final int STDERR_LINE_CHARS = 500;

  private final Redactor redactor;
  private final String server;
  private final List<String> command;
  private final Map<String, String> environment;
  private final Path workingDirectory;
  private final int maxMessageBytes;
  private final McpJsonMapper json;
  private final Consumer<String> onBroken;

  /** Guards writes to the child's stdin. */
  private final ReentrantLock writeLock = new ReentrantLock();
  /** Guards {@link #stderrTail}. */
  private final ReentrantLock stderrLock = new ReentrantLock();
  private final ArrayDeque<String> stderrTail = new ArrayDeque<>();

  private volatile Process process;
  private volatile boolean closing;
  private volatile boolean broken;

  ProcessTransport(
      String server,
      List<String> command,
      Map<String, String> environment,
      Path workingDirectory,
      int maxMessageBytes,
      McpJsonMapper json,
      Consumer<String> onBroken,
      Redactor redactor) {
    this.redactor = redactor;
    this.server = server;
    this.command = List.copyOf(command);
    this.environment = Map.copyOf(environment);
    this.workingDirectory = workingDirectory;
    this.maxMessageBytes = maxMessageBytes;
    this.json = json;
    this.onBroken = onBroken;
  }

  @Override
  public Mono<Void> connect(Function<Mono<JSONRPCMessage>, Mono<JSONRPCMessage>> handler) {
    // started where it is subscribed (when the client is built), so the first message finds it running
    return Mono.fromRunnable(() -> start(handler));
  }

  private void start(Function<Mono<JSONRPCMessage>, Mono<JSONRPCMessage>> handler) {
    ProcessBuilder pb = new ProcessBuilder(command).directory(workingDirectory.toFile());
    pb.environment().clear();
    pb.environment().putAll(environment);
    try {
      process = pb.start();
    } catch (IOException e) {
      fail("could not be started with " + command + ": " + e.getMessage());
      return;
    }
    Process p = process;
    Thread.ofVirtual().name("mcp-" + server + "-out").start(() -> readMessages(p, handler));
    Thread.ofVirtual().name("mcp-" + server + "-err").start(() -> drainStderr(p));
  }

  private void readMessages(Process p, Function<Mono<JSONRPCMessage>, Mono<JSONRPCMessage>> handler) {
    try (InputStream in = new BufferedInputStream(p.getInputStream(), 1 << 16)) {
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      int b;
      while ((b = in.read()) != -1) {
        if (b == '\n') {
          String text = line.toString(StandardCharsets.UTF_8).strip();
          line.reset();
          if (text.isEmpty()) {
            continue;
          }
          JSONRPCMessage message;
          try {
            message = McpSchema.deserializeJsonRpcMessage(json, text);
          } catch (Exception e) {
            fail("answered with something that is not JSON-RPC: " + excerpt(redactor.apply(text)));
            return;
          }
          handler.apply(Mono.just(message)).subscribe(null, e -> LOG.debug("MCP server {}: handling a message failed", server, e));
        } else {
          if (line.size() >= maxMessageBytes) {
            fail("sent a message larger than its max_output_bytes (" + maxMessageBytes + " bytes)");
            return;
          }
          line.write(b);
        }
      }
      fail(exitDescription(p));
    } catch (IOException e) {
      fail("its output could not be read: " + e.getMessage());
    }
  }

  private String exitDescription(Process p) {
    try {
      if (p.waitFor(2, TimeUnit.SECONDS)) {
        String tail = stderrTail();
        return "exited with code " + p.exitValue() + (tail.isEmpty() ? "" : "; its last error output: " + tail);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return "closed its output";
  }

  private void drainStderr(Process p) {
    try (InputStream err = p.getErrorStream()) {
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      int b;
      while ((b = err.read()) != -1) {
        if (b == '\n') {
          remember(line.toString(StandardCharsets.UTF_8));
          line.reset();
        } else if (line.size() < STDERR_LINE_CHARS) {
          line.write(b);
        }
      }
      if (line.size() > 0) {
        remember(line.toString(StandardCharsets.UTF_8));
      }
    } catch (IOException e) {
      // the process is gone; what was read is kept
    }
  }

  private void remember(String raw) {
    // the server's secrets never reach a log, an error message or a model
    String line = redactor.apply(raw);
    LOG.debug("MCP server {} (stderr): {}", server, line);
    stderrLock.lock();
    try {
      if (stderrTail.size() == STDERR_LINES) {
        stderrTail.removeFirst();
      }
      stderrTail.addLast(line);
    } finally {
      stderrLock.unlock();
    }
  }

  /** The last lines the child wrote to stderr, joined with {@code " | "}. */
  String stderrTail() {
    stderrLock.lock();
    try {
      return String.join(" | ", stderrTail.stream().skip(Math.max(0, stderrTail.size() - 3)).toList());
    } finally {
      stderrLock.unlock();
    }
  }

  private void fail(String reason) {
    if (closing || broken) {
      return;
    }
    broken = true;
    try {
      onBroken.accept(reason);
    } finally {
      kill();
    }
  }

  private static String excerpt(String text) {
    String oneLine = text.replaceAll("\\s+", " ");
    return oneLine.length() <= 200 ? "\"" + oneLine + "\"" : "\"" + oneLine.substring(0, 200) + "…\" (" + text.length() + " characters)";
  }

  @Override
  public Mono<Void> sendMessage(JSONRPCMessage message) {
    return Mono.fromRunnable(() -> {
      Process p = process;
      if (p == null || broken || closing) {
        throw new IllegalStateException("MCP server \"" + server + "\" is not running" + (p == null ? " (it could not be started)" : ""));
      }
      try {
        byte[] bytes = (json.writeValueAsString(message).replace("\n", "\\n").replace("\r", "\\r") + "\n")
            .getBytes(StandardCharsets.UTF_8);
        writeLock.lock();
        try {
          OutputStream out = p.getOutputStream();
          out.write(bytes);
          out.flush();
        } finally {
          writeLock.unlock();
        }
      } catch (IOException e) {
        fail("stopped reading its input (" + e.getMessage() + ")");
        throw new IllegalStateException("MCP server \"" + server + "\" stopped reading its input", e);
      }
    });
  }

  @Override
  public Mono<Void> closeGracefully() {
    return Mono.fromRunnable(() -> {
      closing = true;
      kill();
    }).subscribeOn(Schedulers.boundedElastic()).then();
  }

  /** Kills the child and every process it started. */
  private void kill() {
    Process p = process;
    if (p == null) {
      return;
    }
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
  }

  /** Whether the child process is alive (for tests and status). */
  boolean alive() {
    Process p = process;
    return p != null && p.isAlive();
  }

  /** The child's process id, when it was started. */
  long pid() {
    Process p = process;
    return p == null ? -1 : p.pid();
  }

  @Override
  public <T> T unmarshalFrom(Object data, TypeRef<T> typeRef) {
    return json.convertValue(data, typeRef);
  }
}
