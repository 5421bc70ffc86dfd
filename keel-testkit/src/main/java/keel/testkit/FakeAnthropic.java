package keel.testkit;

import io.javalin.Javalin;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
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
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults, records and cache
 * may be changed from a test while it runs.
 */
public final class FakeAnthropic implements AutoCloseable {

  /*
   * Design: mirrors FakeOpenAi. One-shot faults sit in a FIFO queue; each request takes at most
   * one, in arrival order, so "the next N requests" is exact even under concurrency. Everything
   * mutable is guarded by `lock`, which is never held while a request sleeps or writes its response.
   * The prompt cache is a bounded LRU set of chained SHA-256 prefix hashes.
   */

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = 1000;

  /** How many cached prefixes the fake remembers; the least recently used are forgotten first. */
  public static final int CACHE_LIMIT = 10_000;

  /** How many blocks before a marker are checked for an earlier cache write, as Anthropic does. */
  public static final int CACHE_LOOKBACK_BLOCKS = 20;

  /** Most {@code cache_control} markers one request may carry, as the real API enforces. */
  public static final int MAX_CACHE_MARKERS = 4;

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final Pattern STEPS = Pattern.compile("steps=(\\d+)");

  private final Javalin app;
  private final CountDownLatch closing = new CountDownLatch(1);
  private final AtomicLong requestCount = new AtomicLong();
  private final AtomicLong responseIds = new AtomicLong();

  private final ReentrantLock lock = new ReentrantLock();
  // Guarded by lock: the script, the settings and faults below, the recorded requests and the cache.
  private Script script = Script.toolLoop("time_now");
  private Duration latency = Duration.ZERO;
  private String reportedModel; // null: report the requested model
  private String expectedApiKey; // null: accept any key, or none
  private long minimumCacheableTokens;
  private final Deque<Fault> faults = new ArrayDeque<>();
  private final Deque<MessagesRequest> recorded = new ArrayDeque<>();
  private final Map<String, Boolean> cache =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
          return size() > CACHE_LIMIT;
        }
      };

  private FakeAnthropic(int port) {
    this.app =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              cfg.routes.post("/v1/messages", this::messages);
            });
    app.start("127.0.0.1", port);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeAnthropic start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeAnthropic start(int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    return new FakeAnthropic(port);
  }

  /** The port the server listens on. */
  public int port() {
    return app.port();
  }

  /** The Anthropic base URL of this server, e.g. {@code http://127.0.0.1:41234/v1}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + port() + "/v1";
  }

  /** Replaces the script that answers requests. */
  public FakeAnthropic script(Script script) {
    Objects.requireNonNull(script, "script");
    return locked(() -> this.script = script);
  }

  /** Delays every response by {@code latency} before it is written. */
  public FakeAnthropic latency(Duration latency) {
    if (latency.isNegative()) {
      throw new IllegalArgumentException("latency cannot be negative, got " + latency);
    }
    return locked(() -> this.latency = latency);
  }

  /**
   * Reports {@code model} in every response instead of the requested model, as a provider whose
   * served version drifted from the pinned one would.
   */
  public FakeAnthropic reportModel(String model) {
    Objects.requireNonNull(model, "model");
    return locked(() -> this.reportedModel = model);
  }

  /** Answers 401 {@code authentication_error} to requests whose {@code x-api-key} is not {@code apiKey}. */
  public FakeAnthropic requireApiKey(String apiKey) {
    Objects.requireNonNull(apiKey, "apiKey");
    return locked(() -> this.expectedApiKey = apiKey);
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

  /** The next {@code n} requests answer 429 {@code rate_limit_error} with {@code retry-after}. */
  public FakeAnthropic rateLimitNext(int n, int retryAfterSeconds) {
    if (retryAfterSeconds < 0) {
      throw new IllegalArgumentException("retryAfterSeconds cannot be negative, got " + retryAfterSeconds);
    }
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  /** The next {@code n} requests answer 529 {@code overloaded_error}. */
  public FakeAnthropic overloadNext(int n) {
    return addFaults(n, new Fault.Status(529, -1));
  }

  /**
   * The next {@code n} requests answer the HTTP error {@code status} with Anthropic's error type for
   * it (400 {@code invalid_request_error}, 401 {@code authentication_error}, 403 {@code
   * permission_error}, 404 {@code not_found_error}, 413 {@code request_too_large}, 429 {@code
   * rate_limit_error}, 529 {@code overloaded_error}, other 5xx {@code api_error}).
   */
  public FakeAnthropic failNext(int n, int status) {
    if (status < 400 || status > 599) {
      throw new IllegalArgumentException("status must be an HTTP error (400-599), got " + status);
    }
    return addFaults(n, new Fault.Status(status, -1));
  }

  /**
   * The next {@code n} streamed requests start answering with 200, then send an {@code error} event
   * of type {@code overloaded_error} instead of content, as the real API does when it is overloaded
   * mid-stream; a request that is not streamed answers 529 instead.
   */
  public FakeAnthropic overloadMidStreamNext(int n) {
    return addFaults(n, new Fault.StreamError());
  }

  /**
   * The next {@code n} requests hang for {@code duration} (or until {@link #close()}) before
   * answering normally; use a duration longer than the client's timeout.
   */
  public FakeAnthropic hangNext(int n, Duration duration) {
    return addFaults(n, new Fault.Hang(duration));
  }

  /**
   * The next {@code n} streamed requests send {@code message_start}, then stall for {@code duration}
   * (or until {@link #close()}) before finishing; a request that is not streamed hangs instead.
   */
  public FakeAnthropic stallStreamNext(int n, Duration duration) {
    return addFaults(n, new Fault.Stall(duration));
  }

  /**
   * The next {@code n} streamed requests send {@code message_start} and the first piece of text,
   * then end the stream without {@code message_stop}, as a dropped connection would; a request that
   * is not streamed gets its JSON body cut in the middle.
   */
  public FakeAnthropic cutStreamNext(int n) {
    return addFaults(n, new Fault.Cut());
  }

  /** The next {@code n} requests answer 200 with a body that is not valid JSON. */
  public FakeAnthropic malformedNext(int n) {
    return addFaults(n, new Fault.Malformed());
  }

  /** Restores the default script and settings, drops pending faults, forgets requests and the cache. */
  public FakeAnthropic reset() {
    return locked(
        () -> {
          script = Script.toolLoop("time_now");
          latency = Duration.ZERO;
          reportedModel = null;
          expectedApiKey = null;
          minimumCacheableTokens = 0;
          faults.clear();
          recorded.clear();
          cache.clear();
          requestCount.set(0);
        });
  }

  /** The last requests received (at most {@value #RECORDED_LIMIT}), oldest first. */
  public List<MessagesRequest> requests() {
    lock.lock();
    try {
      return List.copyOf(recorded);
    } finally {
      lock.unlock();
    }
  }

  /** The most recent request received. */
  public Optional<MessagesRequest> lastRequest() {
    lock.lock();
    try {
      return Optional.ofNullable(recorded.peekLast());
    } finally {
      lock.unlock();
    }
  }

  /** How many message requests were received since start (or the last reset). */
  public long requestCount() {
    return requestCount.get();
  }

  /** Stops the server; requests that hang are released first. */
  @Override
  public void close() {
    closing.countDown();
    app.stop();
  }

  private FakeAnthropic addFaults(int n, Fault fault) {
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

  private FakeAnthropic locked(Runnable action) {
    lock.lock();
    try {
      action.run();
    } finally {
      lock.unlock();
    }
    return this;
  }

  // ---------------------------------------------------------------- handler

  private void messages(Context ctx) throws IOException, InterruptedException {
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

    MessagesRequest request;
    try {
      request =
          MessagesRequest.parse(
              ctx.body(),
              Optional.ofNullable(ctx.header("x-api-key")),
              Optional.ofNullable(ctx.header("anthropic-version")).orElse(""));
    } catch (JacksonException | IllegalArgumentException e) {
      String detail = e instanceof JacksonException j ? j.getOriginalMessage() : e.getMessage();
      error(ctx, 400, "could not parse the request: " + detail, -1);
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
    if (request.apiKey().isEmpty()) {
      error(ctx, 401, "x-api-key header is required", -1);
      return;
    }
    if (currentApiKey != null && !currentApiKey.equals(request.apiKey().get())) {
      error(ctx, 401, "invalid x-api-key", -1);
      return;
    }
    if (request.anthropicVersion().isEmpty()) {
      error(ctx, 400, "anthropic-version: header is required", -1);
      return;
    }
    if (request.cacheMarkers() > MAX_CACHE_MARKERS) {
      error(
          ctx,
          400,
          "A maximum of " + MAX_CACHE_MARKERS + " blocks with cache_control may be provided. Found "
              + request.cacheMarkers() + ".",
          -1);
      return;
    }
    if (fault != null) {
      switch (fault) {
        case Fault.Status s -> {
          error(ctx, s.status(), injectedMessage(s.status()), s.retryAfterSeconds());
          return;
        }
        case Fault.Hang h -> closing.await(h.duration().toMillis(), TimeUnit.MILLISECONDS);
        case Fault.Stall st -> {
          if (!request.stream()) {
            closing.await(st.duration().toMillis(), TimeUnit.MILLISECONDS);
          }
        }
        case Fault.Cut c -> {
          // handled when the answer is written
        }
        case Fault.StreamError se -> {
          if (!request.stream()) {
            error(ctx, 529, injectedMessage(529), -1);
            return;
          }
        }
        case Fault.Malformed m -> {
          if (request.stream()) {
            ctx.res().setContentType("text/event-stream");
            OutputStream out = ctx.res().getOutputStream();
            out.write(
                "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_broken\", \n\n"
                    .getBytes(StandardCharsets.UTF_8));
            out.flush();
          } else {
            ctx.contentType("application/json").result("{\"id\": \"msg_broken\", \"content\": [");
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
    reply = reply.limitedTo(request.maxTokens());
    String model = currentReportedModel != null ? currentReportedModel : request.model();
    String id = "msg_" + responseIds.incrementAndGet();
    CacheUsage usage = cacheUsage(request);
    if (request.stream()) {
      Duration stall = fault instanceof Fault.Stall st ? st.duration() : Duration.ZERO;
      stream(ctx, reply, id, model, usage, stall, fault);
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
      ctx.contentType("application/json").result(fault instanceof Fault.Cut ? json.substring(0, json.length() / 2) : json);
    }
  }

  private void stream(
      Context ctx, Reply reply, String id, String model, CacheUsage usage, Duration stall, Fault fault)
      throws IOException, InterruptedException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    OutputStream out = ctx.res().getOutputStream();

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
    if (fault instanceof Fault.StreamError) {
      ObjectNode err = JSON.createObjectNode().put("type", "error");
      err.putObject("error").put("type", "overloaded_error").put("message", "Overloaded");
      send(out, "error", err);
      return;
    }
    if (!stall.isZero()) {
      closing.await(stall.toMillis(), TimeUnit.MILLISECONDS);
    }

    int index = 0;
    if (!reply.text().isEmpty()) {
      ObjectNode blockStart = JSON.createObjectNode().put("type", "content_block_start").put("index", index);
      blockStart.putObject("content_block").put("type", "text").put("text", "");
      send(out, "content_block_start", blockStart);
      for (String piece : Reply.pieces(reply.text())) {
        ObjectNode delta = JSON.createObjectNode().put("type", "content_block_delta").put("index", index);
        delta.putObject("delta").put("type", "text_delta").put("text", piece);
        send(out, "content_block_delta", delta);
        if (fault instanceof Fault.Cut) {
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
      if (fault instanceof Fault.Cut) {
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
    out.write(("event: " + event + "\ndata: " + JSON.writeValueAsString(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
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
    lock.lock();
    try {
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
    } finally {
      lock.unlock();
    }
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
      return request -> {
        Matcher m = STEPS.matcher(request.lastUserText());
        int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
        if (request.toolResultsSinceLastUserText() < k) {
          return Reply.toolCall(toolName, "{}");
        }
        return Reply.text("done after " + k + " steps");
      };
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
      return Math.max(1, (chars + 3) / 4);
    }

    /** Splits text into the pieces streamed as deltas: words with their following whitespace. */
    static List<String> pieces(String text) {
      return FakeServer.pieces(text);
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
      String json) {
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

  private sealed interface Fault {
    record Status(int status, int retryAfterSeconds) implements Fault {}

    record Hang(Duration duration) implements Fault {}

    record Malformed() implements Fault {}

    record Stall(Duration duration) implements Fault {}

    record StreamError() implements Fault {}

    record Cut() implements Fault {}
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
    FakeAnthropic fake = start(port).latency(Duration.ofMillis(latencyMs)).script(Script.toolLoop(tool));
    Runtime.getRuntime().addShutdownHook(new Thread(fake::close));
    System.out.println(fake.baseUrl());
    System.out.flush();
    new CountDownLatch(1).await();
  }

  private static IllegalArgumentException usage(String problem) {
    return new IllegalArgumentException(
        problem + "; usage: FakeAnthropic [--port N] [--latency-ms N] [--tool NAME]");
  }
}
