package keel.bench;

import java.math.BigDecimal;
import java.math.MathContext;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import keel.core.EventCodec;
import keel.core.SessionEvent;
import keel.core.StoredEvent;
import keel.core.Usage;
import keel.execution.PriceTable;
import keel.execution.ToolSpec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeAnthropic;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Scenario "cost": the model cost of one workload of tasks of mixed difficulty, (a) through a
 * hand-written raw-API agent loop on the main model (no cache markers, no routing) and (b) through
 * Keel with its defaults (small model first with escalation, prompt caching on), both against one
 * {@link FakeAnthropic} whose {@link #script() script} knows which model it plays: the main model
 * ({@value #MAIN}) solves every task; the small one ({@value #SMALL}) solves the easy tasks the same
 * way but, on the hard ones, writes a tool call whose arguments miss a required property (odd task
 * numbers) or answers nothing after its first tool step (even ones). Tool results and final answers
 * do not depend on the model, so success is comparable. Costs are Keel's built-in list prices
 * ({@link PriceTable#builtIn()}) applied to the usage each response reports.
 *
 * <p>The fake's prompt cache is set to Claude Sonnet 4's minimum cacheable prefix, 1,024 tokens; it
 * has one minimum for every model, so the small model's cache (Haiku 4.5's minimum is 4,096 tokens)
 * is reported both as simulated and, conservatively, as if none of its calls had been cached.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class CostBench {

  /** The agent's main model, as named in its descriptor and priced. */
  static final String MAIN = "claude-sonnet-4";

  /** The small model tried first. */
  static final String SMALL = "claude-haiku-4-5";

  /** The workload's seed. */
  static final long SEED = 20_251_114L;

  /** Claude Sonnet 4's minimum cacheable prompt prefix, in tokens. */
  static final long MIN_CACHEABLE_TOKENS = 1024;

  /** What to run. */
  record Options(int tasks, int concurrency, long seed, Path workDir) {}

  /** One task of the workload; its message is what the user sends. */
  record Task(int id, boolean hard, int steps, String expect) {
    private static final Pattern MESSAGE = Pattern.compile("task (\\d+) \\((easy|hard)\\) steps=(\\d+) expect=(\\S+)");

    String message() {
      return "task " + id + " (" + (hard ? "hard" : "easy") + ") steps=" + steps + " expect=" + expect;
    }

    static Task parse(String text) {
      Matcher m = MESSAGE.matcher(text);
      if (!m.find()) {
        return null;
      }
      return new Task(Integer.parseInt(m.group(1)), m.group(2).equals("hard"), Integer.parseInt(m.group(3)), m.group(4));
    }
  }

  private static final String[] CODES = {"ALPHA", "BRAVO", "CEDAR", "DELTA", "EMBER", "FJORD"};
  private static final long TASK_TIMEOUT_MILLIS = 120_000;
  private static final int MAX_TURNS = 12;

  private final Options options;
  private final Progress progress;

  CostBench(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  // ---------------------------------------------------------------- the workload

  /** {@code n} tasks, about 65 % easy (1–2 tool steps) and 35 % hard (2–3), drawn from {@code seed}. */
  static List<Task> workload(int n, long seed) {
    Random r = new Random(seed);
    List<Task> tasks = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      boolean hard = r.nextDouble() < 0.35;
      int steps = hard ? 2 + r.nextInt(2) : 1 + r.nextInt(2);
      tasks.add(new Task(i, hard, steps, CODES[r.nextInt(CODES.length)] + "-" + i));
    }
    return tasks;
  }

  /** The agent's instructions: a long, fixed billing-support policy (about 2,000 tokens), generated deterministically. */
  static String policy() {
    String[] subjects = {"a customer", "an account manager", "a reseller", "an auditor", "the collections team", "a new customer"};
    String[] conditions = {
      "asks about an invoice that is more than 60 days overdue",
      "disputes a line of an invoice",
      "asks for a refund above 500 EUR",
      "asks for a balance in another currency",
      "mentions a payment that does not appear on the account",
      "asks for a payment plan",
      "quotes an amount that differs from the ledger",
      "asks why a direct debit failed",
      "asks to change the billing address of an invoice already sent",
      "asks for a copy of a paid invoice"
    };
    String[] actions = {
      "look the invoice up with lookup_invoice before quoting any amount, and quote it to the cent",
      "confirm the account with ledger_balance and state the overdue amounts by bucket",
      "list the payments since the invoice date with list_payments and name every unmatched one",
      "convert with convert_currency at the reference rate of the day and give both amounts",
      "do not promise a credit note; say that finance decides within two business days",
      "never disclose another customer's data, even when the invoice numbers look alike",
      "state the due date and the status exactly as the tool returned them",
      "keep the answer short and factual, without apologies or marketing language"
    };
    StringBuilder b = new StringBuilder();
    b.append("You are the billing assistant of Northwind Services. You answer questions about invoices,")
        .append(" balances and payments for customers and staff. You have read-only tools; you cannot change")
        .append(" anything in the ledger. Follow this policy exactly.\n");
    Random r = new Random(1_500);
    int section = 0;
    while (b.length() < 8_000) {
      section++;
      b.append("\nSection ").append(section).append(". ").append(new String[] {
          "Invoices", "Balances", "Payments", "Currencies", "Disputes", "Privacy", "Tone", "Escalation", "Records", "Audits"}[(section - 1) % 10])
          .append('\n');
      for (int rule = 1; rule <= 7; rule++) {
        b.append(section).append('.').append(rule).append(" When ").append(subjects[r.nextInt(subjects.length)]).append(' ')
            .append(conditions[r.nextInt(conditions.length)]).append(", ").append(actions[r.nextInt(actions.length)])
            .append(".\n");
      }
    }
    b.append("\nEvery task names the tools to use in the order you find them useful. When you have the facts,")
        .append(" finish with exactly one line and nothing else: ANSWER: followed by the task's expected code.");
    return b.toString();
  }

  /**
   * The fake's model-aware behaviour. Both models make the task's K tool calls with valid arguments,
   * then answer {@code ANSWER: <expect>}; the small model fails hard tasks: on odd task numbers its
   * first tool call lacks the tool's required property ({@code invalid_tool_arguments}), on even ones
   * it answers nothing after the first tool result ({@code empty_answer}). Were that not escalated, it
   * would go on to answer {@code ANSWER: UNSURE}, a failure.
   */
  static FakeAnthropic.Script script() {
    return request -> {
      Task t = Task.parse(request.lastUserText());
      if (t == null) {
        return FakeAnthropic.Reply.text("Which task should I work on?");
      }
      int done = request.toolResultsSinceLastUserText();
      boolean small = request.model().startsWith(SMALL);
      if (small && t.hard()) {
        int failAt = t.id() % 2 == 1 ? 0 : 1;
        if (done == failAt) {
          return failAt == 0 ? call(t, done, "{\"query\":\"" + t.message() + "\"}") : FakeAnthropic.Reply.text("");
        }
        if (done > failAt) {
          return FakeAnthropic.Reply.text("ANSWER: UNSURE");
        }
      }
      if (done < t.steps()) {
        return call(t, done, null);
      }
      return FakeAnthropic.Reply.text("ANSWER: " + t.expect());
    };
  }

  private static FakeAnthropic.Reply call(Task t, int step, String badArguments) {
    String account = String.format(Locale.ROOT, "ACC-%04d", t.id() * 37 % 10_000);
    String[] tool = switch ((t.id() + step) % 4) {
      case 0 -> new String[] {"lookup_invoice", "{\"invoice_id\":\"INV-" + (2000 + t.id()) + "-" + step + "\"}"};
      case 1 -> new String[] {"ledger_balance", "{\"account\":\"" + account + "\"}"};
      case 2 -> new String[] {"list_payments", "{\"account\":\"" + account + "\",\"since\":\"2025-06-01\",\"limit\":5}"};
      default -> new String[] {"convert_currency", String.format(Locale.ROOT, "{\"amount\":%d.50,\"from\":\"EUR\",\"to\":\"USD\"}", 100 + t.id() * 13)};
    };
    String text = "Step " + (step + 1) + " of " + t.steps() + " for task " + t.id() + ": I will call " + tool[0]
        + " to check the figures the policy requires before I answer.";
    return new FakeAnthropic.Reply(
        text, List.of(new FakeAnthropic.Reply.Call(tool[0], badArguments != null ? badArguments : tool[1])),
        FakeAnthropic.StopReason.TOOL_USE);
  }

  // ---------------------------------------------------------------- the run

  Map<String, Object> run() throws Exception {
    List<Task> tasks = workload(options.tasks(), options.seed());
    long hard = tasks.stream().filter(Task::hard).count();
    String policy = policy();
    try (FakeAnthropic fake = FakeAnthropic.start()) {
      fake.script(script()).minimumCacheableTokens(MIN_CACHEABLE_TOKENS);
      progress.line("cost: " + tasks.size() + " tasks (" + hard + " hard), instructions " + policy.length() + " chars");
      Totals raw = baseline(fake.baseUrl(), tasks, policy);
      progress.line("cost: raw API " + raw.summary());
      fake.clearCache();
      Totals keel = keel(fake.baseUrl(), tasks, policy);
      progress.line("cost: Keel " + keel.summary());

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("tasks", tasks.size());
      out.put("easy_tasks", tasks.size() - hard);
      out.put("hard_tasks", hard);
      out.put("seed", options.seed());
      out.put("concurrency", options.concurrency());
      out.put("instructions_chars", policy.length());
      out.put("tools", BillingTools.SPECS.stream().map(ToolSpec::name).toList());
      out.put("min_cacheable_tokens", MIN_CACHEABLE_TOKENS);
      out.put("prices", Map.of(
          MAIN, priceJson(MAIN), SMALL, priceJson(SMALL)));
      out.put("raw_api", raw.json());
      out.put("keel", keel.json());
      BigDecimal a = raw.cost;
      out.put("saving", saving(keel.cost, a));
      out.put("saving_routing", saving(keel.costWithoutCachePrices, a));
      out.put("saving_caching", saving(keel.cost, a) - saving(keel.costWithoutCachePrices, a));
      out.put("saving_small_model_uncached", saving(keel.costSmallUncached, a));
      out.put("equal_success", raw.successes == keel.successes);
      out.put("target_met", raw.successes == keel.successes && saving(keel.cost, a) >= 0.5);
      out.put("requests_served_by_fake", fake.requestCount());
      return out;
    }
  }

  private static double saving(BigDecimal cost, BigDecimal baseline) {
    if (baseline.signum() == 0) {
      return 0;
    }
    return BigDecimal.ONE.subtract(cost.divide(baseline, MathContext.DECIMAL64)).doubleValue();
  }

  private static Map<String, Object> priceJson(String model) {
    PriceTable.Price p = PriceTable.builtIn().price("anthropic", model).orElseThrow();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("input", p.inputPerMillion().toPlainString());
    m.put("output", p.outputPerMillion().toPlainString());
    m.put("cache_write", p.cacheWritePerMillion().toPlainString());
    m.put("cache_read", p.cacheReadPerMillion().toPlainString());
    return m;
  }

  // ---------------------------------------------------------------- (a) the raw-API baseline

  /** The agent loop a programmer writes against the Messages API: main model, no cache markers. */
  private Totals baseline(String baseUrl, List<Task> tasks, String policy) throws Exception {
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    URI endpoint = URI.create(baseUrl + "/messages");
    ArrayNode tools = EventCodec.mapper().createArrayNode();
    for (ToolSpec s : BillingTools.SPECS) {
      tools.addObject().put("name", s.name()).put("description", s.description())
          .set("input_schema", EventCodec.mapper().readTree(s.parametersSchema()));
    }
    Totals totals = new Totals();
    forEachTask(tasks, task -> {
      ArrayNode messages = EventCodec.mapper().createArrayNode();
      messages.addObject().put("role", "user").put("content", task.message());
      for (int turn = 0; turn < MAX_TURNS; turn++) {
        ObjectNode body = EventCodec.mapper().createObjectNode();
        body.put("model", MAIN).put("max_tokens", 4096).put("system", policy);
        body.set("tools", tools);
        body.set("messages", messages);
        HttpRequest req = HttpRequest.newBuilder(endpoint)
            .timeout(Duration.ofSeconds(60))
            .header("content-type", "application/json")
            .header("x-api-key", "raw-baseline")
            .header("anthropic-version", "2023-06-01")
            .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
            .build();
        HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
          throw new IllegalStateException("the fake answered " + r.statusCode() + ": " + r.body());
        }
        JsonNode resp = EventCodec.mapper().readTree(r.body());
        JsonNode u = resp.path("usage");
        Usage usage = new Usage(u.path("input_tokens").asLong(), u.path("output_tokens").asLong(),
            u.path("cache_creation_input_tokens").asLong(), u.path("cache_read_input_tokens").asLong());
        totals.add(MAIN, usage, PriceTable.builtIn().cost("anthropic", resp.path("model").asString(MAIN), usage), false);
        ArrayNode results = EventCodec.mapper().createArrayNode();
        StringBuilder text = new StringBuilder();
        for (JsonNode block : resp.path("content")) {
          switch (block.path("type").asString("")) {
            case "text" -> text.append(block.path("text").asString(""));
            case "tool_use" -> results.addObject().put("type", "tool_result").put("tool_use_id", block.path("id").asString())
                .put("content", BillingTools.result(block.path("name").asString(), block.path("input").toString()));
            default -> {}
          }
        }
        if (results.isEmpty()) {
          totals.finish(task, text.toString());
          return;
        }
        messages.addObject().put("role", "assistant").set("content", resp.path("content"));
        messages.addObject().put("role", "user").set("content", results);
      }
      totals.finish(task, "(no answer after " + MAX_TURNS + " model calls)");
    });
    return totals;
  }

  // ---------------------------------------------------------------- (b) Keel's defaults

  /** The agent descriptor of variant (b): Keel's defaults plus the routing the agent declares. */
  static String agentYaml(String name, String baseUrl, String policy) {
    StringBuilder b = new StringBuilder();
    b.append("apiVersion: agent.os/v1\nkind: Agent\nmetadata: {name: ").append(name).append(", owner: bench}\nspec:\n");
    b.append("  instructions: |-\n");
    for (String line : policy.split("\n", -1)) {
      b.append(line.isEmpty() ? "" : "    " + line).append('\n');
    }
    b.append("  model:\n    provider: anthropic\n    name: ").append(MAIN).append("\n    base_url: \"").append(baseUrl).append("\"\n");
    b.append("    routing:\n      small: {provider: anthropic, name: ").append(SMALL).append("}\n");
    b.append("      escalate_on: [invalid_tool_arguments, model_error, empty_answer, refusal, escalated_step]\n");
    b.append("  tools: [").append(BillingTools.CAPABILITY).append("]\n  max_steps: ").append(MAX_TURNS).append('\n');
    return b.toString();
  }

  private Totals keel(String baseUrl, List<Task> tasks, String policy) throws Exception {
    Path dataDir = Files.createTempDirectory(options.workDir(), "keel-cost-");
    Totals totals = new Totals();
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dataDir).withEnvironment(Map.of()))) {
      KeelApi api = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      api.apply(agentYaml("billing", baseUrl, policy));
      forEachTask(tasks, task -> {
        ObjectNode start = EventCodec.mapper().createObjectNode().put("agent", "billing").put("message", task.message()).put("task", true);
        String id = api.call("POST", "/v1/sessions", start.toString()).get("id").asString();
        long deadline = System.currentTimeMillis() + TASK_TIMEOUT_MILLIS;
        String status;
        while (true) {
          status = api.call("GET", "/v1/sessions/" + id, null).path("status").asString("");
          if (status.equals("completed") || status.equals("failed") || status.equals("cancelled")) {
            break;
          }
          if (System.currentTimeMillis() > deadline) {
            throw new IllegalStateException("task " + task.id() + " (session " + id + ") still " + status + " after " + TASK_TIMEOUT_MILLIS + " ms");
          }
          Thread.sleep(10);
        }
        String answer = "(session " + status + ")";
        for (StoredEvent e : server.store().events().events(id, 0, 100_000)) {
          switch (e.event()) {
            case SessionEvent.ModelResponded mr -> {
              totals.add(mr.model(), mr.usage(), mr.costUsd(), false);
              if (mr.toolCalls().isEmpty()) {
                answer = mr.text();
              }
            }
            case SessionEvent.ModelEscalated me -> {
              totals.add(me.fromModel(), me.usage(), me.costUsd(), true);
              totals.escalatedBecause(me.reason());
            }
            default -> {}
          }
        }
        totals.finish(task, status.equals("completed") ? answer : "(session " + status + ")");
      });
    } finally {
      Bench.deleteTree(dataDir);
    }
    return totals;
  }

  // ---------------------------------------------------------------- shared

  @FunctionalInterface
  private interface TaskRun {
    void run(Task task) throws Exception;
  }

  /** Runs every task, at most {@code options.concurrency()} at a time. */
  private void forEachTask(List<Task> tasks, TaskRun run) throws Exception {
    Semaphore slots = new Semaphore(options.concurrency());
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (Task t : tasks) {
        fs.add(ex.submit(() -> {
          slots.acquire();
          try {
            run.run(t);
          } finally {
            slots.release();
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
  }

  /** What one variant's calls used and cost, and which tasks succeeded. Thread-safe (synchronized). */
  static final class Totals {
    BigDecimal cost = BigDecimal.ZERO;
    /** The same tokens with cache writes and reads priced as plain input: caching's share. */
    BigDecimal costWithoutCachePrices = BigDecimal.ZERO;
    /** As reported, except that the small model's cache tokens are priced as plain input. */
    BigDecimal costSmallUncached = BigDecimal.ZERO;
    long input;
    long output;
    long cacheWrite;
    long cacheRead;
    long calls;
    long smallCalls;
    long escalations;
    int tasks;
    int successes;
    int hardTasks;
    int hardSuccesses;
    final List<String> failures = new ArrayList<>();
    final Map<String, Long> escalationReasons = new java.util.TreeMap<>();

    synchronized void escalatedBecause(String reason) {
      int colon = reason.indexOf(':');
      escalationReasons.merge(colon < 0 ? reason : reason.substring(0, colon), 1L, Long::sum);
    }

    synchronized void add(String model, Usage u, BigDecimal callCost, boolean escalated) {
      boolean small = model.startsWith(SMALL);
      Usage plain = new Usage(u.inputTokens() + u.cacheWriteTokens() + u.cacheReadTokens(), u.outputTokens(), 0, 0);
      BigDecimal plainCost = PriceTable.builtIn().cost("anthropic", model, plain);
      cost = cost.add(callCost);
      costWithoutCachePrices = costWithoutCachePrices.add(plainCost);
      costSmallUncached = costSmallUncached.add(small ? plainCost : callCost);
      input += u.inputTokens();
      output += u.outputTokens();
      cacheWrite += u.cacheWriteTokens();
      cacheRead += u.cacheReadTokens();
      calls++;
      smallCalls += small ? 1 : 0;
      escalations += escalated ? 1 : 0;
    }

    synchronized void finish(Task task, String answer) {
      tasks++;
      hardTasks += task.hard() ? 1 : 0;
      if (answer.equals("ANSWER: " + task.expect())) {
        successes++;
        hardSuccesses += task.hard() ? 1 : 0;
      } else if (failures.size() < 10) {
        failures.add("task " + task.id() + ": " + answer);
      }
    }

    synchronized String summary() {
      return String.format(Locale.ROOT, "%d/%d succeeded, $%s, %d calls (%d small, %d escalations)",
          successes, tasks, cost.stripTrailingZeros().toPlainString(), calls, smallCalls, escalations);
    }

    synchronized Map<String, Object> json() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("tasks", tasks);
      m.put("successes", successes);
      m.put("success_rate", tasks == 0 ? 0.0 : (double) successes / tasks);
      m.put("hard_successes", hardSuccesses);
      m.put("cost_usd", cost.stripTrailingZeros().toPlainString());
      m.put("cost_per_task_usd", tasks == 0 ? "0" : cost.divide(BigDecimal.valueOf(tasks), MathContext.DECIMAL64).stripTrailingZeros().toPlainString());
      m.put("cost_without_cache_prices_usd", costWithoutCachePrices.stripTrailingZeros().toPlainString());
      m.put("cost_small_model_uncached_usd", costSmallUncached.stripTrailingZeros().toPlainString());
      m.put("model_calls", calls);
      m.put("small_model_calls", smallCalls);
      m.put("main_model_calls", calls - smallCalls);
      m.put("escalations", escalations);
      m.put("escalation_reasons", new LinkedHashMap<>(escalationReasons));
      m.put("input_tokens", input);
      m.put("output_tokens", output);
      m.put("cache_write_tokens", cacheWrite);
      m.put("cache_read_tokens", cacheRead);
      m.put("failures", List.copyOf(failures));
      return m;
    }
  }
}
