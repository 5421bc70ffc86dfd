package keel.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.Store;
import keel.execution.SessionFrame;
import keel.execution.SessionService;

/**
 * The node's Prometheus metrics, served at {@code /metrics}. Counters and histograms are fed from
 * what the execution plane reports as it happens (every appended event, every run's end, every
 * store append); gauges of sessions by status are read from the store at scrape time, so they are
 * right for the whole store, not just this node's runs since it started.
 *
 * <p>Micrometer's Prometheus registry rather than the OpenTelemetry Prometheus exporter: the latter
 * is still alpha in the versions available here, while Micrometer's registry is stable and gives
 * histograms with Prometheus buckets directly.
 *
 * <p>Thread-safe: meters are thread-safe; the session-to-agent cache is guarded by its lock.
 */
final class Metrics implements AutoCloseable {

  private static final int AGENT_CACHE = 10_000;
  private static final String AGENT_KIND = "Agent";

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Store store;
  private final MultiGauge sessionsByStatus;
  private final MultiGauge awaitingApproval;
  /** Guards {@link #agents}. */
  private final ReentrantLock agentsLock = new ReentrantLock();
  /** Session id to agent name, least recently used first; bounded. */
  private final Map<String, String> agents =
      new LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
          return size() > AGENT_CACHE;
        }
      };
  private final Timer appendLatency;
  private final Map<String, Timer> rehydrate = new java.util.concurrent.ConcurrentHashMap<>();
  private final AutoCloseable subscription;

  Metrics(SessionService sessions, Store store) {
    this.store = store;
    this.sessionsByStatus =
        MultiGauge.builder("keel.sessions").description("Sessions by agent and status (the whole store)").register(registry);
    this.awaitingApproval =
        MultiGauge.builder("keel.sessions.awaiting.approval")
            .description("Sessions waiting for a human decision, by agent")
            .register(registry);
    Gauge.builder("keel.admission.queue.depth", sessions.scheduler(), s -> s.waitingSessions())
        .description("Sessions with work waiting for a run slot on this node")
        .register(registry);
    Gauge.builder("keel.sessions.running", sessions.scheduler(), s -> s.runningSessions())
        .description("Sessions running a step on this node now")
        .register(registry);
    this.appendLatency =
        Timer.builder("keel.store.append")
            .description("Time to append a step's events to the store, group commit included")
            .publishPercentileHistogram()
            .register(registry);
    store.timeAppends(nanos -> appendLatency.record(nanos, TimeUnit.NANOSECONDS));
    sessions.addRunListener(new keel.execution.RunListener() {
      @Override
      public void runEnded(String sessionId, Duration took) {
        Metrics.this.runEnded(sessionId, took);
      }

      @Override
      public void rehydrated(String sessionId, String agent, Duration took) {
        rehydrate.computeIfAbsent(agent, a -> Timer.builder("keel.session.rehydrate")
                .description("Time for a run to bring its session back from the store (record, snapshot, events after it"
                    + " folded, agent revision, inbox) before its first decision, by agent")
                .tag("agent", a)
                .publishPercentileHistogram()
                // rehydration takes well under a millisecond: buckets from 10 µs, not the default 1 ms
                .minimumExpectedValue(Duration.ofNanos(10_000))
                .maximumExpectedValue(Duration.ofSeconds(10))
                .register(registry))
            .record(took);
      }
    });
    this.subscription = sessions.subscribeAll(this::frame);
  }

  /** The metrics in the Prometheus text format, gauges refreshed from the store first. */
  String scrape() {
    refreshGauges();
    return registry.scrape();
  }

  private void refreshGauges() {
    List<MultiGauge.Row<?>> rows = new ArrayList<>();
    List<MultiGauge.Row<?>> approval = new ArrayList<>();
    for (var revision : store.inventory().latestOfKind(AGENT_KIND)) {
      String agent = revision.name();
      Map<SessionStatus, Long> counts = store.events().countByStatus(agent);
      for (SessionStatus s : SessionStatus.values()) {
        rows.add(MultiGauge.Row.of(Tags.of("agent", agent, "status", s.wireName()), counts.getOrDefault(s, 0L)));
      }
      approval.add(MultiGauge.Row.of(Tags.of("agent", agent), counts.getOrDefault(SessionStatus.AWAITING_APPROVAL, 0L)));
    }
    sessionsByStatus.register(rows, true);
    awaitingApproval.register(approval, true);
  }

  private void runEnded(String sessionId, Duration took) {
    String agent = agentOf(sessionId);
    Counter.builder("keel.steps").description("Runs of a session from waking to suspending, by agent").tag("agent", agent)
        .register(registry).increment();
    Timer.builder("keel.step.duration").description("How long a step (a run of a session until it suspends) took")
        .tag("agent", agent).publishPercentileHistogram().register(registry).record(took);
  }

  private void frame(SessionFrame frame) {
    if (!(frame instanceof SessionFrame.Event(StoredEvent stored))) {
      return;
    }
    switch (stored.event()) {
      case SessionEvent.SessionStarted e -> remember(stored.sessionId(), e.agent());
      case SessionEvent.ModelResponded e -> {
        String agent = agentOf(stored.sessionId());
        String provider = e.provider().isEmpty() ? "unknown" : e.provider();
        Counter.builder("keel.model.calls").description("Model calls answered, by agent and provider")
            .tags("agent", agent, "provider", provider).register(registry).increment();
        Timer.builder("keel.model.call.duration").description("Model call latency, by agent and provider")
            .tags("agent", agent, "provider", provider).publishPercentileHistogram().register(registry)
            .record(e.latencyMillis(), TimeUnit.MILLISECONDS);
        tokens(agent, "input", e.usage().inputTokens());
        tokens(agent, "output", e.usage().outputTokens());
        tokens(agent, "cache_read", e.usage().cacheReadTokens());
        tokens(agent, "cache_write", e.usage().cacheWriteTokens());
        Counter.builder("keel.cost.usd").description("Model spend in US dollars, by agent").tag("agent", agent)
            .register(registry).increment(e.costUsd().doubleValue());
      }
      case SessionEvent.ToolCallCompleted e -> tool(stored.sessionId(), e.error());
      case SessionEvent.ToolCallDenied e -> tool(stored.sessionId(), true);
      case SessionEvent.SubagentCompleted e -> tool(stored.sessionId(), e.error());
      case SessionEvent.ApprovalRequested e -> Counter.builder("keel.approvals.requested")
          .description("External calls that waited for a human, by agent").tag("agent", agentOf(stored.sessionId()))
          .register(registry).increment();
      case SessionEvent.ApprovalDecided e -> {
        String agent = agentOf(stored.sessionId());
        Counter.builder("keel.approvals.decided").description("Approvals decided, by agent and decision (approved, denied, expired)")
            .tags("agent", agent, "decision", e.decision()).register(registry).increment();
        // how long the call waited for its human: from the request to the decision's event
        store.approvals().find(e.approvalId()).ifPresent(a -> Timer.builder("keel.approval.wait")
            .description("How long an external call waited for a human decision, by agent")
            .tag("agent", agent).publishPercentileHistogram().register(registry)
            .record(Duration.between(a.requestedAt(), stored.at()).isNegative() ? Duration.ZERO : Duration.between(a.requestedAt(), stored.at())));
      }
      case SessionEvent.ActionProposed e -> Counter.builder("keel.actions.proposed")
          .description("Shadow-mode external calls recorded as proposals and never executed, by agent")
          .tag("agent", agentOf(stored.sessionId())).register(registry).increment();
      default -> {
        // other events are not counted
      }
    }
  }

  private void tool(String sessionId, boolean error) {
    String agent = agentOf(sessionId);
    Counter.builder("keel.tool.calls").description("Tool calls finished (completed, denied or delegated), by agent")
        .tag("agent", agent).register(registry).increment();
    Counter errors = Counter.builder("keel.tool.errors").description("Tool calls that failed or were denied, by agent")
        .tag("agent", agent).register(registry);
    if (error) {
      errors.increment();
    }
  }

  private void tokens(String agent, String type, long n) {
    Counter.builder("keel.model.tokens").description("Model tokens, by agent and type").tags("agent", agent, "type", type)
        .register(registry).increment(n);
  }

  private void remember(String sessionId, String agent) {
    agentsLock.lock();
    try {
      agents.put(sessionId, agent);
    } finally {
      agentsLock.unlock();
    }
  }

  private String agentOf(String sessionId) {
    agentsLock.lock();
    try {
      String known = agents.get(sessionId);
      if (known != null) {
        return known;
      }
    } finally {
      agentsLock.unlock();
    }
    String agent = store.events().session(sessionId).map(r -> r.agent()).orElse("unknown");
    remember(sessionId, agent);
    return agent;
  }

  @Override
  public void close() {
    try {
      subscription.close();
    } catch (Exception e) {
      // the bus's subscriptions do not fail to close
    }
    registry.close();
  }
}
