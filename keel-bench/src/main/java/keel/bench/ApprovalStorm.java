package keel.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import keel.testkit.mcp.JournalEntry;
import keel.testkit.mcp.LedgerServer;
import tools.jackson.databind.JsonNode;

/**
 * Scenario "approval-storm": N sessions suspended at an approval, then every approval sent at once.
 *
 * <p>A real in-process server (durable SQLite) with its model a {@link FakeOpenAi} over HTTP and
 * the MCP gateway in front of a {@link LedgerServer} over Streamable HTTP. The agent's first model
 * turn asks for {@code calls} {@code ledger/post-entry} calls together, each worth more than its
 * {@code spec.approval.on_action_value_usd_gt}, so each waits for a human; once their results are
 * in, the model answers and the session (a task) completes. N sessions are started by an operator
 * and wait ({@code awaiting_approval}); then every approval is sent through {@code POST
 * /v1/approvals/{id}/approve} by another operator (an approver may not approve what it asked for),
 * from many concurrent clients. Measured: the time until every session has resumed, run its calls
 * and completed; approvals acknowledged per second; each approval request's latency. Checked:
 * nothing lost — every approved call executed exactly once, counted on the tool's side (the
 * ledger's journal, by idempotency key and by invoice), and every session completed.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class ApprovalStorm {

  /** What to run. */
  record Options(int sessions, int callsPerSession, int clients, Path workDir) {}

  static final String AGENT = "storm";
  private static final Duration TIMEOUT = Duration.ofMinutes(15);

  private final Options options;
  private final Progress progress;

  ApprovalStorm(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** The model: the first turn after a message asks for every posting at once; then it is done. */
  static FakeOpenAi.Script script(int calls) {
    return request -> {
      if (request.toolMessagesSinceLastUser() > 0) {
        return FakeOpenAi.Reply.text("posted " + request.toolMessagesSinceLastUser() + " entries");
      }
      String batch = request.lastUserText().strip();
      List<FakeOpenAi.Reply.Call> posts = new ArrayList<>();
      for (int k = 1; k <= calls; k++) {
        posts.add(new FakeOpenAi.Reply.Call("ledger__post-entry",
            "{\"invoice_id\":\"" + batch + "-" + k + "\",\"supplier_id\":\"sup-acme\",\"amount\":2500.00,\"currency\":\"EUR\"}"));
      }
      return new FakeOpenAi.Reply("booking the batch " + batch, posts, 0);
    };
  }

  private static String descriptors(String ledgerUrl, String modelUrl) {
    return """
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: ledger, owner: bench}
        spec:
          transport: streamable-http
          url: %s
          tools:
            read-entries: {side_effects: read-only}
            post-entry: {side_effects: side-effecting, value_usd: args.amount}
        ---
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: bench}
        spec:
          instructions: Book the batch of invoices you are given.
          model: {provider: openai, name: gpt-4o-mini, base_url: "%s"}
          tools: [mcp://gateway/ledger]
          approval: {on_action_value_usd_gt: 1000}
          max_steps: 4
        """.formatted(ledgerUrl, AGENT, modelUrl);
  }

  Map<String, Object> run() throws Exception {
    int n = options.sessions();
    int k = options.callsPerSession();
    Path data = Files.createTempDirectory(options.workDir(), "keel-storm-");
    try (LedgerServer ledger = LedgerServer.start();
        FakeOpenAi fake = FakeOpenAi.start().script(script(k));
        KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()))) {
      KeelApi admin = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      admin.apply(descriptors(ledger.url(), fake.baseUrl()));
      KeelApi runner = new KeelApi(server.url(), admin.call("POST", "/v1/operators",
          "{\"name\":\"storm-runner\",\"roles\":[\"operator\"]}").get("token").asString());

      // 1. N sessions, each suspended at k approvals
      long s0 = System.nanoTime();
      List<String> sessions = startAll(runner, n);
      awaitCount(admin, "awaiting_approval", n);
      double suspendSeconds = (System.nanoTime() - s0) / 1e9;
      progress.line(String.format("approval-storm: %d sessions awaiting approval after %.1f s", n, suspendSeconds));
      List<String> approvals = approvalIds(admin, sessions, k);
      DurableSteps.check(ledger.posted().isEmpty(), "a call ran before its approval: " + ledger.posted().size());

      // 2. the storm: every approval at once, from many clients
      List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
      AtomicInteger retried = new AtomicInteger();
      long t0 = System.nanoTime();
      Semaphore open = new Semaphore(options.clients());
      try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
        List<Future<?>> fs = new ArrayList<>();
        for (String id : approvals) {
          fs.add(clients.submit(() -> {
            open.acquire();
            try {
              long a = System.nanoTime();
              approve(admin, id, retried);
              latencies.add(System.nanoTime() - a);
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
      double ackSeconds = (System.nanoTime() - t0) / 1e9;
      progress.line(String.format("approval-storm: %d approvals acknowledged in %.1f s", approvals.size(), ackSeconds));
      awaitCount(admin, "completed", n);
      double doneSeconds = (System.nanoTime() - t0) / 1e9;
      progress.line(String.format("approval-storm: %d sessions completed %.1f s after the first approval", n, doneSeconds));

      // 3. nothing lost, nothing twice: counted on the tool's side
      List<JournalEntry> posted = ledger.posted();
      Set<String> keys = new HashSet<>();
      Set<String> invoices = new HashSet<>();
      for (JournalEntry e : posted) {
        keys.add(String.valueOf(e.meta().get("dev.keel/idempotency-key")));
        invoices.add(String.valueOf(e.arguments().get("invoice_id")));
      }
      int expected = n * k;
      DurableSteps.check(posted.size() == expected, "the ledger executed " + posted.size() + " posts, expected " + expected);
      DurableSteps.check(keys.size() == expected, "distinct idempotency keys executed: " + keys.size() + ", expected " + expected);
      DurableSteps.check(invoices.size() == expected, "distinct invoices posted: " + invoices.size() + ", expected " + expected);
      Map<String, Long> counts = admin.counts(AGENT);
      DurableSteps.check(counts.getOrDefault("completed", 0L) == n, "sessions not all completed: " + counts);
      long stillPending = admin.call("GET", "/v1/approvals?agent=" + AGENT + "&status=pending&limit=1000", null)
          .get("approvals").size();
      DurableSteps.check(stillPending == 0, stillPending + " approvals still pending");

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("sessions", n);
      out.put("calls_per_session", k);
      out.put("approvals", approvals.size());
      out.put("clients", options.clients());
      out.put("suspend_seconds", suspendSeconds);
      out.put("approvals_acknowledged_seconds", ackSeconds);
      out.put("approvals_per_second", approvals.size() / ackSeconds);
      out.put("all_completed_seconds", doneSeconds);
      out.put("sessions_completed_per_second", n / doneSeconds);
      out.put("calls_executed_per_second", expected / doneSeconds);
      out.put("approve_latency_ms", Stats.millis(latencies));
      out.put("approve_retries_after_429", retried.get());
      out.put("executed_calls", posted.size());
      out.put("distinct_idempotency_keys", keys.size());
      out.put("sessions_completed", counts.getOrDefault("completed", 0L));
      out.put("model_requests", fake.requestCount());
      return out;
    } finally {
      Bench.deleteTree(data);
    }
  }

  /** Approves one call; a 429 (the node's admission queue is full) is retried after a pause. */
  private static void approve(KeelApi api, String id, AtomicInteger retried) throws InterruptedException {
    for (int attempt = 0; ; attempt++) {
      try {
        JsonNode r = api.call("POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"batch checked\"}");
        DurableSteps.check(r.path("status").asString("").equals("approved"), "approval " + id + " answered " + r);
        return;
      } catch (IllegalStateException e) {
        if (attempt >= 50 || e.getMessage() == null || !e.getMessage().contains("answered 429")) {
          throw e;
        }
        retried.incrementAndGet();
        Thread.sleep(100);
      }
    }
  }

  private List<String> startAll(KeelApi api, int n) throws Exception {
    List<String> ids = Collections.synchronizedList(new ArrayList<>());
    Semaphore open = new Semaphore(options.clients());
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        String batch = String.format("B%05d", i);
        fs.add(clients.submit(() -> {
          open.acquire();
          try {
            String body = EventCodec.mapper().createObjectNode().put("agent", AGENT).put("message", batch).put("task", true).toString();
            ids.add(api.call("POST", "/v1/sessions", body).get("id").asString());
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
    return ids;
  }

  /** Every pending approval of the sessions, read from each session as an approver's tool would. */
  private List<String> approvalIds(KeelApi api, List<String> sessions, int k) throws Exception {
    Map<String, List<String>> bySession = new HashMap<>();
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      Semaphore open = new Semaphore(options.clients());
      List<Future<List<String>>> fs = new ArrayList<>();
      for (String s : sessions) {
        fs.add(clients.submit(() -> {
          open.acquire();
          try {
            List<String> ids = new ArrayList<>();
            for (JsonNode p : api.call("GET", "/v1/sessions/" + s, null).get("pending_tool_calls")) {
              if (p.path("state").asString("").equals("awaiting_approval")) {
                ids.add(p.get("approval_id").asString());
              }
            }
            return ids;
          } finally {
            open.release();
          }
        }));
      }
      for (int i = 0; i < sessions.size(); i++) {
        List<String> ids = fs.get(i).get();
        DurableSteps.check(ids.size() == k, "session " + sessions.get(i) + " waits for " + ids.size() + " approvals, expected " + k);
        bySession.put(sessions.get(i), ids);
      }
    }
    // interleave the sessions, as approvers working through an inbox would: not one session's calls in a row
    List<String> all = new ArrayList<>();
    for (int j = 0; j < k; j++) {
      for (String s : sessions) {
        all.add(bySession.get(s).get(j));
      }
    }
    DurableSteps.check(new HashSet<>(all).size() == all.size(), "approval ids repeat");
    return all;
  }

  private void awaitCount(KeelApi api, String status, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    long report = System.nanoTime();
    while (System.nanoTime() < deadline) {
      Map<String, Long> c = api.counts(AGENT);
      if (System.nanoTime() - report > 5e9) {
        report = System.nanoTime();
        progress.line("approval-storm: waiting for " + n + " sessions " + status + ": " + c);
      }
      DurableSteps.check(c.getOrDefault("completed", 0L) < n || status.equals("completed"),
          "the sessions completed without waiting for approval: " + c);
      DurableSteps.check(c.getOrDefault("failed", 0L) == 0, "sessions failed: " + c);
      if (c.getOrDefault(status, 0L) >= n) {
        return;
      }
      Thread.sleep(20);
    }
    throw new IllegalStateException("sessions did not reach " + status + " in " + TIMEOUT + ": " + api.counts(AGENT));
  }
}
