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
 * A fake Google AI Gemini API server on 127.0.0.1 that speaks the real wire format, for tests and
 * benchmarks.
 *
 * <p>It serves what LangChain4j's Gemini chat models call: {@code POST
 * /v1beta/models/{model}:generateContent} (one JSON answer) and {@code POST
 * /v1beta/models/{model}:streamGenerateContent?alt=sse} (server-sent events, one partial {@code
 * GenerateContentResponse} each), plus {@code GET /v1beta/models}. The key is read from the {@code
 * x-goog-api-key} header or the {@code key} query parameter. Errors have Google's shape, {@code
 * {"error": {"code", "message", "status"}}}, with the statuses the real service uses ({@code
 * RESOURCE_EXHAUSTED}, {@code INTERNAL}, {@code UNAVAILABLE}, {@code INVALID_ARGUMENT}, {@code
 * PERMISSION_DENIED}…); a 429 carries both a {@code Retry-After} header and a {@code RetryInfo}
 * detail.
 *
 * <p>What it answers is decided by a {@link Script}, {@link Script#toolLoop(String) the tool loop}
 * by default; faults (latency, 429, 5xx, hangs, stalled streams, malformed bodies, a different
 * reported {@code modelVersion}) can be injected. Token counts are deterministic: a quarter of the
 * characters, rounded up. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeGemini implements AutoCloseable {

  /*
   * Design: as FakeOpenAi. One-shot faults sit in a FIFO queue; each request takes at most one, in
   * arrival order. Everything mutable is guarded by `lock`, which is never held while a request
   * sleeps or writes its response.
   */

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = 1000;

  /** The model listed by {@code GET /v1beta/models} besides the models that were requested. */
  public static final String DEFAULT_MODEL = "gemini-2.0-flash";

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final Pattern STEPS = Pattern.compile("steps=(\\d+)");
  private static final Pattern CALL = Pattern.compile("(.+):(generateContent|streamGenerateContent)");

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
  private final Deque<GenerateRequest> recorded = new ArrayDeque<>();

  private FakeGemini(int port) {
    this.app =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              cfg.routes.post("/v1beta/models/{call}", this::generate);
              cfg.routes.get("/v1beta/models", this::models);
            });
    app.start("127.0.0.1", port);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeGemini start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeGemini start(int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    return new FakeGemini(port);
  }

  /** The port the server listens on. */
  public int port() {
    return app.port();
  }

  /** The Gemini base URL of this server, e.g. {@code http://127.0.0.1:41234/v1beta}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + port() + "/v1beta";
  }

  /** Replaces the script that answers requests. */
  public FakeGemini script(Script script) {
    Objects.requireNonNull(script, "script");
    return locked(() -> this.script = script);
  }

  /** Delays every response by {@code latency} before it is written. */
  public FakeGemini latency(Duration latency) {
    if (latency.isNegative()) {
      throw new IllegalArgumentException("latency cannot be negative, got " + latency);
    }
    return locked(() -> this.latency = latency);
  }

  /**
   * Reports {@code model} as {@code modelVersion} in every response instead of the requested model,
   * as a service whose served version drifted from the pinned one would.
   */
  public FakeGemini reportModel(String model) {
    Objects.requireNonNull(model, "model");
    return locked(() -> this.reportedModel = model);
  }

  /**
   * Answers requests whose key is not {@code apiKey} as the real service does: 400 {@code
   * INVALID_ARGUMENT} "API key not valid" for a wrong key, 403 {@code PERMISSION_DENIED} for none.
   */
  public FakeGemini requireApiKey(String apiKey) {
    Objects.requireNonNull(apiKey, "apiKey");
    return locked(() -> this.expectedApiKey = apiKey);
  }

  /**
   * The next {@code n} requests answer 429 {@code RESOURCE_EXHAUSTED} with {@code Retry-After:
   * retryAfterSeconds} and a {@code RetryInfo} detail of the same delay.
   */
  public FakeGemini rateLimitNext(int n, int retryAfterSeconds) {
    if (retryAfterSeconds < 0) {
      throw new IllegalArgumentException("retryAfterSeconds cannot be negative, got " + retryAfterSeconds);
    }
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  /** The next {@code n} requests answer the HTTP error {@code status} (e.g. 500, 503, 400, 403). */
  public FakeGemini failNext(int n, int status) {
    if (status < 400 || status > 599) {
      throw new IllegalArgumentException("status must be an HTTP error (400-599), got " + status);
    }
    return addFaults(n, new Fault.Status(status, -1));
  }

  /**
   * The next {@code n} requests hang for {@code duration} (or until {@link #close()}) before
   * answering normally; use a duration longer than the client's timeout.
   */
  public FakeGemini hangNext(int n, Duration duration) {
    return addFaults(n, new Fault.Hang(duration));
  }

  /**
   * The next {@code n} streamed requests send their first event, then stall for {@code duration}
   * (or until {@link #close()}) before finishing; a request that is not streamed hangs instead.
   */
  public FakeGemini stallStreamNext(int n, Duration duration) {
    return addFaults(n, new Fault.Stall(duration));
  }

  /** The next {@code n} requests answer 200 with a body (or event) that is not valid JSON. */
  public FakeGemini malformedNext(int n) {
    return addFaults(n, new Fault.Malformed());
  }

  /** Restores the default script and settings, drops pending faults and forgets requests. */
  public FakeGemini reset() {
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
  public List<GenerateRequest> requests() {
    lock.lock();
    try {
      return List.copyOf(recorded);
    } finally {
      lock.unlock();
    }
  }

  /** The most recent request received. */
  public Optional<GenerateRequest> lastRequest() {
    lock.lock();
    try {
      return Optional.ofNullable(recorded.peekLast());
    } finally {
      lock.unlock();
    }
  }

  /** How many generate requests were received since start (or the last reset). */
  public long requestCount() {
    return requestCount.get();
  }

  /** Stops the server; requests that hang are released first. */
  @Override
  public void close() {
    closing.countDown();
    app.stop();
  }

  private FakeGemini addFaults(int n, Fault fault) {
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

  private FakeGemini locked(Runnable action) {
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
    ArrayNode models = body.putArray("models");
    List<String> names = new ArrayList<>();
    names.add(DEFAULT_MODEL);
    for (GenerateRequest r : requests()) {
      if (!names.contains(r.model())) {
        names.add(r.model());
      }
    }
    for (String name : names) {
      ObjectNode m = models.addObject();
      m.put("name", "models/" + name);
      m.put("displayName", name);
      m.put("inputTokenLimit", 1_048_576);
      m.put("outputTokenLimit", 8192);
      m.putArray("supportedGenerationMethods").add("generateContent").add("countTokens");
    }
    ctx.contentType("application/json").result(JSON.writeValueAsString(body));
  }

  private void generate(Context ctx) throws IOException, InterruptedException {
    Matcher call = CALL.matcher(ctx.pathParam("call"));
    if (!call.matches()) {
      error(ctx, 404, "Method not found: " + ctx.pathParam("call"), -1);
      return;
    }
    requestCount.incrementAndGet();
    boolean stream = call.group(2).equals("streamGenerateContent");
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

    GenerateRequest request;
    try {
      request = GenerateRequest.parse(call.group(1), stream, ctx.body());
    } catch (JacksonException | IllegalArgumentException e) {
      error(ctx, 400, "Invalid JSON payload received. " + e.getMessage(), -1);
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
    if (currentApiKey != null) {
      String key = ctx.header("x-goog-api-key");
      if (key == null) {
        key = ctx.queryParam("key");
      }
      if (key == null) {
        error(ctx, 403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", -1);
        return;
      }
      if (!key.equals(currentApiKey)) {
        error(ctx, 400, "API key not valid. Please pass a valid API key.", -1);
        return;
      }
    }
    if (stream && !"sse".equals(ctx.queryParam("alt"))) {
      // Without alt=sse the real service streams one JSON array; LangChain4j always asks for SSE.
      error(ctx, 400, "This fake streams only with alt=sse.", -1);
      return;
    }
    if (fault != null) {
      switch (fault) {
        case Fault.Status s -> {
          error(ctx, s.status(), defaultMessage(s.status()), s.retryAfterSeconds());
          return;
        }
        case Fault.Hang h -> closing.await(h.duration().toMillis(), TimeUnit.MILLISECONDS);
        case Fault.Stall st -> {
          if (!stream) {
            closing.await(st.duration().toMillis(), TimeUnit.MILLISECONDS);
          }
        }
        case Fault.Malformed m -> {
          if (stream) {
            ctx.res().setContentType("text/event-stream");
            OutputStream out = ctx.res().getOutputStream();
            out.write("data: {\"candidates\": [{\"content\": \r\n\r\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
          } else {
            ctx.contentType("application/json").result("{\"candidates\": [{\"content\": ");
          }
          return;
        }
      }
    }

    Reply reply;
    try {
      reply = currentScript.answer(request);
    } catch (RuntimeException e) {
      error(ctx, 500, "the fake's script failed: " + e, -1);
      return;
    }
    String model = currentReportedModel != null ? currentReportedModel : request.model();
    String responseId = "fake-gemini-" + responseIds.incrementAndGet();
    long promptTokens = request.estimatedTokens();
    long outputTokens = reply.estimatedTokens();
    if (stream) {
      Duration stall = fault instanceof Fault.Stall st ? st.duration() : Duration.ZERO;
      stream(ctx, reply, responseId, model, promptTokens, outputTokens, stall);
    } else {
      ObjectNode body = JSON.createObjectNode();
      ObjectNode candidate = body.putArray("candidates").addObject();
      ObjectNode content = candidate.putObject("content");
      ArrayNode parts = content.putArray("parts");
      if (!reply.text().isEmpty()) {
        parts.addObject().put("text", reply.text());
      }
      for (Reply.Call c : reply.calls()) {
        parts.add(functionCallPart(c));
      }
      content.put("role", "model");
      candidate.put("finishReason", "STOP");
      candidate.put("index", 0);
      body.set("usageMetadata", usage(promptTokens, outputTokens, reply.cachedTokens()));
      body.put("modelVersion", model);
      body.put("responseId", responseId);
      ctx.contentType("application/json").result(JSON.writeValueAsString(body));
    }
  }

  private void stream(
      Context ctx,
      Reply reply,
      String responseId,
      String model,
      long promptTokens,
      long outputTokens,
      Duration stall)
      throws IOException, InterruptedException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    OutputStream out = ctx.res().getOutputStream();
    // Like the real service: text arrives in pieces, function calls whole, and the finishReason
    // and final usage ride on the last event.
    List<ObjectNode> events = new ArrayList<>();
    for (String piece : Reply.pieces(reply.text())) {
      ObjectNode part = JSON.createObjectNode().put("text", piece);
      events.add(event(List.of(part), responseId, model));
    }
    for (Reply.Call c : reply.calls()) {
      events.add(event(List.of(functionCallPart(c)), responseId, model));
    }
    if (events.isEmpty()) {
      events.add(event(List.of(JSON.createObjectNode().put("text", "")), responseId, model));
    }
    for (int i = 0; i < events.size(); i++) {
      ObjectNode e = events.get(i);
      boolean last = i == events.size() - 1;
      if (last) {
        ((ObjectNode) e.get("candidates").get(0)).put("finishReason", "STOP");
        e.set("usageMetadata", usage(promptTokens, outputTokens, reply.cachedTokens()));
      } else {
        e.set("usageMetadata", usage(promptTokens, 0, reply.cachedTokens()));
      }
      out.write(("data: " + JSON.writeValueAsString(e) + "\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
      if (i == 0 && !stall.isZero()) {
        closing.await(stall.toMillis(), TimeUnit.MILLISECONDS);
      }
    }
  }

  private static ObjectNode event(List<ObjectNode> parts, String responseId, String model) {
    ObjectNode e = JSON.createObjectNode();
    ObjectNode candidate = e.putArray("candidates").addObject();
    ObjectNode content = candidate.putObject("content");
    ArrayNode array = content.putArray("parts");
    parts.forEach(array::add);
    content.put("role", "model");
    candidate.put("index", 0);
    e.put("modelVersion", model);
    e.put("responseId", responseId);
    return e;
  }

  private static ObjectNode functionCallPart(Reply.Call c) {
    ObjectNode part = JSON.createObjectNode();
    ObjectNode call = part.putObject("functionCall");
    call.put("name", c.name());
    call.set("args", JSON.readTree(c.arguments()));
    return part;
  }

  private static ObjectNode usage(long prompt, long output, long cached) {
    ObjectNode u = JSON.createObjectNode();
    u.put("promptTokenCount", prompt);
    if (output > 0) {
      u.put("candidatesTokenCount", output);
    }
    u.put("totalTokenCount", prompt + output);
    if (cached > 0) {
      u.put("cachedContentTokenCount", Math.min(cached, prompt));
    }
    u.putArray("promptTokensDetails").addObject().put("modality", "TEXT").put("tokenCount", prompt);
    return u;
  }

  /** Google's canonical status name for an HTTP code, as the real service reports it. */
  static String googleStatus(int code) {
    return switch (code) {
      case 400 -> "INVALID_ARGUMENT";
      case 401 -> "UNAUTHENTICATED";
      case 403 -> "PERMISSION_DENIED";
      case 404 -> "NOT_FOUND";
      case 409 -> "ABORTED";
      case 429 -> "RESOURCE_EXHAUSTED";
      case 499 -> "CANCELLED";
      case 501 -> "UNIMPLEMENTED";
      case 503 -> "UNAVAILABLE";
      case 504 -> "DEADLINE_EXCEEDED";
      default -> code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    };
  }

  private static String defaultMessage(int code) {
    return switch (code) {
      case 429 -> "Resource has been exhausted (e.g. check quota).";
      case 503 -> "The model is overloaded. Please try again later.";
      case 504 -> "The request timed out. Please try again.";
      case 403 -> "The caller does not have permission (injected fault).";
      default ->
          code >= 500
              ? "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
              : "Request contains an invalid argument (injected fault).";
    };
  }

  private static void error(Context ctx, int code, String message, int retryAfterSeconds) {
    ObjectNode body = JSON.createObjectNode();
    ObjectNode error = body.putObject("error");
    error.put("code", code);
    error.put("message", message);
    error.put("status", googleStatus(code));
    if (retryAfterSeconds >= 0) {
      ctx.header("Retry-After", Integer.toString(retryAfterSeconds));
      error
          .putArray("details")
          .addObject()
          .put("@type", "type.googleapis.com/google.rpc.RetryInfo")
          .put("retryDelay", retryAfterSeconds + "s");
    }
    ctx.status(code).contentType("application/json").result(JSON.writeValueAsString(body));
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(GenerateRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the function responses since the last user text number fewer
     * than K, answer one call to {@code toolName} with arguments {@code {}}; then answer {@code done
     * after K steps}. K is read from {@code steps=K} in the last user text (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request -> {
        Matcher m = STEPS.matcher(request.lastUserText());
        int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
        if (request.functionResponsesSinceLastUserText() < k) {
          return Reply.toolCall(toolName, "{}");
        }
        return Reply.text("done after " + k + " steps");
      };
    }
  }

  /**
   * The fake's answer: text, function calls, or both, and how many prompt tokens to report as
   * cached.
   *
   * @param text the model's text (may be empty)
   * @param calls the function calls, in order
   * @param cachedTokens prompt tokens reported in {@code usageMetadata.cachedContentTokenCount}
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

    /** A function call: the name and its arguments as a JSON object's text. */
    public record Call(String name, String arguments) {
      public Call {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
        if (!JSON.readTree(arguments).isObject()) {
          throw new IllegalArgumentException("Gemini function call args must be a JSON object, got " + arguments);
        }
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

    /** Splits text into the pieces streamed as events: words with their following whitespace. */
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
   * A {@code generateContent} or {@code streamGenerateContent} request as received.
   *
   * @param model the model named in the path (without a {@code models/} prefix)
   * @param stream whether it came to {@code :streamGenerateContent}
   * @param systemInstruction the text of {@code systemInstruction}, when present
   * @param contents the conversation, in order
   * @param tools the function names declared in {@code tools[].functionDeclarations}
   * @param temperature {@code generationConfig.temperature}, when set
   * @param json the whole request body as JSON text
   */
  public record GenerateRequest(
      String model,
      boolean stream,
      Optional<String> systemInstruction,
      List<WireContent> contents,
      List<String> tools,
      Optional<Double> temperature,
      String json) {
    public GenerateRequest {
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(systemInstruction, "systemInstruction");
      contents = List.copyOf(contents);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(json, "json");
    }

    static GenerateRequest parse(String model, boolean stream, String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("contents").isArray() || root.get("contents").isEmpty()) {
        throw new IllegalArgumentException("* GenerateContentRequest.contents: contents is not specified");
      }
      List<WireContent> contents = new ArrayList<>();
      for (JsonNode c : root.get("contents")) {
        contents.add(WireContent.parse(c));
      }
      Optional<String> system = Optional.empty();
      if (root.path("systemInstruction").isObject()) {
        system = Optional.of(WireContent.parse(root.get("systemInstruction")).text());
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        for (JsonNode f : t.path("functionDeclarations")) {
          tools.add(f.path("name").asString(""));
        }
      }
      JsonNode temperature = root.path("generationConfig").path("temperature");
      return new GenerateRequest(
          model.startsWith("models/") ? model.substring("models/".length()) : model,
          stream,
          system,
          contents,
          tools,
          temperature.isNumber() ? Optional.of(temperature.asDouble()) : Optional.empty(),
          body);
    }

    /** The text of the last {@code user} content that has text, or empty. */
    public String lastUserText() {
      for (int i = contents.size() - 1; i >= 0; i--) {
        WireContent c = contents.get(i);
        if (c.role().equals("user") && c.hasText()) {
          return c.text();
        }
      }
      return "";
    }

    /** How many {@code functionResponse} parts follow the last user content that has text. */
    public int functionResponsesSinceLastUserText() {
      int n = 0;
      for (int i = contents.size() - 1; i >= 0; i--) {
        WireContent c = contents.get(i);
        if (c.role().equals("user") && c.hasText()) {
          break;
        }
        for (WirePart p : c.parts()) {
          if (p instanceof WirePart.FunctionResponse) {
            n++;
          }
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = systemInstruction.map(String::length).orElse(0);
      for (WireContent c : contents) {
        for (WirePart p : c.parts()) {
          chars +=
              switch (p) {
                case WirePart.Text t -> t.text().length();
                case WirePart.FunctionCall f -> f.name().length() + f.args().length();
                case WirePart.FunctionResponse f -> f.name().length() + f.response().length();
              };
        }
      }
      return Math.max(1, (chars + 3) / 4);
    }
  }

  /**
   * One {@code Content} of a received request.
   *
   * @param role {@code user}, {@code model}, or another role the client sent (empty when absent)
   * @param parts its parts, in order
   */
  public record WireContent(String role, List<WirePart> parts) {
    public WireContent {
      Objects.requireNonNull(role, "role");
      parts = List.copyOf(parts);
    }

    static WireContent parse(JsonNode c) {
      List<WirePart> parts = new ArrayList<>();
      for (JsonNode p : c.path("parts")) {
        if (p.has("functionCall")) {
          JsonNode f = p.get("functionCall");
          parts.add(
              new WirePart.FunctionCall(
                  optionalText(f, "id"), f.path("name").asString(""), JSON.writeValueAsString(f.path("args"))));
        } else if (p.has("functionResponse")) {
          JsonNode f = p.get("functionResponse");
          parts.add(
              new WirePart.FunctionResponse(
                  optionalText(f, "id"), f.path("name").asString(""), JSON.writeValueAsString(f.path("response"))));
        } else if (p.path("text").isString()) {
          parts.add(new WirePart.Text(p.get("text").asString()));
        }
      }
      return new WireContent(c.path("role").asString(""), parts);
    }

    private static Optional<String> optionalText(JsonNode node, String field) {
      return node.path(field).isString() ? Optional.of(node.get(field).asString()) : Optional.empty();
    }

    /** Whether any part is text. */
    public boolean hasText() {
      return parts.stream().anyMatch(p -> p instanceof WirePart.Text);
    }

    /** The text parts, concatenated. */
    public String text() {
      StringBuilder sb = new StringBuilder();
      for (WirePart p : parts) {
        if (p instanceof WirePart.Text t) {
          sb.append(t.text());
        }
      }
      return sb.toString();
    }
  }

  /** One part of a received {@link WireContent}: text, a function call, or a function response. */
  public sealed interface WirePart {

    /** A {@code text} part. */
    record Text(String text) implements WirePart {
      public Text {
        Objects.requireNonNull(text, "text");
      }
    }

    /** A {@code functionCall} part; {@code args} is the JSON text of its arguments object. */
    record FunctionCall(Optional<String> id, String name, String args) implements WirePart {
      public FunctionCall {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(args, "args");
      }
    }

    /** A {@code functionResponse} part; {@code response} is the JSON text of its response object. */
    record FunctionResponse(Optional<String> id, String name, String response) implements WirePart {
      public FunctionResponse {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(response, "response");
      }
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
    FakeGemini fake = start(port).latency(Duration.ofMillis(latencyMs)).script(Script.toolLoop(tool));
    Runtime.getRuntime().addShutdownHook(new Thread(fake::close));
    System.out.println(fake.baseUrl());
    System.out.flush();
    new CountDownLatch(1).await();
  }

  private static IllegalArgumentException usage(String problem) {
    return new IllegalArgumentException(
        problem + "; usage: FakeGemini [--port N] [--latency-ms N] [--tool NAME]");
  }
}
