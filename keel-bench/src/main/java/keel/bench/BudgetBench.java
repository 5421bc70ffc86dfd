package keel.bench;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.control.Budgets;
import keel.core.SessionEvent;
import keel.core.StoredEvent;
import keel.data.CostKind;
import keel.data.CostLedger;
import keel.execution.CostSettings;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;

/**
 * Scenario "budget": budget enforcement under contention, and what a budget check costs.
 *
 * <ul>
 *   <li><b>Enforcement</b>: N sessions of one agent start at once against a real in-process server
 *       (durable SQLite), its model an {@link FakeOpenAi} with a fixed latency and talkative answers
 *       (so output tokens dominate a call's cost), with a {@code usd_per_day} that allows a fraction
 *       of what the N sessions would spend (measured first on an agent without a budget). It reports
 *       what was spent against the limit, the overspend, and the calls in flight when the limit was
 *       reached (the reservations the first refusal saw). Run twice: with the default estimate of a
 *       call's output (1,024 tokens, above what these calls produce) and with an estimate of zero
 *       output tokens (below it), where calls in flight can overspend by what they spend beyond
 *       their estimates.
 *   <li><b>Overhead</b>: the same N sessions against a zero-latency fake, an agent without budgets
 *       against one whose limits never bind (every model call reserves and settles), interleaved
 *       repetitions; process CPU and wall time per model call. And the latency of one reservation
 *       alone, on the same durable store.
 * </ul>
 *
 * <p>Not thread-safe: one run at a time.
 */
final class BudgetBench {

  /** What to run. */
  record Options(int sessions, int steps, BigDecimal fraction, int reps, int modelLatencyMillis, int reservations, Path workDir) {}

  private static final Duration RUN_TIMEOUT = Duration.ofMinutes(10);
  /** The text before each tool call and of each answer: about 150 output tokens a call. */
  private static final String CHATTER =
      ("I am checking the current time against the billing calendar before I answer; the invoice run "
          + "depends on the cut-off, so I will confirm it once more. ").repeat(4);

  private final Options options;
  private final Progress progress;

  BudgetBench(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  Map<String, Object> run() throws Exception {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("sessions", options.sessions());
    out.put("steps", options.steps());
    out.put("model_calls_per_session", options.steps() + 1);
    out.put("fraction", options.fraction().toPlainString());
    out.put("model_latency_ms", options.modelLatencyMillis());
    out.put("enforcement", enforcement(CostSettings.DEFAULT_OUTPUT_TOKEN_ESTIMATE));
    out.put("enforcement_low_estimate", enforcement(0));
    out.put("overhead", overhead());
    return out;
  }

  // ---------------------------------------------------------------- enforcement

  /** The fake's script: the tool loop, with text before every call and a long answer. */
  private static FakeOpenAi.Script talkative() {
    return request -> {
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("steps=(\\d+)").matcher(request.lastUserText());
      int k = m.find() ? Integer.parseInt(m.group(1)) : 0;
      if (request.toolMessagesSinceLastUser() < k) {
        return new FakeOpenAi.Reply(CHATTER, List.of(new FakeOpenAi.Reply.Call("time_now", "{}")), 0);
      }
      return FakeOpenAi.Reply.text(CHATTER + "Done after " + k + " steps.");
    };
  }

  private Map<String, Object> enforcement(long outputEstimate) throws Exception {
    Path data = Files.createTempDirectory(options.workDir(), "keel-budget-");
    FakeOpenAi fake = FakeOpenAi.start().script(talkative()).latency(Duration.ofMillis(options.modelLatencyMillis()));
    KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of())
        .withCosts(CostSettings.defaults().withOutputTokenEstimate(outputEstimate)));
    try {
      KeelApi api = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      int n = options.sessions();
      String message = "steps=" + options.steps();

      // what one session costs, on an agent without a budget
      api.apply(agent("calibrate", fake.baseUrl(), ""));
      int calibrationSessions = Math.min(n, 20);
      List<String> calibration = startAll(api, "calibrate", message, calibrationSessions);
      awaitSettled(api, "calibrate", calibrationSessions);
      BigDecimal calibrated = modelCost(server, "calibrate");
      BigDecimal perSession = calibrated.divide(BigDecimal.valueOf(calibration.size()), 10, RoundingMode.HALF_EVEN);
      BigDecimal limit = perSession.multiply(BigDecimal.valueOf(n)).multiply(options.fraction()).setScale(4, RoundingMode.DOWN);
      progress.line("budget: one session costs " + perSession.toPlainString() + " USD; usd_per_day = " + limit.toPlainString()
          + " for " + n + " sessions (output estimate " + outputEstimate + " tokens)");

      api.apply(agent("capped", fake.baseUrl(), "usd_per_day: " + limit.toPlainString()));
      long t0 = System.nanoTime();
      List<String> ids = startAll(api, "capped", message, n);
      awaitSettled(api, "capped", n);
      awaitNoProgressPossible(server, ids, limit);
      double wallMillis = (System.nanoTime() - t0) / 1e6;
      Crossing crossing = crossing(server, ids, limit);

      Budgets.Status status = server.sessions().budgets().status("capped").getFirst();
      int completed = 0;
      int blocked = 0;
      long modelCalls = 0;
      BigDecimal maxCallCost = BigDecimal.ZERO;
      SessionEvent.BudgetBlocked first = null;
      Instant firstAt = Instant.MAX;
      for (String id : ids) {
        List<StoredEvent> log = server.store().events().eventsAfter(id, 0);
        for (StoredEvent e : log) {
          switch (e.event()) {
            case SessionEvent.ModelResponded r -> {
              modelCalls++;
              maxCallCost = maxCallCost.max(r.costUsd());
            }
            case SessionEvent.BudgetBlocked b -> {
              if (e.at().isBefore(firstAt)) {
                firstAt = e.at();
                first = b;
              }
            }
            case SessionEvent.SessionCompleted c -> completed++;
            default -> {}
          }
        }
        if (server.store().events().session(id).orElseThrow().status() == keel.core.SessionStatus.BUDGET_BLOCKED) {
          blocked++;
        }
      }
      BigDecimal spent = modelCost(server, "capped");
      BigDecimal overspend = status.used().subtract(limit).max(BigDecimal.ZERO);
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("output_token_estimate", outputEstimate);
      r.put("session_cost_usd", perSession.toPlainString());
      r.put("limit_usd", limit.toPlainString());
      r.put("used_usd", status.used().toPlainString());
      r.put("ledger_model_usd", spent.toPlainString());
      r.put("reserved_after_usd", status.reserved().toPlainString());
      r.put("utilisation", status.used().divide(limit, 4, RoundingMode.HALF_EVEN).doubleValue());
      r.put("overspend_usd", overspend.toPlainString());
      r.put("max_model_call_usd", maxCallCost.toPlainString());
      r.put("overspend_in_calls", overspend.divide(maxCallCost.max(new BigDecimal("0.0000000001")), 2, RoundingMode.UP).doubleValue());
      r.put("sessions_completed", completed);
      r.put("sessions_blocked", blocked);
      r.put("model_calls", modelCalls);
      r.put("wall_ms", wallMillis);
      r.put("in_flight_at_limit_calls", crossing.inFlight());
      r.put("in_flight_at_limit_usd", crossing.inFlightUsd().toPlainString());
      if (first != null) {
        r.put("first_refusal_reserved_usd", first.reserved().toPlainString());
        r.put("first_refusal_requested_usd", first.requested().toPlainString());
      }
      // the target: the agent spent beyond its limit no more than the calls in flight when the
      // limit was reached
      r.put("target_met", overspend.compareTo(crossing.inFlightUsd()) <= 0);
      DurableSteps.check(completed + blocked == n, "capped: " + completed + " completed and " + blocked + " blocked of " + n);
      DurableSteps.check(spent.compareTo(status.used()) == 0, "capped: the ledger says " + spent + ", the budget " + status.used());
      progress.line("budget: limit " + limit.toPlainString() + " USD, used " + status.used().toPlainString() + " ("
          + completed + " completed, " + blocked + " blocked), overspend " + overspend.toPlainString() + " USD");
      return r;
    } finally {
      server.close();
      fake.close();
      Bench.deleteTree(data);
    }
  }

  /**
   * The calls in flight when the spending crossed the limit: the calls settled after it, in the
   * order their appends committed (the ledger's ids), the crossing call included. Once the spending
   * is over the limit no call is granted, so these had all been granted before.
   */
  record Crossing(long inFlight, BigDecimal inFlightUsd) {}

  private static Crossing crossing(KeelServer server, List<String> ids, BigDecimal limit) {
    Map<String, long[]> calls = new LinkedHashMap<>(); // session/seq -> {first ledger id}
    Map<String, BigDecimal> cost = new LinkedHashMap<>();
    for (String id : ids) {
      for (CostLedger.Entry e : server.store().ledger().entries(id)) {
        if (e.kind().model()) {
          String call = id + "/" + e.seq();
          calls.merge(call, new long[] {e.id()}, (a, b) -> a[0] <= b[0] ? a : b);
          cost.merge(call, e.usd(), BigDecimal::add);
        }
      }
    }
    List<String> order = new ArrayList<>(calls.keySet());
    order.sort(java.util.Comparator.comparingLong(c -> calls.get(c)[0]));
    BigDecimal spent = BigDecimal.ZERO;
    for (int i = 0; i < order.size(); i++) {
      spent = spent.add(cost.get(order.get(i)));
      if (spent.compareTo(limit) > 0) {
        BigDecimal after = BigDecimal.ZERO;
        for (String c : order.subList(i, order.size())) {
          after = after.add(cost.get(c));
        }
        return new Crossing(order.size() - i, after);
      }
    }
    return new Crossing(0, BigDecimal.ZERO);
  }

  /**
   * Waits until no blocked session can go on before the window ends: nothing is reserved and what
   * is left of the limit is less than any blocked call asks for. (Blocked sessions look again while
   * calls in flight may settle below their estimates, so the run is not over when all are blocked.)
   */
  private static void awaitNoProgressPossible(KeelServer server, List<String> ids, BigDecimal limit) throws InterruptedException {
    long deadline = System.nanoTime() + RUN_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      Budgets.Status st = server.sessions().budgets().status("capped").getFirst();
      if (st.reserved().signum() == 0) {
        BigDecimal left = limit.subtract(st.used());
        boolean stuck = true;
        for (String id : ids) {
          if (server.store().events().session(id).orElseThrow().status() != keel.core.SessionStatus.BUDGET_BLOCKED) {
            if (server.store().events().session(id).orElseThrow().status() != keel.core.SessionStatus.COMPLETED) {
              stuck = false;
              break;
            }
            continue;
          }
          SessionEvent.BudgetBlocked last = null;
          for (StoredEvent e : server.store().events().eventsAfter(id, 0)) {
            if (e.event() instanceof SessionEvent.BudgetBlocked b) {
              last = b;
            }
          }
          if (last == null || last.requested().compareTo(left) <= 0) {
            stuck = false;
            break;
          }
        }
        if (stuck) {
          return;
        }
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException("capped: blocked sessions kept going for " + RUN_TIMEOUT);
  }

  private static String agent(String name, String baseUrl, String budgets) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: bench}
        spec:
          instructions: "Answer billing questions; check the time first."
          model: {provider: openai, name: gpt-4o, base_url: "%s"}
          tools: [internal://time]
        %s""".formatted(name, baseUrl, budgets.isEmpty() ? "" : "  budgets: {" + budgets + "}\n");
  }

  /** How many requests the clients have open at once: enough to start hundreds of sessions in a second. */
  private static final int CLIENT_CONNECTIONS = 32;

  /** Starts {@code n} task sessions as fast as {@value #CLIENT_CONNECTIONS} client connections can. */
  private static List<String> startAll(KeelApi api, String agent, String message, int n) throws Exception {
    List<String> ids = Collections.synchronizedList(new ArrayList<>());
    java.util.concurrent.Semaphore open = new java.util.concurrent.Semaphore(CLIENT_CONNECTIONS);
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> f = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        f.add(clients.submit(() -> {
          open.acquire();
          try {
            String body = keel.core.EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message)
                .put("task", true).toString();
            ids.add(api.call("POST", "/v1/sessions", body).get("id").asString());
          } finally {
            open.release();
          }
          return null;
        }));
      }
      for (Future<?> x : f) {
        x.get();
      }
    }
    return ids;
  }

  /** Waits until every session of the agent has completed or is budget-blocked. */
  private static void awaitSettled(KeelApi api, String agent, int n) throws InterruptedException {
    long deadline = System.nanoTime() + RUN_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      Map<String, Long> c = api.counts(agent);
      long done = c.getOrDefault("completed", 0L) + c.getOrDefault("budget_blocked", 0L) + c.getOrDefault("failed", 0L);
      if (done >= n) {
        DurableSteps.check(c.getOrDefault("failed", 0L) == 0, agent + ": sessions failed: " + c);
        return;
      }
      Thread.sleep(50);
    }
    throw new IllegalStateException(agent + ": sessions did not settle in " + RUN_TIMEOUT + ": " + api.counts(agent));
  }

  private static BigDecimal modelCost(KeelServer server, String agent) {
    Instant now = Instant.now();
    BigDecimal sum = BigDecimal.ZERO;
    for (CostLedger.Row row : server.store().ledger().totals(
        new CostLedger.Query(now.minus(Duration.ofDays(2)), now.plus(Duration.ofDays(1)), java.util.Set.of(CostLedger.Dimension.KIND),
            Optional.of(agent), Optional.empty()), o -> true)) {
      if (CostKind.fromWire(row.group().get(CostLedger.Dimension.KIND)).model()) {
        sum = sum.add(row.usd());
      }
    }
    return sum;
  }

  // ---------------------------------------------------------------- overhead

  private Map<String, Object> overhead() throws Exception {
    Path data = Files.createTempDirectory(options.workDir(), "keel-budget-overhead-");
    FakeOpenAi fake = FakeOpenAi.start();
    KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()));
    try {
      KeelApi api = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      int n = options.sessions();
      String message = "steps=" + options.steps();
      api.apply(agent("free", fake.baseUrl(), ""));
      api.apply(agent("budgeted", fake.baseUrl(), "usd_per_day: 1000000, calls_per_hour: 100000000, tokens_per_day: 1000000000000"));
      long calls = (long) n * (options.steps() + 1);
      Map<String, List<Double>> cpu = new LinkedHashMap<>();
      Map<String, List<Double>> wall = new LinkedHashMap<>();
      for (String v : List.of("free", "budgeted")) {
        cpu.put(v, new ArrayList<>());
        wall.put(v, new ArrayList<>());
      }
      int expected = 0;
      for (int rep = 0; rep < options.reps() + 1; rep++) {
        expected += n;
        List<String> order = rep % 2 == 0 ? List.of("free", "budgeted") : List.of("budgeted", "free");
        for (String v : order) {
          long cpu0 = processCpuNanos();
          long t0 = System.nanoTime();
          startAll(api, v, message, n);
          awaitSettled(api, v, expected);
          double w = (System.nanoTime() - t0) / 1e3 / calls;
          double c = (processCpuNanos() - cpu0) / 1e3 / calls;
          if (rep > 0) { // the first round warms up
            wall.get(v).add(w);
            cpu.get(v).add(c);
          }
          progress.line("budget overhead: " + v + " rep " + rep + ": " + String.format("%.0f", c) + " µs CPU per model call");
        }
      }
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("model_calls_per_rep", calls);
      Map<String, Object> cpuJson = new LinkedHashMap<>();
      cpu.forEach((k, v) -> cpuJson.put(k, Stats.Spread.of(v).json()));
      Map<String, Object> wallJson = new LinkedHashMap<>();
      wall.forEach((k, v) -> wallJson.put(k, Stats.Spread.of(v).json()));
      r.put("cpu_micros_per_call", cpuJson);
      r.put("wall_micros_per_call", wallJson);
      List<Double> cpuDiff = new ArrayList<>();
      List<Double> wallDiff = new ArrayList<>();
      for (int i = 0; i < cpu.get("free").size(); i++) {
        cpuDiff.add(cpu.get("budgeted").get(i) - cpu.get("free").get(i));
        wallDiff.add(wall.get("budgeted").get(i) - wall.get("free").get(i));
      }
      r.put("cpu_overhead_micros_per_call", Stats.Spread.of(cpuDiff).json());
      r.put("wall_overhead_micros_per_call", Stats.Spread.of(wallDiff).json());
      r.put("reservation_latency_micros", reservationLatency(server));
      return r;
    } finally {
      server.close();
      fake.close();
      Bench.deleteTree(data);
    }
  }

  /** One reservation alone (a durable write of the store's writer), then its release, sequentially. */
  private Map<String, Object> reservationLatency(KeelServer server) throws Exception {
    Budgets budgets = server.sessions().budgets();
    List<Long> reserve = new ArrayList<>();
    for (int i = 0; i < options.reservations(); i++) {
      long t0 = System.nanoTime();
      Budgets.Decision d = budgets.beforeModelCall("budgeted", "bench", new BigDecimal("0.001"), 500);
      reserve.add((System.nanoTime() - t0) / 1000);
      if (d instanceof Budgets.Decision.Allowed a) {
        budgets.release(a.reservation());
      } else {
        throw new IllegalStateException("the bench's roomy budget refused a reservation: " + d);
      }
    }
    List<Long> warm = reserve.subList(Math.min(reserve.size() - 1, reserve.size() / 10), reserve.size());
    return DurableSteps.percentiles(warm);
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }
}
