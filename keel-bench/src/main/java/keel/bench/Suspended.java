package keel.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
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
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.data.NewSession;
import keel.data.PendingEvent;
import keel.server.KeelServer;
import keel.server.ServerConfig;

/**
 * Scenario "suspended": the server's heap and RSS with 0 and with S suspended sessions in its
 * store, and the time to resume a random one. Sessions are written straight into the store (a
 * {@code SessionStarted} event, status idle, no input) by an in-process server that is then closed;
 * the measured server runs in its own JVM ({@link #serveProbe}), so its RSS is its own and not the
 * benchmark driver's.
 *
 * <p>Not thread-safe: one scenario runs at a time.
 */
final class Suspended {

  /** What to run. */
  record Options(int sessions, int resumeSamples, String childHeap, Path workDir) {}

  private static final String AGENT = "resume";

  private final Options options;
  private final Progress progress;

  Suspended(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  Map<String, Object> run() throws Exception {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("child_jvm_options", List.of("-Xmx" + options.childHeap(), "--enable-native-access=ALL-UNNAMED"));
    out.put("empty", measure(0));
    out.put("suspended", measure(options.sessions()));
    return out;
  }

  private Map<String, Object> measure(int count) throws Exception {
    Path dir = Files.createTempDirectory(options.workDir(), "keel-suspended-" + count + "-");
    long t = System.nanoTime();
    List<String> ids = prepare(dir, count);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("sessions", count);
    out.put("create_seconds", (System.nanoTime() - t) / 1e9);
    out.put("db_file_bytes", Files.size(dir.resolve("keel.db")));
    progress.line("suspended: " + count + " sessions written in " + out.get("create_seconds") + " s; starting the server JVM");
    try (Child child = Child.start(dir, options.childHeap())) {
      out.put("server_start_millis", child.startMillis);
      out.put("idle", child.memory());
      progress.line("suspended: " + count + " sessions, server idle: " + out.get("idle"));
      if (count > 0) {
        KeelApi api = new KeelApi(child.url, Files.readString(dir.resolve(child.tokenFile)).strip());
        List<String> picked = new ArrayList<>(ids);
        java.util.Collections.shuffle(picked, new Random(42));
        List<Long> micros = new ArrayList<>();
        int samples = Math.min(options.resumeSamples(), count);
        for (int i = 0; i < samples; i++) {
          String id = picked.get(i); // distinct sessions, each with only its SessionStarted (seq 1)
          try (KeelApi.Follower f = api.follow(id, 1)) {
            long s = System.nanoTime();
            api.send(id, "wake up " + i);
            DurableSteps.check(f.awaitFinalAnswer(Duration.ofSeconds(30)), "session " + id + " did not answer");
            micros.add((System.nanoTime() - s) / 1000);
          }
        }
        Map<String, Object> ms = new LinkedHashMap<>();
        ms.put("p50", Stats.percentile(micros, 50) / 1000);
        ms.put("p99", Stats.percentile(micros, 99) / 1000);
        ms.put("max", Stats.percentile(micros, 100) / 1000);
        ms.put("n", micros.size());
        out.put("resume_millis", ms);
        out.put("after_resumes", child.memory());
        progress.line("suspended: resume " + ms + " ms; after resumes " + out.get("after_resumes"));
      }
    }
    Bench.deleteTree(dir);
    return out;
  }

  /** Writes the agent and {@code count} suspended sessions into a fresh data directory. */
  private List<String> prepare(Path dir, int count) throws Exception {
    List<String> ids = new ArrayList<>(count);
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dir).withDurable(false).withEnvironment(Map.of()))) {
      new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip()).apply(Agents.oneStepPerTurn(AGENT));
      int revision = server.sessions().catalog().latest(AGENT).revision();
      SecureRandom random = new SecureRandom();
      for (int i = 0; i < count; i++) {
        ids.add("s_" + hex(random, 20));
      }
      AtomicInteger next = new AtomicInteger();
      try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
        List<Future<?>> fs = new ArrayList<>();
        for (int w = 0; w < 256; w++) {
          fs.add(
              ex.submit(
                  () -> {
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
                                  hex(random, 32),
                                  Optional.empty(),
                                  id,
                                  List.of(
                                      new PendingEvent(
                                          new SessionEvent.SessionStarted(AGENT, revision, "bench", "operator:admin", false),
                                          hex(random, 16))),
                                  SessionStatus.IDLE,
                                  Optional.empty()));
                      if ((i + 1) % 20_000 == 0) {
                        progress.line("suspended: " + (i + 1) + " sessions written");
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
    return ids;
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
