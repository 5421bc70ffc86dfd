package keel.testkit;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A fake Anthropic Messages API server on 127.0.0.1 that speaks the real wire format, for tests and
 * benchmarks.
 *
 * <p>It serves {@code POST /v1/messages}, as plain JSON or as the server-sent events {@code
 * message_start}, {@code content_block_start}, {@code content_block_delta} ({@code text_delta},
 * {@code input_json_delta}), {@code content_block_stop}, {@code message_delta} and {@code
 * message_stop}. Errors have Anthropic's shape {@code {"type": "error", "error": {"type", "message"}}}
 * and statuses ({@code rate_limit_error} 429 with {@code retry-after}, {@code overloaded_error} 529,
 * {@code api_error} 500, {@code invalid_request_error} 400, {@code authentication_error} 401).
 *
 * <p>What it answers is decided by a {@link Script}, {@link Script#toolLoop(String) the tool loop}
 * by default; faults (latency, 429, 5xx and 529, an error event in the middle of a stream, hangs,
 * streams that stall or are cut short, malformed bodies, a different reported model) can be
 * injected. It records the last {@value
 * #RECORDED_LIMIT} requests it received.
 *
 * <p>It simulates prompt caching: the request's prefix (tools, then system, then messages, block by
 * block) is hashed up to each {@code cache_control} marker. A marker whose prefix, or the prefix up
 * to one of the {@value #CACHE_LOOKBACK_BLOCKS} blocks before it, was written before is a cache read;
 * the tokens from there up to the last marker are a cache write; the rest are plain input. Token
 * counts are deterministic: about one token per four characters of content.
 *
 * <p>{@link #requireApiKey} compares the {@code x-api-key} header (a missing or different key is 401
 * {@code authentication_error}); {@link #failNext} answers Anthropic's error type for the status;
 * {@link #reset()} also forgets the cache and {@link #minimumCacheableTokens}.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults, records and cache
 * may be changed from a test while it runs.
 */
public final class FakeAnthropic
    extends FakeServer<FakeAnthropic, FakeAnthropic.MessagesRequest, FakeAnthropic.Script, FakeAnthropic.Reply> {

  /*
   * Design: the server, settings, faults and records are FakeServer's. The prompt cache is a bounded
   * LRU set of chained SHA-256 prefix hashes, guarded by FakeServer's lock like the rest.
   */

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = RECORD_LIMIT;

  /** How many cached prefixes the fake remembers; the least recently used are forgotten first. */
  public static final int CACHE_LIMIT = 10_000;

  /** How many blocks before a marker are checked for an earlier cache write, as Anthropic does. */
  public static final int CACHE_LOOKBACK_BLOCKS = 20;

  /** Most {@code cache_control} markers one request may carry, as the real API enforces. */
  public static final int MAX_CACHE_MARKERS = 4;

  // Guarded by FakeServer's lock.
  private long minimumCacheableTokens;
  private final Map<String, Boolean> cache =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
          return size() > CACHE_LIMIT;
        }
      };

  private FakeAnthropic() {
    super("/v1", () -> Script.toolLoop("time_now"), Script::answer);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeAnthropic start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeAnthropic start(int port) {
    return new FakeAnthropic().listen(port);
  }

  /**
   * Ignores cache markers whose prefix is shorter than {@code tokens}, as the real API does below
   * 1024 tokens (2048 for the smallest models). The default, 0, caches prefixes of any length.
   */
  public FakeAnthropic minimumCacheableTokens(long tokens) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens cannot be negative, got " + tokens);
    }
    return locked(() -> this.minimumCacheableTokens = tokens);
  }

  /** Forgets every cached prefix, as if the cache entries had expired. */
  public FakeAnthropic clearCache() {
    return locked(cache::clear);
  }

  /** The next {@code n} requests answer 529 {@code overloaded_error}. */
  public FakeAnthropic overloadNext(int n) {
    return addFaults(n, new Fault.Status(529, -1));
  }

  /**
   * The next {@code n} streamed requests start answering with 200, then send an {@code error} event
   * of type {@code overloaded_error} instead of content, as the real API does when it is overloaded
   * mid-stream; a request that is not streamed answers 529 instead.
   */
  public FakeAnthropic overloadMidStreamNext(int n) {
    return addFaults(n, new StreamError());
  }

  /**
   * The next {@code n} streamed requests send {@code message_start} and the first piece of text,
   * then end the stream without {@code message_stop}, as a dropped connection would; a request that
   * is not streamed gets its JSON body cut in the middle.
   */
  public FakeAnthropic cutStreamNext(int n) {
    return addFaults(n, new Cut());
  }

  // ---------------------------------------------------------------- wire format

  /** An error event in the middle of a stream ({@link #overloadMidStreamNext}). */
  private record StreamError() implements Fault {}

  /** A stream or body cut short ({@link #cutStreamNext}). */
  private record Cut() implements Fault {}

  @Override
  void routes(RoutesConfig routes) {
    routes.post(
        "/v1/messages",
        ctx ->
            serve(
                ctx,
                () ->
                    MessagesRequest.parse(
                        ctx.body(),
                        Optional.ofNullable(ctx.header("x-api-key")),
                        Optional.ofNullable(ctx.header("anthropic-version")).orElse(""))));
  }

  @Override
  Script textScript(String text) {
    return Script.text(text);
  }

  @Override
  Script toolLoopScript(String toolName) {
    return Script.toolLoop(toolName);
  }

  @Override
  boolean admit(Context ctx, MessagesRequest request, String expectedApiKey) {
    if (request.apiKey().isEmpty()) {
      error(ctx, 401, "x-api-key header is required", -1);
      return false;
    }
    if (expectedApiKey != null && !expectedApiKey.equals(request.apiKey().get())) {
      error(ctx, 401, "invalid x-api-key", -1);
      return false;
    }
    if (request.anthropicVersion().isEmpty()) {
      error(ctx, 400, "anthropic-version: header is required", -1);
      return false;
    }
    if (request.cacheMarkers() > MAX_CACHE_MARKERS) {
      error(
          ctx,
          400,
          "A maximum of " + MAX_CACHE_MARKERS + " blocks with cache_control may be provided. Found "
              + request.cacheMarkers() + ".",
          -1);
      return false;
    }
    return true;
  }

  @Override
  void rejectUnparsable(Context ctx, RuntimeException e) {
    String detail = e instanceof JacksonException j ? j.getOriginalMessage() : e.getMessage();
    error(ctx, 400, "could not parse the request: " + detail, -1);
  }

  @Override
  void writeStatusFault(Context ctx, int status, int retryAfterSeconds) {
    error(ctx, status, injectedMessage(status), retryAfterSeconds);
  }

  @Override
  void scriptFailed(Context ctx, RuntimeException e) {
    error(ctx, 500, "the fake's script failed: " + e, -1);
  }

  @Override
  String malformedEvent() {
    return "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_broken\", \n\n";
  }

  @Override
  String malformedBody() {
    return "{\"id\": \"msg_broken\", \"content\": [";
  }

  @Override
  boolean applyOtherFault(Context ctx, MessagesRequest request, Fault fault) {
    if (fault instanceof StreamError && !request.stream()) {
      error(ctx, 529, injectedMessage(529), -1);
      return false;
    }
    return true; // a cut, or an error event, is applied when the answer is written
  }

  @Override
  void resetMore() {
    minimumCacheableTokens = 0;
    cache.clear();
  }

  @Override
  void reply(Context ctx, Exchange<MessagesRequest, Reply> x) throws IOException, InterruptedException {
    MessagesRequest request = x.request();
    Reply reply = x.reply().limitedTo(request.maxTokens());
    String model = x.model();
    Fault fault = x.fault();
    String id = "msg_" + nextResponseId();
    CacheUsage usage = cacheUsage(request);
    if (request.stream()) {
      stream(ctx, reply, id, model, usage, x.stall(), fault);
    } else {
      ObjectNode body = JSON.createObjectNode();
      body.put("id", id);
      body.put("type", "message");
      body.put("role", "assistant");
      body.put("model", model);
      ArrayNode content = body.putArray("content");
      if (!reply.text().isEmpty()) {
        content.addObject().put("type", "text").put("text", reply.text());
      }
      for (int i = 0; i < reply.calls().size(); i++) {
        Reply.Call c = reply.calls().get(i);
        ObjectNode use = content.addObject();
        use.put("type", "tool_use");
        use.put("id", toolUseId(id, i));
        use.put("name", c.name());
        use.set("input", JSON.readTree(c.input()));
      }
      body.put("stop_reason", reply.stopReason().wire());
      body.putNull("stop_sequence");
      body.set("usage", usage.toJson(reply.estimatedTokens()));
      String json = JSON.writeValueAsString(body);
      ctx.contentType("application/json").result(fault instanceof Cut ? json.substring(0, json.length() / 2) : json);
    }
  }

  private void stream(
      Context ctx, Reply reply, String id, String model, CacheUsage usage, Duration stall, Fault fault)
      throws IOException, InterruptedException {
    OutputStream out = openStream(ctx);

    ObjectNode start = JSON.createObjectNode().put("type", "message_start");
    ObjectNode message = start.putObject("message");
    message.put("id", id);
    message.put("type", "message");
    message.put("role", "assistant");
    message.putArray("content");
    message.put("model", model);
    message.putNull("stop_reason");
    message.putNull("stop_sequence");
    message.set("usage", usage.toJson(1));
    send(out, "message_start", start);
    send(out, "ping", JSON.createObjectNode().put("type", "ping"));
    if (fault instanceof StreamError) {
      ObjectNode err = JSON.createObjectNode().put("type", "error");
      err.putObject("error").put("type", "overloaded_error").put("message", "Overloaded");
      send(out, "error", err);
      return;
    }
    pause(stall);

    int index = 0;
    if (!reply.text().isEmpty()) {
      ObjectNode blockStart = JSON.createObjectNode().put("type", "content_block_start").put("index", index);
      blockStart.putObject("content_block").put("type", "text").put("text", "");
      send(out, "content_block_start", blockStart);
      for (String piece : pieces(reply.text())) {
        ObjectNode delta = JSON.createObjectNode().put("type", "content_block_delta").put("index", index);
        delta.putObject("delta").put("type", "text_delta").put("text", piece);
        send(out, "content_block_delta", delta);
        if (fault instanceof Cut) {
          return;
        }
      }
      send(out, "content_block_stop", JSON.createObjectNode().put("type", "content_block_stop").put("index", index));
      index++;
    }
    for (int i = 0; i < reply.calls().size(); i++, index++) {
      Reply.Call call = reply.calls().get(i);
      ObjectNode blockStart = JSON.createObjectNode().put("type", "content_block_start").put("index", index);
      ObjectNode block = blockStart.putObject("content_block");
      block.put("type", "tool_use").put("id", toolUseId(id, i)).put("name", call.name());
      block.putObject("input");
      send(out, "content_block_start", blockStart);
      if (fault instanceof Cut) {
        return;
      }
      String input = call.input();
      int half = input.length() / 2;
      for (String part : new String[] {"", input.substring(0, half), input.substring(half)}) {
        ObjectNode delta = JSON.createObjectNode().put("type", "content_block_delta").put("index", index);
        delta.putObject("delta").put("type", "input_json_delta").put("partial_json", part);
        send(out, "content_block_delta", delta);
      }
      send(out, "content_block_stop", JSON.createObjectNode().put("type", "content_block_stop").put("index", index));
    }

    ObjectNode end = JSON.createObjectNode().put("type", "message_delta");
    end.putObject("delta").put("stop_reason", reply.stopReason().wire()).putNull("stop_sequence");
    end.putObject("usage").put("output_tokens", reply.estimatedTokens());
    send(out, "message_delta", end);
    send(out, "message_stop", JSON.createObjectNode().put("type", "message_stop"));
  }

  private static void send(OutputStream out, String event, ObjectNode data) throws IOException {
    write(out, "event: " + event + "\ndata: " + JSON.writeValueAsString(data) + "\n\n");
  }

  private static void error(Context ctx, int status, String message, int retryAfterSeconds) {
    ObjectNode body = JSON.createObjectNode();
    body.put("type", "error");
    body.putObject("error").put("type", errorType(status)).put("message", message);
    if (retryAfterSeconds >= 0) {
      ctx.header("retry-after", Integer.toString(retryAfterSeconds));
    }
    ctx.header("request-id", "req_fake_" + System.nanoTime());
    ctx.status(status).contentType("application/json").result(JSON.writeValueAsString(body));
  }

  /** Anthropic's error type for an HTTP status. */
  static String errorType(int status) {
    return switch (status) {
      case 400 -> "invalid_request_error";
      case 401 -> "authentication_error";
      case 403 -> "permission_error";
      case 404 -> "not_found_error";
      case 413 -> "request_too_large";
      case 429 -> "rate_limit_error";
      case 529 -> "overloaded_error";
      default -> status >= 500 ? "api_error" : "invalid_request_error";
    };
  }

  private static String injectedMessage(int status) {
    return switch (status) {
      case 429 -> "Number of request tokens has exceeded your per-minute rate limit (injected fault).";
      case 529 -> "Overloaded";
      default -> status >= 500 ? "Internal server error (injected fault)." : "The request was rejected (injected fault).";
    };
  }

  private static String toolUseId(String messageId, int index) {
    return "toolu_" + messageId.substring("msg_".length()) + "_" + index;
  }

  // ---------------------------------------------------------------- prompt cache

  /** Token counts of one answered request's prompt. */
  private record CacheUsage(long input, long cacheWrite, long cacheRead) {
    ObjectNode toJson(long outputTokens) {
      ObjectNode u = JSON.createObjectNode();
      u.put("input_tokens", input);
      u.put("cache_creation_input_tokens", cacheWrite);
      u.put("cache_read_input_tokens", cacheRead);
      u.put("output_tokens", outputTokens);
      return u;
    }
  }

  private CacheUsage cacheUsage(MessagesRequest request) {
    List<PrefixBlock> blocks = request.prefixBlocks();
    long totalChars = 0;
    long[] prefixChars = new long[blocks.size()];
    String[] prefixHash = new String[blocks.size()];
    MessageDigest chain = sha256();
    chain.update(request.model().getBytes(StandardCharsets.UTF_8));
    byte[] previous = chain.digest();
    List<Integer> markers = new ArrayList<>();
    for (int i = 0; i < blocks.size(); i++) {
      PrefixBlock b = blocks.get(i);
      totalChars += b.chars();
      prefixChars[i] = totalChars;
      MessageDigest d = sha256();
      d.update(previous);
      d.update(b.canonical().getBytes(StandardCharsets.UTF_8));
      previous = d.digest();
      prefixHash[i] = HexFormat.of().formatHex(previous);
      if (b.cached()) {
        markers.add(i);
      }
    }
    long total = Math.max(1, tokens(totalChars));
    return underLock(() -> {
      int read = -1;
      int lastMarker = -1;
      for (int m : markers) {
        if (tokens(prefixChars[m]) < minimumCacheableTokens) {
          continue;
        }
        lastMarker = Math.max(lastMarker, m);
        for (int j = m; j >= 0 && j > m - CACHE_LOOKBACK_BLOCKS; j--) {
          if (cache.get(prefixHash[j]) != null) {
            read = Math.max(read, j);
            break;
          }
        }
      }
      long readTokens = read < 0 ? 0 : tokens(prefixChars[read]);
      long writeTokens = 0;
      if (lastMarker > read) {
        writeTokens = tokens(prefixChars[lastMarker]) - readTokens;
        for (int m : markers) {
          if (m > read && tokens(prefixChars[m]) >= minimumCacheableTokens) {
            cache.put(prefixHash[m], Boolean.TRUE);
          }
        }
      }
      return new CacheUsage(total - readTokens - writeTokens, writeTokens, readTokens);
    });
  }

  /** About one token per four characters, rounded up, so a prefix never counts more than the whole. */
  private static long tokens(long chars) {
    return (chars + 3) / 4;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  /**
   * One block of the cacheable prefix, in Anthropic's order (tools, system, messages).
   *
   * @param canonical its JSON with sorted keys and without {@code cache_control}, plus where it sits
   * @param chars how many characters of content it counts for
   * @param cached whether it carries a {@code cache_control} marker
   */
  private record PrefixBlock(String canonical, long chars, boolean cached) {}

  /** Writes {@code node} as JSON with object keys sorted, leaving out {@code cache_control} keys. */
  private static String canonical(JsonNode node) {
    StringBuilder sb = new StringBuilder();
    canonical(node, sb);
    return sb.toString();
  }

  private static void canonical(JsonNode node, StringBuilder sb) {
    if (node.isObject()) {
      TreeMap<String, JsonNode> sorted = new TreeMap<>();
      for (Map.Entry<String, JsonNode> e : node.properties()) {
        if (!e.getKey().equals("cache_control")) {
          sorted.put(e.getKey(), e.getValue());
        }
      }
      sb.append('{');
      boolean first = true;
      for (Map.Entry<String, JsonNode> e : sorted.entrySet()) {
        if (!first) {
          sb.append(',');
        }
        first = false;
        sb.append(JSON.writeValueAsString(e.getKey())).append(':');
        canonical(e.getValue(), sb);
      }
      sb.append('}');
    } else if (node.isArray()) {
      sb.append('[');
      for (int i = 0; i < node.size(); i++) {
        if (i > 0) {
          sb.append(',');
        }
        canonical(node.get(i), sb);
      }
      sb.append(']');
    } else {
      sb.append(JSON.writeValueAsString(node));
    }
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 {@code api_error} answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(MessagesRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script, as {@link FakeOpenAi.Script#toolLoop}: while the {@code tool_result}
     * blocks since the last user text number fewer than K, answer one {@code tool_use} of {@code
     * toolName} with input {@code {}}; then answer {@code done after K steps}. K is read from {@code
     * steps=K} in the last user text (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request ->
          toolLoopStep(
              request.lastUserText(), request.toolResultsSinceLastUserText(), toolName, Reply::toolCall, Reply::text);
    }
  }

  /** Why the fake's answer stopped, as {@code stop_reason}. */
  public enum StopReason {
    END_TURN("end_turn"),
    TOOL_USE("tool_use"),
    MAX_TOKENS("max_tokens");

    private final String wire;

    StopReason(String wire) {
      this.wire = wire;
    }

    /** The value on the wire. */
    public String wire() {
      return wire;
    }
  }

  /**
   * The fake's answer: text, tool calls, or both.
   *
   * @param text the assistant's text (may be empty)
   * @param calls the tool calls, in order
   * @param stopReason the {@code stop_reason} reported
   */
  public record Reply(String text, List<Call> calls, StopReason stopReason) {
    public Reply {
      Objects.requireNonNull(text, "text");
      calls = List.copyOf(calls);
      Objects.requireNonNull(stopReason, "stopReason");
    }

    /** A tool call: the tool name and its input as a JSON object text. */
    public record Call(String name, String input) {
      public Call {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(input, "input");
        JsonNode parsed;
        try {
          parsed = JSON.readTree(input);
        } catch (JacksonException e) {
          throw new IllegalArgumentException("tool call input is not JSON: " + e.getOriginalMessage());
        }
        if (!parsed.isObject()) {
          throw new IllegalArgumentException("tool call input must be a JSON object, got " + input);
        }
      }
    }

    /** A text answer ({@code end_turn}). */
    public static Reply text(String text) {
      return new Reply(text, List.of(), StopReason.END_TURN);
    }

    /** An answer that is one tool call ({@code tool_use}). */
    public static Reply toolCall(String name, String input) {
      return new Reply("", List.of(new Call(name, input)), StopReason.TOOL_USE);
    }

    /**
     * This reply cut to {@code maxTokens} output tokens, as the real API does: a longer reply keeps
     * its first {@code 4 * maxTokens} characters of text, drops its tool calls and stops with {@code
     * max_tokens}.
     */
    Reply limitedTo(int maxTokens) {
      if (estimatedTokens() <= maxTokens) {
        return this;
      }
      return new Reply(text.substring(0, Math.min(text.length(), 4 * maxTokens)), List.of(), StopReason.MAX_TOKENS);
    }

    long estimatedTokens() {
      long chars = text.length();
      for (Call c : calls) {
        chars += c.name().length() + c.input().length();
      }
      return tokensFor(chars);
    }
  }

  /** One content block of a received request's system prompt or message. */
  public sealed interface Block {

    /** Whether the block carries {@code cache_control: {type: ephemeral}}. */
    boolean cached();

    /** A {@code text} block. */
    record Text(String text, boolean cached) implements Block {
      public Text {
        Objects.requireNonNull(text, "text");
      }
    }

    /** A {@code tool_use} block; {@code input} is the JSON object text. */
    record ToolUse(String id, String name, String input, boolean cached) implements Block {
      public ToolUse {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(input, "input");
      }
    }

    /** A {@code tool_result} block; {@code content} is its text (text parts concatenated). */
    record ToolResult(String toolUseId, String content, boolean isError, boolean cached) implements Block {
      public ToolResult {
        Objects.requireNonNull(toolUseId, "toolUseId");
        Objects.requireNonNull(content, "content");
      }
    }

    /** Any other block ({@code image}, {@code document}, …), as JSON text. */
    record Other(String type, String json, boolean cached) implements Block {
      public Other {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(json, "json");
      }
    }
  }

  /**
   * One message of a received request.
   *
   * @param role {@code user} or {@code assistant}
   * @param content its blocks (a string content is one text block)
   */
  public record WireMessage(String role, List<Block> content) {
    public WireMessage {
      Objects.requireNonNull(role, "role");
      content = List.copyOf(content);
    }

    /** The text of its text blocks, concatenated. */
    public String text() {
      StringBuilder sb = new StringBuilder();
      for (Block b : content) {
        if (b instanceof Block.Text t) {
          sb.append(t.text());
        }
      }
      return sb.toString();
    }
  }

  /**
   * One tool definition of a received request.
   *
   * @param name the tool's name
   * @param description its description (empty when absent)
   * @param inputSchema its {@code input_schema} as JSON text
   * @param cached whether it carries a {@code cache_control} marker
   */
  public record WireTool(String name, String description, String inputSchema, boolean cached) {
    public WireTool {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(description, "description");
      Objects.requireNonNull(inputSchema, "inputSchema");
    }
  }

  /**
   * A Messages API request as received.
   *
   * @param model the requested model
   * @param system the system prompt's blocks (a string system prompt is one text block)
   * @param messages the conversation, in order
   * @param tools the tool definitions, in order
   * @param maxTokens {@code max_tokens}
   * @param stream whether a streamed answer was asked for
   * @param temperature the requested temperature, when set
   * @param apiKey the {@code x-api-key} header, when sent
   * @param anthropicVersion the {@code anthropic-version} header (empty when absent)
   * @param json the whole request body as JSON text
   */
  public record MessagesRequest(
      String model,
      List<Block> system,
      List<WireMessage> messages,
      List<WireTool> tools,
      int maxTokens,
      boolean stream,
      Optional<Double> temperature,
      Optional<String> apiKey,
      String anthropicVersion,
      String json) implements FakeModelServer.Request {
    public MessagesRequest {
      Objects.requireNonNull(model, "model");
      system = List.copyOf(system);
      messages = List.copyOf(messages);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(apiKey, "apiKey");
      Objects.requireNonNull(anthropicVersion, "anthropicVersion");
      Objects.requireNonNull(json, "json");
    }

    static MessagesRequest parse(String body, Optional<String> apiKey, String anthropicVersion) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("model").isString()) {
        throw new IllegalArgumentException("model: Field required");
      }
      if (!root.path("max_tokens").isIntegralNumber() || root.get("max_tokens").asInt() < 1) {
        throw new IllegalArgumentException("max_tokens: Field required, a positive integer");
      }
      if (!root.path("messages").isArray() || root.get("messages").isEmpty()) {
        throw new IllegalArgumentException("messages: at least one message is required");
      }
      List<Block> system = new ArrayList<>();
      JsonNode sys = root.path("system");
      if (sys.isString()) {
        system.add(new Block.Text(sys.asString(), false));
      } else if (sys.isArray()) {
        int i = 0;
        for (JsonNode b : sys) {
          Block block = block(b, "system." + i++);
          if (!(block instanceof Block.Text)) {
            throw new IllegalArgumentException("system." + (i - 1) + ": system blocks must be text");
          }
          system.add(block);
        }
      } else if (!sys.isMissingNode() && !sys.isNull()) {
        throw new IllegalArgumentException("system: expected a string or a list of text blocks");
      }
      List<WireMessage> messages = new ArrayList<>();
      int mi = 0;
      for (JsonNode m : root.get("messages")) {
        String role = m.path("role").asString("");
        if (!role.equals("user") && !role.equals("assistant")) {
          throw new IllegalArgumentException(
              "messages." + mi + ".role: expected \"user\" or \"assistant\", got \"" + role + "\"");
        }
        List<Block> content = new ArrayList<>();
        JsonNode c = m.path("content");
        if (c.isString()) {
          content.add(new Block.Text(c.asString(), false));
        } else if (c.isArray()) {
          int bi = 0;
          for (JsonNode b : c) {
            content.add(block(b, "messages." + mi + ".content." + bi++));
          }
        } else {
          throw new IllegalArgumentException("messages." + mi + ".content: expected a string or a list of blocks");
        }
        messages.add(new WireMessage(role, content));
        mi++;
      }
      List<WireTool> tools = new ArrayList<>();
      int ti = 0;
      for (JsonNode t : root.path("tools")) {
        if (!t.path("name").isString()) {
          throw new IllegalArgumentException("tools." + ti + ".name: Field required");
        }
        // Server tools (web search…) have a "type" and no input_schema; client tools need one.
        if (!t.has("type") && !t.path("input_schema").isObject()) {
          throw new IllegalArgumentException("tools." + ti + ".input_schema: Field required");
        }
        tools.add(
            new WireTool(
                t.get("name").asString(),
                t.path("description").asString(""),
                t.has("input_schema") ? JSON.writeValueAsString(t.get("input_schema")) : "{}",
                marked(t, "tools." + ti)));
        ti++;
      }
      Optional<Double> temperature =
          root.path("temperature").isNumber() ? Optional.of(root.get("temperature").asDouble()) : Optional.empty();
      return new MessagesRequest(
          root.get("model").asString(),
          system,
          messages,
          tools,
          root.get("max_tokens").asInt(),
          root.path("stream").asBoolean(false),
          temperature,
          apiKey,
          anthropicVersion,
          body);
    }

    private static Block block(JsonNode b, String path) {
      String type = b.path("type").asString("");
      boolean cached = marked(b, path);
      return switch (type) {
        case "text" -> {
          if (!b.path("text").isString()) {
            throw new IllegalArgumentException(path + ".text: Field required");
          }
          yield new Block.Text(b.get("text").asString(), cached);
        }
        case "tool_use" -> {
          if (!b.path("id").isString() || !b.path("name").isString() || !b.path("input").isObject()) {
            throw new IllegalArgumentException(path + ": tool_use needs id, name and an input object");
          }
          yield new Block.ToolUse(
              b.get("id").asString(), b.get("name").asString(), JSON.writeValueAsString(b.get("input")), cached);
        }
        case "tool_result" -> {
          if (!b.path("tool_use_id").isString()) {
            throw new IllegalArgumentException(path + ".tool_use_id: Field required");
          }
          JsonNode content = b.path("content");
          String text;
          if (content.isString()) {
            text = content.asString();
          } else {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : content) {
              sb.append(part.path("text").asString(""));
            }
            text = sb.toString();
          }
          yield new Block.ToolResult(
              b.get("tool_use_id").asString(), text, b.path("is_error").asBoolean(false), cached);
        }
        case "" -> throw new IllegalArgumentException(path + ".type: Field required");
        default -> new Block.Other(type, JSON.writeValueAsString(b), cached);
      };
    }

    private static boolean marked(JsonNode node, String path) {
      JsonNode cc = node.get("cache_control");
      if (cc == null || cc.isNull()) {
        return false;
      }
      if (!cc.path("type").asString("").equals("ephemeral")) {
        throw new IllegalArgumentException(path + ".cache_control.type: expected \"ephemeral\"");
      }
      return true;
    }

    /** The text of the last user message that has text, or empty. */
    public String lastUserText() {
      for (int i = messages.size() - 1; i >= 0; i--) {
        WireMessage m = messages.get(i);
        if (m.role().equals("user") && m.content().stream().anyMatch(b -> b instanceof Block.Text)) {
          return m.text();
        }
      }
      return "";
    }

    /** How many {@code tool_result} blocks follow the last user message that has text. */
    public int toolResultsSinceLastUserText() {
      int n = 0;
      for (int i = messages.size() - 1; i >= 0; i--) {
        WireMessage m = messages.get(i);
        if (m.role().equals("user") && m.content().stream().anyMatch(b -> b instanceof Block.Text)) {
          break;
        }
        for (Block b : m.content()) {
          if (b instanceof Block.ToolResult) {
            n++;
          }
        }
      }
      return n;
    }

    /** How many blocks (tools, system blocks, message blocks) carry a {@code cache_control} marker. */
    public int cacheMarkers() {
      int n = 0;
      for (WireTool t : tools) {
        n += t.cached() ? 1 : 0;
      }
      for (Block b : system) {
        n += b.cached() ? 1 : 0;
      }
      for (WireMessage m : messages) {
        for (Block b : m.content()) {
          n += b.cached() ? 1 : 0;
        }
      }
      return n;
    }

    /** The cacheable prefix, block by block, from the raw JSON (so every field counts). */
    List<PrefixBlock> prefixBlocks() {
      JsonNode root = JSON.readTree(json);
      List<PrefixBlock> blocks = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        String canon = canonical(t);
        blocks.add(new PrefixBlock("tool:" + canon, canon.length(), t.hasNonNull("cache_control")));
      }
      JsonNode sys = root.path("system");
      if (sys.isString()) {
        blocks.add(new PrefixBlock("system:" + canonical(sys), sys.asString().length(), false));
      } else {
        for (JsonNode b : sys) {
          blocks.add(new PrefixBlock("system:" + canonical(b), b.path("text").asString("").length(), b.hasNonNull("cache_control")));
        }
      }
      for (JsonNode m : root.path("messages")) {
        String role = m.path("role").asString("");
        JsonNode c = m.path("content");
        if (c.isString()) {
          blocks.add(new PrefixBlock("message-start:" + role + ":" + canonical(c), c.asString().length(), false));
          continue;
        }
        boolean first = true;
        for (JsonNode b : c) {
          String where = (first ? "message-start:" : "message:") + role + ":";
          blocks.add(new PrefixBlock(where + canonical(b), contentChars(b), b.hasNonNull("cache_control")));
          first = false;
        }
      }
      return blocks;
    }

    private static long contentChars(JsonNode b) {
      return switch (b.path("type").asString("")) {
        case "text" -> b.path("text").asString("").length();
        case "tool_use" -> b.path("name").asString("").length() + JSON.writeValueAsString(b.path("input")).length();
        case "tool_result" -> {
          JsonNode content = b.path("content");
          if (content.isString()) {
            yield content.asString().length();
          }
          long n = 0;
          for (JsonNode part : content) {
            n += part.path("text").asString("").length();
          }
          yield n;
        }
        default -> canonical(b).length();
      };
    }
  }

  // ---------------------------------------------------------------- command line

  /**
   * Starts a fake server and prints its base URL; it runs until the process is stopped.
   *
   * <p>Options: {@code --port N} (default 0, a free port), {@code --latency-ms N} (default 0),
   * {@code --tool NAME} (the tool loop's tool, default {@code time_now}).
   */
  public static void main(String[] args) throws InterruptedException {
    runMain(args, "FakeAnthropic", (port, tool) -> start(port).script(Script.toolLoop(tool)));
  }
}
