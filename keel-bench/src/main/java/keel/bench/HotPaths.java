package keel.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.control.Policies;
import keel.core.EventCodec;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.Append;
import keel.data.PendingEvent;
import keel.data.Store;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * JMH micro-benchmarks of Keel's hot paths, run by {@code keel bench jmh} ({@link Micro}): event
 * encoding and decoding ({@link EventCodec}), folding a session's log ({@link SessionState#apply}),
 * the durable group-committed append on SQLite, and the session-token check ({@link
 * Identity#authorize}) of a token verified before and of one never seen, and the policy check of an
 * external call ({@link Policies#decide}: a {@code Policy}'s CEL deny and approval rules, a value
 * expression, the agent's threshold and CEL approval rule). The events are real: the
 * setup runs a scripted session of 20 tool steps through an in-process server. Average time per
 * operation.
 *
 * <p>JMH owns the threads: each state is used as JMH's scopes say.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class HotPaths {

  /** A real session's log, and a durable store to append to. */
  @State(Scope.Benchmark)
  public static class Log {
    Path dir;
    KeelServer server;
    List<StoredEvent> events;
    List<String> encoded;
    StoredEvent toolCompleted;
    String session;
    long lastSeq;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      dir = Files.createTempDirectory("keel-jmh-");
      server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()));
      KeelApi api = new KeelApi(server.url(), Files.readString(server.adminTokenFile()).strip());
      api.apply(Agents.scripted("jmh", 20));
      session = api.start("jmh", "run the benchmark");
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (api.counts("jmh").getOrDefault("idle", 0L) < 1) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the benchmark's session did not finish in 60 s: " + api.counts("jmh"));
        }
        Thread.sleep(20);
      }
      events = server.store().events().eventsAfter(session, 0);
      encoded = events.stream().map(e -> EventCodec.encode(e.event())).toList();
      toolCompleted = events.stream().filter(e -> e.event() instanceof SessionEvent.ToolCallCompleted).findFirst().orElseThrow();
      lastSeq = events.getLast().seq();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      server.close();
      Bench.deleteTree(dir);
    }
  }

  /** Tokens of one issuer, checked on another node sharing its key store. */
  @State(Scope.Benchmark)
  public static class Tokens {
    Path dir;
    Store store;
    Identity issuer;
    Identity checker;
    Identity.Subject subject;
    String cached;
    String fresh;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      dir = Files.createTempDirectory("keel-jmh-identity-");
      store = Store.sqlite(dir, "jmh", Clock.systemUTC(), false);
      issuer = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
      checker = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
      subject = new Identity.Subject("bench", 1, "s_bench", "s_bench",
          List.of("internal://time", "mcp://gateway/crm"), List.of("operator:bench"));
      cached = issuer.issue(subject).compact();
      checker.authorize(cached, "s_bench", "mcp://gateway/crm/read");
    }

    /** A token the checking node has never seen (issuing it is not measured). */
    @Setup(Level.Invocation)
    public void newToken() {
      fresh = issuer.issue(subject).compact();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      store.close();
      Bench.deleteTree(dir);
    }
  }

  /** An external call as the policy decision point sees it (the mcp-gateway scenario's descriptors). */
  @State(Scope.Benchmark)
  public static class PolicyCall {
    Policies policies;
    Policies.Call allowed;
    Policies.Call needsApproval;

    @Setup(Level.Trial)
    public void setUp() {
      List<keel.core.Descriptor> ds = keel.core.Descriptors.parse(McpGatewayBench.descriptors("http://127.0.0.1:9/mcp"), "jmh");
      keel.core.AgentDescriptor agent = ds.stream().filter(d -> d instanceof keel.core.AgentDescriptor)
          .map(d -> (keel.core.AgentDescriptor) d).findFirst().orElseThrow();
      List<keel.core.PolicyDescriptor> rules = ds.stream().filter(d -> d instanceof keel.core.PolicyDescriptor)
          .map(d -> (keel.core.PolicyDescriptor) d).toList();
      Policies.SessionInfo session = new Policies.SessionInfo(McpGatewayBench.SESSION, McpGatewayBench.SESSION, "", "operator:bench", 1);
      policies = new Policies();
      allowed = new Policies.Call(agent, "ledger/read-entries", true, McpGatewayBench.ARGUMENTS, Optional.empty(), session,
          java.time.Instant.now(), rules);
      needsApproval = new Policies.Call(agent, "ledger/post-entry", false,
          "{\"invoice_id\":\"INV-1\",\"supplier_id\":\"sup-acme\",\"amount\":2500.00,\"currency\":\"EUR\",\"memo\":\"urgent\"}",
          Optional.of("args.amount"), session, java.time.Instant.now(), rules);
      if (!(policies.decide(allowed) instanceof Policies.Decision.Allow)
          || !(policies.decide(needsApproval) instanceof Policies.Decision.RequireApproval)) {
        throw new IllegalStateException("the policy benchmark's calls are not decided as intended");
      }
    }
  }

  /** The policy check of a read-only call that is allowed (one Policy's CEL rules, the agent's CEL rule). */
  @Benchmark
  public Policies.Decision policyCheckAllowed(PolicyCall p) {
    return p.policies.decide(p.allowed);
  }

  /** The policy check of a valued call that needs approval (value expression, threshold, two rules firing). */
  @Benchmark
  public Policies.Decision policyCheckRequiresApproval(PolicyCall p) {
    return p.policies.decide(p.needsApproval);
  }

  /** Encodes every event of the 20-step session to its stored JSON. */
  @Benchmark
  public void encodeSessionLog(Log log, Blackhole bh) {
    for (StoredEvent e : log.events) {
      bh.consume(EventCodec.encode(e.event()));
    }
  }

  /** Decodes every event of the 20-step session from its stored JSON. */
  @Benchmark
  public void decodeSessionLog(Log log, Blackhole bh) {
    for (int i = 0; i < log.events.size(); i++) {
      bh.consume(EventCodec.decode(log.events.get(i).event().type(), log.encoded.get(i)));
    }
  }

  /** Folds the 20-step session's log into its state, as a rehydration does. */
  @Benchmark
  public SessionState foldSessionLog(Log log) {
    SessionState s = SessionState.empty();
    for (StoredEvent e : log.events) {
      s.apply(e);
    }
    return s;
  }

  /** One durable append of one event (a group commit with its fsync), one writer at a time. */
  @Benchmark
  public long appendOneEventDurably(Log log) {
    long seq = log.server.store().events().append(new Append(log.session, log.lastSeq,
        List.of(new PendingEvent(log.toolCompleted.event(), log.toolCompleted.spanId())), SessionStatus.IDLE, List.of(),
        Optional.empty()));
    log.lastSeq = seq;
    return seq;
  }

  /** The check of a token this node verified before (expiry, session, grant). */
  @Benchmark
  public Identity.Verdict tokenCheckCached(Tokens t) {
    return t.checker.authorize(t.cached, "s_bench", "mcp://gateway/crm/read");
  }

  /** The first check of a token on this node (parse, ES256 signature, claims, grant). */
  @Benchmark
  public Identity.Verdict tokenCheckUncached(Tokens t) {
    return t.checker.authorize(t.fresh, "s_bench", "mcp://gateway/crm/read");
  }
}
