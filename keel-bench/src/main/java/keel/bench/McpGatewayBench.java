package keel.bench;

import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.control.Policies;
import keel.core.AgentDescriptor;
import keel.core.Descriptor;
import keel.core.Descriptors;
import keel.core.EventCodec;
import keel.core.McpServerDescriptor;
import keel.core.PolicyDescriptor;
import keel.data.AuditRecord;
import keel.data.Store;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolOutput;
import keel.execution.ToolRegistry;
import keel.gateway.CallMeta;
import keel.gateway.CatalogListener;
import keel.gateway.Gateway;
import keel.gateway.GatewaySettings;
import keel.control.SessionToken;
import keel.testkit.mcp.LedgerServer;

/**
 * Scenario "mcp-gateway": the MCP gateway's added latency per call over a direct MCP SDK call to
 * the same server, and calls per second through it.
 *
 * <p>The server is the testkit's {@link LedgerServer} over Streamable HTTP on 127.0.0.1, its
 * read-only {@code read-entries} tool called with the same arguments both ways:
 *
 * <ul>
 *   <li><b>direct</b>: the official MCP SDK's synchronous client over {@link
 *       HttpClientStreamableHttpTransport}, initialized once, {@code tools/call} with the same
 *       {@code _meta} keys the gateway sends;
 *   <li><b>gateway</b>: what the step executor does for one external call, in its order, with the
 *       same public components the server wires: the session token check for the tool's capability
 *       ({@link Identity#authorize}, a token verified before, as in every step after a session's
 *       first), the policy decision ({@link Policies#decide}: one {@code kind: Policy} with a CEL
 *       {@code deny_when} and {@code require_approval_when} over the server's tools, and the agent's
 *       approval threshold and CEL rule), the call through the {@link Gateway}'s catalog tool
 *       ({@link Tool#call}: catalog lookup, rate window, {@code _meta} with trace context and
 *       idempotency key, the gateway's own SDK connection), and the three audit records of the call
 *       ({@code policy_decision}, {@code tool_call}, {@code tool_result}) hash-chained into the
 *       audit log. In a session those records ride in the step's own appends, whose disk flush the
 *       durable-steps scenario measures; here the store is opened without a flush per commit so
 *       that the figure is the audit's own work (canonical JSON, SHA-256 chain, SQLite insert), not
 *       a second fsync a session never pays.
 * </ul>
 *
 * <p>Sequential calls alternate direct and gateway (paired series, after a warm-up), and the stages
 * of the gateway path are timed separately, so the difference and where it goes come from one run.
 * Then a concurrency sweep: the same calls from C virtual threads at once, calls per second both
 * ways.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class McpGatewayBench {

  /** What to run. */
  record Options(int calls, int reps, List<Integer> concurrency, int sweepCalls, Path workDir) {
    Options {
      concurrency = List.copyOf(concurrency);
    }
  }

  static final String SERVER = "ledger";
  static final String TOOL = "read-entries";
  static final String ARGUMENTS = "{\"supplier_id\":\"sup-acme\"}";
  static final String SESSION = "s_benchgateway";

  private final Options options;
  private final Progress progress;

  McpGatewayBench(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** One stand-in for a session's external call path, with its parts. */
  private record CallPath(
      Identity identity, String token, Policies policies, AgentDescriptor agent, List<PolicyDescriptor> rules,
      Tool tool, Store store) {}

  Map<String, Object> run() throws Exception {
    Path data = Files.createTempDirectory(options.workDir(), "keel-mcpgw-");
    try (LedgerServer ledger = LedgerServer.start();
        Store store = Store.sqlite(data, "bench", Clock.systemUTC(), false);
        Gateway gateway = new Gateway(store.toolCatalog(), data, Map.of(), Clock.systemUTC(), GatewaySettings.defaults(),
            CatalogListener.NONE)) {
      List<Descriptor> ds = Descriptors.parse(descriptors(ledger.url()), "bench");
      gateway.configure(ds.stream().filter(d -> d instanceof McpServerDescriptor).map(d -> (McpServerDescriptor) d).toList());
      AgentDescriptor agent = ds.stream().filter(d -> d instanceof AgentDescriptor).map(d -> (AgentDescriptor) d).findFirst().orElseThrow();
      List<PolicyDescriptor> rules = ds.stream().filter(d -> d instanceof PolicyDescriptor).map(d -> (PolicyDescriptor) d).toList();
      Identity identity = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
      String token = identity.issue(new Identity.Subject(agent.metadata().name(), 1, SESSION, SESSION,
          agent.spec().tools(), List.of("operator:bench"))).compact();
      ToolRegistry registry = ToolRegistry.of(List.of()).withGateway(gateway);
      Tool tool = registry.granted(agent.spec().tools()).stream()
          .filter(t -> t.catalogName().equals(SERVER + "/" + TOOL)).findFirst()
          .orElseThrow(() -> new IllegalStateException("the gateway does not offer " + SERVER + "/" + TOOL + ": " + gateway.servers()));
      CallPath path = new CallPath(identity, token, new Policies(), agent, rules, tool, store);

      try (McpSyncClient direct = directClient(ledger.url())) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("server", "keel-testkit LedgerServer (Streamable HTTP, 127.0.0.1), tool " + TOOL);
        out.put("calls_per_rep", options.calls());
        out.put("reps", options.reps());
        out.putAll(sequential(path, direct));
        out.put("concurrency", sweep(path, direct));
        long audited = store.audit().head().seq();
        out.put("audit_records_written", audited);
        out.put("audit_chain_verified", store.audit().verify(Optional.empty()) instanceof keel.data.AuditStore.Verification.Intact);
        return out;
      }
    } finally {
      Bench.deleteTree(data);
    }
  }

  /** The ledger server, a Policy with CEL rules over its tools, and an agent with approval rules. */
  static String descriptors(String url) {
    return """
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: %s, owner: bench}
        spec:
          transport: streamable-http
          url: %s
          tools:
            read-entries: {side_effects: read-only}
            post-entry: {side_effects: side-effecting, value_usd: args.amount}
        ---
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: blocked-suppliers}
        spec:
          applies_to: {tools: ["%s"]}
          deny_when: 'has(args.supplier_id) && args.supplier_id in ["sup-blocked", "sup-sanctioned"]'
          require_approval_when: 'value_usd > 5000.0'
          reason: suppliers on the block list are never touched
        ---
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: reconciler, owner: bench}
        spec:
          instructions: Reconcile the ledger.
          model: {provider: scripted, name: s, script: [{turns: [{say: "ok"}]}]}
          tools: [mcp://gateway/%s]
          approval:
            on_action_value_usd_gt: 1000
            rules:
              - when: 'tool == "%s/post-entry" && has(args.memo) && args.memo.contains("urgent")'
                reason: urgent postings are looked at by a human
        """.formatted(SERVER, url, SERVER, SERVER, SERVER);
  }

  static McpSyncClient directClient(String url) {
    URI uri = URI.create(url);
    McpSyncClient c = McpClient.sync(HttpClientStreamableHttpTransport.builder(uri.getScheme() + "://" + uri.getRawAuthority())
            .endpoint(uri.getRawPath()).build())
        .requestTimeout(Duration.ofSeconds(30))
        .clientInfo(new McpSchema.Implementation("keel-bench-direct", "1"))
        .build();
    c.initialize();
    return c;
  }

  /** A direct call: the same tool, arguments and {@code _meta} keys as the gateway's. */
  private static void callDirect(McpSyncClient client, long n) {
    Map<String, Object> meta = new LinkedHashMap<>();
    meta.put(CallMeta.TRACEPARENT, traceparent(n));
    meta.put(CallMeta.IDEMPOTENCY_KEY, SESSION + "/direct/" + n);
    meta.put(CallMeta.SESSION, SESSION);
    meta.put(CallMeta.PRINCIPAL, "agent:reconciler");
    McpSchema.CallToolResult r = client.callTool(new McpSchema.CallToolRequest(TOOL, Map.of("supplier_id", "sup-acme"), meta));
    if (Boolean.TRUE.equals(r.isError()) || r.structuredContent() == null) {
      throw new IllegalStateException("the direct call failed: " + r);
    }
  }

  private static String traceparent(long n) {
    return String.format("00-%032x-%016x-01", n + 1, n + 1);
  }

  /** Nanoseconds spent in each stage of one gateway call. */
  private record Stages(long token, long policy, long call, long audit) {
    long total() {
      return token + policy + call + audit;
    }
  }

  /** One external call as the step executor makes it; throws unless it succeeded. */
  private static Stages callThroughGateway(CallPath p, long n) {
    long t0 = System.nanoTime();
    String capability = p.tool().capability();
    if (!(p.identity().authorize(p.token(), SESSION, capability) instanceof Identity.Verdict.Verified v)) {
      throw new IllegalStateException("the bench token does not grant " + capability);
    }
    SessionToken who = v.token();
    long t1 = System.nanoTime();
    Policies.Decision d = p.policies().decide(new Policies.Call(p.agent(), p.tool().catalogName(), p.tool().readOnly(),
        ARGUMENTS, p.tool().valueUsdExpression(), new Policies.SessionInfo(SESSION, SESSION, "", "operator:bench", 1),
        java.time.Instant.now(), p.rules()));
    if (!(d instanceof Policies.Decision.Allow)) {
      throw new IllegalStateException("the policy check did not allow the call: " + d);
    }
    long t2 = System.nanoTime();
    String key = SESSION + "/" + n + "/call_0";
    ToolOutput out = p.tool().call(new ToolContext(p.agent(), SESSION, "call_0", key, who, traceparent(n)), ARGUMENTS);
    if (out.error()) {
      throw new IllegalStateException("the call through the gateway failed: " + out.text());
    }
    long t3 = System.nanoTime();
    String tool = p.tool().catalogName();
    String principal = who.principal();
    p.store().audit().append(List.of(
        audit("policy_decision", principal, tool, detail(key).put("decision", "allow").put("capability", capability)
            .put("token_id", who.tokenId())),
        audit("tool_call", principal, tool, detail(key).put("attempt", 1).put("idempotency_key", key)
            .set("arguments", EventCodec.mapper().readTree(ARGUMENTS))),
        audit("tool_result", principal, tool, detail(key).put("error", false).put("digest", sha256(out.text()))
            .put("bytes", out.text().length()))));
    long t4 = System.nanoTime();
    return new Stages(t1 - t0, t2 - t1, t3 - t2, t4 - t3);
  }

  private static tools.jackson.databind.node.ObjectNode detail(String key) {
    return EventCodec.mapper().createObjectNode().put("call_id", "call_0").put("key", key);
  }

  private static AuditRecord audit(String kind, String actor, String tool, tools.jackson.databind.node.ObjectNode detail) {
    return new AuditRecord(kind, actor, "bench", "reconciler", SESSION, tool, detail.toString());
  }

  private static String sha256(String text) {
    try {
      return "sha256:" + java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
          .digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---------------------------------------------------------------- sequential, paired

  private Map<String, Object> sequential(CallPath p, McpSyncClient direct) {
    List<Long> viaDirect = new ArrayList<>();
    List<Long> viaGateway = new ArrayList<>();
    List<Long> token = new ArrayList<>();
    List<Long> policy = new ArrayList<>();
    List<Long> call = new ArrayList<>();
    List<Long> audit = new ArrayList<>();
    List<Double> repDiffP50 = new ArrayList<>();
    long n = 0;
    for (int rep = -1; rep < options.reps(); rep++) {
      boolean warm = rep < 0;
      List<Long> d = new ArrayList<>();
      List<Long> g = new ArrayList<>();
      for (int i = 0; i < options.calls(); i++) {
        n++;
        // alternate which goes first, so neither always runs on a just-warmed connection
        long dt;
        Stages st;
        if ((i & 1) == 0) {
          long t0 = System.nanoTime();
          callDirect(direct, n);
          dt = System.nanoTime() - t0;
          st = callThroughGateway(p, n);
        } else {
          st = callThroughGateway(p, n);
          long t0 = System.nanoTime();
          callDirect(direct, n);
          dt = System.nanoTime() - t0;
        }
        if (!warm) {
          d.add(dt);
          g.add(st.total());
          token.add(st.token());
          policy.add(st.policy());
          call.add(st.call());
          audit.add(st.audit());
        }
      }
      if (!warm) {
        viaDirect.addAll(d);
        viaGateway.addAll(g);
        repDiffP50.add((Stats.percentile(g, 50) - Stats.percentile(d, 50)) / 1000.0);
      }
      progress.line(String.format("mcp-gateway sequential %s %d/%d", warm ? "warm-up" : "rep", rep + 1, options.reps()));
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("direct_us", micros(viaDirect));
    out.put("gateway_us", micros(viaGateway));
    out.put("added_p50_us", (Stats.percentile(viaGateway, 50) - Stats.percentile(viaDirect, 50)) / 1000.0);
    out.put("added_p99_us", (Stats.percentile(viaGateway, 99) - Stats.percentile(viaDirect, 99)) / 1000.0);
    out.put("added_p50_us_per_rep", Stats.Spread.of(repDiffP50).json());
    Map<String, Object> stages = new LinkedHashMap<>();
    stages.put("token_check", micros(token));
    stages.put("policy_check", micros(policy));
    stages.put("gateway_call", micros(call));
    stages.put("audit_append", micros(audit));
    out.put("gateway_stages_us", stages);
    out.put("added_p50_call_only_us", (Stats.percentile(call, 50) - Stats.percentile(viaDirect, 50)) / 1000.0);
    return out;
  }

  static Map<String, Object> micros(List<Long> nanos) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", Stats.percentile(nanos, 50) / 1000.0);
    m.put("p90", Stats.percentile(nanos, 90) / 1000.0);
    m.put("p99", Stats.percentile(nanos, 99) / 1000.0);
    m.put("n", nanos.size());
    return m;
  }

  // ---------------------------------------------------------------- concurrency sweep

  private List<Map<String, Object>> sweep(CallPath p, McpSyncClient direct) throws Exception {
    List<Map<String, Object>> rows = new ArrayList<>();
    AtomicInteger seq = new AtomicInteger(1_000_000);
    for (int c : options.concurrency()) {
      List<Double> d = new ArrayList<>();
      List<Double> g = new ArrayList<>();
      for (int rep = 0; rep < Math.max(1, Math.min(3, options.reps())); rep++) {
        d.add(callsPerSecond(c, () -> callDirect(direct, seq.incrementAndGet())));
        g.add(callsPerSecond(c, () -> callThroughGateway(p, seq.incrementAndGet())));
      }
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("concurrency", c);
      row.put("direct_calls_per_second", Stats.Spread.of(d).json());
      row.put("gateway_calls_per_second", Stats.Spread.of(g).json());
      rows.add(row);
      progress.line(String.format("mcp-gateway concurrency %d: direct %.0f calls/s, gateway %.0f calls/s", c,
          Stats.Spread.of(d).median(), Stats.Spread.of(g).median()));
    }
    return rows;
  }

  private double callsPerSecond(int concurrency, Runnable call) throws Exception {
    int total = Math.max(options.sweepCalls(), concurrency * 4);
    AtomicInteger left = new AtomicInteger(total);
    long t0 = System.nanoTime();
    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int i = 0; i < concurrency; i++) {
        fs.add(pool.submit(() -> {
          while (left.getAndDecrement() > 0) {
            call.run();
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
    return total / ((System.nanoTime() - t0) / 1e9);
  }
}
