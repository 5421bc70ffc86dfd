package keel.testkit;

import io.javalin.Javalin;
import io.javalin.config.RoutesConfig;
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
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * What the fake model servers ({@link FakeOpenAi}, {@link FakeOpenAiResponses}, {@link
 * FakeAnthropic}, {@link FakeGemini}) share: the Javalin server on 127.0.0.1 and its lifecycle, the
 * settings and one-shot faults a test injects, the bounded record of received requests, and the
 * order in which a request is served.
 *
 * <p>A request handled by {@link #serve} is counted, parsed, recorded, delayed by the latency,
 * admitted (key and header checks), then meets its fault, if any, and is finally answered by the
 * script. A subclass supplies only its wire format:
 *
 * <ul>
 *   <li>its routes ({@link #routes}) and the parser each route hands to {@link #serve};
 *   <li>what a request says ({@link #requestedModel}, {@link #streamed}) and whether it is admitted
 *       ({@link #admit});
 *   <li>how an unparsable request, an injected HTTP error, a failing script and a malformed body are
 *       written in its provider's shape ({@link #rejectUnparsable}, {@link #writeStatusFault},
 *       {@link #scriptFailed}, {@link #malformedEvent}, {@link #malformedBody});
 *   <li>how a reply is rendered, plain or streamed ({@link #reply}); and, optionally, faults of its
 *       own ({@link #applyOtherFault}) and more state to forget on {@link #reset()} ({@link
 *       #resetMore}).
 * </ul>
 *
 * <p>Thread-safety: requests are served on virtual threads, and the script, settings, faults and
 * records may be changed from a test while the server runs. One-shot faults sit in a FIFO queue and
 * each request takes at most one, in arrival order, so "the next N requests" is exact even under
 * concurrency. Everything mutable is guarded by one lock (subclasses guard their own state with it
 * through {@link #locked} and {@link #underLock}), which is never held while a request sleeps or
 * writes its response; {@link #close()} releases requests that sleep.
 *
 * @param <S> the fake itself, which the fluent setters return
 * @param <Q> the request it records, as parsed from the wire
 * @param <C> its script, which decides the reply to a request
 * @param <R> the reply a script gives
 */
abstract class FakeServer<S extends FakeServer<S, Q, C, R>, Q extends FakeModelServer.Request, C, R>
    implements FakeModelServer {

  /** How many received requests are kept. */
  static final int RECORD_LIMIT = 1000;

  static final ObjectMapper JSON = JsonMapper.builder().build();

  private static final Pattern STEPS = Pattern.compile("steps=(\\d+)");

  private final String apiPath;
  private final Supplier<C> defaultScript;
  private final BiFunction<C, Q, R> answer;
  private final CountDownLatch closing = new CountDownLatch(1);
  private final AtomicLong requestCount = new AtomicLong();
  /** The W3C traceparent headers received, in arrival order (bounded like the request record). */
  private final java.util.concurrent.BlockingQueue<String> traceparents = new java.util.concurrent.LinkedBlockingQueue<>(RECORD_LIMIT);
  private final AtomicLong responseIds = new AtomicLong();
  private volatile Javalin app; // set once by listen, before the fake is handed out

  private final ReentrantLock lock = new ReentrantLock();
  // Guarded by lock: the script, the settings and faults below, and the recorded requests.
  private C script;
  private Duration latency = Duration.ZERO;
  private volatile boolean closeConnections;
  private String reportedModel; // null: report the requested model
  private String expectedApiKey; // null: accept any key, or none
  private final Deque<Fault> faults = new ArrayDeque<>();
  private final Deque<Q> recorded = new ArrayDeque<>();

  /**
   * @param apiPath the path of the API's base URL, e.g. {@code /v1}
   * @param defaultScript the script used at start and after {@link #reset()}
   * @param answer how a script answers a request
   */
  FakeServer(String apiPath, Supplier<C> defaultScript, BiFunction<C, Q, R> answer) {
    this.apiPath = apiPath;
    this.defaultScript = defaultScript;
    this.answer = answer;
    this.script = defaultScript.get();
  }

  /** Connections the listening socket queues before they are accepted (capped by the kernel's somaxconn). */
  static final int ACCEPT_QUEUE = 4096;

  /** Starts serving on 127.0.0.1 on {@code port} ({@code 0} for a free one). */
  final S listen(int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    Javalin server =
        Javalin.create(
            cfg -> {
              cfg.concurrency.useVirtualThreads = true;
              cfg.startup.showJavalinBanner = false;
              // Jetty's default accept queue (50) resets connections when a benchmark opens
              // thousands at once; a real provider's edge does not, so neither does the fake.
              cfg.jetty.addConnector((jetty, http) -> {
                ServerConnector connector = new ServerConnector(jetty, new HttpConnectionFactory(http));
                connector.setHost("127.0.0.1");
                connector.setPort(port);
                connector.setAcceptQueueSize(ACCEPT_QUEUE);
                return connector;
              });
              routes(cfg.routes);
            });
    server.start();
    app = server;
    return self();
  }

  // ---------------------------------------------------------------- public API

  /** The port the server listens on. */
  public int port() {
    return app.port();
  }

  /** The base URL of this server's API, e.g. {@code http://127.0.0.1:41234/v1}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + port() + apiPath;
  }

  /** Replaces the script that answers requests. */
  public S script(C script) {
    Objects.requireNonNull(script, "script");
    return locked(() -> this.script = script);
  }

  /**
   * Answers every request with {@code Connection: close} when set, so that clients open a new
   * connection for each call and keep no idle ones: for benchmarks that make thousands of calls at
   * once from one process, where pooled idle connections would hold that many file descriptors.
   */
  public S closeConnections(boolean close) {
    this.closeConnections = close;
    return self();
  }

  /** Delays every response by {@code latency} before it is written. */
  public S latency(Duration latency) {
    if (latency.isNegative()) {
      throw new IllegalArgumentException("latency cannot be negative, got " + latency);
    }
    return locked(() -> this.latency = latency);
  }

  /**
   * Reports {@code model} in every response instead of the requested model, as a provider whose
   * served version drifted from the pinned one would.
   */
  public S reportModel(String model) {
    Objects.requireNonNull(model, "model");
    return locked(() -> this.reportedModel = model);
  }

  /** Rejects, with the provider's authentication error, requests whose key is not {@code apiKey}. */
  public S requireApiKey(String apiKey) {
    Objects.requireNonNull(apiKey, "apiKey");
    return locked(() -> this.expectedApiKey = apiKey);
  }

  /** The next {@code n} requests answer 429, the provider's rate limit error, with a retry delay. */
  public S rateLimitNext(int n, int retryAfterSeconds) {
    if (retryAfterSeconds < 0) {
      throw new IllegalArgumentException("retryAfterSeconds cannot be negative, got " + retryAfterSeconds);
    }
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  /**
   * The next {@code n} requests answer the HTTP error {@code status} (e.g. 500, 503, 400), with the
   * provider's error for it.
   */
  public S failNext(int n, int status) {
    if (status < 400 || status > 599) {
      throw new IllegalArgumentException("status must be an HTTP error (400-599), got " + status);
    }
    return addFaults(n, new Fault.Status(status, -1));
  }

  /**
   * The next {@code n} requests hang for {@code duration} (or until {@link #close()}) before
   * answering normally; use a duration longer than the client's timeout.
   */
  public S hangNext(int n, Duration duration) {
    return addFaults(n, new Fault.Hang(duration));
  }

  /**
   * The next {@code n} streamed requests send their first event, then stall for {@code duration}
   * (or until {@link #close()}) before finishing; a request that is not streamed hangs instead.
   */
  public S stallStreamNext(int n, Duration duration) {
    return addFaults(n, new Fault.Stall(duration));
  }

  /** The next {@code n} requests answer 200 with a body (or event) that is not valid JSON. */
  public S malformedNext(int n) {
    return addFaults(n, new Fault.Malformed());
  }

  /** Restores the default script and settings, drops pending faults and forgets requests. */
  public S reset() {
    return locked(
        () -> {
          script = defaultScript.get();
          latency = Duration.ZERO;
          reportedModel = null;
          expectedApiKey = null;
          faults.clear();
          recorded.clear();
          requestCount.set(0);
          resetMore();
        });
  }

  /** The last requests received (at most {@value #RECORD_LIMIT}), oldest first. */
  @Override
  public S answerText(String text) {
    return script(textScript(text));
  }

  @Override
  public S answerToolLoop(String toolName) {
    return script(toolLoopScript(toolName));
  }

  @Override
  public Optional<Q> lastRecorded() {
    return lastRequest();
  }

  public List<Q> requests() {
    return underLock(() -> List.copyOf(recorded));
  }

  /** The most recent request received. */
  public Optional<Q> lastRequest() {
    return underLock(() -> Optional.ofNullable(recorded.peekLast()));
  }

  /** How many requests were received since start (or the last reset). */
  /** The {@code traceparent} headers requests carried, in arrival order (the first 1,000). */
  public List<String> traceparents() {
    return List.copyOf(traceparents);
  }

  public long requestCount() {
    return requestCount.get();
  }

  /** Stops the server; requests that hang are released first. */
  @Override
  public void close() {
    closing.countDown();
    app.stop();
  }

  // ---------------------------------------------------------------- for subclasses

  /** Queues {@code fault} for each of the next {@code n} requests. */
  final S addFaults(int n, Fault fault) {
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

  /** Runs {@code action} under the lock and returns this fake. */
  final S locked(Runnable action) {
    lock.lock();
    try {
      action.run();
    } finally {
      lock.unlock();
    }
    return self();
  }

  /** Computes {@code value} under the lock. */
  final <T> T underLock(Supplier<T> value) {
    lock.lock();
    try {
      return value.get();
    } finally {
      lock.unlock();
    }
  }

  /** A fresh number for a response id, 1 for the first. */
  final long nextResponseId() {
    return responseIds.incrementAndGet();
  }

  /** Sleeps for {@code duration}, or until {@link #close()}. */
  final void pause(Duration duration) throws InterruptedException {
    if (!duration.isZero()) {
      closing.await(duration.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  /** {@code defaultModel}, then every other model requested so far, in order of first request. */
  final List<String> modelNames(String defaultModel) {
    List<String> names = new ArrayList<>();
    names.add(defaultModel);
    for (Q r : requests()) {
      String model = r.model();
      if (!names.contains(model)) {
        names.add(model);
      }
    }
    return names;
  }

  /** Parses a received request; Jackson and argument errors mean the request is rejected. */
  @FunctionalInterface
  interface Parser<Q> {
    Q parse();
  }

  /**
   * Serves one model request: counts it, takes the settings and the next fault, parses and records
   * it, waits the latency, admits it, applies its fault, then asks the script and renders the reply.
   */
  final void serve(Context ctx, Parser<Q> parser) throws IOException, InterruptedException {
    requestCount.incrementAndGet();
    String traceparent = ctx.header("traceparent");
    if (traceparent != null) {
      // bounded: past RECORD_LIMIT the first ones are kept and the fake goes on answering (a
      // benchmark with tracing on sends many more requests than a test looks at)
      traceparents.offer(traceparent);
    }
    record Settings<C>(C script, Duration latency, String reportedModel, String apiKey, Fault fault) {}
    Settings<C> now =
        underLock(() -> new Settings<>(script, latency, reportedModel, expectedApiKey, faults.pollFirst()));

    Q request;
    try {
      request = parser.parse();
    } catch (JacksonException | IllegalArgumentException e) {
      rejectUnparsable(ctx, e);
      return;
    }
    locked(
        () -> {
          recorded.addLast(request);
          while (recorded.size() > RECORD_LIMIT) {
            recorded.removeFirst();
          }
        });

    pause(now.latency());
    if (closeConnections) {
      ctx.header("Connection", "close");
    }
    if (!admit(ctx, request, now.apiKey())) {
      return;
    }
    Fault fault = now.fault();
    if (fault != null) {
      switch (fault) {
        case Fault.Status s -> {
          writeStatusFault(ctx, s.status(), s.retryAfterSeconds());
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
            write(ctx.res().getOutputStream(), malformedEvent());
          } else {
            ctx.contentType("application/json").result(malformedBody());
          }
          return;
        }
        default -> {
          if (!applyOtherFault(ctx, request, fault)) {
            return;
          }
        }
      }
    }

    R reply;
    try {
      reply = answer.apply(now.script(), request);
    } catch (RuntimeException e) {
      scriptFailed(ctx, e);
      return;
    }
    String model = now.reportedModel() != null ? now.reportedModel() : request.model();
    reply(ctx, new Exchange<>(request, reply, model, fault));
  }

  // ---------------------------------------------------------------- what a subclass supplies

  /** Registers the routes; model requests are handed to {@link #serve}. */
  abstract void routes(RoutesConfig routes);





  /** This fake's script that always answers {@code text}. */
  abstract C textScript(String text);

  /** This fake's tool-loop script calling {@code toolName}. */
  abstract C toolLoopScript(String toolName);

  /**
   * Whether {@code request} is admitted: checks its key against {@code expectedApiKey} (null: any
   * key) and whatever headers or limits the provider enforces; when not, writes the error and answers
   * false.
   */
  abstract boolean admit(Context ctx, Q request, String expectedApiKey);

  /** Writes the error for a request that could not be parsed. */
  abstract void rejectUnparsable(Context ctx, RuntimeException e);

  /** Writes the provider's error for an injected HTTP {@code status} ({@code retryAfterSeconds} < 0: none). */
  abstract void writeStatusFault(Context ctx, int status, int retryAfterSeconds);

  /** Writes the error for a script that threw {@code e}. */
  abstract void scriptFailed(Context ctx, RuntimeException e);

  /** The broken first event a malformed streamed answer sends, blank line included. */
  abstract String malformedEvent();

  /** The broken body a malformed plain answer sends. */
  abstract String malformedBody();

  /** Renders the script's reply, plain or streamed; {@link Exchange#stall()} is the stall to apply. */
  abstract void reply(Context ctx, Exchange<Q, R> exchange) throws IOException, InterruptedException;

  /**
   * Applies a fault of the subclass's own; answers false when it wrote the whole answer. By default
   * there are none.
   */
  boolean applyOtherFault(Context ctx, Q request, Fault fault) throws IOException {
    throw new IllegalStateException("unknown fault " + fault);
  }

  /** Forgets the subclass's own state on {@link #reset()}; called under the lock. */
  void resetMore() {}

  // ---------------------------------------------------------------- types and helpers

  /**
   * One request being answered.
   *
   * @param request the parsed request
   * @param reply the script's reply
   * @param model the model to report
   * @param fault the fault the request took, or null
   */
  record Exchange<Q, R>(Q request, R reply, String model, Fault fault) {
    /** How long a streamed answer stalls after its first event. */
    Duration stall() {
      return fault instanceof Fault.Stall st ? st.duration() : Duration.ZERO;
    }
  }

  /** A one-shot fault; subclasses may add their own kinds. */
  interface Fault {
    record Status(int status, int retryAfterSeconds) implements Fault {}

    record Hang(Duration duration) implements Fault {}

    record Malformed() implements Fault {}

    record Stall(Duration duration) implements Fault {}
  }

  /** Starts a streamed 200 answer and returns its body. */
  static OutputStream openStream(Context ctx) throws IOException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    return ctx.res().getOutputStream();
  }

  /** Writes {@code text} as UTF-8 and flushes. */
  static void write(OutputStream out, String text) throws IOException {
    out.write(text.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  /** About a quarter of {@code chars}, rounded up, and at least 1. */
  static long tokensFor(long chars) {
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

  /**
   * One step of the benchmark tool loop: while {@code resultsSinceLastUser} (tool results since the
   * last user text) is fewer than K, a call to {@code toolName} with arguments {@code {}}; then the
   * text {@code done after K steps}. K is read from {@code steps=K} in {@code lastUserText} (0 when
   * absent).
   */
  static <R> R toolLoopStep(
      String lastUserText,
      int resultsSinceLastUser,
      String toolName,
      BiFunction<String, String, R> toolCall,
      Function<String, R> text) {
    Matcher m = STEPS.matcher(lastUserText);
    int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
    if (resultsSinceLastUser < k) {
      return toolCall.apply(toolName, "{}");
    }
    return text.apply("done after " + k + " steps");
  }

  /** Starts one fake with a port and a tool loop's tool. */
  @FunctionalInterface
  interface Starter {
    FakeServer<?, ?, ?, ?> start(int port, String tool);
  }

  /**
   * The command line of a fake called {@code name}: starts it and prints its base URL; it runs until
   * the process is stopped. Options: {@code --port N} (default 0, a free port), {@code --latency-ms
   * N} (default 0), {@code --tool NAME} (the tool loop's tool, default {@code time_now}).
   */
  static void runMain(String[] args, String name, Starter starter) throws InterruptedException {
    int port = 0;
    long latencyMs = 0;
    String tool = "time_now";
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (i + 1 >= args.length) {
        throw usage(name, "option " + arg + " needs a value");
      }
      String value = args[++i];
      try {
        switch (arg) {
          case "--port" -> port = Integer.parseInt(value);
          case "--latency-ms" -> latencyMs = Long.parseLong(value);
          case "--tool" -> tool = value;
          default -> throw usage(name, "unknown option " + arg);
        }
      } catch (NumberFormatException e) {
        throw usage(name, "option " + arg + " expects a number, got \"" + value + "\"");
      }
    }
    FakeServer<?, ?, ?, ?> fake = starter.start(port, tool);
    fake.latency(Duration.ofMillis(latencyMs));
    Runtime.getRuntime().addShutdownHook(new Thread(fake::close));
    System.out.println(fake.baseUrl());
    System.out.flush();
    new CountDownLatch(1).await();
  }

  private static IllegalArgumentException usage(String name, String problem) {
    return new IllegalArgumentException(
        problem + "; usage: " + name + " [--port N] [--latency-ms N] [--tool NAME]");
  }

  @SuppressWarnings("unchecked")
  private S self() {
    return (S) this;
  }
}
