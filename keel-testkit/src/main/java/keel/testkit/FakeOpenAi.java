package keel.testkit;

import io.javalin.Javalin;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A fake OpenAI Chat Completions server on 127.0.0.1 that speaks the real wire format, for tests
 * and benchmarks.
 *
 * <p>It serves {@code POST /v1/chat/completions} (plain JSON and {@code text/event-stream} chunks
 * ending with {@code data: [DONE]}) and {@code GET /v1/models}. What it answers is decided by a
 * {@link Script}, {@link Script#toolLoop(String) the tool loop} by default; faults (latency, 429
 * with {@code Retry-After}, 5xx, hangs, malformed bodies, a different reported model) can be
 * injected. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeOpenAi implements AutoCloseable {

  /*
   * Design: one-shot faults sit in a FIFO queue; each request takes at most one, in arrival order,
   * so "the next N requests" is exact even under concurrency. Everything mutable is guarded by
   * `lock`, which is never held while a request sleeps or writes its response.
   */

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = 1000;

  /** The model name reported by {@code GET /v1/models} besides the models that were requested. */
  public static final String DEFAULT_MODEL = "gpt-4o-mini";

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final Pattern STEPS = Pattern.compile("steps=(\\d+)");

  private final Javalin app;
  private final CountDownLatch closing = new CountDownLatch(1);
  private final AtomicLong requestCount = new AtomicLong();
  private final AtomicLong responseIds = new AtomicLong();

  private final ReentrantLock lock = new ReentrantLock();
  // Guarded by lock: the script, the settings and faults below, and the recorded requests.
  private Script script = Script.toolLoop("time_now");
  private Duration latency = Duration.ZERO;
  private String reportedModel; // null: report the requested model
  private String expectedApiKey; // null: accept any key, or none
  private final Deque<Fault> faults = new ArrayDeque<>();
  private final Deque<ChatRequest> recorded = new ArrayDeque<>();

  private FakeOpenAi(int port) {
    this.app =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              cfg.routes.post("/v1/chat/completions", this::chatCompletions);
              cfg.routes.get("/v1/models", this::models);
            });
    app.start("127.0.0.1", port);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeOpenAi start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeOpenAi start(int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    return new FakeOpenAi(port);
  }

  /** The port the server listens on. */
  public int port() {
    return app.port();
  }

  /** The OpenAI base URL of this server, e.g. {@code http://127.0.0.1:41234/v1}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + port() + "/v1";
  }

  /** Replaces the script that answers requests. */
  public FakeOpenAi script(Script script) {
    Objects.requireNonNull(script, "script");
    return locked(() -> this.script = script);
  }

  /** Delays every response by {@code latency} before it is written. */
  public FakeOpenAi latency(Duration latency) {
    if (latency.isNegative()) {
      throw new IllegalArgumentException("latency cannot be negative, got " + latency);
    }
    return locked(() -> this.latency = latency);
  }

  /**
   * Reports {@code model} in every response instead of the requested model, as a provider whose
   * served version drifted from the pinned one would.
   */
  public FakeOpenAi reportModel(String model) {
    Objects.requireNonNull(model, "model");
    return locked(() -> this.reportedModel = model);
  }

  /** Answers 401 {@code invalid_api_key} to requests whose bearer token is not {@code apiKey}. */
  public FakeOpenAi requireApiKey(String apiKey) {
    Objects.requireNonNull(apiKey, "apiKey");
    return locked(() -> this.expectedApiKey = apiKey);
  }

  /** The next {@code n} requests answer 429 with {@code Retry-After: retryAfterSeconds}. */
  public FakeOpenAi rateLimitNext(int n, int retryAfterSeconds) {
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  /** The next {@code n} requests answer the HTTP error {@code status} (e.g. 500, 503, 400). */
  public FakeOpenAi failNext(int n, int status) {
    if (status < 400 || status > 599) {
      throw new IllegalArgumentException("status must be an HTTP error (400-599), got " + status);
    }
    return addFaults(n, new Fault.Status(status, -1));
  }

  /**
   * The next {@code n} requests hang for {@code duration} (or until {@link #close()}) before
   * answering normally; use a duration longer than the client's timeout.
   */
  public FakeOpenAi hangNext(int n, Duration duration) {
    return addFaults(n, new Fault.Hang(duration));
  }

  /**
   * The next {@code n} streamed requests send their first chunk, then stall for {@code duration} (or
   * until {@link #close()}) before finishing; a request that is not streamed hangs instead.
   */
  public FakeOpenAi stallStreamNext(int n, Duration duration) {
    return addFaults(n, new Fault.Stall(duration));
  }

  /** The next {@code n} requests answer 200 with a body that is not valid JSON. */
  public FakeOpenAi malformedNext(int n) {
    return addFaults(n, new Fault.Malformed());
  }

  /** Restores the default script and settings, drops pending faults and forgets requests. */
  public FakeOpenAi reset() {
    return locked(
        () -> {
          script = Script.toolLoop("time_now");
          latency = Duration.ZERO;
          reportedModel = null;
          expectedApiKey = null;
          faults.clear();
          recorded.clear();
          requestCount.set(0);
        });
  }

  /** The last requests received (at most {@value #RECORDED_LIMIT}), oldest first. */
  public List<ChatRequest> requests() {
    lock.lock();
    try {
      return List.copyOf(recorded);
    } finally {
      lock.unlock();
    }
  }

  /** The most recent request received. */
  public Optional<ChatRequest> lastRequest() {
    lock.lock();
    try {
      return Optional.ofNullable(recorded.peekLast());
    } finally {
      lock.unlock();
    }
  }

  /** How many chat completion requests were received since start (or the last reset). */
  public long requestCount() {
    return requestCount.get();
  }

  /** Stops the server; requests that hang are released first. */
  @Override
  public void close() {
    closing.countDown();
    app.stop();
  }

  private FakeOpenAi addFaults(int n, Fault fault) {
    if (n < 0) {
      throw new IllegalArgumentException("n cannot be negative, got " + n);
    }
    return locked(
        () -> {
          for (int i = 0; i < n; i++) {
            faults.addLast(fault);
          }
        });
  }

  private FakeOpenAi locked(Runnable action) {
    lock.lock();
    try {
      action.run();
    } finally {
      lock.unlock();
    }
    return this;
  }

  // ---------------------------------------------------------------- handlers

  private void models(Context ctx) {
    ObjectNode body = JSON.createObjectNode();
    body.put("object", "list");
    ArrayNode data = body.putArray("data");
    List<String> names = new ArrayList<>();
    names.add(DEFAULT_MODEL);
    for (ChatRequest r : requests()) {
      if (!names.contains(r.model())) {
        names.add(r.model());
      }
    }
    for (String name : names) {
      ObjectNode m = data.addObject();
      m.put("id", name);
      m.put("object", "model");
      m.put("created", 1_700_000_000L);
      m.put("owned_by", "keel-testkit");
    }
    ctx.contentType("application/json").result(JSON.writeValueAsString(body));
  }

  private void chatCompletions(Context ctx) throws IOException, InterruptedException {
    requestCount.incrementAndGet();
    Script currentScript;
    Duration currentLatency;
    String currentReportedModel;
    String currentApiKey;
    Fault fault;
    lock.lock();
    try {
      currentScript = script;
      currentLatency = latency;
      currentReportedModel = reportedModel;
      currentApiKey = expectedApiKey;
      fault = faults.pollFirst();
    } finally {
      lock.unlock();
    }

    ChatRequest request;
    try {
      request = ChatRequest.parse(ctx.body());
    } catch (JacksonException | IllegalArgumentException e) {
      error(ctx, 400, "invalid_request_error", "invalid_request", "could not parse the request: " + e.getMessage(), -1);
      return;
    }
    lock.lock();
    try {
      recorded.addLast(request);
      while (recorded.size() > RECORDED_LIMIT) {
        recorded.removeFirst();
      }
    } finally {
      lock.unlock();
    }

    if (!currentLatency.isZero()) {
      closing.await(currentLatency.toMillis(), TimeUnit.MILLISECONDS);
    }
    if (currentApiKey != null
        && !("Bearer " + currentApiKey).equals(ctx.header("Authorization"))) {
      error(ctx, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.", -1);
      return;
    }
    if (fault != null) {
      switch (fault) {
        case Fault.Status s -> {
          if (s.status() == 429) {
            error(ctx, 429, "requests", "rate_limit_exceeded", "Rate limit reached for requests.", s.retryAfterSeconds());
          } else if (s.status() >= 500) {
            error(ctx, s.status(), "server_error", null, "The server had an error while processing your request.", -1);
          } else {
            error(ctx, s.status(), "invalid_request_error", null, "The request was rejected (injected fault).", -1);
          }
          return;
        }
        case Fault.Hang h -> closing.await(h.duration().toMillis(), TimeUnit.MILLISECONDS);
        case Fault.Stall st -> {
          if (!request.stream()) {
            closing.await(st.duration().toMillis(), TimeUnit.MILLISECONDS);
          }
        }
        case Fault.Malformed m -> {
          if (request.stream()) {
            ctx.res().setContentType("text/event-stream");
            OutputStream out = ctx.res().getOutputStream();
            out.write("data: {\"id\": \"chatcmpl-broken\", \"choices\": [\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
          } else {
            ctx.contentType("application/json").result("{\"id\": \"chatcmpl-broken\", \"choices\": [");
          }
          return;
        }
      }
    }

    Reply reply;
    try {
      reply = currentScript.answer(request);
    } catch (RuntimeException e) {
      error(ctx, 500, "server_error", null, "the fake's script failed: " + e, -1);
      return;
    }
    String model = currentReportedModel != null ? currentReportedModel : request.model();
    String id = "chatcmpl-" + responseIds.incrementAndGet();
    long promptTokens = request.estimatedTokens();
    long completionTokens = reply.estimatedTokens();
    if (request.stream()) {
      Duration stall = fault instanceof Fault.Stall st ? st.duration() : Duration.ZERO;
      stream(ctx, request, reply, id, model, promptTokens, completionTokens, stall);
    } else {
      ObjectNode body = JSON.createObjectNode();
      body.put("id", id);
      body.put("object", "chat.completion");
      body.put("created", created());
      body.put("model", model);
      ObjectNode choice = body.putArray("choices").addObject();
      choice.put("index", 0);
      ObjectNode message = choice.putObject("message");
      message.put("role", "assistant");
      if (reply.text().isEmpty() && !reply.calls().isEmpty()) {
        message.putNull("content");
      } else {
        message.put("content", reply.text());
      }
      if (!reply.calls().isEmpty()) {
        ArrayNode calls = message.putArray("tool_calls");
        for (int i = 0; i < reply.calls().size(); i++) {
          Reply.Call c = reply.calls().get(i);
          ObjectNode call = calls.addObject();
          call.put("id", callId(id, i));
          call.put("type", "function");
          call.putObject("function").put("name", c.name()).put("arguments", c.arguments());
        }
      }
      choice.putNull("logprobs");
      choice.put("finish_reason", reply.calls().isEmpty() ? "stop" : "tool_calls");
      body.set("usage", usage(promptTokens, completionTokens, reply.cachedTokens()));
      ctx.contentType("application/json").result(JSON.writeValueAsString(body));
    }
  }

  private void stream(
      Context ctx,
      ChatRequest request,
      Reply reply,
      String id,
      String model,
      long promptTokens,
      long completionTokens,
      Duration stall)
      throws IOException, InterruptedException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    OutputStream out = ctx.res().getOutputStream();
    ObjectNode first = chunk(id, model);
    ObjectNode firstDelta = ((ObjectNode) first.get("choices").get(0)).putObject("delta");
    firstDelta.put("role", "assistant");
    firstDelta.put("content", "");
    send(out, first);
    if (!stall.isZero()) {
      closing.await(stall.toMillis(), TimeUnit.MILLISECONDS);
    }
    for (String piece : Reply.pieces(reply.text())) {
      ObjectNode c = chunk(id, model);
      ((ObjectNode) c.get("choices").get(0)).putObject("delta").put("content", piece);
      send(out, c);
    }
    for (int i = 0; i < reply.calls().size(); i++) {
      Reply.Call call = reply.calls().get(i);
      ObjectNode head = chunk(id, model);
      ObjectNode tc = ((ObjectNode) head.get("choices").get(0)).putObject("delta").putArray("tool_calls").addObject();
      tc.put("index", i);
      tc.put("id", callId(id, i));
      tc.put("type", "function");
      tc.putObject("function").put("name", call.name()).put("arguments", "");
      send(out, head);
      String args = call.arguments();
      int half = args.length() / 2;
      for (String part : new String[] {args.substring(0, half), args.substring(half)}) {
        if (part.isEmpty()) {
          continue;
        }
        ObjectNode more = chunk(id, model);
        ObjectNode t = ((ObjectNode) more.get("choices").get(0)).putObject("delta").putArray("tool_calls").addObject();
        t.put("index", i);
        t.putObject("function").put("arguments", part);
        send(out, more);
      }
    }
    ObjectNode last = chunk(id, model);
    ObjectNode lastChoice = (ObjectNode) last.get("choices").get(0);
    lastChoice.putObject("delta");
    lastChoice.put("finish_reason", reply.calls().isEmpty() ? "stop" : "tool_calls");
    send(out, last);
    if (request.includeUsage()) {
      ObjectNode u = JSON.createObjectNode();
      u.put("id", id);
      u.put("object", "chat.completion.chunk");
      u.put("created", created());
      u.put("model", model);
      u.putArray("choices");
      u.set("usage", usage(promptTokens, completionTokens, reply.cachedTokens()));
      send(out, u);
    }
    out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private static ObjectNode chunk(String id, String model) {
    ObjectNode c = JSON.createObjectNode();
    c.put("id", id);
    c.put("object", "chat.completion.chunk");
    c.put("created", created());
    c.put("model", model);
    ObjectNode choice = c.putArray("choices").addObject();
    choice.put("index", 0);
    choice.putNull("finish_reason");
    return c;
  }

  private static void send(OutputStream out, ObjectNode chunk) throws IOException {
    out.write(("data: " + JSON.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private static ObjectNode usage(long prompt, long completion, long cached) {
    ObjectNode u = JSON.createObjectNode();
    u.put("prompt_tokens", prompt);
    u.put("completion_tokens", completion);
    u.put("total_tokens", prompt + completion);
    u.putObject("prompt_tokens_details").put("cached_tokens", Math.min(cached, prompt));
    u.putObject("completion_tokens_details").put("reasoning_tokens", 0);
    return u;
  }

  private static void error(
      Context ctx, int status, String type, String code, String message, int retryAfterSeconds) {
    ObjectNode body = JSON.createObjectNode();
    ObjectNode error = body.putObject("error");
    error.put("message", message);
    error.put("type", type);
    error.putNull("param");
    if (code == null) {
      error.putNull("code");
    } else {
      error.put("code", code);
    }
    if (retryAfterSeconds >= 0) {
      ctx.header("Retry-After", Integer.toString(retryAfterSeconds));
    }
    ctx.status(status).contentType("application/json").result(JSON.writeValueAsString(body));
  }

  private static String callId(String responseId, int index) {
    return "call_" + responseId.substring("chatcmpl-".length()) + "_" + index;
  }

  private static long created() {
    return System.currentTimeMillis() / 1000;
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(ChatRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the tool messages since the last user message number fewer than
     * K, answer one call to {@code toolName} with arguments {@code {}}; then answer {@code done
     * after K steps}. K is read from {@code steps=K} in the last user message (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request -> {
        Matcher m = STEPS.matcher(request.lastUserText());
        int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
        if (request.toolMessagesSinceLastUser() < k) {
          return Reply.toolCall(toolName, "{}");
        }
        return Reply.text("done after " + k + " steps");
      };
    }
  }

  /**
   * The fake's answer: text, tool calls, or both, and how many prompt tokens to report as cached.
   *
   * @param text the assistant's text (may be empty)
   * @param calls the tool calls, in order
   * @param cachedTokens prompt tokens reported in {@code prompt_tokens_details.cached_tokens}
   *     (capped at the prompt tokens)
   */
  public record Reply(String text, List<Call> calls, long cachedTokens) {
    public Reply {
      Objects.requireNonNull(text, "text");
      calls = List.copyOf(calls);
      if (cachedTokens < 0) {
        throw new IllegalArgumentException("cachedTokens cannot be negative");
      }
    }

    /** A tool call: the function name and its arguments as JSON text. */
    public record Call(String name, String arguments) {
      public Call {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
      }
    }

    /** A text answer. */
    public static Reply text(String text) {
      return new Reply(text, List.of(), 0);
    }

    /** An answer that is one tool call. */
    public static Reply toolCall(String name, String arguments) {
      return new Reply("", List.of(new Call(name, arguments)), 0);
    }

    /** This reply, reporting {@code n} cached prompt tokens. */
    public Reply withCachedTokens(long n) {
      return new Reply(text, calls, n);
    }

    long estimatedTokens() {
      long chars = text.length();
      for (Call c : calls) {
        chars += c.name().length() + c.arguments().length();
      }
      return Math.max(1, (chars + 3) / 4);
    }

    /** Splits text into the pieces streamed as deltas: words with their following whitespace. */
    static List<String> pieces(String text) {
      List<String> pieces = new ArrayList<>();
      int start = 0;
      for (int i = 1; i <= text.length(); i++) {
        if (i == text.length()
            || (Character.isWhitespace(text.charAt(i - 1)) && !Character.isWhitespace(text.charAt(i)))) {
          pieces.add(text.substring(start, i));
          start = i;
        }
      }
      return pieces;
    }
  }

  /**
   * A chat completion request as received.
   *
   * @param model the requested model
   * @param messages the conversation, in order
   * @param tools the function names offered in {@code tools}
   * @param stream whether a streamed answer was asked for
   * @param includeUsage whether {@code stream_options.include_usage} was set
   * @param temperature the requested temperature, when set
   * @param json the whole request body as JSON text
   */
  public record ChatRequest(
      String model,
      List<WireMessage> messages,
      List<String> tools,
      boolean stream,
      boolean includeUsage,
      Optional<Double> temperature,
      String json) {
    public ChatRequest {
      Objects.requireNonNull(model, "model");
      messages = List.copyOf(messages);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(json, "json");
    }

    static ChatRequest parse(String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("model").isString()) {
        throw new IllegalArgumentException("\"model\" is missing");
      }
      if (!root.path("messages").isArray()) {
        throw new IllegalArgumentException("\"messages\" is missing");
      }
      List<WireMessage> messages = new ArrayList<>();
      for (JsonNode m : root.get("messages")) {
        List<WireToolCall> calls = new ArrayList<>();
        for (JsonNode c : m.path("tool_calls")) {
          calls.add(
              new WireToolCall(
                  c.path("id").asString(""),
                  c.path("function").path("name").asString(""),
                  c.path("function").path("arguments").asString("")));
        }
        messages.add(
            new WireMessage(
                m.path("role").asString(""),
                contentText(m.path("content")),
                calls,
                Optional.ofNullable(m.path("tool_call_id").isString() ? m.get("tool_call_id").asString() : null)));
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        tools.add(t.path("function").path("name").asString(""));
      }
      Optional<Double> temperature =
          root.path("temperature").isNumber()
              ? Optional.of(root.get("temperature").asDouble())
              : Optional.empty();
      return new ChatRequest(
          root.get("model").asString(),
          messages,
          tools,
          root.path("stream").asBoolean(false),
          root.path("stream_options").path("include_usage").asBoolean(false),
          temperature,
          body);
    }

    private static String contentText(JsonNode content) {
      if (content.isString()) {
        return content.asString();
      }
      if (content.isArray()) {
        StringBuilder sb = new StringBuilder();
        for (JsonNode part : content) {
          sb.append(part.path("text").asString(""));
        }
        return sb.toString();
      }
      return "";
    }

    /** The text of the last {@code user} message, or empty. */
    public String lastUserText() {
      for (int i = messages.size() - 1; i >= 0; i--) {
        if (messages.get(i).role().equals("user")) {
          return messages.get(i).content();
        }
      }
      return "";
    }

    /** How many {@code tool} messages follow the last {@code user} message. */
    public int toolMessagesSinceLastUser() {
      int n = 0;
      for (int i = messages.size() - 1; i >= 0; i--) {
        String role = messages.get(i).role();
        if (role.equals("user")) {
          break;
        }
        if (role.equals("tool")) {
          n++;
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = 0;
      for (WireMessage m : messages) {
        chars += m.content().length();
        for (WireToolCall c : m.toolCalls()) {
          chars += c.name().length() + c.arguments().length();
        }
      }
      return Math.max(1, (chars + 3) / 4);
    }
  }

  /**
   * One message of a received request.
   *
   * @param role {@code system}, {@code user}, {@code assistant} or {@code tool}
   * @param content the text content (parts concatenated; empty when null)
   * @param toolCalls an assistant's {@code tool_calls}
   * @param toolCallId a tool message's {@code tool_call_id}
   */
  public record WireMessage(
      String role, String content, List<WireToolCall> toolCalls, Optional<String> toolCallId) {
    public WireMessage {
      Objects.requireNonNull(role, "role");
      Objects.requireNonNull(content, "content");
      toolCalls = List.copyOf(toolCalls);
      Objects.requireNonNull(toolCallId, "toolCallId");
    }
  }

  /** One {@code tool_calls} entry of a received assistant message. */
  public record WireToolCall(String id, String name, String arguments) {
    public WireToolCall {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(arguments, "arguments");
    }
  }

  private sealed interface Fault {
    record Status(int status, int retryAfterSeconds) implements Fault {}

    record Hang(Duration duration) implements Fault {}

    record Malformed() implements Fault {}

    record Stall(Duration duration) implements Fault {}
  }

  // ---------------------------------------------------------------- command line

  /**
   * Starts a fake server and prints its base URL; it runs until the process is stopped.
   *
   * <p>Options: {@code --port N} (default 0, a free port), {@code --latency-ms N} (default 0),
   * {@code --tool NAME} (the tool loop's tool, default {@code time_now}).
   */
  public static void main(String[] args) throws InterruptedException {
    int port = 0;
    long latencyMs = 0;
    String tool = "time_now";
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (i + 1 >= args.length) {
        throw usage("option " + arg + " needs a value");
      }
      String value = args[++i];
      try {
        switch (arg) {
          case "--port" -> port = Integer.parseInt(value);
          case "--latency-ms" -> latencyMs = Long.parseLong(value);
          case "--tool" -> tool = value;
          default -> throw usage("unknown option " + arg);
        }
      } catch (NumberFormatException e) {
        throw usage("option " + arg + " expects a number, got \"" + value + "\"");
      }
    }
    FakeOpenAi fake = start(port).latency(Duration.ofMillis(latencyMs)).script(Script.toolLoop(tool));
    Runtime.getRuntime().addShutdownHook(new Thread(fake::close));
    System.out.println(fake.baseUrl());
    System.out.flush();
    new CountDownLatch(1).await();
  }

  private static IllegalArgumentException usage(String problem) {
    return new IllegalArgumentException(
        problem + "; usage: FakeOpenAi [--port N] [--latency-ms N] [--tool NAME]");
  }
}
