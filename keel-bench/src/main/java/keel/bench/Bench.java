package keel.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import keel.core.EventCodec;

/**
 * The benchmark driver behind {@code keel bench}: {@code [SCENARIO…] [--quick] [--sessions N] [--steps K]
 * [--reps R] [--suspended S] [--tasks T] [--budget-sessions B] [--out DIR]}, or {@code jmh [--quick]
 * [REGEX] [--out DIR]} for the JMH micro-benchmarks ({@link Micro}); {@code --jfr} records each named
 * scenario with JDK Flight Recorder ({@link Profile}). It prints progress on standard
 * error and writes {@code results.json} (every figure, every repetition) and {@code report.md} (the
 * machine, the command, the tables and PNG charts in {@code charts/}, see {@link Report}) to the
 * output directory ({@code bench-results} by default).
 *
 * <p>Not thread-safe; one run per JVM.
 */
public final class Bench {

  private Bench() {}

  /** Parsed command line. */
  record Settings(
      List<String> scenarios,
      boolean quick,
      int sessions,
      int steps,
      int warmups,
      int reps,
      int suspended,
      int turns,
      int tasks,
      int budgetSessions,
      int mcpCalls,
      int stormSessions,
      int traceSpans,
      int inFlight,
      int inFlightLatencyMs,
      Path out,
      Path workDir) {

    Settings {
      scenarios = List.copyOf(scenarios);
    }

    /** The same settings for one of the scenarios only ({@code --jfr} records each on its own). */
    Settings only(String scenario) {
      return new Settings(List.of(scenario), quick, sessions, steps, warmups, reps, suspended, turns, tasks, budgetSessions, mcpCalls,
          stormSessions, traceSpans, inFlight, inFlightLatencyMs, out, workDir);
    }

    /** Whether the named scenario is to run. */
    boolean runs(String scenario) {
      return scenarios.contains(scenario) || scenarios.contains("all");
    }

    static Settings parse(String[] args) {
      List<String> scenarios = new ArrayList<>();
      boolean quick = false;
      Integer sessions = null;
      Integer steps = null;
      Integer reps = null;
      Integer suspended = null;
      Integer turns = null;
      Integer tasks = null;
      Integer budgetSessions = null;
      Integer mcpCalls = null;
      Integer stormSessions = null;
      Integer traceSpans = null;
      Integer inFlight = null;
      int inFlightLatencyMs = 1_000;
      Path out = Path.of("bench-results");
      Path work = Path.of(System.getProperty("java.io.tmpdir"));
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        switch (a) {
          case "durable-steps", "suspended", "gateway", "cost", "identity", "budget", "mcp-gateway", "approval-storm", "in-flight", "burst", "interactive", "all" -> {
            if (!scenarios.contains(a)) {
              scenarios.add(a);
            }
          }
          case "--quick" -> quick = true;
          case "--sessions" -> sessions = positive(a, args, ++i);
          case "--steps" -> steps = positive(a, args, ++i);
          case "--reps" -> reps = positive(a, args, ++i);
          case "--suspended" -> suspended = positive(a, args, ++i);
          case "--turns" -> turns = positive(a, args, ++i);
          case "--tasks" -> tasks = positive(a, args, ++i);
          case "--budget-sessions" -> budgetSessions = positive(a, args, ++i);
          case "--mcp-calls" -> mcpCalls = positive(a, args, ++i);
          case "--storm-sessions" -> stormSessions = positive(a, args, ++i);
          case "--trace-spans" -> traceSpans = positive(a, args, ++i);
          case "--in-flight" -> inFlight = positive(a, args, ++i);
          case "--in-flight-latency-ms" -> inFlightLatencyMs = positive(a, args, ++i);
          case "--out" -> out = Path.of(value(a, args, ++i));
          case "--work-dir" -> work = Path.of(value(a, args, ++i));
          default -> throw new IllegalArgumentException("unknown argument \"" + a + "\"; " + USAGE);
        }
      }
      return new Settings(
          scenarios.isEmpty() ? List.of("all") : scenarios,
          quick,
          sessions != null ? sessions : quick ? 20 : 100,
          steps != null ? steps : quick ? 10 : 40,
          quick ? 1 : 3,
          reps != null ? reps : quick ? 3 : 5,
          suspended != null ? suspended : quick ? 2_000 : 1_000_000,
          turns != null ? turns : quick ? 100 : 1_000,
          tasks != null ? tasks : quick ? 40 : 300,
          budgetSessions != null ? budgetSessions : quick ? 50 : 500,
          mcpCalls != null ? mcpCalls : quick ? 200 : 2_000,
          stormSessions != null ? stormSessions : quick ? 50 : 1_000,
          traceSpans != null ? traceSpans : quick ? 101 : 1_000,
          inFlight != null ? inFlight : quick ? 200 : 10_000,
          inFlightLatencyMs,
          out,
          work);
    }

    private static String value(String name, String[] args, int i) {
      if (i >= args.length) {
        throw new IllegalArgumentException(name + " needs a value; " + USAGE);
      }
      return args[i];
    }

    private static int positive(String name, String[] args, int i) {
      String v = value(name, args, i);
      try {
        int n = Integer.parseInt(v);
        if (n > 0) {
          return n;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new IllegalArgumentException(name + ": expected a positive number, got \"" + v + "\"");
    }
  }

  static final String USAGE =
      "usage: keel bench [durable-steps|suspended|gateway|cost|identity|budget|mcp-gateway|approval-storm|in-flight|burst|interactive|all]... [--quick]"
          + " [--sessions N] [--steps K] [--reps R] [--suspended S] [--turns T] [--tasks T] [--budget-sessions B]"
          + " [--mcp-calls C] [--storm-sessions S] [--trace-spans N] [--in-flight N] [--in-flight-latency-ms MS] [--out DIR] [--work-dir DIR] [--jfr]\n"
          + "       keel bench jmh [--quick] [REGEX] [--out DIR]\n"
          + "  --jfr  record each named scenario with JDK Flight Recorder (settings=profile) into DIR/profiles/SCENARIO.jfr,\n"
          + "         summarised in DIR/profiles/SCENARIO.md and report.md (hot methods, allocation, lock contention, CPU by\n"
          + "         thread). The recording covers the scenario's whole run in the bench JVM (its in-process servers, set-up and\n"
          + "         warm-up included); child JVMs the scenario starts (suspended's server, in-flight's fake) are not recorded.\n"
          + "         Name the scenarios (not all); not for jmh.";

  public static void main(String[] args) throws Exception {
    if (args.length == 2 && args[0].equals("serve-probe")) {
      Suspended.serveProbe(Path.of(args[1]));
      return;
    }
    if (args.length == 2 && args[0].equals("fake-openai")) {
      InFlight.serveFake(Long.parseLong(args[1]));
      return;
    }
    quietLogging();
    if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help"))) {
      System.out.println(USAGE);
      System.exit(0);
      return;
    }
    if (args.length > 0 && args[0].equals("jmh")) {
      try {
        System.exit(Micro.main(java.util.Arrays.copyOfRange(args, 1, args.length)));
      } catch (IllegalArgumentException e) {
        System.err.println("keel bench jmh: " + e.getMessage());
        System.exit(2);
      }
      return;
    }
    // --jfr: one JDK Flight Recorder recording per scenario (Profile)
    boolean jfr = java.util.Arrays.asList(args).contains("--jfr");
    args = java.util.Arrays.stream(args).filter(a -> !a.equals("--jfr")).toArray(String[]::new);
    Settings s;
    try {
      s = Settings.parse(args);
      if (jfr) {
        checkProfiled(s);
      }
    } catch (IllegalArgumentException e) {
      System.err.println("keel bench: " + e.getMessage());
      System.exit(2);
      return;
    }
    String command = "keel bench " + String.join(" ", args) + (jfr ? " --jfr" : "");
    write(jfr ? runProfiled(s, new Progress(false)) : run(s, new Progress(false)), s.out(), command.strip());
    System.exit(0); // the fake's and clients' threads are daemons or closed; exit promptly anyway
  }

  /** Writes {@code results.json}, {@code report.md} and its charts into {@code out}. */
  static void write(Map<String, Object> results, Path out, String command) throws IOException {
    Files.createDirectories(out);
    results.put("command", command);
    Files.writeString(out.resolve("results.json"), EventCodec.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(results));
    List<String> charts = Report.write(results, out, command);
    System.err.println("wrote " + out.resolve("results.json") + ", " + out.resolve("report.md") + " and " + charts.size()
        + " charts in " + out.resolve("charts"));
  }

  /** The server logs at warn unless -D says otherwise, so that progress lines stay readable. */
  private static void quietLogging() {
    for (String[] kv : new String[][] {
        {"org.slf4j.simpleLogger.defaultLogLevel", "warn"}, {"org.slf4j.simpleLogger.showDateTime", "true"}}) {
      if (System.getProperty(kv[0]) == null) {
        System.setProperty(kv[0], kv[1]);
      }
    }
  }

  /** Runs the chosen scenarios; returns their results as a JSON-ready tree. */
  static Map<String, Object> run(Settings s, Progress progress) throws Exception {
    Map<String, Object> results = new LinkedHashMap<>();
    results.put("machine", machine());
    results.put("settings", settingsJson(s));
    if (s.runs("gateway")) {
      results.put("gateway", new GatewayOverhead(s.quick() ? 200 : 2_000, s.quick() ? 2 : 5, progress).run());
    }
    if (s.runs("identity")) {
      results.put("identity", new IdentityOverhead(s.quick() ? 500 : 5_000, s.quick() ? 2 : 5, s.workDir(), progress).run());
    }
    if (s.runs("cost")) {
      results.put("cost", new CostBench(new CostBench.Options(s.tasks(), 8, CostBench.SEED, s.workDir()), progress).run());
    }
    if (s.runs("budget")) {
      BudgetBench.Options o = new BudgetBench.Options(
          s.budgetSessions(), 2, new java.math.BigDecimal("0.25"), s.quick() ? 1 : 3, s.quick() ? 200 : 1_000, s.quick() ? 200 : 2_000, s.workDir());
      results.put("budget", new BudgetBench(o, progress).run());
    }
    if (s.runs("mcp-gateway")) {
      McpGatewayBench.Options o = new McpGatewayBench.Options(s.mcpCalls(), s.quick() ? 2 : 5,
          s.quick() ? List.of(1, 8) : List.of(1, 4, 16, 64), s.mcpCalls(), s.workDir());
      results.put("mcp_gateway", new McpGatewayBench(o, progress).run());
    }
    if (s.runs("approval-storm")) {
      results.put("approval_storm", new ApprovalStorm(new ApprovalStorm.Options(s.stormSessions(), 5, 64, s.workDir()), progress).run());
    }
    if (s.runs("in-flight")) {
      results.put("in_flight", new InFlight(new InFlight.Options(s.inFlight(), java.time.Duration.ofMillis(s.inFlightLatencyMs()), 256, s.quick() ? 1 : 3, s.workDir()), progress).run());
    }
    if (s.runs("burst")) {
      results.put("burst", new Burst(new Burst.Options(s.quick() ? 100 : 1_000, 10, java.time.Duration.ofMillis(20), s.workDir()), progress).run());
    }
    if (s.runs("interactive")) {
      Interactive.Options o = new Interactive.Options(s.quick() ? 20 : 200, s.quick() ? 5 : 20, List.of(0, 50), s.workDir());
      results.put("interactive", new Interactive(o, progress).run());
    }
    if (s.runs("durable-steps")) {
      List<Integer> ks = s.quick() ? List.of(1, 10) : List.of(1, 10, 80);
      DurableSteps.Options o =
          new DurableSteps.Options(
              s.sessions(), s.steps(), s.warmups(), s.reps(), s.quick() ? 5 : 20, ks, s.turns(), s.quick() ? 10 : 80,
              s.quick() ? List.of(1, 5, s.sessions()) : List.of(1, 10, 50, s.sessions()), s.quick() ? 1 : 3, true,
              s.traceSpans(), true, s.workDir());
      Map<String, Object> r = new DurableSteps(o, progress).run();
      Object dir = r.remove("data_dir");
      deleteTree(Path.of(dir.toString()));
      results.put("durable_steps", r);
    }
    if (s.runs("suspended")) {
      results.put("suspended", new Suspended(new Suspended.Options(s.suspended(), s.quick() ? 50 : 1_000, "1g", s.workDir()), progress).run());
    }
    return results;
  }

  /**
   * Runs each chosen scenario on its own under a JFR recording ({@link Profile}) in {@code
   * out/profiles}; the results are {@link #run}'s plus {@code profiles}, each scenario's summary.
   */
  static Map<String, Object> runProfiled(Settings s, Progress progress) throws Exception {
    checkProfiled(s);
    Map<String, Object> results = new LinkedHashMap<>();
    Map<String, Object> profiles = new LinkedHashMap<>();
    for (String scenario : s.scenarios()) {
      Profile p = Profile.start(scenario, s.out().resolve("profiles"));
      Map<String, Object> r;
      try {
        r = run(s.only(scenario), progress);
      } catch (Exception | Error e) {
        p.close();
        throw e;
      }
      profiles.put(scenario, p.stop());
      progress.line("profile of " + scenario + ": " + s.out().resolve("profiles").resolve(scenario + ".jfr"));
      results.putAll(r);
    }
    results.put("settings", settingsJson(s));
    results.put("profiles", profiles);
    return results;
  }

  private static void checkProfiled(Settings s) {
    if (s.scenarios().contains("all")) {
      throw new IllegalArgumentException("--jfr records the scenarios named on the command line one by one; name them (not all)");
    }
  }

  private static Map<String, Object> settingsJson(Settings s) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("scenarios", s.scenarios());
    m.put("quick", s.quick());
    m.put("sessions", s.sessions());
    m.put("steps", s.steps());
    m.put("warmups", s.warmups());
    m.put("reps", s.reps());
    m.put("suspended", s.suspended());
    m.put("turns", s.turns());
    m.put("tasks", s.tasks());
    m.put("budget_sessions", s.budgetSessions());
    m.put("mcp_calls", s.mcpCalls());
    m.put("storm_sessions", s.stormSessions());
    m.put("in_flight", s.inFlight());
    m.put("in_flight_latency_ms", s.inFlightLatencyMs());
    return m;
  }

  static Map<String, Object> machine() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cores", Runtime.getRuntime().availableProcessors());
    m.put("cpu", cpuModel());
    m.put("jdk", System.getProperty("java.vm.name") + " " + Runtime.version());
    m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
    try {
      for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (l.startsWith("MemTotal:")) {
          m.put("memory_mib", Long.parseLong(l.replaceAll("[^0-9]", "")) / 1024);
        }
      }
    } catch (IOException | RuntimeException e) {
      m.put("memory_mib", -1);
    }
    m.put("max_heap_mib", Runtime.getRuntime().maxMemory() / 1048576);
    return m;
  }

  private static String cpuModel() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (l.startsWith("model name")) {
          return l.substring(l.indexOf(':') + 1).strip();
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux: the architecture says enough
    }
    return System.getProperty("os.arch");
  }

  // ---------------------------------------------------------------- Markdown

  @SuppressWarnings("unchecked")
  static String markdown(Map<String, Object> r) {
    StringBuilder b = new StringBuilder();
    Map<String, Object> m = (Map<String, Object>) r.get("machine");
    b.append("Machine: ").append(m.get("cores")).append(" cores (").append(m.get("cpu")).append("), ")
        .append(m.get("memory_mib")).append(" MiB, ")
        .append(m.get("jdk")).append(", ").append(m.get("os")).append(".\n\n");
    Map<String, Object> g = (Map<String, Object>) r.get("gateway");
    if (g != null) {
      Map<String, Object> gw = (Map<String, Object>) g.get("gateway_us");
      Map<String, Object> pr = (Map<String, Object>) g.get("provider_us");
      b.append("### Model gateway overhead per call (").append(g.get("reps")).append(" × ").append(g.get("calls_per_rep"))
          .append(" sequential calls against the zero-latency fake, after a warm-up)\n\n")
          .append("| path | p50 (µs) | p90 (µs) | p99 (µs) |\n| --- | --- | --- | --- |\n")
          .append("| provider called directly (LangChain4j through Keel's OpenAI provider) | ").append(micros(pr.get("p50")))
          .append(" | ").append(micros(pr.get("p90"))).append(" | ").append(micros(pr.get("p99"))).append(" |\n")
          .append("| through the model gateway | ").append(micros(gw.get("p50"))).append(" | ").append(micros(gw.get("p90")))
          .append(" | ").append(micros(gw.get("p99"))).append(" |\n\n")
          .append("Gateway overhead at p50: **").append(String.format("%.0f", (Double) g.get("overhead_p50_us"))).append(" µs** per call.\n\n");
    }
    Map<String, Object> id = (Map<String, Object>) r.get("identity");
    if (id != null) {
      Map<String, Object> is = (Map<String, Object>) id.get("issue_us");
      Map<String, Object> fc = (Map<String, Object>) id.get("first_check_us");
      Map<String, Object> rc = (Map<String, Object>) id.get("repeat_check_us");
      b.append("### Agent identity per use (").append(id.get("reps")).append(" × ").append(id.get("ops_per_rep"))
          .append(" sequential operations on a SQLite key store, after a warm-up; tokens of ").append(id.get("token_bytes"))
          .append(" bytes)\n\n")
          .append("| operation | p50 (µs) | p90 (µs) | p99 (µs) |\n| --- | --- | --- | --- |\n")
          .append("| issue a session token (ES256 signature) | ").append(micros(is.get("p50"))).append(" | ")
          .append(micros(is.get("p90"))).append(" | ").append(micros(is.get("p99"))).append(" |\n")
          .append("| first check of a token on a node (signature, claims, grant) | ").append(micros(fc.get("p50"))).append(" | ")
          .append(micros(fc.get("p90"))).append(" | ").append(micros(fc.get("p99"))).append(" |\n")
          .append("| check of a token verified before (expiry, session, grant) | ")
          .append(String.format("%.1f | %.1f | %.1f", (Double) rc.get("p50"), (Double) rc.get("p90"), (Double) rc.get("p99")))
          .append(" |\n\n");
    }
    Map<String, Object> mg = (Map<String, Object>) r.get("mcp_gateway");
    if (mg != null) {
      mcpGatewayMarkdown(b, mg);
    }
    Map<String, Object> st = (Map<String, Object>) r.get("approval_storm");
    if (st != null) {
      stormMarkdown(b, st);
    }
    Map<String, Object> inf = (Map<String, Object>) r.get("in_flight");
    if (inf != null) {
      inFlightMarkdown(b, inf);
    }
    Map<String, Object> bst = (Map<String, Object>) r.get("burst");
    if (bst != null) {
      b.append("### Burst: ").append(bst.get("requests")).append(" concurrent requests (model latency ").append(bst.get("model_latency_ms"))
          .append(" ms, default node settings)\n\n| target | accepted | refused (429) | admission p50 / p99 / max (ms) |\n| --- | --- | --- | --- |\n");
      for (String[] row : new String[][] {{"new_sessions", "new sessions"}, {"hot", bst.get("hot_sessions") + " hot sessions"}}) {
        Map<String, Object> x = (Map<String, Object>) bst.get(row[0]);
        b.append("| ").append(row[1]).append(" | ").append(x.get("accepted")).append(" | ").append(x.get("refused_429")).append(" | ")
            .append(num(x.get("admission_p50_ms"), 1)).append(" / ").append(num(x.get("admission_p99_ms"), 1)).append(" / ")
            .append(num(x.get("admission_max_ms"), 1)).append(" |\n");
      }
      b.append("\nEvery accepted input stored once and answered; ").append(bst.get("inputs_checked_in_order"))
          .append(" hot-session inputs checked in order.\n\n");
    }
    Map<String, Object> ia = (Map<String, Object>) r.get("interactive");
    if (ia != null) {
      interactiveMarkdown(b, ia);
    }
    Map<String, Object> c = (Map<String, Object>) r.get("cost");
    if (c != null) {
      costMarkdown(b, c);
    }
    Map<String, Object> bu = (Map<String, Object>) r.get("budget");
    if (bu != null) {
      budgetMarkdown(b, bu);
    }
    Map<String, Object> d = (Map<String, Object>) r.get("durable_steps");
    if (d != null) {
      Map<String, Object> t = (Map<String, Object>) d.get("throughput");
      b.append("### Durable steps: N = ").append(t.get("sessions")).append(" sessions × K = ").append(t.get("steps"))
          .append(" tool steps (").append(t.get("warmups")).append(" warm-ups, ").append(t.get("reps"))
          .append(" measured repetitions, interleaved; median (min–max))\n\n");
      b.append("| variant | durable steps/s | process CPU per step (µs) | per-step overhead p50 / p99 (ms) |\n| --- | --- | --- | --- |\n");
      Map<String, Object> sps = (Map<String, Object>) t.get("steps_per_second");
      Map<String, Object> cpu = (Map<String, Object>) t.get("cpu_micros_per_step");
      b.append("| floor: plain HttpClient loop, no persistence | ").append(spread(sps.get("floor"), 0)).append(" | ")
          .append(spread(cpu.get("floor"), 0)).append(" | — |\n");
      b.append("| provider library loop: Keel's OpenAI provider (LangChain4j), no runtime, no persistence | ")
          .append(spread(sps.get("library"), 0)).append(" | ").append(spread(cpu.get("library"), 0)).append(" | — |\n");
      b.append("| Keel, `openai` provider → FakeOpenAi | ").append(spread(sps.get("keel-openai"), 0)).append(" | ")
          .append(spread(cpu.get("keel-openai"), 0)).append(" | ").append(pp(t.get("overhead_ms_openai"))).append(" |\n");
      b.append("| Keel, `scripted` model | ").append(spread(sps.get("keel-scripted"), 0)).append(" | ")
          .append(spread(cpu.get("keel-scripted"), 0)).append(" | ").append(pp(t.get("overhead_ms_scripted"))).append(" |\n");
      if (sps.containsKey("keel-openai-pg")) {
        b.append("| Keel on PostgreSQL, `openai` provider → FakeOpenAi | ").append(spread(sps.get("keel-openai-pg"), 0)).append(" | ")
            .append(spread(cpu.get("keel-openai-pg"), 0)).append(" | — |\n");
        b.append("| Keel on PostgreSQL, `scripted` model | ").append(spread(sps.get("keel-scripted-pg"), 0)).append(" | ")
            .append(spread(cpu.get("keel-scripted-pg"), 0)).append(" | — |\n");
      }
      b.append("\n");
      b.append("Keel (openai) / floor: **").append(spread(t.get("keel_openai_over_floor"), 2)).append("**; ")
          .append("Keel (scripted) / floor: ").append(spread(t.get("keel_scripted_over_floor"), 2)).append("; ")
          .append("Keel (openai) / provider library loop: **").append(spread(t.get("keel_openai_over_library"), 2)).append("**; ")
          .append("provider library loop / floor: ").append(spread(t.get("library_over_floor"), 2)).append(".");
      if (t.containsKey("keel_openai_pg_over_floor")) {
        b.append(" On PostgreSQL (embedded server, `fsync` and `synchronous_commit` on, same JVM and run): Keel (openai) / floor: **")
            .append(spread(t.get("keel_openai_pg_over_floor"), 2)).append("**; Keel (scripted) / floor: ")
            .append(spread(t.get("keel_scripted_pg_over_floor"), 2)).append(".");
      }
      b.append("\n\n");
      Map<String, Object> u = (Map<String, Object>) d.get("uncontended");
      b.append("One session alone (N = 1, K = ").append(u.get("steps")).append("): per-step overhead p50 / p99 ")
          .append(pp(u.get("overhead_ms_openai"))).append(" ms (openai), ").append(pp(u.get("overhead_ms_scripted")))
          .append(" ms (scripted); whole step p50 / p99 ").append(pp(u.get("step_ms_openai"))).append(" ms (openai).\n\n");
      Map<String, Object> by = (Map<String, Object>) d.get("bytes_per_step");
      b.append("### Bytes stored per step (scripted; openai in the last column)\n\n");
      b.append("| K | sessions | event bytes / step (all events) | step events / step | fixed per session | SQLite growth / step | openai: step events / step |\n");
      b.append("| --- | --- | --- | --- | --- | --- | --- |\n");
      for (Map<String, Object> row : (List<Map<String, Object>>) by.get("rows")) {
        b.append("| ").append(row.get("steps")).append(" | ").append(row.get("sessions")).append(" | ")
            .append(num(row.get("event_bytes_per_step"), 0)).append(" | ").append(num(row.get("step_event_bytes_per_step"), 0))
            .append(" | ").append(num(row.get("fixed_event_bytes_per_session"), 0)).append(" | ")
            .append(num(row.get("db_growth_bytes_per_step"), 0)).append(" | ")
            .append(num(row.get("openai_step_event_bytes_per_step"), 0)).append(" |\n");
      }
      Map<String, Object> l = (Map<String, Object>) d.get("long_session");
      b.append("\n### One session, ").append(l.get("turns")).append(" turns (one tool step each)\n\n");
      b.append("| turns | event bytes / turn | SQLite growth / turn | turn time p50 (ms) |\n| --- | --- | --- | --- |\n");
      b.append("| first ").append(l.get("window")).append(" | ").append(num(l.get("event_bytes_per_turn_first"), 0)).append(" | ")
          .append(num(l.get("db_growth_per_turn_first"), 0)).append(" | ").append(num(((Number) l.get("turn_micros_median_first")).doubleValue() / 1000, 2)).append(" |\n");
      b.append("| last ").append(l.get("window")).append(" | ").append(num(l.get("event_bytes_per_turn_last"), 0)).append(" | ")
          .append(num(l.get("db_growth_per_turn_last"), 0)).append(" | ").append(num(((Number) l.get("turn_micros_median_last")).doubleValue() / 1000, 2)).append(" |\n\n");
      concurrencyMarkdown(b, (Map<String, Object>) d.get("concurrency"));
      tracingMarkdown(b, t, (Map<String, Object>) d.get("tracing"));
    }
    Map<String, Object> s = (Map<String, Object>) r.get("suspended");
    if (s != null) {
      suspendedMarkdown(b, s);
    }
    return b.toString();
  }

  @SuppressWarnings("unchecked")
  private static void concurrencyMarkdown(StringBuilder b, Map<String, Object> c) {
    if (c == null) {
      return;
    }
    Map<String, Object> series = (Map<String, Object>) c.get("steps_per_second");
    b.append("### Throughput against concurrency (K = ").append(c.get("steps")).append(", median (min–max) of ")
        .append(c.get("reps")).append(" repetitions, steps/s)\n\n| sessions |");
    series.keySet().forEach(v -> b.append(" ").append(v).append(" |"));
    b.append("\n| ---").append(" | ---".repeat(series.size())).append(" |\n");
    int rows = ((List<Object>) series.values().iterator().next()).size();
    for (int i = 0; i < rows; i++) {
      b.append("| ").append(((Map<String, Object>) ((List<Object>) series.values().iterator().next()).get(i)).get("sessions")).append(" |");
      for (Object points : series.values()) {
        b.append(" ").append(spread(((List<Object>) points).get(i), 0)).append(" |");
      }
      b.append("\n");
    }
    b.append("\n");
  }

  @SuppressWarnings("unchecked")
  private static void tracingMarkdown(StringBuilder b, Map<String, Object> t, Map<String, Object> tr) {
    if (tr == null) {
      return;
    }
    Map<String, Object> sps = (Map<String, Object>) t.get("steps_per_second");
    Map<String, Object> cpu = (Map<String, Object>) t.get("cpu_micros_per_step");
    Map<String, Object> ratio = (Map<String, Object>) t.get("otlp_on_over_off");
    b.append("### Tracing overhead: OTLP export on against off (same run, interleaved; median (min–max))\n\n")
        .append("| variant | export off: steps/s | export on: steps/s | on / off | CPU per step off / on (µs) |\n")
        .append("| --- | --- | --- | --- | --- |\n");
    for (String v : List.of("scripted", "openai")) {
      b.append("| Keel, `").append(v).append("` | ").append(spread(sps.get("keel-" + v), 0)).append(" | ")
          .append(spread(sps.get("keel-" + v + "-otlp"), 0)).append(" | **").append(spread(ratio.get(v), 2)).append("** | ")
          .append(num(((Map<String, Object>) cpu.get("keel-" + v)).get("median"), 0)).append(" / ")
          .append(num(((Map<String, Object>) cpu.get("keel-" + v + "-otlp")).get("median"), 0)).append(" |\n");
    }
    Map<String, Object> get = (Map<String, Object>) tr.get("trace_get_ms");
    b.append("\nThe collector received ").append(tr.get("spans_exported")).append(" spans in ").append(tr.get("export_requests"))
        .append(" requests. `GET /v1/sessions/{id}/trace` of a session with ").append(tr.get("trace_spans")).append(" spans (")
        .append(tr.get("trace_events")).append(" events), round trip including the client's JSON parse: p50 ")
        .append(num(get.get("p50"), 2)).append(" ms, p99 ").append(num(get.get("p99"), 2)).append(" ms over ")
        .append(get.get("n")).append(" requests.\n\n");
  }

  @SuppressWarnings("unchecked")
  private static void mcpGatewayMarkdown(StringBuilder b, Map<String, Object> g) {
    Map<String, Object> d = (Map<String, Object>) g.get("direct_us");
    Map<String, Object> gw = (Map<String, Object>) g.get("gateway_us");
    b.append("### MCP gateway: added latency per call (").append(g.get("reps")).append(" × ").append(g.get("calls_per_rep"))
        .append(" sequential calls, direct and gateway alternating, after a warm-up; ").append(g.get("server")).append(")\n\n")
        .append("| path | p50 (µs) | p90 (µs) | p99 (µs) |\n| --- | --- | --- | --- |\n");
    latencyRow(b, "direct: MCP SDK client → server", d);
    latencyRow(b, "Keel: token check + policy (CEL) + gateway call + audit records", gw);
    Map<String, Object> stages = (Map<String, Object>) g.get("gateway_stages_us");
    latencyRow(b, "&nbsp;&nbsp;of which the session token check", (Map<String, Object>) stages.get("token_check"));
    latencyRow(b, "&nbsp;&nbsp;of which the policy check", (Map<String, Object>) stages.get("policy_check"));
    latencyRow(b, "&nbsp;&nbsp;of which the gateway's call to the server", (Map<String, Object>) stages.get("gateway_call"));
    latencyRow(b, "&nbsp;&nbsp;of which the audit append (3 chained records, no fsync of its own)",
        (Map<String, Object>) stages.get("audit_append"));
    b.append("\nLatency added by the gateway at p50: **").append(num(g.get("added_p50_us"), 0)).append(" µs** per call (per repetition: ")
        .append(spread(g.get("added_p50_us_per_rep"), 0)).append(" µs; at p99: ").append(num(g.get("added_p99_us"), 0))
        .append(" µs); the gateway's call alone adds ").append(num(g.get("added_p50_call_only_us"), 0))
        .append(" µs at p50. Target: under 1 ms at p50. ").append(g.get("audit_records_written"))
        .append(" audit records written, chain verified: ").append(g.get("audit_chain_verified")).append(".\n\n");
    b.append("Calls per second against concurrency (median (min–max)):\n\n| concurrent callers | direct | through the gateway | gateway / direct |\n| --- | --- | --- | --- |\n");
    for (Map<String, Object> row : (List<Map<String, Object>>) g.get("concurrency")) {
      double dm = ((Number) ((Map<String, Object>) row.get("direct_calls_per_second")).get("median")).doubleValue();
      double gm = ((Number) ((Map<String, Object>) row.get("gateway_calls_per_second")).get("median")).doubleValue();
      b.append("| ").append(row.get("concurrency")).append(" | ").append(spread(row.get("direct_calls_per_second"), 0)).append(" | ")
          .append(spread(row.get("gateway_calls_per_second"), 0)).append(" | ").append(String.format(Locale.ROOT, "%.2f", gm / dm))
          .append(" |\n");
    }
    b.append("\n");
  }

  private static void latencyRow(StringBuilder b, String label, Map<String, Object> p) {
    b.append("| ").append(label).append(" | ").append(num(p.get("p50"), 0)).append(" | ").append(num(p.get("p90"), 0))
        .append(" | ").append(num(p.get("p99"), 0)).append(" |\n");
  }

  @SuppressWarnings("unchecked")
  private static void stormMarkdown(StringBuilder b, Map<String, Object> s) {
    Map<String, Object> lat = (Map<String, Object>) s.get("approve_latency_ms");
    b.append("### Approval storm: ").append(s.get("sessions")).append(" sessions suspended at ").append(s.get("calls_per_session"))
        .append(" approvals each, then all ").append(s.get("approvals")).append(" approvals sent through the REST API by ")
        .append(s.get("clients")).append(" concurrent clients\n\n")
        .append("| figure | value |\n| --- | --- |\n")
        .append("| time to suspend every session at its approvals | ").append(num(s.get("suspend_seconds"), 1)).append(" s |\n")
        .append("| time until every approval was acknowledged (stored) | ").append(num(s.get("approvals_acknowledged_seconds"), 1)).append(" s |\n")
        .append("| approvals acknowledged per second | **").append(num(s.get("approvals_per_second"), 0)).append("** |\n")
        .append("| time from the first approval until every session had resumed and completed | **")
        .append(num(s.get("all_completed_seconds"), 1)).append(" s** |\n")
        .append("| approved calls executed per second (end to end) | ").append(num(s.get("calls_executed_per_second"), 0)).append(" |\n")
        .append("| approve request latency p50 / p99 / max | ").append(num(lat.get("p50"), 1)).append(" / ").append(num(lat.get("p99"), 1))
        .append(" / ").append(num(lat.get("max"), 1)).append(" ms |\n")
        .append("| approvals retried after a 429 | ").append(s.get("approve_retries_after_429")).append(" |\n")
        .append("| calls executed on the tool's side (distinct idempotency keys) | ").append(s.get("executed_calls")).append(" (")
        .append(s.get("distinct_idempotency_keys")).append(") of ").append(s.get("approvals")).append(" |\n")
        .append("| sessions completed | ").append(s.get("sessions_completed")).append(" of ").append(s.get("sessions")).append(" |\n\n");
  }

  @SuppressWarnings("unchecked")
  private static void inFlightMarkdown(StringBuilder b, Map<String, Object> f) {
    Map<String, Object> before = (Map<String, Object>) f.get("memory_before");
    Map<String, Object> peak = (Map<String, Object>) f.get("memory_during_wait");
    Map<String, Object> start = (Map<String, Object>) f.get("start_round_trip_ms");
    b.append("### In flight: ").append(f.get("sessions")).append(" sessions each waiting on a model call of ")
        .append(f.get("model_latency_ms")).append(" ms (node: max concurrent steps ").append(f.get("max_concurrent_steps"))
        .append(", admission capacity ").append(f.get("admission_capacity")).append("; started by ").append(f.get("clients"))
        .append(" concurrent API clients; warm-up of ").append(f.get("warmup_sessions")).append(" sessions, then ")
        .append(f.get("reps")).append(" repetitions interleaved with the floor; median (min–max))\n\n")
        .append("| figure | value |\n| --- | --- |\n")
        .append("| time until every session was accepted | ").append(spread(f.get("all_accepted_seconds"), 2)).append(" s |\n")
        .append("| time until every session had its answer (ideal) | ").append(spread(f.get("all_completed_seconds"), 2))
        .append(" s (").append(num(f.get("ideal_seconds"), 2)).append(" s) |\n")
        .append("| floor: the same calls from N virtual threads, no runtime | ").append(spread(f.get("floor_seconds"), 2)).append(" s |\n")
        .append("| completions per second (ideal) | ").append(spread(f.get("completions_per_second"), 0)).append(" (")
        .append(num(f.get("ideal_completions_per_second"), 0)).append(") |\n")
        .append("| Keel: fraction of ideal | **").append(spreadPct(f.get("fraction_of_ideal"))).append("** |\n")
        .append("| floor: fraction of ideal | ").append(spreadPct(f.get("floor_fraction_of_ideal"))).append(" |\n")
        .append("| Keel: fraction of the floor | **").append(spreadPct(f.get("fraction_of_floor"))).append("** |\n")
        .append("| sessions started per second | ").append(spread(f.get("admissions_per_second"), 0)).append(" |\n")
        .append("| `POST /v1/sessions` round trip p50 / p99 (last repetition) | ").append(num(start.get("p50"), 1)).append(" / ")
        .append(num(start.get("p99"), 1)).append(" ms |\n")
        .append("| last answer after the last start | ").append(spread(f.get("after_last_accepted_seconds"), 2)).append(" s |\n")
        .append("| most sessions accepted and not yet answered at once (polled) | ").append(f.get("peak_waiting_sessions")).append(" |\n")
        .append("| heap live after GC, before → max during the waits | ").append(num(before.get("heap_live_mib"), 0)).append(" → **")
        .append(num(peak.get("heap_live_max_mib"), 0)).append(" MiB** |\n")
        .append("| heap used (incl. garbage), max during the waits | ").append(num(peak.get("heap_used_max_mib"), 0)).append(" MiB |\n")
        .append("| RSS, before → max during the waits | ").append(num(before.get("rss_mib"), 0)).append(" → ")
        .append(num(peak.get("rss_max_mib"), 0)).append(" MiB |\n")
        .append("| model calls served (Keel and floor, warm-up included) | ").append(f.get("model_calls")).append(" |\n\n");
  }

  /** {@code median (min–max)} of fractions, as percentages. */
  @SuppressWarnings("unchecked")
  private static String spreadPct(Object spread) {
    Map<String, Object> m = (Map<String, Object>) spread;
    return pct(m.get("median")) + " (" + pct(m.get("min")) + "–" + pct(m.get("max")) + ")";
  }

  @SuppressWarnings("unchecked")
  private static void interactiveMarkdown(StringBuilder b, Map<String, Object> ia) {
    b.append("### Interactive latency: ").append(ia.get("messages")).append(" messages per path after ").append(ia.get("warmups"))
        .append(" warm-up messages, one session per path, paths taking turns (model: ").append(ia.get("model"))
        .append("; its calls took ").append(num(ia.get("model_call_ms_p50"), 0)).append(" ms at p50 as Keel measured them)\n\n")
        .append("| path | POST → 202 p50 / p99 (ms) | first event of the turn p50 / p99 (ms) | final answer p50 / p99 / max (ms) | HTTP requests |\n")
        .append("| --- | --- | --- | --- | --- |\n");
    for (Map.Entry<String, Object> e : ((Map<String, Object>) ia.get("paths")).entrySet()) {
      Map<String, Object> p = (Map<String, Object>) e.getValue();
      Map<String, Object> ack = (Map<String, Object>) p.get("post_202_ms");
      Map<String, Object> first = (Map<String, Object>) p.get("first_event_ms");
      Map<String, Object> answer = (Map<String, Object>) p.get("final_answer_ms");
      String label = e.getKey().equals("sse") ? "SSE stream held open (push)"
          : e.getKey().startsWith("poll_0") ? "request/response, events polled back to back"
          : "request/response, events polled every " + e.getKey().replace("poll_", "").replace("ms", " ms");
      b.append("| ").append(label).append(" | ").append(num(ack.get("p50"), 2)).append(" / ").append(num(ack.get("p99"), 2))
          .append(" | ").append(num(first.get("p50"), 2)).append(" / ").append(num(first.get("p99"), 2)).append(" | **")
          .append(num(answer.get("p50"), 2)).append("** / ").append(num(answer.get("p99"), 2)).append(" / ")
          .append(num(answer.get("max"), 2)).append(" | ").append(p.get("requests")).append(" |\n");
    }
    b.append("\nTimes from just before the POST. Every turn's events arrived once, in sequence order, beginning with its input and ending")
        .append(" with the one answer to it; every session stored each message and its answer once, in order (")
        .append(ia.get("answers_checked")).append(" answers checked).\n\n");
  }

  @SuppressWarnings("unchecked")
  private static void costMarkdown(StringBuilder b, Map<String, Object> c) {
    Map<String, Object> a = (Map<String, Object>) c.get("raw_api");
    Map<String, Object> k = (Map<String, Object>) c.get("keel");
    b.append("### Model cost: raw API vs Keel's defaults (").append(c.get("tasks")).append(" tasks: ")
        .append(c.get("easy_tasks")).append(" easy, ").append(c.get("hard_tasks")).append(" hard; seed ")
        .append(c.get("seed")).append("; ").append(c.get("concurrency")).append(" at a time)\n\n");
    b.append("| | (a) raw API: ").append(CostBench.MAIN).append(", no caching, no routing | (b) Keel's defaults: ")
        .append(CostBench.SMALL).append(" first, escalation to ").append(CostBench.MAIN).append(", prompt caching |\n")
        .append("| --- | --- | --- |\n");
    costRow(b, "tasks succeeded", a.get("successes") + " / " + a.get("tasks") + " (" + pct(a.get("success_rate")) + ")",
        k.get("successes") + " / " + k.get("tasks") + " (" + pct(k.get("success_rate")) + ")");
    costRow(b, "hard tasks succeeded", a.get("hard_successes") + " / " + c.get("hard_tasks"), k.get("hard_successes") + " / " + c.get("hard_tasks"));
    costRow(b, "total model cost (USD)", "**" + a.get("cost_usd") + "**", "**" + k.get("cost_usd") + "**");
    costRow(b, "cost per task (USD)", usd(a.get("cost_per_task_usd")), usd(k.get("cost_per_task_usd")));
    costRow(b, "model calls (small / main)", a.get("model_calls") + " (0 / " + a.get("main_model_calls") + ")",
        k.get("model_calls") + " (" + k.get("small_model_calls") + " / " + k.get("main_model_calls") + ")");
    costRow(b, "escalations to the main model", "—", String.valueOf(k.get("escalations")));
    for (String t : List.of("input", "output", "cache_write", "cache_read")) {
      costRow(b, t.replace('_', ' ') + " tokens", num(a.get(t + "_tokens"), 0), num(k.get(t + "_tokens"), 0));
    }
    costRow(b, "same tokens, cache writes and reads at the input price (USD)", usd(a.get("cost_without_cache_prices_usd")),
        usd(k.get("cost_without_cache_prices_usd")));
    costRow(b, "as reported, but the small model never cached (USD)", "—", usd(k.get("cost_small_model_uncached_usd")));
    b.append("\nKeel's saving: **").append(pct(c.get("saving"))).append("** (routing ").append(pct(c.get("saving_routing")))
        .append(", caching ").append(pct(c.get("saving_caching"))).append(" of the raw-API cost); ")
        .append(pct(c.get("saving_small_model_uncached"))).append(" if the small model's calls had not been cached. ")
        .append("Target ≥ 50 % lower cost at equal task success: **")
        .append(Boolean.TRUE.equals(c.get("target_met")) ? "met" : "not met").append("**.\n\n");
  }

  @SuppressWarnings("unchecked")
  private static void budgetMarkdown(StringBuilder b, Map<String, Object> bu) {
    b.append("### Budget enforcement under contention: ").append(bu.get("sessions")).append(" concurrent sessions of one agent, ")
        .append(bu.get("model_calls_per_session")).append(" model calls each, model latency ").append(bu.get("model_latency_ms"))
        .append(" ms, `usd_per_day` = ").append(bu.get("fraction")).append(" × what the sessions would spend\n\n");
    b.append("| output estimate per call | limit (USD) | used (USD) | utilisation | overspend (USD) | calls in flight when the limit was crossed (their cost, USD) | sessions completed / blocked | target met? |\n");
    b.append("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (String key : List.of("enforcement", "enforcement_low_estimate")) {
      Map<String, Object> e = (Map<String, Object>) bu.get(key);
      b.append("| ").append(e.get("output_token_estimate")).append(" tokens | ").append(e.get("limit_usd")).append(" | ")
          .append(e.get("used_usd")).append(" | ").append(pct(e.get("utilisation"))).append(" | ").append(e.get("overspend_usd"))
          .append(" | ").append(e.get("in_flight_at_limit_calls")).append(" (").append(e.get("in_flight_at_limit_usd")).append(") | ")
          .append(e.get("sessions_completed")).append(" / ").append(e.get("sessions_blocked")).append(" | ")
          .append(Boolean.TRUE.equals(e.get("target_met")) ? "yes" : "no").append(" |\n");
    }
    Map<String, Object> o = (Map<String, Object>) bu.get("overhead");
    Map<String, Object> cpu = (Map<String, Object>) o.get("cpu_micros_per_call");
    Map<String, Object> wall = (Map<String, Object>) o.get("wall_micros_per_call");
    Map<String, Object> lat = (Map<String, Object>) o.get("reservation_latency_micros");
    b.append("\nOverhead (zero-latency fake, ").append(o.get("model_calls_per_rep")).append(" model calls per repetition; median (min–max)): ")
        .append("process CPU per model call ").append(spread(cpu.get("free"), 0)).append(" µs without a budget, ")
        .append(spread(cpu.get("budgeted"), 0)).append(" µs with one; difference ")
        .append(spread(o.get("cpu_overhead_micros_per_call"), 0)).append(" µs. Wall time per model call ")
        .append(spread(wall.get("free"), 0)).append(" vs ").append(spread(wall.get("budgeted"), 0)).append(" µs. ")
        .append("One reservation alone (a durable write): p50 ").append(num(lat.get("p50"), 0)).append(" µs, p99 ")
        .append(num(lat.get("p99"), 0)).append(" µs.\n\n");
  }

  private static void costRow(StringBuilder b, String label, String a, String k) {
    b.append("| ").append(label).append(" | ").append(a).append(" | ").append(k).append(" |\n");
  }

  private static String pct(Object fraction) {
    return String.format(Locale.ROOT, "%.1f %%", ((Number) fraction).doubleValue() * 100);
  }

  private static String usd(Object decimal) {
    return new java.math.BigDecimal(decimal.toString()).setScale(6, java.math.RoundingMode.HALF_UP).toPlainString();
  }

  /** The suspended-density section: memory against sessions in the store, seeding, and the three resume figures. */
  @SuppressWarnings("unchecked")
  private static void suspendedMarkdown(StringBuilder b, Map<String, Object> s) {
    b.append("### Suspended sessions (server in its own JVM, ").append(s.get("child_jvm_options")).append(")\n\n");
    b.append("| sessions in the store | store on disk (MiB) | server start (ms) | heap used after GC (MiB) | heap committed (MiB) | RSS (MiB) |\n")
        .append("| --- | --- | --- | --- | --- | --- |\n");
    List<Map<String, Object>> points = (List<Map<String, Object>>) s.get("points");
    for (Map<String, Object> p : points) {
      Map<String, Object> m = (Map<String, Object>) p.get("idle");
      b.append("| ").append(num(p.get("sessions"), 0)).append(" (idle after start) | ").append(num(((Number) p.get("db_bytes")).doubleValue() / 1048576, 1))
          .append(" | ").append(p.get("server_start_millis")).append(" | ").append(num(m.get("heap_used_mib"), 1)).append(" | ")
          .append(num(m.get("heap_committed_mib"), 1)).append(" | ").append(num(m.get("rss_mib"), 1)).append(" |\n");
    }
    Map<String, Object> rs = (Map<String, Object>) s.get("resume");
    if (rs != null) {
      Map<String, Object> m = (Map<String, Object>) rs.get("after_resumes");
      b.append("| ").append(num(rs.get("sessions_in_store"), 0)).append(" (after ").append(num(((Number) rs.get("n")).intValue() + ((Number) rs.get("warmups")).intValue(), 0))
          .append(" resumes) | | | ").append(num(m.get("heap_used_mib"), 1)).append(" | ").append(num(m.get("heap_committed_mib"), 1)).append(" | ")
          .append(num(m.get("rss_mib"), 1)).append(" |\n");
      Map<String, Object> reaped = (Map<String, Object>) rs.get("after_streams_reaped");
      b.append("| ").append(num(rs.get("sessions_in_store"), 0)).append(" (40 s later: the closed event streams reaped) | | | ")
          .append(num(reaped.get("heap_used_mib"), 1)).append(" | ").append(num(reaped.get("heap_committed_mib"), 1)).append(" | ")
          .append(num(reaped.get("rss_mib"), 1)).append(" |\n");
    }
    Map<String, Object> seeding = (Map<String, Object>) s.get("seeding");
    b.append("\nSeeding: ").append(num(seeding.get("sessions"), 0)).append(" sessions in ").append(num(seeding.get("seconds"), 1)).append(" s (")
        .append(num(seeding.get("sessions_per_second"), 0)).append(" sessions/s, group-committed, fsync off); ")
        .append(num(((Number) seeding.get("db_bytes")).doubleValue() / 1048576, 1)).append(" MiB on disk, ")
        .append(num(seeding.get("db_bytes_per_session"), 0)).append(" bytes a session.\n");
    if (rs != null) {
      Map<String, Object> h = (Map<String, Object>) rs.get("rehydrate_ms");
      b.append("\nResuming ").append(num(rs.get("n"), 0)).append(" distinct random sessions out of ").append(num(rs.get("sessions_in_store"), 0))
          .append(", one after another (after ").append(rs.get("warmups")).append(" unmeasured warm-ups):\n\n");
      b.append("| what | p50 (ms) | p99 (ms) | max (ms) |\n| --- | --- | --- | --- |\n");
      b.append("| (a) rehydrate: a run loads the session (record, snapshot, events folded, agent, inbox); server histogram `keel_session_rehydrate_seconds`, ")
          .append(num(h.get("runs"), 0)).append(" runs | ").append(num(h.get("p50"), 3)).append(" | ").append(num(h.get("p99"), 3))
          .append(" (bucket ≤ ").append(num(h.get("p99_bucket_upper"), 3)).append(") | mean ").append(num(h.get("mean"), 3)).append(" |\n");
      resumeRow(b, "message accepted (`POST …/messages` answered: the inbox row durable)", rs.get("accepted_ms"));
      resumeRow(b, "(b) first durable event on the session's stream after the message", rs.get("first_event_ms"));
      resumeRow(b, "(c) whole turn: message in → final answer durable (one tool step)", rs.get("turn_ms"));
    }
  }

  @SuppressWarnings("unchecked")
  private static void resumeRow(StringBuilder b, String what, Object o) {
    Map<String, Object> m = (Map<String, Object>) o;
    b.append("| ").append(what).append(" | ").append(num(m.get("p50"), 2)).append(" | ").append(num(m.get("p99"), 2)).append(" | ")
        .append(num(m.get("max"), 2)).append(" |\n");
  }

  @SuppressWarnings("unchecked")
  private static String micros(Object value) {
    return String.format("%,.0f", ((Number) value).doubleValue());
  }

  private static String spread(Object o, int decimals) {
    Map<String, Object> m = (Map<String, Object>) o;
    String f = "%,." + decimals + "f";
    return String.format(Locale.ROOT, f + " (" + f + "–" + f + ")", m.get("median"), m.get("min"), m.get("max"));
  }

  @SuppressWarnings("unchecked")
  private static String pp(Object o) {
    Map<String, Object> m = (Map<String, Object>) o;
    return num(m.get("p50"), 0) + " / " + num(m.get("p99"), 0);
  }

  private static String num(Object o, int decimals) {
    return String.format(Locale.ROOT, "%,." + decimals + "f", ((Number) o).doubleValue());
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    List<Path> all = new ArrayList<>();
    try (Stream<Path> s = Files.walk(dir)) {
      s.forEach(all::add);
    }
    all.sort(Comparator.reverseOrder());
    for (Path p : all) {
      Files.deleteIfExists(p);
    }
  }
}
