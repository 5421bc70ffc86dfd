package keel.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.EventCodec;
import keel.core.SessionEvent;
import keel.core.StoredEvent;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import keel.testkit.FakeOtlpCollector;

/**
 * Scenario "durable-steps": N sessions at once, each K tool steps (one model call and one {@code
 * time_now} call per step), through a real in-process {@link KeelServer} with durability on, with
 * the {@code scripted} model and with the {@code openai} provider against a zero-latency {@link
 * FakeOpenAi}; and, in the same run and interleaved with them, the framework-free {@link Floor}
 * against the same fake. Also bytes stored per step at several K and a long session of many turns.
 *
 * <p>Not thread-safe: one scenario runs at a time.
 */
final class DurableSteps {

  /** What to run. */
  record Options(
      int sessions,
      int steps,
      int warmups,
      int reps,
      int bytesSessions,
      List<Integer> bytesSteps,
      int turns,
      int latencySteps,
      List<Integer> concurrency,
      int concurrencyReps,
      boolean tracing,
      int traceSpans,
      boolean postgres,
      Path workDir) {
    Options {
      bytesSteps = List.copyOf(bytesSteps);
      concurrency = List.copyOf(concurrency);
    }
  }

  /** A server under test, its client, and how many of each agent's sessions should be idle on it. */
  private record Target(KeelServer server, KeelApi api, Map<String, Long> expectedIdle) {}

  private static final long POLL_MILLIS = 50;
  private static final Duration RUN_TIMEOUT = Duration.ofMinutes(10);

  private final Options options;
  private final Progress progress;
  private KeelServer server;
  private KeelApi api;
  private Target main;
  private Target traced;
  private FakeOtlpCollector collector;
  private BenchPostgres postgres;
  private Target onPostgres;
  private FakeOpenAi fake;
  private Floor floor;
  private LibraryLoop library;
  private Path dataDir;

  DurableSteps(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** One run of a Keel variant: wall time and what the event logs say. */
  record KeelRun(
      String variant,
      int sessions,
      int steps,
      double wallMillis,
      double polledWallMillis,
      long toolSteps,
      List<Long> overheadMillis,
      List<Long> stepMillis,
      List<Long> modelMillis,
      long eventBytes,
      long stepEventBytes,
      List<String> ids) {
    double stepsPerSecond() {
      return toolSteps * 1000.0 / wallMillis;
    }
  }

  Map<String, Object> run() throws Exception {
    dataDir = Files.createTempDirectory(options.workDir(), "keel-durable-");
    fake = FakeOpenAi.start();
    server = KeelServer.start(ServerConfig.of(0, dataDir).withEnvironment(Map.of()));
    try {
      api = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      floor = new Floor(fake.baseUrl());
      library = new LibraryLoop(fake.baseUrl());
      main = new Target(server, api, new HashMap<>());
      api.apply(Agents.scripted("scripted", options.steps()));
      api.apply(Agents.openai("openai", fake.baseUrl()));
      if (options.tracing()) {
        // the same server with OTLP export on (to an in-process collector), in the same JVM and run
        collector = FakeOtlpCollector.start();
        KeelServer t = KeelServer.start(ServerConfig.of(0, Files.createTempDirectory(dataDir, "traced-"))
            .withEnvironment(Map.of(KeelServer.OTLP_ENDPOINT, collector.baseUrl())));
        traced = new Target(t, new KeelApi(t.url(), Files.readString(t.adminTokenFile()).strip()), new HashMap<>());
        traced.api().apply(Agents.scripted("scripted", options.steps()));
        traced.api().apply(Agents.openai("openai", fake.baseUrl()));
      }
      if (options.postgres()) {
        // the same server on a real PostgreSQL (fsync and synchronous_commit on), same JVM and run
        postgres = BenchPostgres.start(options.workDir());
        KeelServer p = KeelServer.start(ServerConfig.of(0, Files.createTempDirectory(dataDir, "postgres-"))
            .withEnvironment(Map.of()).withPostgres(postgres.config()));
        onPostgres = new Target(p, new KeelApi(p.url(), Files.readString(p.adminTokenFile()).strip()), new HashMap<>());
        onPostgres.api().apply(Agents.scripted("scripted", options.steps()));
        onPostgres.api().apply(Agents.openai("openai", fake.baseUrl()));
      }
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("throughput", throughput());
      if (!options.concurrency().isEmpty()) {
        out.put("concurrency", concurrency());
      }
      if (options.tracing()) {
        out.put("tracing", tracingResults());
      }
      out.put("uncontended", uncontended());
      out.put("bytes_per_step", bytesPerStep());
      out.put("long_session", longSession());
      out.put("data_dir", dataDir.toString());
      return out;
    } finally {
      if (onPostgres != null) {
        onPostgres.server().close();
      }
      if (postgres != null) {
        postgres.close();
      }
      if (traced != null) {
        traced.server().close();
      }
      if (collector != null) {
        collector.close();
      }
      server.close();
      fake.close();
    }
  }

  // ---------------------------------------------------------------- throughput against the floor

  private Map<String, Object> throughput() throws Exception {
    int n = options.sessions();
    int k = options.steps();
    List<String> variants = new ArrayList<>(List.of("floor", "library", "keel-scripted", "keel-openai"));
    if (options.tracing()) {
      variants.addAll(List.of("keel-scripted-otlp", "keel-openai-otlp"));
    }
    if (options.postgres()) {
      variants.addAll(List.of("keel-scripted-pg", "keel-openai-pg"));
    }
    List<Double> ratioOpenaiPg = new ArrayList<>();
    List<Double> ratioScriptedPg = new ArrayList<>();
    Map<String, List<Double>> otlpRatio = new LinkedHashMap<>();
    otlpRatio.put("scripted", new ArrayList<>());
    otlpRatio.put("openai", new ArrayList<>());
    Map<String, List<Double>> rate = new LinkedHashMap<>();
    variants.forEach(v -> rate.put(v, new ArrayList<>()));
    List<Double> ratioOpenai = new ArrayList<>();
    List<Double> ratioScripted = new ArrayList<>();
    List<Double> ratioOverLibrary = new ArrayList<>();
    List<Double> ratioLibrary = new ArrayList<>();
    List<Long> overheadOpenai = new ArrayList<>();
    List<Long> overheadScripted = new ArrayList<>();
    List<Long> stepOpenai = new ArrayList<>();
    Map<String, List<Double>> cpu = new LinkedHashMap<>();
    variants.forEach(v -> cpu.put(v, new ArrayList<>()));
    List<Map<String, Object>> reps = new ArrayList<>();
    int total = options.warmups() + options.reps();
    try (Progress.Bar bar = progress.bar("durable-steps: runs", (long) total * variants.size())) {
      for (int rep = 0; rep < total; rep++) {
        boolean warm = rep < options.warmups();
        Map<String, Double> thisRep = new LinkedHashMap<>();
        // rotate the order so no variant always runs first (or right after a GC-heavy one)
        for (int j = 0; j < variants.size(); j++) {
          String v = variants.get((rep + j) % variants.size());
          double sps;
          long cpu0 = processCpuNanos();
          switch (v) {
            case "floor" -> {
              Floor.Run r = floor.run(n, k);
              check(r.steps() == (long) n * k, "floor counted " + r.steps() + " steps, expected " + n * k);
              sps = r.steps() * 1e9 / r.wallNanos();
            }
            case "library" -> {
              Floor.Run r = library.run(n, k);
              check(r.steps() == (long) n * k, "library loop counted " + r.steps() + " steps, expected " + n * k);
              sps = r.steps() * 1e9 / r.wallNanos();
            }
            case "keel-scripted-otlp" -> sps = keel(traced, "scripted", "scripted", n, k).stepsPerSecond();
            case "keel-openai-otlp" -> sps = keel(traced, "openai", "openai", n, k).stepsPerSecond();
            case "keel-scripted-pg" -> sps = keel(onPostgres, "scripted", "scripted", n, k).stepsPerSecond();
            case "keel-openai-pg" -> sps = keel(onPostgres, "openai", "openai", n, k).stepsPerSecond();
            case "keel-scripted" -> {
              KeelRun r = keel("scripted", "scripted", n, k);
              sps = r.stepsPerSecond();
              if (!warm) {
                overheadScripted.addAll(r.overheadMillis());
              }
            }
            default -> {
              KeelRun r = keel("openai", "openai", n, k);
              sps = r.stepsPerSecond();
              if (!warm) {
                overheadOpenai.addAll(r.overheadMillis());
                stepOpenai.addAll(r.stepMillis());
              }
            }
          }
          thisRep.put(v, sps);
          if (!warm) {
            // CPU of the whole process (server, fake, clients) per tool step: stable on a busy machine
            cpu.get(v).add((processCpuNanos() - cpu0) / 1000.0 / ((double) n * k));
          }
          progress.line(String.format("%s rep %d/%d %-13s %8.0f steps/s", warm ? "warm-up" : "measure", rep + 1, total, v, sps));
          bar.step();
        }
        if (!warm) {
          thisRep.forEach((v, s) -> rate.get(v).add(s));
          ratioOpenai.add(thisRep.get("keel-openai") / thisRep.get("floor"));
          ratioScripted.add(thisRep.get("keel-scripted") / thisRep.get("floor"));
          ratioOverLibrary.add(thisRep.get("keel-openai") / thisRep.get("library"));
          ratioLibrary.add(thisRep.get("library") / thisRep.get("floor"));
          if (options.postgres()) {
            ratioOpenaiPg.add(thisRep.get("keel-openai-pg") / thisRep.get("floor"));
            ratioScriptedPg.add(thisRep.get("keel-scripted-pg") / thisRep.get("floor"));
          }
          if (options.tracing()) {
            otlpRatio.get("scripted").add(thisRep.get("keel-scripted-otlp") / thisRep.get("keel-scripted"));
            otlpRatio.get("openai").add(thisRep.get("keel-openai-otlp") / thisRep.get("keel-openai"));
          }
          Map<String, Object> r = new LinkedHashMap<>(thisRep);
          r.put("keel_openai_over_floor", thisRep.get("keel-openai") / thisRep.get("floor"));
          reps.add(r);
        }
      }
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("sessions", n);
    out.put("steps", k);
    out.put("warmups", options.warmups());
    out.put("reps", options.reps());
    Map<String, Object> sps = new LinkedHashMap<>();
    rate.forEach((v, l) -> sps.put(v, Stats.Spread.of(l).json()));
    out.put("steps_per_second", sps);
    Map<String, Object> cpuJson = new LinkedHashMap<>();
    cpu.forEach((v, l) -> cpuJson.put(v, Stats.Spread.of(l).json()));
    out.put("cpu_micros_per_step", cpuJson);
    out.put("keel_openai_over_floor", Stats.Spread.of(ratioOpenai).json());
    out.put("keel_scripted_over_floor", Stats.Spread.of(ratioScripted).json());
    out.put("keel_openai_over_library", Stats.Spread.of(ratioOverLibrary).json());
    out.put("library_over_floor", Stats.Spread.of(ratioLibrary).json());
    if (options.postgres()) {
      out.put("keel_openai_pg_over_floor", Stats.Spread.of(ratioOpenaiPg).json());
      out.put("keel_scripted_pg_over_floor", Stats.Spread.of(ratioScriptedPg).json());
    }
    out.put("overhead_ms_openai", percentiles(overheadOpenai));
    out.put("overhead_ms_scripted", percentiles(overheadScripted));
    out.put("step_ms_openai", percentiles(stepOpenai));
    if (options.tracing()) {
      Map<String, Object> ratio = new LinkedHashMap<>();
      otlpRatio.forEach((v, l) -> ratio.put(v, Stats.Spread.of(l).json()));
      out.put("otlp_on_over_off", ratio);
    }
    out.put("repetitions", reps);
    return out;
  }

  // ---------------------------------------------------------------- throughput against concurrency

  /** Steps/s of the floor and both Keel variants at each number of concurrent sessions. */
  private Map<String, Object> concurrency() throws Exception {
    int k = options.steps();
    List<String> variants = List.of("floor", "keel-scripted", "keel-openai");
    Map<String, List<Map<String, Object>>> series = new LinkedHashMap<>();
    variants.forEach(v -> series.put(v, new ArrayList<>()));
    for (int n : options.concurrency()) {
      Map<String, List<Double>> rates = new LinkedHashMap<>();
      variants.forEach(v -> rates.put(v, new ArrayList<>()));
      for (int rep = 0; rep < options.concurrencyReps(); rep++) {
        for (int j = 0; j < variants.size(); j++) {
          String v = variants.get((rep + j) % variants.size());
          double sps = switch (v) {
            case "floor" -> {
              Floor.Run r = floor.run(n, k);
              yield r.steps() * 1e9 / r.wallNanos();
            }
            case "keel-scripted" -> keel("scripted", "scripted", n, k).stepsPerSecond();
            default -> keel("openai", "openai", n, k).stepsPerSecond();
          };
          rates.get(v).add(sps);
        }
      }
      for (String v : variants) {
        Map<String, Object> point = new LinkedHashMap<>();
        point.put("sessions", n);
        point.putAll(Stats.Spread.of(rates.get(v)).json());
        series.get(v).add(point);
      }
      progress.line("concurrency N=" + n + ": " + rates);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("steps", k);
    out.put("reps", options.concurrencyReps());
    out.put("steps_per_second", series);
    return out;
  }

  // ---------------------------------------------------------------- tracing

  /**
   * What the OTLP export delivered during the run, and the time to build and render the trace
   * ({@code GET /v1/sessions/{id}/trace}) of one session with about {@code traceSpans} spans.
   */
  private Map<String, Object> tracingResults() throws Exception {
    Map<String, Object> out = new LinkedHashMap<>();
    // export happens when a session suspends; give the exporter a moment to flush its batch
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (collector.spans().isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    check(!collector.spans().isEmpty(), "the OTLP collector received no span from the traced server");
    out.put("spans_exported", collector.spans().size());
    out.put("export_requests", collector.requestCount());
    // a model span and a tool span per step, plus the session, the turn and the final model call
    int k = Math.max(1, (options.traceSpans() - 3) / 2);
    api.apply(Agents.scripted("trace-" + k, k));
    KeelRun r = keel("trace-" + k, "scripted", 1, k);
    String id = r.ids().getFirst();
    int spans = countSpans(api.call("GET", "/v1/sessions/" + id + "/trace", null));
    List<Long> micros = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      long t0 = System.nanoTime();
      api.call("GET", "/v1/sessions/" + id + "/trace", null);
      if (i >= 10) { // the first ten warm up
        micros.add((System.nanoTime() - t0) / 1000);
      }
    }
    out.put("trace_spans", spans);
    out.put("trace_events", server.store().events().events(id, 0, 100_000).size());
    out.put("trace_get_ms", Map.of(
        "p50", Stats.percentile(micros, 50) / 1000.0, "p99", Stats.percentile(micros, 99) / 1000.0, "n", micros.size()));
    progress.line("trace of " + spans + " spans: " + out.get("trace_get_ms") + " ms");
    return out;
  }

  private static int countSpans(tools.jackson.databind.JsonNode span) {
    int n = 1;
    for (tools.jackson.databind.JsonNode c : span.path("children")) {
      n += countSpans(c);
    }
    return n;
  }

  /** One session at a time, K steps: per-step overhead without contention for the 2 cores. */
  private Map<String, Object> uncontended() throws Exception {
    int k = options.latencySteps();
    api.apply(Agents.scripted("scripted-latency", k));
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("steps", k);
    List<Long> ov = new ArrayList<>();
    List<Long> st = new ArrayList<>();
    List<Long> ovs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      KeelRun o = keel("openai", "openai", 1, k);
      KeelRun s = keel("scripted-latency", "scripted", 1, k);
      if (i > 0) { // the first pair warms up
        ov.addAll(o.overheadMillis());
        st.addAll(o.stepMillis());
        ovs.addAll(s.overheadMillis());
      }
    }
    out.put("overhead_ms_openai", percentiles(ov));
    out.put("step_ms_openai", percentiles(st));
    out.put("overhead_ms_scripted", percentiles(ovs));
    progress.line("uncontended (N=1, K=" + k + "): openai overhead " + percentiles(ov) + " ms, step " + percentiles(st) + " ms");
    return out;
  }

  // ---------------------------------------------------------------- bytes per step

  private Map<String, Object> bytesPerStep() throws Exception {
    List<Map<String, Object>> rows = new ArrayList<>();
    int n = options.bytesSessions();
    for (int k : options.bytesSteps()) {
      String agent = "bytes-k" + k;
      api.apply(Agents.scripted(agent, k));
      long before = logicalDbBytes();
      KeelRun r = keel(agent, "scripted", n, k);
      long after = logicalDbBytes();
      KeelRun o = keel("openai", "openai", n, k);
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("steps", k);
      row.put("sessions", n);
      row.put("event_bytes_per_step", (double) r.eventBytes() / r.toolSteps());
      row.put("step_event_bytes_per_step", (double) r.stepEventBytes() / r.toolSteps());
      row.put("fixed_event_bytes_per_session", (double) (r.eventBytes() - r.stepEventBytes()) / n);
      row.put("db_growth_bytes_per_step", (double) (after - before) / r.toolSteps());
      row.put("openai_event_bytes_per_step", (double) o.eventBytes() / o.toolSteps());
      row.put("openai_step_event_bytes_per_step", (double) o.stepEventBytes() / o.toolSteps());
      rows.add(row);
      progress.line("bytes at K=" + k + ": " + row);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("rows", rows);
    return out;
  }

  /** A session receiving many messages in sequence; bytes and time per turn, early against late. */
  private Map<String, Object> longSession() throws Exception {
    api.apply(Agents.oneStepPerTurn("turns"));
    int turns = options.turns();
    long[] bytes = new long[turns + 1];
    long[] db = new long[turns + 1];
    long[] nanos = new long[turns + 1];
    db[0] = logicalDbBytes();
    long t = System.nanoTime();
    String id = api.start("turns", "turn 1");
    try (KeelApi.Follower f = api.follow(id, 0)) {
      for (int turn = 1; turn <= turns; turn++) {
        if (turn > 1) {
          t = System.nanoTime();
          api.send(id, "turn " + turn);
        }
        check(f.awaitFinalAnswer(Duration.ofSeconds(30)), "turn " + turn + " of the long session got no answer");
        nanos[turn] = System.nanoTime() - t;
        bytes[turn] = server.store().events().eventBytes(id);
        db[turn] = logicalDbBytes();
        if (turn % Math.max(1, turns / 10) == 0) {
          progress.line("long session: turn " + turn + "/" + turns + ", " + bytes[turn] + " event bytes");
        }
      }
    }
    int w = Math.max(1, turns / 10);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("turns", turns);
    out.put("window", w);
    out.put("event_bytes_per_turn_first", (double) (bytes[w] - bytes[0]) / w);
    out.put("event_bytes_per_turn_last", (double) (bytes[turns] - bytes[turns - w]) / w);
    out.put("db_growth_per_turn_first", (double) (db[w] - db[0]) / w);
    out.put("db_growth_per_turn_last", (double) (db[turns] - db[turns - w]) / w);
    List<Long> first = new ArrayList<>();
    List<Long> last = new ArrayList<>();
    for (int i = 1; i <= w; i++) {
      first.add(nanos[i] / 1000);
      last.add(nanos[turns - w + i] / 1000);
    }
    out.put("turn_micros_median_first", Stats.percentile(first, 50));
    out.put("turn_micros_median_last", Stats.percentile(last, 50));
    out.put("event_bytes_total", bytes[turns]);
    progress.line("long session: " + out);
    return out;
  }

  // ---------------------------------------------------------------- one Keel run

  private KeelRun keel(String agent, String variant, int n, int k) throws Exception {
    return keel(main, agent, variant, n, k);
  }

  private KeelRun keel(Target target, String agent, String variant, int n, int k) throws Exception {
    KeelServer server = target.server();
    KeelApi api = target.api();
    long startMillis = System.currentTimeMillis();
    long t0 = System.nanoTime();
    List<String> ids = new ArrayList<>();
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<String>> fs = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        fs.add(ex.submit(() -> api.start(agent, "steps=" + k + " run the benchmark")));
      }
      for (Future<String> f : fs) {
        ids.add(f.get());
      }
    }
    long expected = target.expectedIdle().merge(agent, (long) n, Long::sum);
    long deadline = System.nanoTime() + RUN_TIMEOUT.toNanos();
    while (true) {
      Map<String, Long> c = api.counts(agent);
      check(c.getOrDefault("failed", 0L) == 0, "sessions of " + agent + " failed: " + c);
      if (c.getOrDefault("idle", 0L) == expected) {
        break;
      }
      check(System.nanoTime() < deadline, "sessions of " + agent + " did not finish in " + RUN_TIMEOUT + ": " + c);
      Thread.sleep(POLL_MILLIS);
    }
    double polled = (System.nanoTime() - t0) / 1e6;
    long lastAt = 0;
    long toolSteps = 0;
    long bytes = 0;
    long stepBytes = 0;
    List<Long> overhead = new ArrayList<>();
    List<Long> stepMillis = new ArrayList<>();
    List<Long> modelMillis = new ArrayList<>();
    for (String id : ids) {
      List<StoredEvent> events = server.store().events().events(id, 0, 100_000);
      lastAt = Math.max(lastAt, events.getLast().at().toEpochMilli());
      bytes += server.store().events().eventBytes(id);
      List<Long> called = new ArrayList<>();
      List<Long> latency = new ArrayList<>();
      List<Long> duration = new ArrayList<>();
      long fixed = 0;
      for (StoredEvent e : events) {
        switch (e.event()) {
          case SessionEvent.ModelCalled mc -> called.add(e.at().toEpochMilli());
          case SessionEvent.ModelResponded mr -> latency.add(mr.latencyMillis());
          case SessionEvent.ToolCallCompleted tc -> {
            duration.add(tc.durationMillis());
            toolSteps++;
          }
          default -> {}
        }
        long size = storedSize(e);
        stepBytes += size;
        if (e.event() instanceof SessionEvent.SessionStarted || e.event() instanceof SessionEvent.InputReceived) {
          fixed += size;
        }
      }
      // the final model call and its text answer belong to the session, not to a tool step
      for (int i = events.size() - 1, seen = 0; i >= 0 && seen < 2; i--) {
        SessionEvent ev = events.get(i).event();
        if (ev instanceof SessionEvent.ModelCalled || ev instanceof SessionEvent.ModelResponded) {
          fixed += storedSize(events.get(i));
          seen++;
        }
      }
      stepBytes -= fixed;
      for (int i = 0; i + 1 < called.size() && i < duration.size(); i++) {
        long dt = called.get(i + 1) - called.get(i);
        stepMillis.add(dt);
        modelMillis.add(latency.get(i));
        overhead.add(Math.max(0, dt - latency.get(i) - duration.get(i)));
      }
    }
    check(toolSteps == (long) n * k, agent + ": " + toolSteps + " tool steps recorded, expected " + n * k);
    double wall = Math.max(1, lastAt - startMillis);
    return new KeelRun(variant, n, k, wall, polled, toolSteps, overhead, stepMillis, modelMillis, bytes, stepBytes, List.copyOf(ids));
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** The bytes {@code EventStore.eventBytes} counts for one event. */
  private static long storedSize(StoredEvent e) {
    return EventCodec.encode(e.event()).length() + e.event().type().length() + e.node().length() + e.spanId().length() + 16;
  }

  /** The database's logical size (pages in use, WAL included), read on a separate connection. */
  private long logicalDbBytes() throws SQLException {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dataDir.resolve("keel.db"));
        Statement st = c.createStatement()) {
      return pragma(st, "page_count") * pragma(st, "page_size") - pragma(st, "freelist_count") * pragma(st, "page_size");
    }
  }

  private static long pragma(Statement st, String name) throws SQLException {
    try (ResultSet rs = st.executeQuery("PRAGMA " + name)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  static Map<String, Object> percentiles(List<Long> values) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", Stats.percentile(values, 50));
    m.put("p99", Stats.percentile(values, 99));
    m.put("mean", Stats.mean(values));
    m.put("n", values.size());
    return m;
  }

  static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalStateException(message);
    }
  }
}
