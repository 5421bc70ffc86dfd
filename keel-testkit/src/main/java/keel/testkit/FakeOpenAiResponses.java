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
 * A fake OpenAI Responses API server on 127.0.0.1 that speaks the real wire format, for tests and
 * benchmarks.
 *
 * <p>It serves {@code POST /v1/responses}: a plain {@code response} object, or with {@code "stream":
 * true} the typed server-sent events {@code response.created}, {@code response.in_progress}, {@code
 * response.output_item.added}, {@code response.content_part.added}, {@code
 * response.output_text.delta}/{@code .done}, {@code response.function_call_arguments.delta}/{@code
 * .done}, {@code response.output_item.done} and {@code response.completed}. Errors have OpenAI's
 * shape, {@code {"error": {"message", "type", "param", "code"}}}.
 *
 * <p>What it answers is decided by a {@link Script}, {@link Script#toolLoop(String) the tool loop}
 * by default; faults (latency, 429 with {@code Retry-After}, 5xx, hangs, stalled streams, malformed
 * bodies, a different reported model) can be injected. Token counts are deterministic: a quarter of
 * the characters, rounded up. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeOpenAiResponses implements AutoCloseable {

  /*
   * Design: as FakeOpenAi. One-shot faults sit in a FIFO queue; each request takes at most one, in
   * arrival order. Everything mutable is guarded by `lock`, which is never held while a request
   * sleeps or writes its response.
   */

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = 1000;

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
  private final Deque<ResponsesRequest> recorded = new ArrayDeque<>();

  private FakeOpenAiResponses(int port) {
    this.app =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              cfg.routes.post("/v1/responses", this::responses);
            });
    app.start("127.0.0.1", port);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeOpenAiResponses start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeOpenAiResponses start(int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    return new FakeOpenAiResponses(port);
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
  public FakeOpenAiResponses script(Script script) {
    Objects.requireNonNull(script, "script");
    return locked(() -> this.script = script);
  }

  /** Delays every response by {@code latency} before it is written. */
  public FakeOpenAiResponses latency(Duration latency) {
    if (latency.isNegative()) {
      throw new IllegalArgumentException("latency cannot be negative, got " + latency);
    }
    return locked(() -> this.latency = latency);
  }

  /** Reports {@code model} in every response instead of the requested model. */
  public FakeOpenAiResponses reportModel(String model) {
    Objects.requireNonNull(model, "model");
    return locked(() -> this.reportedModel = model);
  }

  /** Answers 401 {@code invalid_api_key} to requests whose bearer token is not {@code apiKey}. */
  public FakeOpenAiResponses requireApiKey(String apiKey) {
    Objects.requireNonNull(apiKey, "apiKey");
    return locked(() -> this.expectedApiKey = apiKey);
  }

  /** The next {@code n} requests answer 429 with {@code Retry-After: retryAfterSeconds}. */
  public FakeOpenAiResponses rateLimitNext(int n, int retryAfterSeconds) {
    if (retryAfterSeconds < 0) {
      throw new IllegalArgumentException("retryAfterSeconds cannot be negative, got " + retryAfterSeconds);
    }
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  /** The next {@code n} requests answer the HTTP error {@code status} (e.g. 500, 503, 400). */
  public FakeOpenAiResponses failNext(int n, int status) {
    if (status < 400 || status > 599) {
      throw new IllegalArgumentException("status must be an HTTP error (400-599), got " + status);
    }
    return addFaults(n, new Fault.Status(status, -1));
  }

  /**
   * The next {@code n} requests hang for {@code duration} (or until {@link #close()}) before
   * answering normally; use a duration longer than the client's timeout.
   */
  public FakeOpenAiResponses hangNext(int n, Duration duration) {
    return addFaults(n, new Fault.Hang(duration));
  }

  /**
   * The next {@code n} streamed requests send {@code response.created}, then stall for {@code
   * duration} (or until {@link #close()}) before finishing; a request that is not streamed hangs.
   */
  public FakeOpenAiResponses stallStreamNext(int n, Duration duration) {
    return addFaults(n, new Fault.Stall(duration));
  }

  /** The next {@code n} requests answer 200 with a body (or event) that is not valid JSON. */
  public FakeOpenAiResponses malformedNext(int n) {
    return addFaults(n, new Fault.Malformed());
  }

  /** Restores the default script and settings, drops pending faults and forgets requests. */
  public FakeOpenAiResponses reset() {
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
  public List<ResponsesRequest> requests() {
    lock.lock();
    try {
      return List.copyOf(recorded);
    } finally {
      lock.unlock();
    }
  }

  /** The most recent request received. */
  public Optional<ResponsesRequest> lastRequest() {
    lock.lock();
    try {
      return Optional.ofNullable(recorded.peekLast());
    } finally {
      lock.unlock();
    }
  }

  /** How many requests were received since start (or the last reset). */
  public long requestCount() {
    return requestCount.get();
  }

  /** Stops the server; requests that hang are released first. */
  @Override
  public void close() {
    closing.countDown();
    app.stop();
  }

  private FakeOpenAiResponses addFaults(int n, Fault fault) {
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

  private FakeOpenAiResponses locked(Runnable action) {
    lock.lock();
    try {
      action.run();
    } finally {
      lock.unlock();
    }
    return this;
  }

  // ---------------------------------------------------------------- handler

  private void responses(Context ctx) throws IOException, InterruptedException {
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

    ResponsesRequest request;
    try {
      request = ResponsesRequest.parse(ctx.body());
    } catch (JacksonException | IllegalArgumentException e) {
      error(ctx, 400, "invalid_request_error", null, "could not parse the request: " + e.getMessage(), -1);
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
    if (currentApiKey != null && !("Bearer " + currentApiKey).equals(ctx.header("Authorization"))) {
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
            out.write(
                "event: response.created\ndata: {\"type\": \"response.created\", \"response\": {\n\n"
                    .getBytes(StandardCharsets.UTF_8));
            out.flush();
          } else {
            ctx.contentType("application/json").result("{\"id\": \"resp_broken\", \"output\": [");
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
    long n = responseIds.incrementAndGet();
    Answer answer = new Answer("resp_fake" + n, n, model, request, reply, request.estimatedTokens(), reply.estimatedTokens());
    if (request.stream()) {
      Duration stall = fault instanceof Fault.Stall st ? st.duration() : Duration.ZERO;
      stream(ctx, answer, stall);
    } else {
      ctx.contentType("application/json").result(JSON.writeValueAsString(answer.response("completed", true)));
    }
  }

  /** One answer being written: its ids, and the response object in its states. */
  private record Answer(
      String id, long n, String model, ResponsesRequest request, Reply reply, long inputTokens, long outputTokens) {

    String messageId() {
      return "msg_fake" + n;
    }

    String itemId(int i) {
      return "fc_fake" + n + "_" + i;
    }

    String callId(int i) {
      return "call_fake" + n + "_" + i;
    }

    ObjectNode messageItem(String status, String text) {
      ObjectNode item = JSON.createObjectNode();
      item.put("id", messageId());
      item.put("type", "message");
      item.put("status", status);
      item.put("role", "assistant");
      ArrayNode content = item.putArray("content");
      if (text != null) {
        content.add(outputText(text));
      }
      return item;
    }

    ObjectNode callItem(int i, String status, String arguments) {
      Reply.Call call = reply.calls().get(i);
      ObjectNode item = JSON.createObjectNode();
      item.put("id", itemId(i));
      item.put("type", "function_call");
      item.put("status", status);
      item.put("arguments", arguments);
      item.put("call_id", callId(i));
      item.put("name", call.name());
      return item;
    }

    ObjectNode response(String status, boolean complete) {
      ObjectNode r = JSON.createObjectNode();
      r.put("id", id);
      r.put("object", "response");
      r.put("created_at", System.currentTimeMillis() / 1000);
      r.put("status", status);
      r.putNull("error");
      r.putNull("incomplete_details");
      request.instructions().ifPresentOrElse(i -> r.put("instructions", i), () -> r.putNull("instructions"));
      r.put("model", model);
      ArrayNode output = r.putArray("output");
      if (complete) {
        if (!reply.text().isEmpty()) {
          output.add(messageItem("completed", reply.text()));
        }
        for (int i = 0; i < reply.calls().size(); i++) {
          output.add(callItem(i, "completed", reply.calls().get(i).arguments()));
        }
      }
      r.put("parallel_tool_calls", true);
      request.temperature().ifPresentOrElse(t -> r.put("temperature", t), () -> r.put("temperature", 1.0));
      r.put("tool_choice", "auto");
      r.put("store", request.store().orElse(true));
      if (complete) {
        ObjectNode u = r.putObject("usage");
        u.put("input_tokens", inputTokens);
        u.putObject("input_tokens_details").put("cached_tokens", Math.min(reply.cachedTokens(), inputTokens));
        u.put("output_tokens", outputTokens);
        u.putObject("output_tokens_details").put("reasoning_tokens", 0);
        u.put("total_tokens", inputTokens + outputTokens);
      } else {
        r.putNull("usage");
      }
      return r;
    }
  }

  private static ObjectNode outputText(String text) {
    ObjectNode part = JSON.createObjectNode();
    part.put("type", "output_text");
    part.put("text", text);
    part.putArray("annotations");
    return part;
  }

  private void stream(Context ctx, Answer a, Duration stall) throws IOException, InterruptedException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    Events events = new Events(ctx.res().getOutputStream());
    events.send("response.created", e -> e.set("response", a.response("in_progress", false)));
    if (!stall.isZero()) {
      closing.await(stall.toMillis(), TimeUnit.MILLISECONDS);
    }
    events.send("response.in_progress", e -> e.set("response", a.response("in_progress", false)));
    int outputIndex = 0;
    Reply reply = a.reply();
    if (!reply.text().isEmpty()) {
      int index = outputIndex++;
      events.send("response.output_item.added", e -> e.put("output_index", index).set("item", a.messageItem("in_progress", null)));
      events.send(
          "response.content_part.added",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).set("part", outputText("")));
      for (String piece : Reply.pieces(reply.text())) {
        events.send(
            "response.output_text.delta",
            e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).put("delta", piece).putArray("logprobs"));
      }
      events.send(
          "response.output_text.done",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).put("text", reply.text()).putArray("logprobs"));
      events.send(
          "response.content_part.done",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).set("part", outputText(reply.text())));
      events.send("response.output_item.done", e -> e.put("output_index", index).set("item", a.messageItem("completed", reply.text())));
    }
    for (int i = 0; i < reply.calls().size(); i++) {
      int call = i;
      int index = outputIndex++;
      String args = reply.calls().get(i).arguments();
      events.send("response.output_item.added", e -> e.put("output_index", index).set("item", a.callItem(call, "in_progress", "")));
      int half = args.length() / 2;
      for (String part : new String[] {args.substring(0, half), args.substring(half)}) {
        if (!part.isEmpty()) {
          events.send(
              "response.function_call_arguments.delta",
              e -> e.put("item_id", a.itemId(call)).put("output_index", index).put("delta", part));
        }
      }
      events.send(
          "response.function_call_arguments.done",
          e -> e.put("item_id", a.itemId(call)).put("output_index", index).put("arguments", args));
      events.send("response.output_item.done", e -> e.put("output_index", index).set("item", a.callItem(call, "completed", args)));
    }
    events.send("response.completed", e -> e.set("response", a.response("completed", true)));
  }

  /** Writes typed events with increasing sequence numbers. */
  private static final class Events {
    private final OutputStream out;
    private int sequence;

    Events(OutputStream out) {
      this.out = out;
    }

    void send(String type, java.util.function.Consumer<ObjectNode> fill) throws IOException {
      ObjectNode e = JSON.createObjectNode();
      e.put("type", type);
      e.put("sequence_number", sequence++);
      fill.accept(e);
      out.write(("event: " + type + "\ndata: " + JSON.writeValueAsString(e) + "\n\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    }
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

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(ResponsesRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the {@code function_call_output} items since the last user
     * message number fewer than K, answer one call to {@code toolName} with arguments {@code {}};
     * then answer {@code done after K steps}. K is read from {@code steps=K} in the last user
     * message (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request -> {
        Matcher m = STEPS.matcher(request.lastUserText());
        int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
        if (request.functionOutputsSinceLastUser() < k) {
          return Reply.toolCall(toolName, "{}");
        }
        return Reply.text("done after " + k + " steps");
      };
    }
  }

  /**
   * The fake's answer: text, function calls, or both, and how many input tokens to report as
   * cached.
   *
   * @param text the assistant's text (may be empty)
   * @param calls the function calls, in order
   * @param cachedTokens input tokens reported in {@code usage.input_tokens_details.cached_tokens}
   *     (capped at the input tokens)
   */
  public record Reply(String text, List<Call> calls, long cachedTokens) {
    public Reply {
      Objects.requireNonNull(text, "text");
      calls = List.copyOf(calls);
      if (cachedTokens < 0) {
        throw new IllegalArgumentException("cachedTokens cannot be negative");
      }
    }

    /** A function call: the name and its arguments as JSON text. */
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

    /** An answer that is one function call. */
    public static Reply toolCall(String name, String arguments) {
      return new Reply("", List.of(new Call(name, arguments)), 0);
    }

    /** This reply, reporting {@code n} cached input tokens. */
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
   * A {@code POST /v1/responses} request as received.
   *
   * @param model the requested model
   * @param instructions {@code instructions}, when set
   * @param input the input items, in order ({@code input} given as a string is one user message)
   * @param tools the function names offered in {@code tools}
   * @param stream whether a streamed answer was asked for
   * @param temperature the requested temperature, when set
   * @param promptCacheKey {@code prompt_cache_key}, when set
   * @param store {@code store}, when set
   * @param json the whole request body as JSON text
   */
  public record ResponsesRequest(
      String model,
      Optional<String> instructions,
      List<InputItem> input,
      List<String> tools,
      boolean stream,
      Optional<Double> temperature,
      Optional<String> promptCacheKey,
      Optional<Boolean> store,
      String json) {
    public ResponsesRequest {
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(instructions, "instructions");
      input = List.copyOf(input);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(promptCacheKey, "promptCacheKey");
      Objects.requireNonNull(store, "store");
      Objects.requireNonNull(json, "json");
    }

    static ResponsesRequest parse(String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("model").isString()) {
        throw new IllegalArgumentException("\"model\" is missing");
      }
      JsonNode inputNode = root.path("input");
      List<InputItem> input = new ArrayList<>();
      if (inputNode.isString()) {
        input.add(new InputItem.Message("user", inputNode.asString()));
      } else if (inputNode.isArray()) {
        for (JsonNode item : inputNode) {
          input.add(InputItem.parse(item));
        }
      } else {
        throw new IllegalArgumentException("\"input\" must be a string or a list of items");
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        tools.add(t.path("name").asString(""));
      }
      return new ResponsesRequest(
          root.get("model").asString(),
          text(root, "instructions"),
          input,
          tools,
          root.path("stream").asBoolean(false),
          root.path("temperature").isNumber() ? Optional.of(root.get("temperature").asDouble()) : Optional.empty(),
          text(root, "prompt_cache_key"),
          root.path("store").isBoolean() ? Optional.of(root.get("store").asBoolean()) : Optional.empty(),
          body);
    }

    private static Optional<String> text(JsonNode node, String field) {
      return node.path(field).isString() ? Optional.of(node.get(field).asString()) : Optional.empty();
    }

    /** The text of the last {@code user} message, or empty. */
    public String lastUserText() {
      for (int i = input.size() - 1; i >= 0; i--) {
        if (input.get(i) instanceof InputItem.Message m && m.role().equals("user")) {
          return m.text();
        }
      }
      return "";
    }

    /** How many {@code function_call_output} items follow the last {@code user} message. */
    public int functionOutputsSinceLastUser() {
      int n = 0;
      for (int i = input.size() - 1; i >= 0; i--) {
        InputItem item = input.get(i);
        if (item instanceof InputItem.Message m && m.role().equals("user")) {
          break;
        }
        if (item instanceof InputItem.FunctionCallOutput) {
          n++;
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = instructions.map(String::length).orElse(0);
      for (InputItem item : input) {
        chars +=
            switch (item) {
              case InputItem.Message m -> m.text().length();
              case InputItem.FunctionCall c -> c.name().length() + c.arguments().length();
              case InputItem.FunctionCallOutput o -> o.output().length();
            };
      }
      return Math.max(1, (chars + 3) / 4);
    }
  }

  /** One item of a received request's {@code input}. */
  public sealed interface InputItem {

    /**
     * A message ({@code type: message}, or an item with a {@code role} and no type).
     *
     * @param role {@code system}, {@code developer}, {@code user} or {@code assistant}
     * @param text its text ({@code input_text}/{@code output_text} parts concatenated)
     */
    record Message(String role, String text) implements InputItem {
      public Message {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(text, "text");
      }
    }

    /** A {@code function_call} item the model made earlier. */
    record FunctionCall(String callId, String name, String arguments) implements InputItem {
      public FunctionCall {
        Objects.requireNonNull(callId, "callId");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
      }
    }

    /** A {@code function_call_output} item: a tool's result. */
    record FunctionCallOutput(String callId, String output) implements InputItem {
      public FunctionCallOutput {
        Objects.requireNonNull(callId, "callId");
        Objects.requireNonNull(output, "output");
      }
    }

    private static InputItem parse(JsonNode item) {
      String type = item.path("type").asString(item.has("role") ? "message" : "");
      return switch (type) {
        case "message" -> new Message(item.path("role").asString(""), contentText(item.path("content")));
        case "function_call" ->
            new FunctionCall(
                item.path("call_id").asString(""), item.path("name").asString(""), item.path("arguments").asString(""));
        case "function_call_output" ->
            new FunctionCallOutput(item.path("call_id").asString(""), contentText(item.path("output")));
        default -> throw new IllegalArgumentException("unsupported input item type \"" + type + "\"");
      };
    }

    private static String contentText(JsonNode content) {
      if (content.isString()) {
        return content.asString();
      }
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : content) {
        sb.append(part.path("text").asString(""));
      }
      return sb.toString();
    }
  }

  private sealed interface Fault {
    record Status(int status, int retryAfterSeconds) implements Fault {}

    record Hang(Duration duration) implements Fault {}

    record Malformed() implements Fault {}

    record Stall(Duration duration) implements Fault {}
  }
}
