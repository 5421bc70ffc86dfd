package keel.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import keel.core.EventCodec;
import keel.execution.ExecutionSettings;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import tools.jackson.databind.JsonNode;

/**
 * Scenario "in-flight": N sessions each waiting on a model call that takes {@code latency}.
 *
 * <p>A real in-process server (durable SQLite) whose node concurrency is raised as a user would
 * ({@code keel serve --max-concurrent-steps N --admission-capacity max(N, 20000)}), an OpenAI
 * agent whose model is a {@link FakeOpenAi} answering text after {@code latency}, run in its own JVM
 * ({@code Bench fake-openai MS}) so that its sockets and threads are not counted in the server's
 * memory. A round starts N sessions through the REST API ({@code clients} concurrent clients) and
 * ends when every session is idle again with its answer. After a warm-up round, {@code reps}
 * measured rounds are interleaved with rounds of the framework-free floor: N model calls made at
 * once from N virtual threads with a plain {@link HttpClient} against the same fake, no
 * persistence, no API (what the machine and the fake allow at all).
 *
 * <p>Measured per round: completion throughput against the ideal {@code N / (ceil(N /
 * maxConcurrentSteps) × latency)} and against the floor; how long admission took and the API's
 * round trip per start (p50/p99); the most sessions seen accepted and not yet answered at once;
 * heap (live after the last GC, and used) and RSS of the server's JVM, sampled every 100 ms.
 * Checked: every session answered, none failed, the fake served exactly one call per session.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class InFlight {

  /** What to run. */
  record Options(int sessions, Duration latency, int clients, int reps, Path workDir) {}

  static final String AGENT = "inflight";
  private static final Duration TIMEOUT = Duration.ofMinutes(10);
  private static final int WARMUP_SESSIONS = 1_000;

  private final Options options;
  private final Progress progress;

  InFlight(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** The settings a user raises for N sessions in flight at once. */
  static ExecutionSettings settings(int sessions) {
    ExecutionSettings d = ExecutionSettings.defaults(ServerConfig.nodeName());
    return new ExecutionSettings(d.node(), Math.max(sessions, d.maxConcurrentSteps()),
        Math.max(sessions, d.admissionCapacity()), d.maxInputChars());
  }

  /** One measured round of Keel. */
  private record Round(
      double seconds, double acceptedSeconds, Map<String, Object> startMillis, long peakWaiting,
      Map<String, Object> memory, List<Map<String, Object>> samples) {}

  Map<String, Object> run() throws Exception {
    int n = options.sessions();
    ExecutionSettings settings = settings(n);
    Path data = Files.createTempDirectory(options.workDir(), "keel-inflight-");
    try (FakeChild fake = FakeChild.start(options.latency());
        KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()).withExecution(settings))) {
      KeelApi admin = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      HttpFloor floor = new HttpFloor(fake.url);
      int warm = Math.min(n, WARMUP_SESSIONS);
      progress.line("in-flight: warm-up (" + warm + " sessions and " + warm + " floor calls)");
      keelRound(admin, fake.url, AGENT + "-warmup", warm);
      floor.round(warm);
      System.gc();
      Map<String, Object> before = new Sampler().now();

      double latencyS = options.latency().toMillis() / 1000.0;
      double idealSeconds = Math.ceil((double) n / settings.maxConcurrentSteps()) * latencyS;
      List<Round> rounds = new ArrayList<>();
      List<Double> floorSeconds = new ArrayList<>();
      for (int rep = 1; rep <= options.reps(); rep++) {
        floorSeconds.add(floor.round(n));
        progress.line(String.format("in-flight: repetition %d/%d, floor: %d calls in %.2f s", rep, options.reps(), n,
            floorSeconds.getLast()));
        Round r = keelRound(admin, fake.url, AGENT + "-" + rep, n);
        rounds.add(r);
        progress.line(String.format("in-flight: repetition %d/%d, Keel: %d sessions answered in %.2f s (all accepted after %.2f s),"
            + " %.0f %% of ideal, %.0f %% of the floor; %s", rep, options.reps(), n, r.seconds(), r.acceptedSeconds(),
            100 * idealSeconds / r.seconds(), 100 * floorSeconds.getLast() / r.seconds(), r.memory()));
      }
      long modelCalls = fake.requestCount();
      long expected = 2 * ((long) warm + (long) n * options.reps()); // Keel's and the floor's
      DurableSteps.check(modelCalls == expected, "the model served " + modelCalls + " calls, expected " + expected
          + " (one per session and one per floor call, warm-up included)");

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("sessions", n);
      out.put("model_latency_ms", options.latency().toMillis());
      out.put("clients", options.clients());
      out.put("max_concurrent_steps", settings.maxConcurrentSteps());
      out.put("admission_capacity", settings.admissionCapacity());
      out.put("warmup_sessions", warm);
      out.put("reps", options.reps());
      out.put("ideal_seconds", idealSeconds);
      out.put("ideal_completions_per_second", n / idealSeconds);
      out.put("all_completed_seconds", Stats.Spread.of(rounds.stream().map(Round::seconds).toList()).json());
      out.put("all_accepted_seconds", Stats.Spread.of(rounds.stream().map(Round::acceptedSeconds).toList()).json());
      out.put("completions_per_second", Stats.Spread.of(rounds.stream().map(r -> n / r.seconds()).toList()).json());
      out.put("fraction_of_ideal", Stats.Spread.of(rounds.stream().map(r -> idealSeconds / r.seconds()).toList()).json());
      out.put("floor_seconds", Stats.Spread.of(floorSeconds).json());
      out.put("floor_fraction_of_ideal", Stats.Spread.of(floorSeconds.stream().map(f -> idealSeconds / f).toList()).json());
      List<Double> ofFloor = new ArrayList<>();
      for (int i = 0; i < rounds.size(); i++) {
        ofFloor.add(floorSeconds.get(i) / rounds.get(i).seconds());
      }
      out.put("fraction_of_floor", Stats.Spread.of(ofFloor).json());
      out.put("admissions_per_second", Stats.Spread.of(rounds.stream().map(r -> n / r.acceptedSeconds()).toList()).json());
      out.put("after_last_accepted_seconds",
          Stats.Spread.of(rounds.stream().map(r -> r.seconds() - r.acceptedSeconds()).toList()).json());
      out.put("start_round_trip_ms", rounds.getLast().startMillis());
      out.put("peak_waiting_sessions", rounds.stream().mapToLong(Round::peakWaiting).max().orElse(0));
      out.put("model_calls", modelCalls);
      out.put("memory_before", before);
      out.put("memory_during_wait", peaks(rounds));
      out.put("memory_samples", rounds.getLast().samples());
      out.put("max_heap_mib", Runtime.getRuntime().maxMemory() / 1048576);
      out.put("repetitions", rounds.stream().map(r -> {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("seconds", r.seconds());
        m.put("accepted_seconds", r.acceptedSeconds());
        m.put("peak_waiting_sessions", r.peakWaiting());
        m.put("memory", r.memory());
        return m;
      }).toList());
      return out;
    } finally {
      Bench.deleteTree(data);
    }
  }

  private static Map<String, Object> peaks(List<Round> rounds) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (String k : List.of("heap_live_max_mib", "heap_used_max_mib", "rss_max_mib")) {
      m.put(k, rounds.stream().mapToDouble(r -> ((Number) r.memory().get(k)).doubleValue()).max().orElse(Double.NaN));
    }
    return m;
  }

  /** Starts {@code n} sessions of a fresh agent and waits until every one has its answer. */
  private Round keelRound(KeelApi admin, String modelUrl, String agent, int n) throws Exception {
    admin.apply(Agents.openai(agent, modelUrl));
    Sampler sampler = new Sampler();
    Thread samplerThread = Thread.ofPlatform().daemon().name("bench-inflight-sampler").start(sampler);
    long t0 = System.nanoTime();
    long[] accepted = new long[1];
    List<Long> startNanos = Collections.synchronizedList(new ArrayList<>(n));
    Exception[] failed = new Exception[1];
    Thread starter = Thread.ofVirtual().start(() -> {
      try {
        startAll(admin, agent, n, startNanos);
        accepted[0] = System.nanoTime();
      } catch (Exception e) {
        failed[0] = e;
      }
    });
    long peakWaiting = 0;
    long deadline = t0 + TIMEOUT.toNanos();
    long report = t0;
    while (true) {
      Map<String, Long> c = admin.counts(agent);
      long total = c.values().stream().mapToLong(Long::longValue).sum();
      long waiting = total - c.getOrDefault("idle", 0L); // accepted, answer not yet stored
      peakWaiting = Math.max(peakWaiting, waiting);
      sampler.waiting = waiting;
      DurableSteps.check(c.getOrDefault("failed", 0L) == 0, "sessions failed: " + c);
      DurableSteps.check(failed[0] == null, "starting the sessions failed: " + failed[0]);
      if (c.getOrDefault("idle", 0L) >= n) {
        break;
      }
      DurableSteps.check(System.nanoTime() < deadline, "sessions did not all answer in " + TIMEOUT + ": " + c);
      if (System.nanoTime() - report > 2e9) {
        report = System.nanoTime();
        progress.line("in-flight: " + agent + " " + c + ", memory " + sampler.now());
      }
      Thread.sleep(100);
    }
    long done = System.nanoTime();
    starter.join();
    sampler.stop.set(true);
    samplerThread.join();
    return new Round((done - t0) / 1e9, (accepted[0] - t0) / 1e9, Stats.millis(startNanos), peakWaiting, sampler.peaks(),
        sampler.samples);
  }

  private void startAll(KeelApi api, String agent, int n, List<Long> startNanos) throws Exception {
    Semaphore open = new Semaphore(options.clients());
    try (Progress.Bar bar = progress.bar("in-flight: " + agent + " started", n);
        ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        String msg = "wait " + i;
        fs.add(clients.submit(() -> {
          open.acquire();
          try {
            long t = System.nanoTime();
            api.start(agent, msg);
            startNanos.add(System.nanoTime() - t);
            bar.step();
          } finally {
            open.release();
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
  }

  /**
   * The framework-free floor: N chat-completion calls made at once from N virtual threads with a
   * plain {@link HttpClient} (the request Keel's OpenAI provider sends, streamed), no persistence.
   */
  static final class HttpFloor {
    private final URI endpoint;

    HttpFloor(String baseUrl) {
      this.endpoint = URI.create(baseUrl + "/chat/completions");
    }

    /**
     * Makes {@code n} calls at once with a new client (closed after, so that the round leaves no
     * connection open); returns the seconds until the last answer was read.
     */
    double round(int n) throws Exception {
      try (HttpClient http =
          HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(30)).build()) {
        return round(http, n);
      }
    }

    private double round(HttpClient http, int n) throws Exception {
      String body = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
          + Floor.quote(Floor.INSTRUCTIONS) + "},{\"role\":\"user\",\"content\":\"wait\"}],\"stream\":true,"
          + "\"stream_options\":{\"include_usage\":true}}";
      Floor.Run run = Floor.concurrently(n, (id, steps, calls) -> {
        HttpRequest req = HttpRequest.newBuilder(endpoint).timeout(Duration.ofSeconds(120))
            .header("Content-Type", "application/json").header("Authorization", "Bearer floor")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<Stream<String>> r = http.send(req, HttpResponse.BodyHandlers.ofLines());
        calls.incrementAndGet();
        if (r.statusCode() != 200) {
          throw new IllegalStateException("the fake answered " + r.statusCode());
        }
        StringBuilder text = new StringBuilder();
        try (Stream<String> lines = r.body()) {
          lines.filter(l -> l.startsWith("data: {")).forEach(l -> {
            JsonNode delta = EventCodec.mapper().readTree(l.substring(6)).path("choices").path(0).path("delta");
            if (delta.path("content").isString()) {
              text.append(delta.get("content").asString());
            }
          });
        }
        if (!text.toString().equals("done waiting")) {
          throw new IllegalStateException("the fake answered \"" + text + "\", expected \"done waiting\"");
        }
      });
      return run.wallNanos() / 1e9;
    }
  }

  /** Samples this JVM's heap and RSS every 100 ms until stopped; keeps the peaks. */
  static final class Sampler implements Runnable {
    final AtomicBoolean stop = new AtomicBoolean();
    /** Sessions accepted and not yet answered, as last polled (recorded with each sample). */
    volatile long waiting;
    final List<Map<String, Object>> samples = new ArrayList<>();
    private final long start = System.nanoTime();
    private double liveMax;
    private double usedMax;
    private double rssMax;

    @Override
    public void run() {
      while (!stop.get()) {
        Map<String, Object> s = now();
        synchronized (this) {
          liveMax = Math.max(liveMax, (Double) s.get("heap_live_mib"));
          usedMax = Math.max(usedMax, (Double) s.get("heap_used_mib"));
          rssMax = Math.max(rssMax, (Double) s.get("rss_mib"));
          if (samples.size() < 2_000) {
            samples.add(s);
          }
        }
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    /** Heap live after the last GC (summed over the heap pools), heap used, RSS, in MiB. */
    Map<String, Object> now() {
      long live = 0;
      for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
        if (p.getType() == MemoryType.HEAP && p.getCollectionUsage() != null) {
          live += p.getCollectionUsage().getUsed();
        }
      }
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("t_seconds", (System.nanoTime() - start) / 1e9);
      m.put("waiting_sessions", waiting);
      m.put("heap_live_mib", live / 1048576.0);
      m.put("heap_used_mib", ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() / 1048576.0);
      try {
        m.put("rss_mib", Suspended.rssKib() / 1024.0);
      } catch (IOException e) {
        m.put("rss_mib", -1.0);
      }
      return m;
    }

    synchronized Map<String, Object> peaks() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("heap_live_max_mib", liveMax);
      m.put("heap_used_max_mib", usedMax);
      m.put("rss_max_mib", rssMax);
      m.put("samples", samples.size());
      return m;
    }
  }

  // ---------------------------------------------------------------- the model fake in its own JVM

  /** A {@link FakeOpenAi} answering "done" after a latency, in a JVM started with {@code Bench fake-openai MS}. */
  static final class FakeChild implements AutoCloseable {
    private final Process process;
    private final BufferedReader out;
    private final PrintStream in;
    final String url;

    private FakeChild(Process process) throws IOException {
      this.process = process;
      this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      this.in = new PrintStream(process.getOutputStream(), true, StandardCharsets.UTF_8);
      this.url = expect("URL ").substring(4);
    }

    static FakeChild start(Duration latency) throws IOException {
      String java = ProcessHandle.current().info().command().orElse("java");
      ProcessBuilder pb = new ProcessBuilder(java, "-Xmx1g", "-cp", System.getProperty("java.class.path"), Bench.class.getName(),
          "fake-openai", Long.toString(latency.toMillis()));
      pb.redirectError(ProcessBuilder.Redirect.DISCARD);
      return new FakeChild(pb.start());
    }

    long requestCount() throws IOException {
      in.println("count");
      return Long.parseLong(expect("COUNT ").substring(6));
    }

    private String expect(String prefix) throws IOException {
      while (true) {
        String line = out.readLine();
        if (line == null) {
          throw new IllegalStateException("the model fake's JVM exited before answering " + prefix.strip());
        }
        if (line.startsWith(prefix)) {
          return line;
        }
      }
    }

    @Override
    public void close() {
      in.println("quit");
      try {
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
          process.destroy();
          if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly();
          }
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The fake's JVM: answer every chat with text after {@code latencyMs}; "count" and "quit" on stdin. */
  static void serveFake(long latencyMs) throws IOException {
    try (FakeOpenAi fake = FakeOpenAi.start().answerText("done waiting")) {
      // thousands of calls at once from one client JVM: no idle pooled connection may hold a file
      // descriptor after its call (the floor's and Keel's would not fit in one process's limit)
      fake.latency(Duration.ofMillis(latencyMs)).closeConnections(true);
      System.out.println("URL " + fake.baseUrl());
      System.out.flush();
      BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      String line;
      while ((line = stdin.readLine()) != null && !line.equals("quit")) {
        if (line.equals("count")) {
          System.out.println("COUNT " + fake.requestCount());
          System.out.flush();
        }
      }
    }
  }
}
