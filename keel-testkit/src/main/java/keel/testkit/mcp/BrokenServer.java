package keel.testkit.mcp;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * An MCP server over stdio (newline-delimited JSON-RPC, written by hand so it can break the
 * protocol on purpose) that behaves well until a tool is called, and then misbehaves as its mode
 * says. Run it as a child process: {@code java -cp <classpath> keel.testkit.mcp.BrokenServer MODE}.
 *
 * <ul>
 *   <li>{@code ok}: answers every call properly;
 *   <li>{@code garbage}: answers a call with a line that is not JSON-RPC;
 *   <li>{@code huge}: answers a call with a 50 MB tool result;
 *   <li>{@code silent}: never answers a call;
 *   <li>{@code crash}: exits (code 3) in the middle of a call;
 *   <li>{@code changing}: after the first call, changes the schema of {@code echo}, drops {@code
 *       vanishing} and sends {@code notifications/tools/list_changed}.
 * </ul>
 *
 * <p>Its tools: {@code echo} (returns {@code message} as text and as structured content), {@code
 * whoami} (its environment variables and working directory), {@code vanishing}. When the variable
 * {@code BROKEN_RECORD} names a file, the {@code _meta} of every {@code tools/call} is appended to it
 * as one JSON line, so tests can see on the server's side what the gateway sent.
 */
public final class BrokenServer {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  private final String mode;
  private final PrintStream out;
  private final AtomicInteger calls = new AtomicInteger();
  private volatile boolean changed;

  private BrokenServer(String mode, PrintStream out) {
    this.mode = mode;
    this.out = out;
  }

  public static void main(String[] args) throws IOException {
    String mode = args.length == 0 ? "ok" : args[0].toLowerCase(Locale.ROOT);
    if (!List.of("ok", "garbage", "huge", "silent", "crash", "changing").contains(mode)) {
      System.err.println("unknown mode " + mode + "; expected ok, garbage, huge, silent, crash or changing");
      System.exit(2);
    }
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
    new BrokenServer(mode, out).serve(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
  }

  private void serve(BufferedReader in) throws IOException {
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      JsonNode msg = JSON.readTree(line);
      if (!msg.has("id") || !msg.has("method")) {
        continue; // a notification or a response
      }
      JsonNode id = msg.get("id");
      String method = msg.get("method").asString();
      switch (method) {
        case "initialize" -> {
          ObjectNode r = JSON.createObjectNode();
          r.put("protocolVersion", msg.path("params").path("protocolVersion").asString("2025-11-25"));
          r.putObject("capabilities").putObject("tools").put("listChanged", true);
          r.putObject("serverInfo").put("name", "broken-" + mode).put("version", "1");
          reply(id, r);
        }
        case "ping" -> reply(id, JSON.createObjectNode());
        case "tools/list" -> reply(id, toolList());
        case "tools/call" -> call(id, msg.path("params"));
        default -> {
          ObjectNode err = JSON.createObjectNode();
          err.put("jsonrpc", "2.0");
          err.set("id", id);
          err.putObject("error").put("code", -32601).put("message", "method not found: " + method);
          write(JSON.writeValueAsString(err));
        }
      }
    }
  }

  private ObjectNode toolList() {
    ObjectNode r = JSON.createObjectNode();
    ArrayNode tools = r.putArray("tools");
    ObjectNode echo = tools.addObject();
    echo.put("name", "echo");
    echo.put("description", "Echoes a message.");
    ObjectNode schema = echo.putObject("inputSchema");
    schema.put("type", "object");
    ObjectNode props = schema.putObject("properties");
    props.putObject("message").put("type", "string");
    if (changed) {
      props.putObject("loud").put("type", "boolean");
    }
    schema.putArray("required").add("message");
    ObjectNode output = echo.putObject("outputSchema");
    output.put("type", "object");
    output.putObject("properties").putObject("echoed").put("type", "string");
    ObjectNode whoami = tools.addObject();
    whoami.put("name", "whoami");
    whoami.put("description", "Tells its environment variables and working directory.");
    whoami.putObject("inputSchema").put("type", "object");
    if (!changed) {
      ObjectNode vanishing = tools.addObject();
      vanishing.put("name", "vanishing");
      vanishing.put("description", "Disappears when the tool list changes.");
      vanishing.putObject("inputSchema").put("type", "object");
    }
    return r;
  }

  private void call(JsonNode id, JsonNode params) throws IOException {
    record(params.path("_meta"));
    int n = calls.incrementAndGet();
    switch (mode) {
      case "garbage" -> {
        write("<html>502 Bad Gateway</html> this is not JSON-RPC");
        return;
      }
      case "silent" -> {
        return;
      }
      case "crash" -> {
        System.err.println("broken server: crashing in the middle of call " + n
            + (System.getenv("DB_PASSWORD") == null ? "" : " (it was given DB_PASSWORD=" + System.getenv("DB_PASSWORD") + ")"));
        System.err.flush();
        out.print("{\"jsonrpc\":\"2.0\",\"id\":");
        out.flush();
        Runtime.getRuntime().halt(3);
      }
      case "huge" -> {
        ObjectNode r = JSON.createObjectNode();
        r.putArray("content").addObject().put("type", "text").put("text", "x".repeat(50 * 1024 * 1024));
        reply(id, r);
        return;
      }
      default -> {}
    }
    String tool = params.path("name").asString();
    ObjectNode r = JSON.createObjectNode();
    switch (tool) {
      case "echo" -> {
        String message = params.path("arguments").path("message").asString();
        r.putArray("content").addObject().put("type", "text").put("text", "{\"echoed\":" + JSON.writeValueAsString(message) + "}");
        r.putObject("structuredContent").put("echoed", message);
      }
      case "whoami" -> {
        ObjectNode who = JSON.createObjectNode();
        who.set("env", JSON.valueToTree(new TreeMap<>(System.getenv())));
        who.put("cwd", Path.of("").toAbsolutePath().toString());
        r.putArray("content").addObject().put("type", "text").put("text", JSON.writeValueAsString(who));
        r.set("structuredContent", who);
      }
      case "vanishing" -> r.putArray("content").addObject().put("type", "text").put("text", "still here");
      default -> {
        r.putArray("content").addObject().put("type", "text").put("text", "unknown tool " + tool);
        r.put("isError", true);
      }
    }
    reply(id, r);
    if (mode.equals("changing") && !changed) {
      changed = true;
      write("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
    }
  }

  private void record(JsonNode meta) throws IOException {
    String file = System.getenv("BROKEN_RECORD");
    if (file != null && !file.isEmpty()) {
      Files.writeString(Path.of(file), JSON.writeValueAsString(meta) + "\n", StandardCharsets.UTF_8,
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
  }

  private void reply(JsonNode id, JsonNode result) {
    ObjectNode r = JSON.createObjectNode();
    r.put("jsonrpc", "2.0");
    r.set("id", id);
    r.set("result", result);
    write(JSON.writeValueAsString(r));
  }

  private void write(String line) {
    out.print(line);
    out.print('\n');
    out.flush();
  }

  /** The command that runs this server in a mode, with the current JVM and class path. */
  public static List<String> command(String mode) {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return List.of(java, "-cp", System.getProperty("java.class.path"), BrokenServer.class.getName(), mode);
  }

}
