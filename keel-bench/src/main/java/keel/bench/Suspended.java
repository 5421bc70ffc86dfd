package keel.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.data.NewSession;
import keel.data.PendingEvent;
import keel.server.KeelServer;
import keel.server.ServerConfig;

/**
 * Scenario "suspended": the server's heap and RSS against the number of suspended sessions in its
 * store (0, 10,000, 100,000, … up to S, seeded incrementally into one store), and what it costs to
 * resume a random one of the S, split in three: (a) rehydrate — a run bringing the session back from
 * the store, read from the server's own {@code keel_session_rehydrate_seconds} histogram on
 * {@code /metrics}; (b) the first durable event after the message, seen on the session's event
 * stream; (c) the whole turn (one tool step) until its final answer is durable.
 *
 * <p>Sessions are written straight into the store (a {@code SessionStarted} event, status idle, no
 * input) by an in-process server that is then closed; the measured server runs in its own JVM
 * ({@link #serveProbe}), so its RSS is its own and not the benchmark driver's.
 *
 * <p>Not thread-safe: one scenario runs at a time.
 */
final class Suspended {

  /** What to run. */
  record Options(int sessions, int resumeSamples, String childHeap, Path workDir) {}

  private static final String AGENT = "resume";
  /** Longer than two SSE heartbeats (15 s each), after which a stream whose client left is closed. */
  private static final Duration STREAMS_REAPED = Duration.ofSeconds(40);
  private static final String REHYDRATE = "keel_session_rehydrate_seconds_bucket{agent=\"" + AGENT + "\",le=\"";

  private final Options options;
  private final Progress progress;

  Suspended(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** The store sizes measured: 0, then every power of ten from 10,000 below {@code sessions}, then {@code sessions}. */
  static List<Integer> points(int sessions) {
    List<Integer> out = new ArrayList<>(List.of(0));
    for (long p = 10_000; p < sessions; p *= 10) {
      out.add((int) p);
    }
    if (sessions > 0) {
      out.add(sessions);
    }
    return out;
  }

  Map<String, Object> run() throws Exception {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("child_jvm_options", List.of("-Xmx" + options.childHeap(), "--enable-native-access=ALL-UNNAMED"));
    Path dir = Files.createTempDirectory(options.workDir(), "keel-suspended-");
    try {
      List<String> ids = new ArrayList<>(options.sessions());
      List<Map<String, Object>> rows = new ArrayList<>();
      double seedSeconds = 0;
      List<Integer> points = points(options.sessions());
      for (int i = 0; i < points.size(); i++) {
        int count = points.get(i);
        long t = System.nanoTime();
        seed(dir, ids, count);
        double seconds = (System.nanoTime() - t) / 1e9;
        seedSeconds += seconds;
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("sessions", count);
        row.put("seed_seconds", seconds);
        row.put("db_bytes", dbBytes(dir));
        progress.line("suspended: " + count + " sessions in the store (" + String.format("%.1f", dbBytes(dir) / 1048576.0) + " MiB on disk); starting the server JVM");
        try (Child child = Child.start(dir, options.childHeap())) {
          row.put("server_start_millis", child.startMillis);
          row.put("idle", child.memory());
          progress.line("suspended: " + count + " sessions, server idle: " + row.get("idle"));
          if (i == points.size() - 1 && count > 0) {
            out.put("resume", resume(child, dir, ids));
          }
        }
        rows.add(row);
      }
      out.put("points", rows);
      Map<String, Object> seeding = new LinkedHashMap<>();
      seeding.put("sessions", options.sessions());
      seeding.put("seconds", seedSeconds);
      seeding.put("sessions_per_second", seedSeconds > 0 ? options.sessions() / seedSeconds : 0);
      seeding.put("db_bytes", dbBytes(dir));
      seeding.put("db_bytes_per_session", options.sessions() > 0 ? (double) dbBytes(dir) / options.sessions() : 0);
      out.put("seeding", seeding);
    } finally {
      Bench.deleteTree(dir);
    }
    return out;
  }

  /**
   * Resumes distinct random sessions one after another (after a few unmeasured warm-ups): each
   * gets a message with its event stream open, and the time to the message's acceptance, to the
   * first event on the stream and to the final answer is taken; the rehydration of each run is
   * read from the server's histogram, scraped before and after.
   */
  private Map<String, Object> resume(Child child, Path dir, List<String> ids) throws Exception {
    String token = Files.readString(dir.resolve(child.tokenFile)).strip();
    KeelApi api = new KeelApi(child.url, token);
    int samples = Math.min(options.resumeSamples(), ids.size());
    int warmups = Math.min(Math.max(samples / 10, 10), ids.size() - samples);
    // distinct random sessions, each with only its SessionStarted (seq 1)
    List<String> picked = new ArrayList<>(ids);
    java.util.Collections.shuffle(picked, new Random(42));
    for (int i = 0; i < warmups; i++) {
      turn(api, picked.get(samples + i), "warm up " + i);
    }
    String before = scrape(child.url, token);
    List<Long> accepted = new ArrayList<>();
    List<Long> first = new ArrayList<>();
    List<Long> whole = new ArrayList<>();
    try (Progress.Bar bar = progress.bar("suspended: resumes", samples)) {
      for (int i = 0; i < samples; i++) {
        long[] t = turn(api, picked.get(i), "wake up " + i);
        accepted.add(t[0]);
        first.add(t[1]);
        whole.add(t[2]);
        bar.step();
      }
    }
    String after = scrape(child.url, token);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("sessions_in_store", ids.size());
    out.put("warmups", warmups);
    out.put("n", samples);
    NavigableMap<Double, Double> buckets = diff(histogram(after), histogram(before));
    Map<String, Object> rehydrate = new LinkedHashMap<>();
    rehydrate.put("p50", bucketPercentile(buckets, 50) * 1000);
    rehydrate.put("p99", bucketPercentile(buckets, 99) * 1000);
    rehydrate.put("p99_bucket_upper", bucketUpper(buckets, 99) * 1000);
    double runs = buckets.isEmpty() ? 0 : buckets.lastEntry().getValue();
    rehydrate.put("mean", runs > 0 ? (sample(after, "keel_session_rehydrate_seconds_sum") - sample(before, "keel_session_rehydrate_seconds_sum")) / runs * 1000 : Double.NaN);
    rehydrate.put("runs", (long) runs);
    out.put("rehydrate_ms", rehydrate);
    out.put("accepted_ms", millis(accepted));
    out.put("first_event_ms", millis(first));
    out.put("turn_ms", millis(whole));
    out.put("after_resumes", child.memory());
    // the event streams the driver closed stay open on the server until a heartbeat write fails
    // (every 15 s; the first write after the client left still succeeds, the next one fails):
    // measure again once they have all been reaped
    Thread.sleep(STREAMS_REAPED.toMillis());
    out.put("after_streams_reaped", child.memory());
    progress.line("suspended: rehydrate " + rehydrate + " ms; first durable event " + out.get("first_event_ms") + " ms; turn "
        + out.get("turn_ms") + " ms");
    return out;
  }

  /** One turn of one session: microseconds to the message accepted, to the first event, to the final answer. */
  private static long[] turn(KeelApi api, String id, String message) throws InterruptedException {
    try (KeelApi.Follower f = api.follow(id, 1)) {
      long s = System.nanoTime();
      api.send(id, message);
      long accepted = System.nanoTime();
      KeelApi.Sse e = f.next(Duration.ofSeconds(30));
      DurableSteps.check(e != null, "session " + id + " showed no event within 30 s of its message");
      long first = System.nanoTime();
      DurableSteps.check(e.isFinalAnswer() || f.awaitFinalAnswer(Duration.ofSeconds(30)), "session " + id + " did not answer");
      long done = System.nanoTime();
      return new long[] {(accepted - s) / 1000, (first - s) / 1000, (done - s) / 1000};
    }
  }

  private static Map<String, Object> millis(List<Long> micros) {
    Map<String, Object> ms = new LinkedHashMap<>();
    ms.put("p50", Stats.percentile(micros, 50) / 1000);
    ms.put("p99", Stats.percentile(micros, 99) / 1000);
    ms.put("max", Stats.percentile(micros, 100) / 1000);
    return ms;
  }

  private static String scrape(String url, String token) throws IOException, InterruptedException {
    try (HttpClient http = HttpClient.newHttpClient()) {
      HttpResponse<String> r = http.send(
          HttpRequest.newBuilder(URI.create(url + "/metrics")).header("Authorization", "Bearer " + token).build(),
          HttpResponse.BodyHandlers.ofString());
      DurableSteps.check(r.statusCode() == 200, "GET /metrics answered " + r.statusCode());
      return r.body();
    }
  }

  /** The cumulative bucket counts of the resume agent's rehydrate histogram: upper bound (s) → count. */
  static NavigableMap<Double, Double> histogram(String scrape) {
    NavigableMap<Double, Double> out = new TreeMap<>();
    scrape.lines().filter(l -> l.startsWith(REHYDRATE)).forEach(l -> {
      int q = l.indexOf('"', REHYDRATE.length());
      String le = l.substring(REHYDRATE.length(), q);
      out.put(le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le), Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)));
    });
    return out;
  }

  private static NavigableMap<Double, Double> diff(NavigableMap<Double, Double> after, NavigableMap<Double, Double> before) {
    NavigableMap<Double, Double> out = new TreeMap<>();
    after.forEach((le, n) -> out.put(le, n - before.getOrDefault(le, 0.0)));
    return out;
  }

  private static double sample(String scrape, String prefix) {
    String p = prefix + "{agent=\"" + AGENT + "\"} ";
    return scrape.lines().filter(l -> l.startsWith(p)).mapToDouble(l -> Double.parseDouble(l.substring(p.length()).strip()))
        .findFirst().orElse(0);
  }

  /**
   * The {@code p}-th percentile (seconds) of cumulative Prometheus buckets, interpolated linearly
   * within the bucket it falls in (as PromQL's {@code histogram_quantile}); NaN with no samples.
   * A rank in the +Inf bucket answers the largest finite bound.
   */
  static double bucketPercentile(NavigableMap<Double, Double> cumulative, double p) {
    if (cumulative.isEmpty() || cumulative.lastEntry().getValue() <= 0) {
      return Double.NaN;
    }
    double rank = p / 100 * cumulative.lastEntry().getValue();
    double lower = 0;
    double below = 0;
    for (Map.Entry<Double, Double> b : cumulative.entrySet()) {
      if (b.getValue() >= rank && b.getValue() > below) {
        if (b.getKey().isInfinite()) {
          return lower;
        }
        return lower + (b.getKey() - lower) * (rank - below) / (b.getValue() - below);
      }
      lower = b.getKey();
      below = b.getValue();
    }
    return lower;
  }

  /** The upper bound (seconds) of the bucket the {@code p}-th percentile falls in: a bound no interpolation can undercut. */
  static double bucketUpper(NavigableMap<Double, Double> cumulative, double p) {
    if (cumulative.isEmpty() || cumulative.lastEntry().getValue() <= 0) {
      return Double.NaN;
    }
    double rank = p / 100 * cumulative.lastEntry().getValue();
    return cumulative.entrySet().stream().filter(b -> b.getValue() >= rank).findFirst().orElseThrow().getKey();
  }

  private static long dbBytes(Path dir) throws IOException {
    long n = 0;
    try (var files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        if (f.getFileName().toString().startsWith("keel.db")) {
          n += Files.size(f);
        }
      }
    }
    return n;
  }

  /**
   * Adds suspended sessions to the store in {@code dir} until it holds {@code count} (their ids
   * appended to {@code ids}); the first call also applies the agent. Written by many virtual
   * threads at once so that the store's group commit batches them.
   */
  private void seed(Path dir, List<String> ids, int count) throws Exception {
    int from = ids.size();
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dir).withDurable(false).withEnvironment(Map.of()))) {
      if (from == 0) {
        new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip()).apply(Agents.oneStepPerTurn(AGENT));
      }
      if (count <= from) {
        return;
      }
      int revision = server.sessions().catalog().latest(AGENT).revision();
      SecureRandom random = new SecureRandom();
      for (int i = from; i < count; i++) {
        ids.add("s_" + hex(random, 20));
      }
      AtomicInteger next = new AtomicInteger(from);
      long t = System.nanoTime();
      try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
        List<Future<?>> fs = new ArrayList<>();
        for (int w = 0; w < 256; w++) {
          fs.add(
              ex.submit(
                  () -> {
                    Random local = ThreadLocalRandom.current();
                    for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
                      String id = ids.get(i);
                      server.store()
                          .events()
                          .create(
                              new NewSession(
                                  id,
                                  AGENT,
                                  revision,
                                  "bench",
                                  hex(local, 32),
                                  Optional.empty(),
                                  id,
                                  List.of(
                                      new PendingEvent(
                                          new SessionEvent.SessionStarted(AGENT, revision, "bench", "operator:admin", false),
                                          hex(local, 16))),
                                  SessionStatus.IDLE,
                                  Optional.empty()));
                      if ((i + 1) % 50_000 == 0) {
                        double s = (System.nanoTime() - t) / 1e9;
                        progress.line(String.format("suspended: %,d sessions written (%,.0f/s)", i + 1, (i + 1 - from) / s));
                      }
                    }
                    return null;
                  }));
        }
        for (Future<?> f : fs) {
          f.get();
        }
      }
    }
  }

  private static String hex(Random random, int chars) {
    byte[] b = new byte[chars / 2];
    random.nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  // ---------------------------------------------------------------- the server in its own JVM

  /** The driver's handle on a server JVM started with {@code Bench serve-probe DIR}. */
  private static final class Child implements AutoCloseable {
    private final Process process;
    private final BufferedReader out;
    private final PrintStream in;
    private String url;
    private String tokenFile;
    private long startMillis;

    private Child(Process process) {
      this.process = process;
      this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      this.in = new PrintStream(process.getOutputStream(), true, StandardCharsets.UTF_8);
    }

    static Child start(Path dir, String heap) throws IOException {
      String java = ProcessHandle.current().info().command().orElse("java");
      ProcessBuilder pb =
          new ProcessBuilder(
              java,
              "-Xmx" + heap,
              "--enable-native-access=ALL-UNNAMED",
              "-cp",
              System.getProperty("java.class.path"),
              Bench.class.getName(),
              "serve-probe",
              dir.toString());
      pb.redirectError(dir.resolveSibling(dir.getFileName() + ".server.log").toFile());
      Child c = new Child(pb.start());
      String line = c.expect("READY");
      String[] p = line.split(" ");
      c.url = p[1];
      c.tokenFile = p[2];
      c.startMillis = Long.parseLong(p[3]);
      return c;
    }

    Map<String, Object> memory() throws IOException {
      in.println("mem");
      String[] p = expect("MEM").split(" ");
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("heap_used_mib", Long.parseLong(p[1]) / 1048576.0);
      m.put("heap_committed_mib", Long.parseLong(p[2]) / 1048576.0);
      m.put("rss_mib", Long.parseLong(p[3]) / 1024.0);
      return m;
    }

    private String expect(String prefix) throws IOException {
      while (true) {
        String line = out.readLine();
        if (line == null) {
          throw new IllegalStateException("the server JVM exited (exit code " + waitExit() + "); see its .server.log");
        }
        if (line.startsWith(prefix)) {
          return line;
        }
      }
    }

    private int waitExit() {
      try {
        return process.waitFor(10, TimeUnit.SECONDS) ? process.exitValue() : -1;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return -1;
      }
    }

    @Override
    public void close() throws IOException {
      in.println("quit");
      if (waitExit() == -1) {
        process.destroy();
      }
    }
  }

  /** The server JVM's side: start a server on {@code dir}, then answer "mem" and "quit" on stdin. */
  static void serveProbe(Path dir) throws Exception {
    long t = System.nanoTime();
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()))) {
      long startMillis = (System.nanoTime() - t) / 1_000_000;
      System.out.println("READY " + server.url() + " " + dir.relativize(server.adminTokenFile()) + " " + startMillis);
      System.out.flush();
      BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      String line;
      while ((line = stdin.readLine()) != null && !line.equals("quit")) {
        if (line.equals("mem")) {
          for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(200);
          }
          var heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
          System.out.println("MEM " + heap.getUsed() + " " + heap.getCommitted() + " " + rssKib());
          System.out.flush();
        }
      }
    }
  }

  /** VmRSS of this process in KiB, from /proc/self/status (-1 where there is no /proc). */
  static long rssKib() throws IOException {
    Path status = Path.of("/proc/self/status");
    if (!Files.exists(status)) {
      return -1;
    }
    for (String l : Files.readAllLines(status)) {
      if (l.startsWith("VmRSS:")) {
        return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }
}
