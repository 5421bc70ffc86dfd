package keel.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import keel.execution.ExecutionSettings;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;

/**
 * Scenario "in-flight": N sessions each waiting on a model call that takes {@code latency}.
 *
 * <p>A real in-process server (durable SQLite) whose node concurrency is raised as a user would
 * ({@code keel serve --max-concurrent-steps N --admission-capacity max(N, 20000)}), an OpenAI
 * agent whose model is a {@link FakeOpenAi} answering text after {@code latency}, run in its own JVM
 * ({@code Bench fake-openai MS}) so that its sockets and threads are not counted in the server's
 * memory. N sessions are started through the REST API by {@code clients} concurrent clients; the
 * run ends when every session is idle again with its answer. Measured: completion throughput
 * against the ideal {@code N / (ceil(N / maxConcurrentSteps) × latency)}; the most sessions seen
 * accepted and not yet answered at once; heap (live after the last GC, and used) and RSS of the server's JVM, sampled
 * every 100 ms during the wait. Checked: every session answered, none failed, the fake served
 * exactly N model calls.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class InFlight {

  /** What to run. */
  record Options(int sessions, Duration latency, int clients, Path workDir) {}

  static final String AGENT = "inflight";
  private static final Duration TIMEOUT = Duration.ofMinutes(10);

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

  Map<String, Object> run() throws Exception {
    int n = options.sessions();
    ExecutionSettings settings = settings(n);
    Path data = Files.createTempDirectory(options.workDir(), "keel-inflight-");
    try (FakeChild fake = FakeChild.start(options.latency());
        KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()).withExecution(settings))) {
      KeelApi admin = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      admin.apply(Agents.openai(AGENT, fake.url));
      Sampler sampler = new Sampler();
      Thread samplerThread = Thread.ofPlatform().daemon().name("bench-inflight-sampler").start(sampler);
      Map<String, Object> before = sampler.now();

      long t0 = System.nanoTime();
      long[] accepted = new long[1];
      Thread starter = Thread.ofVirtual().start(() -> {
        try {
          startAll(admin, n);
          accepted[0] = System.nanoTime();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      long peakRunning = 0;
      long deadline = t0 + TIMEOUT.toNanos();
      long report = t0;
      Map<String, Long> c;
      while (true) {
        c = admin.counts(AGENT);
        long total = c.values().stream().mapToLong(Long::longValue).sum();
        peakRunning = Math.max(peakRunning, total - c.getOrDefault("idle", 0L)); // accepted, answer not yet stored
        DurableSteps.check(c.getOrDefault("failed", 0L) == 0, "sessions failed: " + c);
        if (c.getOrDefault("idle", 0L) >= n) {
          break;
        }
        DurableSteps.check(System.nanoTime() < deadline, "sessions did not all answer in " + TIMEOUT + ": " + c);
        if (System.nanoTime() - report > 2e9) {
          report = System.nanoTime();
          progress.line("in-flight: " + c + ", heap " + sampler.now());
        }
        Thread.sleep(50);
      }
      long done = System.nanoTime();
      starter.join();
      sampler.stop.set(true);
      samplerThread.join();
      long modelCalls = fake.requestCount();
      DurableSteps.check(modelCalls == n, "the model served " + modelCalls + " calls, expected " + n);

      double seconds = (done - t0) / 1e9;
      double latencyS = options.latency().toMillis() / 1000.0;
      double idealSeconds = Math.ceil((double) n / settings.maxConcurrentSteps()) * latencyS;
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("sessions", n);
      out.put("model_latency_ms", options.latency().toMillis());
      out.put("clients", options.clients());
      out.put("max_concurrent_steps", settings.maxConcurrentSteps());
      out.put("admission_capacity", settings.admissionCapacity());
      out.put("all_accepted_seconds", (accepted[0] - t0) / 1e9);
      out.put("all_completed_seconds", seconds);
      out.put("completions_per_second", n / seconds);
      out.put("ideal_completions_per_second", n / idealSeconds);
      out.put("fraction_of_ideal", idealSeconds / seconds);
      out.put("after_last_accepted_seconds", (done - accepted[0]) / 1e9);
      out.put("peak_waiting_sessions", peakRunning);
      out.put("model_calls", modelCalls);
      out.put("memory_before", before);
      out.put("memory_during_wait", sampler.peaks());
      out.put("memory_samples", sampler.samples);
      out.put("max_heap_mib", Runtime.getRuntime().maxMemory() / 1048576);
      progress.line(String.format("in-flight: %d sessions answered in %.2f s (ideal %.2f s): %.0f %% of ideal; peak %s", n, seconds,
          idealSeconds, 100 * idealSeconds / seconds, sampler.peaks()));
      return out;
    } finally {
      Bench.deleteTree(data);
    }
  }

  private void startAll(KeelApi api, int n) throws Exception {
    Semaphore open = new Semaphore(options.clients());
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        String msg = "wait " + i;
        fs.add(clients.submit(() -> {
          open.acquire();
          try {
            api.start(AGENT, msg);
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

  /** Samples this JVM's heap and RSS every 100 ms until stopped; keeps the peaks. */
  static final class Sampler implements Runnable {
    final AtomicBoolean stop = new AtomicBoolean();
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
        }
      } catch (InterruptedException e) {
        process.destroy();
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The fake's JVM: answer every chat with text after {@code latencyMs}; "count" and "quit" on stdin. */
  static void serveFake(long latencyMs) throws IOException {
    try (FakeOpenAi fake = FakeOpenAi.start().answerText("done waiting")) {
      fake.latency(Duration.ofMillis(latencyMs));
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
