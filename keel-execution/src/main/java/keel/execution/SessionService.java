package keel.execution;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import keel.control.Budgets;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.core.AgentDescriptor;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.Input;
import keel.data.NewSession;
import keel.data.PendingEvent;
import keel.data.SessionQuery;
import keel.data.SessionRecord;
import keel.data.Store;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The execution plane's front door: start sessions, send them messages, cancel them, resolve tool
 * calls whose outcome is unknown, read and follow them. Every input is stored in the session's
 * inbox before a method returns, so anything acknowledged survives a crash; the scheduler then runs
 * the session.
 *
 * <p>Thread-safe.
 */
public final class SessionService implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(SessionService.class);
  private static final int RECOVERY_BATCH = 10_000;
  private static final java.time.Duration SWEEP_PERIOD = java.time.Duration.ofSeconds(10);

  private final Store store;
  private final AgentCatalog catalog;
  private final EventBus bus;
  private final Scheduler scheduler;
  private final Clock clock;
  private final ExecutionSettings settings;
  private final Identity identity;
  private final Budgets budgets;
  private final BudgetWaits budgetWaits;
  private final SecureRandom random = new SecureRandom();
  /** When the sweep last purged old budget windows, in epoch milliseconds of the clock. */
  private final java.util.concurrent.atomic.AtomicLong lastBudgetPurge = new java.util.concurrent.atomic.AtomicLong();
  private final RunListeners runListeners;
  private final ApprovalNotices approvalNotices;
  /** Wakes sessions for inputs other nodes wrote (PostgreSQL {@code LISTEN}); set once by create. */
  private volatile AutoCloseable inputListener = () -> {};
  /** Feeds the cluster approval listeners with other nodes' changes (PostgreSQL {@code LISTEN}); set once by create. */
  private volatile AutoCloseable approvalListener = () -> {};

  private SessionService(
      Store store,
      AgentCatalog catalog,
      EventBus bus,
      Scheduler scheduler,
      Clock clock,
      ExecutionSettings settings,
      Identity identity,
      Budgets budgets,
      BudgetWaits budgetWaits,
      RunListeners runListeners,
      ApprovalNotices approvalNotices) {
    this.runListeners = runListeners;
    this.approvalNotices = approvalNotices;
    this.store = store;
    this.catalog = catalog;
    this.bus = bus;
    this.scheduler = scheduler;
    this.clock = clock;
    this.settings = settings;
    this.identity = identity;
    this.budgets = budgets;
    this.budgetWaits = budgetWaits;
  }

  /** Wires the execution plane of one node over a store. */
  public static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings) {
    return create(store, models, tools, clock, settings, PriceTable.builtIn());
  }

  /** Wires the execution plane of one node, pricing model calls with {@code prices}. */
  public static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices) {
    return create(store, models, tools, clock, settings, prices, defaultIdentity(store, clock), CostSettings.defaults());
  }

  /**
   * Wires the execution plane of one node: model calls priced with {@code prices}, every session
   * acting with tokens {@code identity} issues and checks.
   */
  public static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices,
      Identity identity) {
    return create(store, models, tools, clock, settings, prices, identity, CostSettings.defaults());
  }

  /**
   * Wires the execution plane of one node, pricing model calls with {@code prices} and compute with
   * {@code costs}; every model and tool call asks the agent's current budgets first.
   */
  public static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices,
      CostSettings costs) {
    return create(store, models, tools, clock, settings, prices, defaultIdentity(store, clock), costs);
  }

  /**
   * Wires the execution plane of one node: model calls priced with {@code prices}, compute with
   * {@code costs}, every session acting with tokens {@code identity} issues and checks, and every
   * model and tool call asking the agent's current budgets first.
   */
  public static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices,
      Identity identity, CostSettings costs) {
    return create(store, models, tools, clock, settings, prices, identity, TokenPresenter.HELD, costs);
  }

  static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices,
      Identity identity, TokenPresenter presenter) {
    return create(store, models, tools, clock, settings, prices, identity, presenter, CostSettings.defaults());
  }

  private static Identity defaultIdentity(Store store, Clock clock) {
    return new Identity(store.signingKeys(), clock, IdentitySettings.defaults());
  }

  static SessionService create(
      Store store, ModelProviders models, ToolRegistry tools, Clock clock, ExecutionSettings settings, PriceTable prices,
      Identity identity, TokenPresenter presenter, CostSettings costs) {
    AgentCatalog catalog = new AgentCatalog(store.inventory());
    EventBus bus = new EventBus();
    models.register(new ReplayModelProvider(store.events()));
    ModelGateway gateway = new ModelGateway(models, prices, ProviderBreakers.defaults(), new RequestCoalescer());
    SecureRandom ids = new SecureRandom();
    Budgets budgets =
        new Budgets(
            store.budgets(),
            // the agent's current limits, so a raised budget applies to sessions already running
            agent -> currentBudgets(catalog, agent),
            clock,
            () -> "br_" + hex(ids, 24),
            costs.reservationTtl());
    BudgetWaits waits = new BudgetWaits(clock);
    Metering metering = new Metering(budgets, prices, costs, waits, clock);
    // the runner wakes sessions through the scheduler, which is built around the runner
    java.util.concurrent.atomic.AtomicReference<Scheduler> wakes = new java.util.concurrent.atomic.AtomicReference<>();
    ApprovalNotices approvalNotices = new ApprovalNotices();
    RunListeners listeners = new RunListeners();
    SessionRunner runner = new SessionRunner(
        store, catalog, gateway, tools, bus, clock, settings.node(), identity, presenter, id -> wakes.get().wake(id), metering,
        new keel.control.Policies(), approvalNotices::here, listeners);
    Scheduler scheduler =
        new Scheduler(
            (sessionId, signals) -> {
              long began = System.nanoTime();
              SessionRunner.Outcome outcome = runner.run(sessionId, signals);
              listeners.runEnded(sessionId, java.time.Duration.ofNanos(System.nanoTime() - began));
              return outcome;
            },
            settings.maxConcurrentSteps(),
            settings.admissionCapacity(),
            sessionId -> {
              SessionRecord r =
                  store.events()
                      .session(sessionId)
                      .orElseThrow(() -> new KeelException.NotFound("session " + sessionId + " does not exist"));
              AgentDescriptor a = catalog.revision(r.agent(), r.revision());
              AgentDescriptor.ConcurrencySpec c = a.spec().concurrency();
              Optional<String> partition =
                  c.mode() == AgentDescriptor.ConcurrencyMode.PER_PARTITION
                      ? firstMessage(store, sessionId).flatMap(m -> Partitions.lenient(r.agent(), c, m))
                      : Optional.empty();
              return new Scheduler.AgentLimit(r.agent(), c.maxActiveSessions().orElse(0), partition);
            },
            settings.leaseTtl().map(ttl -> new LeaseKeeper(store.leases(), settings.node(), ttl, clock)).orElse(null),
            settings.clusterAdmissionCapacity());
    wakes.set(scheduler);
    waits.wakeWith(scheduler::wake);
    SessionService service = new SessionService(store, catalog, bus, scheduler, clock, settings, identity, budgets, waits, listeners,
        approvalNotices);
    scheduler.every(SWEEP_PERIOD, service::sweep);
    settings.leaseTtl().ifPresent(ttl -> scheduler.every(claimPeriod(ttl), scheduler::claimRunnable));
    // an input written through any node wakes the session here too; its lease decides who runs it
    service.inputListener = store.listenForInputs(scheduler::wake);
    // an approval requested, decided, expired or withdrawn through another node reaches this node's streams
    service.approvalListener = store.listenForApprovals(change -> {
      try {
        store.approvals().find(change.approvalId()).ifPresent(a -> approvalNotices.elsewhere(change.what(), a));
      } catch (KeelException e) {
        LOG.warn("approval {} changed on another node and could not be read: {}", change.approvalId(), e.getMessage());
      }
    });
    return service;
  }

  /** A session's first message: its first input received, or else the first still waiting. */
  private static Optional<String> firstMessage(Store store, String sessionId) {
    for (StoredEvent e : store.events().events(sessionId, 0, 8)) {
      if (e.event() instanceof keel.core.SessionEvent.InputReceived in) {
        return Optional.of(in.text());
      }
    }
    return store.events().pendingInputs(sessionId).stream().filter(i -> i.kind().equals("message")).findFirst().map(Input::body);
  }

  /**
   * How often a node looks for sessions with work that no node holds: often enough that a dead
   * node's sessions are taken over well within a second of their leases' expiry.
   */
  static java.time.Duration claimPeriod(java.time.Duration ttl) {
    return java.time.Duration.ofMillis(Math.max(50, Math.min(500, ttl.toMillis() / 4)));
  }

  /** The budgets of the agent's current revision ({@link AgentCatalog#latest}); none if it is gone. */
  private static Optional<AgentDescriptor.Budgets> currentBudgets(AgentCatalog catalog, String agent) {
    try {
      return catalog.latest(agent).agent().spec().budgets();
    } catch (KeelException.NotFound gone) {
      return Optional.empty();
    }
  }


  /**
   * Registers a listener told each time a run of a session on this node has rehydrated its session
   * and each time a run ends (the session suspended, ended or will be retried): where metrics time
   * rehydration and steps, and the trace export learns that a session's spans may be final.
   */
  public void addRunListener(RunListener listener) {
    runListeners.add(listener);
  }

  /**
   * The approval listeners: those told of changes made on this node (the webhook, so that it is
   * sent once cluster-wide) and those told of changes made on any node (the approvals stream).
   * Thread-safe.
   */
  static final class ApprovalNotices {
    private final List<ApprovalListener> here = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final List<ApprovalListener> anywhere = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** A change this node made: every listener. */
    void here(String what, keel.data.Approval approval) {
      tell(here, what, approval);
      tell(anywhere, what, approval);
    }

    /** A change another node made (and told its own listeners of): the cluster-wide listeners. */
    void elsewhere(String what, keel.data.Approval approval) {
      tell(anywhere, what, approval);
    }

    private static void tell(List<ApprovalListener> listeners, String what, keel.data.Approval approval) {
      for (ApprovalListener l : listeners) {
        try {
          l.changed(what, approval);
        } catch (RuntimeException e) {
          LOG.warn("approval {}: a listener failed: {}", approval.id(), e.toString());
        }
      }
    }
  }

  /**
   * Registers a listener told when an approval is requested, decided, expires or is withdrawn by
   * this node (for notifications sent once per change cluster-wide: the webhook). It must be fast
   * and must not block.
   */
  public void addApprovalListener(ApprovalListener listener) {
    approvalNotices.here.add(java.util.Objects.requireNonNull(listener, "listener"));
  }

  /**
   * Registers a listener told when an approval is requested, decided, expires or is withdrawn by any
   * node sharing the store: by this one as it happens, by others through the store's notices
   * ({@link Store#listenForApprovals}, PostgreSQL; a notice lost while a connection is down is not
   * told again). For what every node shows (the approvals stream). It must be fast and must not block.
   */
  public void addClusterApprovalListener(ApprovalListener listener) {
    approvalNotices.anywhere.add(java.util.Objects.requireNonNull(listener, "listener"));
  }

  /**
   * Tells the approval listeners (the approvals stream, the webhook) of an approval requested
   * outside a session: a call of an outside MCP client through the gateway's MCP server.
   */
  public void approvalRequested(keel.data.Approval approval) {
    approvalNotices.here("requested", approval);
  }

  /** Told about approvals as they change. */
  @FunctionalInterface
  public interface ApprovalListener {
    /**
     * @param what {@code requested}, {@code decided}, {@code expired} or {@code withdrawn}
     */
    void changed(String what, keel.data.Approval approval);
  }

  /**
   * Records a decision about a pending approval and hands it to its session, which then runs the
   * call (checked again, with {@code arguments} when an approver edited them) or tells the model it
   * was denied. Who may decide is the caller's business (the API checks it); this only records.
   *
   * @param arguments edited arguments as a JSON object text, or empty to keep the model's
   * @throws KeelException.NotFound if there is no such approval
   * @throws KeelException.Conflict if it was already decided, expired or withdrawn
   * @throws KeelException.Invalid if the edited arguments are not a JSON object
   */
  public keel.data.Approval decideApproval(String approvalId, boolean approve, String by, String reason, String arguments) {
    if (!arguments.isEmpty()) {
      try {
        if (!keel.core.EventCodec.mapper().readTree(arguments).isObject()) {
          throw new KeelException.Invalid("arguments: expected a JSON object, got " + arguments);
        }
      } catch (tools.jackson.core.JacksonException e) {
        throw new KeelException.Invalid("arguments: not valid JSON: " + e.getOriginalMessage());
      }
    }
    keel.data.Approval decided = store.approvals().decide(approvalId,
        approve ? keel.data.Approval.Status.APPROVED : keel.data.Approval.Status.DENIED, by, reason, arguments, clock.instant());
    if (decided.status() == keel.data.Approval.Status.WITHDRAWN) {
      // its session ended before it withdrew the approval; the store withdrew it now
      approvalNotices.here("withdrawn", decided);
      throw new KeelException.Conflict("approval " + approvalId + " was withdrawn: its session " + decided.sessionId()
          + " has ended, so no call waits for this decision any more");
    }
    if (!decided.sessionId().isEmpty()) {
      scheduler.wake(decided.sessionId());
    }
    approvalNotices.here("decided", store.approvals().find(approvalId).orElse(decided));
    return store.approvals().find(approvalId).orElse(decided);
  }

  /**
   * Decides every pending approval whose time is up as expired (which its session reads as a
   * denial). Safe on many nodes at once: each approval is expired by exactly one of them.
   *
   * @return how many this call expired
   */
  public int expireApprovals() {
    int n = 0;
    for (keel.data.Approval a : store.approvals().due(clock.instant(), 500)) {
      try {
        keel.data.Approval expired = store.approvals().decide(a.id(), keel.data.Approval.Status.EXPIRED, "keel:expiry",
            "nobody decided it by " + a.expiresAt(), "", clock.instant());
        if (expired.status() == keel.data.Approval.Status.WITHDRAWN) {
          approvalNotices.here("withdrawn", expired);
          continue;
        }
        n++;
        if (!expired.sessionId().isEmpty()) {
          scheduler.wake(expired.sessionId());
        }
        approvalNotices.here("expired", store.approvals().find(a.id()).orElse(expired));
      } catch (KeelException.Conflict decidedMeanwhile) {
        // decided by a human, or expired by another node, between the read and the update
      }
    }
    return n;
  }

  /**
   * Wakes sessions that have work but no run: the safety net behind every wake. Budget-blocked
   * sessions this node does not already wait for (after a restart, or blocked by another node) are
   * woken too; each checks its budget and waits again if it is still exhausted.
   */
  private void sweep() {
    try {
      int expired = expireApprovals();
      if (expired > 0) {
        LOG.info("sweep: {} approvals expired", expired);
      }
    } catch (KeelException e) {
      LOG.warn("sweep: could not expire approvals: {}", e.getMessage());
    }
    // a budget-blocked session with a message waiting is woken by its own timer, not every sweep;
    // under leases, sessions with work are claimed (scheduler.claimRunnable), not woken here
    int woken = scheduler.leased() ? 0 : scheduler.sweep(
        store.events().sessionsWithWork(RECOVERY_BATCH).stream().filter(id -> !budgetWaits.registered(id)).toList());
    if (woken > 0) {
      LOG.info("sweep: resumed {} sessions that had work and no run", woken);
    }
    List<String> blocked =
        store.events().sessions(new SessionQuery(Optional.empty(), Optional.of(SessionStatus.BUDGET_BLOCKED), 1000, Optional.empty()))
            .stream()
            .map(SessionRecord::id)
            .filter(id -> !budgetWaits.registered(id))
            .toList();
    scheduler.sweep(blocked);
    long now = clock.millis();
    long last = lastBudgetPurge.get();
    if (now - last >= BUDGET_PURGE_PERIOD.toMillis() && lastBudgetPurge.compareAndSet(last, now)) {
      int purged = store.budgets().purge(clock.instant().minus(BUDGET_RETENTION));
      if (purged > 0) {
        LOG.info("purged {} budget windows and expired reservations older than {}", purged, BUDGET_RETENTION);
      }
    }
  }

  private static final java.time.Duration BUDGET_PURGE_PERIOD = java.time.Duration.ofMinutes(10);
  /** Budget windows are kept two days: the current day's and the one before, for the budget view. */
  private static final java.time.Duration BUDGET_RETENTION = java.time.Duration.ofDays(2);

  /**
   * An agent's descriptor changed (a new active revision): its budget-blocked sessions check their
   * budgets again at once, so a raised or removed limit lets them go on without waiting for the
   * window to end.
   *
   * @return how many sessions were woken to check
   */
  public int agentChanged(String agent) {
    catalog.forget(agent);
    int woken = wakeBudgetBlocked(Optional.of(agent));
    if (woken > 0) {
      LOG.info("agent {} changed: {} budget-blocked sessions check their budgets again", agent, woken);
    }
    return woken;
  }

  /** Wakes every budget-blocked session (of one agent), page by page. */
  private int wakeBudgetBlocked(Optional<String> agent) {
    int woken = 0;
    Optional<String> before = Optional.empty();
    while (true) {
      List<SessionRecord> page =
          store.events().sessions(new SessionQuery(agent, Optional.of(SessionStatus.BUDGET_BLOCKED), 1000, before));
      for (SessionRecord r : page) {
        scheduler.wake(r.id());
        woken++;
      }
      if (page.size() < 1000) {
        return woken;
      }
      before = Optional.of(page.getLast().id());
    }
  }

  /** The agents' budgets, as the step executor sees them. */
  public Budgets budgets() {
    return budgets;
  }

  /**
   * What starting a session needs.
   *
   * @param traceId the W3C trace id to continue (a caller's), else a new one is made
   * @param parentSpanId the caller's span the session's root span is a child of; kept only with
   *     the caller's trace id
   */
  public record Start(
      String agent,
      String message,
      String principal,
      boolean task,
      Optional<String> idempotencyKey,
      Optional<String> traceId,
      Optional<String> parentSpanId) {

    /** A start without a caller's parent span. */
    public Start(
        String agent, String message, String principal, boolean task, Optional<String> idempotencyKey, Optional<String> traceId) {
      this(agent, message, principal, task, idempotencyKey, traceId, Optional.empty());
    }
  }

  /**
   * Starts a session of the agent's latest revision with its first message. With an idempotency
   * key, starting again with the same key (and principal) returns the session started the first
   * time instead of a new one.
   */
  public SessionRecord start(Start start) {
    checkMessage(start.message());
    AgentCatalog.Versioned agent = catalog.latest(start.agent());
    // a per-partition agent's sessions are placed by their first message: refuse one that names none
    Partitions.of(start.agent(), agent.agent().spec().concurrency(), start.message());
    String id =
        start.idempotencyKey().map(k -> "s_" + digest(start.principal() + "\n" + k, 20)).orElseGet(() -> "s_" + randomHex(20));
    if (start.idempotencyKey().isPresent()) {
      Optional<SessionRecord> existing = store.events().session(id);
      if (existing.isPresent()) {
        return existing.get();
      }
    }
    scheduler.admit();
    Optional<String> callerTrace = start.traceId().filter(SessionService::validTraceId);
    String traceId = callerTrace.orElseGet(() -> randomHex(32));
    Optional<String> remoteParent = start.parentSpanId().filter(p -> callerTrace.isPresent() && p.matches("[0-9a-f]{16}") && !p.equals("0".repeat(16)));
    if (remoteParent.isPresent()) {
      // written before the session exists, so a session is never exported without its link
      store.traceExports().linkRemoteParent(id, remoteParent.get());
    }
    Input first = new Input(id, "in_" + randomHex(16), "message", start.message(), start.principal(), clock.instant());
    SessionEvent.SessionStarted started =
        new SessionEvent.SessionStarted(
            start.agent(), agent.revision(), agent.agent().metadata().owner(), start.principal(), start.task(),
            agent.agent().spec().tools(), List.of(start.principal()), "");
    try {
      store.events()
          .create(
              new NewSession(
                  id,
                  start.agent(),
                  agent.revision(),
                  agent.agent().metadata().owner(),
                  traceId,
                  Optional.empty(),
                  id,
                  List.of(new PendingEvent(started, Spans.session(id))),
                  SessionStatus.IDLE,
                  Optional.of(first)));
    } catch (KeelException.Conflict e) {
      if (start.idempotencyKey().isPresent()) {
        return store.events().session(id).orElseThrow(() -> e);
      }
      throw e;
    }
    scheduler.wake(id);
    return store.events().session(id).orElseThrow();
  }

  /**
   * Sends a message to a session. What happens when the session is busy follows its agent's {@code
   * spec.concurrency.on_busy}: {@code enqueue} (handled after the current step), {@code reject}
   * (409), {@code interrupt} (the current step stops at its next safe point).
   */
  public Input send(String sessionId, String message, String principal, Optional<String> idempotencyKey) {
    checkMessage(message);
    SessionRecord r = require(sessionId);
    if (r.status().terminal()) {
      throw new KeelException.Conflict(
          "session " + sessionId + " is " + r.status().wireName() + " and takes no more messages; start a new session");
    }
    AgentDescriptor agent = catalog.revision(r.agent(), r.revision());
    if (agent.spec().concurrency().onBusy() == AgentDescriptor.OnBusy.REJECT
        && (scheduler.busy(sessionId) || r.effectiveStatus() != SessionStatus.IDLE)) {
      throw new KeelException.Conflict(
          "session " + sessionId + " is busy (" + r.effectiveStatus().wireName() + ") and agent \""
              + r.agent() + "\" has spec.concurrency.on_busy: reject; send again when it is idle");
    }
    scheduler.admit();
    String inputId = idempotencyKey.map(k -> "in_" + digest(principal + "\n" + k, 16)).orElseGet(() -> "in_" + randomHex(16));
    Input stored = store.events().enqueue(new Input(sessionId, inputId, "message", message, principal, clock.instant()));
    scheduler.wake(sessionId);
    return stored;
  }

  /** Cancels a session at its next safe point. */
  public void cancel(String sessionId, String principal, String reason) {
    SessionRecord r = require(sessionId);
    if (r.status().terminal()) {
      throw new KeelException.Conflict("session " + sessionId + " is already " + r.status().wireName());
    }
    store.events().enqueue(new Input(sessionId, "in_" + randomHex(16), "cancel", reason, principal, clock.instant()));
    scheduler.wake(sessionId);
  }

  /**
   * Records a human's decision about a tool call whose outcome is unknown: {@code succeeded} or
   * {@code failed} (the model is told {@code result}), or {@code retry} (run it again).
   */
  public void resolve(String sessionId, String callId, String resolution, String result, String principal) {
    if (!List.of("succeeded", "failed", "retry").contains(resolution)) {
      throw new KeelException.Invalid(
          "resolution: expected one of succeeded, failed, retry, got \"" + resolution + "\"");
    }
    SessionRecord r = require(sessionId);
    SessionState state = SessionLoader.load(store.events(), sessionId);
    boolean waiting =
        state.pending().stream()
            .anyMatch(p -> p.call().id().equals(callId) && p.state() == keel.core.PendingCall.CallState.OUTCOME_UNKNOWN);
    if (!waiting) {
      throw new KeelException.Conflict(
          "session " + sessionId + " (" + r.effectiveStatus().wireName() + ") has no tool call \"" + callId
              + "\" waiting for a decision");
    }
    String body =
        keel.core.EventCodec.mapper()
            .writeValueAsString(java.util.Map.of("call_id", callId, "resolution", resolution, "result", result));
    store.events().enqueue(new Input(sessionId, "in_" + randomHex(16), "resolve", body, principal, clock.instant()));
    scheduler.wake(sessionId);
  }

  /**
   * Lets a session that was suspended because its model answered with another version than the
   * pinned one go on, accepting that version for this session.
   */
  public void resume(String sessionId, String principal) {
    SessionRecord r = require(sessionId);
    SessionState state = SessionLoader.load(store.events(), sessionId);
    if (state.driftPending().isEmpty()) {
      throw new KeelException.Conflict(
          "session " + sessionId + " (" + r.effectiveStatus().wireName() + ") is not suspended on a model drift");
    }
    store.events().enqueue(new Input(sessionId, "in_" + randomHex(16), "resume", state.driftPending(), principal, clock.instant()));
    scheduler.wake(sessionId);
  }

  public SessionRecord record(String sessionId) {
    return require(sessionId);
  }

  /** A session with its folded state. */
  public SessionView view(String sessionId) {
    SessionRecord r = require(sessionId);
    SessionState s = SessionLoader.load(store.events(), sessionId);
    SessionRecord fresh = r.lastSeq() == s.lastSeq() ? r : store.events().session(sessionId).orElse(r);
    return new SessionView(
        fresh,
        fresh.effectiveStatus(),
        s.conversation(),
        s.pending(),
        s.usage(),
        s.modelCalls(),
        s.lastAnswer(),
        s.failure(),
        s.costUsd(),
        s.driftPending(),
        s.parentSessionId().isEmpty() ? catalog.revision(r.agent(), r.revision()).spec().tools() : s.grants(),
        s.chain(),

        s.budgetBlock());
  }

  public List<SessionRecord> list(SessionQuery query) {
    return store.events().sessions(query);
  }

  public List<StoredEvent> events(String sessionId, long afterSeq, int limit) {
    require(sessionId);
    return store.events().events(sessionId, afterSeq, limit);
  }

  /**
   * Follows a session's frames; close the handle to stop. Frames of runs on this node come as they
   * happen; when sessions run under leases, the session may run on another node, so its new events
   * are also read from the store (every {@value #TAIL_PERIOD_MILLIS} ms while no run of it is on
   * this node). Each event is passed on once, in order of sequence numbers.
   */
  public AutoCloseable subscribe(String sessionId, Consumer<SessionFrame> listener) {
    if (!scheduler.leased()) {
      return bus.subscribe(sessionId, listener);
    }
    java.util.concurrent.atomic.AtomicLong delivered =
        new java.util.concurrent.atomic.AtomicLong(store.events().session(sessionId).map(SessionRecord::lastSeq).orElse(0L));
    java.util.concurrent.locks.ReentrantLock order = new java.util.concurrent.locks.ReentrantLock();
    Consumer<SessionFrame> once = f -> {
      order.lock();
      try {
        if (f instanceof SessionFrame.Event e) {
          if (e.event().seq() <= delivered.get()) {
            return;
          }
          if (e.event().seq() > delivered.get() + 1) {
            // events another node wrote since the last tail: passed on first, from the store
            for (StoredEvent missed : store.events().events(sessionId, delivered.get(), (int) (e.event().seq() - delivered.get() - 1))) {
              listener.accept(new SessionFrame.Event(missed));
              delivered.set(missed.seq());
            }
          }
          delivered.set(e.event().seq());
        }
        listener.accept(f);
      } finally {
        order.unlock();
      }
    };
    AutoCloseable local = bus.subscribe(sessionId, once);
    Thread tail = Thread.ofVirtual().name("keel-tail-" + sessionId).start(() -> {
      while (!Thread.currentThread().isInterrupted()) {
        try {
          Thread.sleep(TAIL_PERIOD_MILLIS);
          if (!scheduler.busy(sessionId)) {
            for (StoredEvent e : store.events().events(sessionId, delivered.get(), 1000)) {
              once.accept(new SessionFrame.Event(e));
            }
          }
        } catch (InterruptedException stop) {
          return;
        } catch (RuntimeException e) {
          LOG.debug("session {}: tailing the store failed; trying again: {}", sessionId, e.toString());
        }
      }
    });
    return () -> {
      tail.interrupt();
      local.close();
    };
  }

  private static final long TAIL_PERIOD_MILLIS = 250;

  /** Follows every session on this node. */
  public AutoCloseable subscribeAll(Consumer<SessionFrame> listener) {
    return bus.subscribeAll(listener);
  }

  /**
   * Resumes every session a crash or a restart left with work, and has every budget-blocked session
   * check its budget (and wait again for its window's end on this node); returns how many sessions
   * had work.
   */
  public int recover() {
    List<String> ids = store.events().sessionsWithWork(RECOVERY_BATCH);
    if (scheduler.leased()) {
      // other nodes may be running some of them: claim those that nobody holds
      scheduler.claimRunnable();
    } else {
      for (String id : ids) {
        scheduler.wake(id);
      }
    }
    if (!ids.isEmpty()) {
      LOG.info("resuming {} sessions that had work when the node stopped", ids.size());
    }
    int blocked = wakeBudgetBlocked(Optional.empty());
    if (blocked > 0) {
      LOG.info("{} budget-blocked sessions check their budgets", blocked);
    }
    return ids.size();
  }

  public Scheduler scheduler() {
    return scheduler;
  }

  public AgentCatalog catalog() {
    return catalog;
  }

  public ExecutionSettings settings() {
    return settings;
  }

  /** The control plane's identity service the sessions' tokens come from. */
  public Identity identity() {
    return identity;
  }

  private SessionRecord require(String sessionId) {
    return store.events()
        .session(sessionId)
        .orElseThrow(() -> new KeelException.NotFound("there is no session \"" + sessionId + "\""));
  }

  private void checkMessage(String message) {
    if (message == null || message.isBlank()) {
      throw new KeelException.Invalid("message: expected a non-empty text");
    }
    if (message.length() > settings.maxInputChars()) {
      throw new KeelException.Invalid(
          "message: expected at most " + settings.maxInputChars() + " characters, got " + message.length());
    }
  }

  private static boolean validTraceId(String t) {
    return t.matches("[0-9a-f]{32}") && !t.equals("0".repeat(32));
  }

  private String randomHex(int chars) {
    byte[] b = new byte[(chars + 1) / 2];
    random.nextBytes(b);
    return HexFormat.of().formatHex(b).substring(0, chars);
  }

  private static String digest(String text, int chars) {
    try {
      byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d).substring(0, chars);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    try {
      inputListener.close();
    } catch (Exception e) {
      LOG.warn("could not stop listening for inputs: {}", e.toString());
    }
    try {
      approvalListener.close();
    } catch (Exception e) {
      LOG.warn("could not stop listening for approvals: {}", e.toString());
    }
    scheduler.close();
    budgetWaits.close();
  }

  private static String hex(SecureRandom random, int chars) {
    byte[] b = new byte[(chars + 1) / 2];
    random.nextBytes(b);
    return HexFormat.of().formatHex(b).substring(0, chars);
  }
}
