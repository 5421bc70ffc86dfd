package keel.execution;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.KeelException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides when sessions run on this node. A session with work gets one virtual thread that runs it
 * until it suspends; a session without work has no thread and no memory here.
 *
 * <p>Design: {@link #wake} registers the session in {@code active} (atomically per session, with
 * {@link ConcurrentHashMap#compute}); if it was not there, a virtual thread is started for it,
 * otherwise the existing run is told that its inbox changed. A run ends by removing its entry in
 * another {@code compute}, unless a wake arrived meanwhile, in which case it runs again — so a
 * session never has two runs on this node and a wake is never lost. Concurrency is bounded by a
 * node-wide semaphore and one per agent; the number of sessions waiting for a permit is bounded by
 * the admission capacity, beyond which {@link #admit} refuses with {@link KeelException.Overloaded}.
 *
 * <p>Thread-safe.
 */
public final class Scheduler implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

  private final class Slot implements SessionRunner.Signals {
    /** Set by a wake during a run; cleared when the run re-reads the inbox (it reads it at start). */
    final AtomicBoolean inboxChanged = new AtomicBoolean(false);
    /** Set by a wake; decides whether the run goes round once more before it ends. */
    final AtomicBoolean dirty = new AtomicBoolean(false);

    /** The lease the current run writes under; null without leases or between runs. */
    volatile LeaseKeeper.Held held;

    @Override
    public boolean takeInboxChanged() {
      return inboxChanged.getAndSet(false);
    }

    @Override
    public java.util.Optional<keel.data.LeaseStore.Lease> lease() {
      LeaseKeeper.Held h = held;
      return h == null ? java.util.Optional.empty() : java.util.Optional.of(h.lease);
    }

    @Override
    public void checkLease() {
      LeaseKeeper.Held h = held;
      if (h != null) {
        leasing.check(h);
      }
    }
  }

  /** Runs one session until it has nothing to do. */
  @FunctionalInterface
  interface Runner {
    SessionRunner.Outcome run(String sessionId, SessionRunner.Signals signals);
  }

  private final Runner runner;
  private final Semaphore nodePermits;
  private final int maxConcurrentSteps;
  private final int admissionCapacity;
  private final java.util.function.Function<String, AgentLimit> limits;
  private final Map<String, Slot> active = new ConcurrentHashMap<>();
  private final Map<String, Semaphore> agentPermits = new ConcurrentHashMap<>();
  /** One permit per partition with sessions queued or running here (agent and partition). */
  private final PartitionLocks partitions = new PartitionLocks();
  /** Sessions waiting for a retry timer (a provider outage, a store failure); sweeps skip them. */
  private final java.util.Set<String> deferred = ConcurrentHashMap.newKeySet();
  private final AtomicInteger waiting = new AtomicInteger();
  private final AtomicInteger running = new AtomicInteger();
  private final ScheduledExecutorService timer;
  /** Claims, renews and releases session leases; null when this node runs sessions without them. */
  private final LeaseKeeper leasing;
  private volatile boolean closed;
  private final int clusterAdmissionCapacity;
  /** The cluster's queue as last counted in the store, when (System.nanoTime), and admitted since. */
  private volatile long queuedCounted;
  private volatile long queuedCountedAt = System.nanoTime() - 2 * QUEUED_REFRESH.toNanos();
  private final java.util.concurrent.atomic.AtomicLong admittedSinceCount = new java.util.concurrent.atomic.AtomicLong();
  private final Object queuedLock = new Object();

  /** How old the count of the cluster's queue may be when admission uses it. */
  static final Duration QUEUED_REFRESH = Duration.ofMillis(200);

  /**
   * @param runner runs one session until it suspends
   * @param maxConcurrentSteps the most sessions running at once on this node
   * @param admissionCapacity the most sessions waiting for a slot before new work is refused
   * @param limits for a session id, its agent and the most sessions of that agent that may run at
   *     once (below 1: no limit of the agent's own)
   */
  Scheduler(
      Runner runner,
      int maxConcurrentSteps,
      int admissionCapacity,
      java.util.function.Function<String, AgentLimit> limits) {
    this(runner, maxConcurrentSteps, admissionCapacity, limits, null);
  }

  /**
   * A scheduler that runs each session under a lease from {@code leasing} (null: without leases):
   * it claims the session before a run, the run's appends carry the lease, and it releases the
   * lease when the run ends.
   */
  Scheduler(
      Runner runner,
      int maxConcurrentSteps,
      int admissionCapacity,
      java.util.function.Function<String, AgentLimit> limits,
      LeaseKeeper leasing) {
    this(runner, maxConcurrentSteps, admissionCapacity, limits, leasing, Integer.MAX_VALUE);
  }

  /**
   * A scheduler under leases whose admission is also bounded cluster-wide: new work is refused
   * while {@code clusterAdmissionCapacity} sessions or more have work that no node runs yet
   * ({@link keel.data.LeaseStore#queued}, counted in the store at most every {@link
   * #QUEUED_REFRESH}, plus what this node admitted since).
   */
  Scheduler(
      Runner runner,
      int maxConcurrentSteps,
      int admissionCapacity,
      java.util.function.Function<String, AgentLimit> limits,
      LeaseKeeper leasing,
      int clusterAdmissionCapacity) {
    this.leasing = leasing;
    this.clusterAdmissionCapacity = clusterAdmissionCapacity;
    this.runner = runner;
    this.maxConcurrentSteps = maxConcurrentSteps;
    this.nodePermits = new Semaphore(maxConcurrentSteps, true);
    this.admissionCapacity = admissionCapacity;
    this.limits = limits;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("keel-scheduler-timer").daemon(true).factory());
  }

  /**
   * A scheduler without a runtime behind it, for measuring admission and dispatch alone (the JMH
   * benchmarks of {@code keel bench jmh}): every session belongs to one agent, and a run of a
   * session calls {@code run} with its id on the session's virtual thread and then suspends. The
   * queueing, permits and wake coalescing are the production ones; no store, lease or step is
   * involved.
   *
   * @param run called once per run, on the run's thread; must not throw
   * @param maxConcurrentSteps the most sessions running at once
   * @param admissionCapacity the most sessions waiting for a slot before {@link #admit} refuses
   * @param maxActivePerAgent the most sessions of the one agent running at once (below 1: no limit)
   * @return a scheduler to {@link #close} after use; thread-safe
   */
  public static Scheduler standalone(
      java.util.function.Consumer<String> run, int maxConcurrentSteps, int admissionCapacity, int maxActivePerAgent) {
    if (maxConcurrentSteps < 1 || admissionCapacity < 1) {
      throw new IllegalArgumentException("maxConcurrentSteps and admissionCapacity must be positive, got "
          + maxConcurrentSteps + " and " + admissionCapacity);
    }
    SessionRunner.Outcome suspended = new SessionRunner.Outcome.Suspended();
    AgentLimit limit = new AgentLimit("standalone", maxActivePerAgent);
    return new Scheduler((id, signals) -> {
      run.accept(id);
      return suspended;
    }, maxConcurrentSteps, admissionCapacity, id -> limit);
  }

  /**
   * A session's agent, how many of the agent's sessions may run at once (below 1: no limit), and
   * the session's partition within the agent ({@code spec.concurrency: per-partition}; empty for
   * none): sessions of one partition run one at a time. On one node these hold here; with leases
   * they hold cluster-wide, decided by the lease store when the session is claimed.
   */
  record AgentLimit(String agent, int maxActive, java.util.Optional<String> partition) {
    AgentLimit(String agent, int maxActive) {
      this(agent, maxActive, java.util.Optional.empty());
    }

    keel.data.LeaseStore.Limits leaseLimits() {
      return new keel.data.LeaseStore.Limits(partition, Math.max(0, maxActive));
    }
  }

  /**
   * Refuses new work when too many sessions already wait for a slot.
   *
   * @throws KeelException.Overloaded with a retry delay
   */
  public void admit() {
    if (closed) {
      throw new KeelException.Unavailable("this node is shutting down", null);
    }
    int queued = waiting.get();
    if (queued >= admissionCapacity) {
      throw new KeelException.Overloaded(
          "this node has " + queued + " sessions waiting to run (capacity " + admissionCapacity
              + "); retry shortly",
          1 + queued / Math.max(1, maxConcurrentSteps));
    }
    if (leasing != null && clusterAdmissionCapacity < Integer.MAX_VALUE) {
      long inCluster = clusterQueued();
      if (inCluster >= clusterAdmissionCapacity) {
        throw new KeelException.Overloaded(
            "the cluster has " + inCluster + " sessions waiting for a node to run them (capacity " + clusterAdmissionCapacity
                + ", keel serve --cluster-admission-capacity); retry shortly",
            (int) Math.min(60, 1 + inCluster / Math.max(1, maxConcurrentSteps)));
      }
      admittedSinceCount.incrementAndGet();
    }
  }

  /** The cluster's queue: counted in the store when the last count is stale, plus admitted since. */
  private long clusterQueued() {
    if (System.nanoTime() - queuedCountedAt > QUEUED_REFRESH.toNanos()) {
      synchronized (queuedLock) {
        if (System.nanoTime() - queuedCountedAt > QUEUED_REFRESH.toNanos()) {
          long counted = leasing.queued();
          admittedSinceCount.set(0);
          queuedCounted = counted;
          queuedCountedAt = System.nanoTime();
        }
      }
    }
    return queuedCounted + admittedSinceCount.get();
  }

  /** Makes a session run soon; if it is running, tells the run that its inbox changed. */
  public void wake(String sessionId) {
    if (closed) {
      return;
    }
    active.compute(
        sessionId,
        (id, slot) -> {
          if (slot == null) {
            Slot s = new Slot();
            Thread.ofVirtual().name("keel-session-" + id).start(() -> drive(id, s));
            return s;
          }
          slot.inboxChanged.set(true);
          slot.dirty.set(true);
          return slot;
        });
  }

  /**
   * Wakes the given sessions unless they are already active or waiting for a retry timer. Used by
   * the periodic sweep that finds sessions with work a wake did not reach (more than one recovery
   * batch at start-up, a timer lost with a restart).
   */
  public int sweep(java.util.List<String> sessionsWithWork) {
    int woken = 0;
    for (String id : sessionsWithWork) {
      if (!active.containsKey(id) && !deferred.contains(id)) {
        wake(id);
        woken++;
      }
    }
    return woken;
  }

  /** Runs a task periodically on the scheduler's timer, guarded so that a failure is logged. */
  void every(Duration period, Runnable task) {
    timer.scheduleWithFixedDelay(() -> {
      try {
        task.run();
      } catch (RuntimeException e) {
        LOG.warn("periodic task failed: {}", e.toString());
      }
    }, period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Whether a run of this session is queued or in progress on this node. */
  public boolean busy(String sessionId) {
    return active.containsKey(sessionId);
  }

  public int runningSessions() {
    return running.get();
  }

  public int waitingSessions() {
    return waiting.get();
  }

  private void drive(String sessionId, Slot slot) {
    AgentLimit limit;
    try {
      limit = limits.apply(sessionId);
    } catch (KeelException.NotFound gone) {
      LOG.warn("session {}: cannot tell its agent, not running it: {}", sessionId, gone.getMessage());
      active.remove(sessionId, slot);
      if (leasing != null) {
        leasing.abandon(sessionId);
      }
      return;
    } catch (RuntimeException e) {
      // a store that fails for a moment (a pool exhausted in a burst): try again shortly, or a
      // session this node claimed would stay claimed (and renewed) without ever running
      LOG.warn("session {}: cannot tell its agent; trying again in 1 s: {}", sessionId, e.toString());
      active.remove(sessionId, slot);
      if (!closed) {
        deferred.add(sessionId);
        timer.schedule(() -> {
          deferred.remove(sessionId);
          wake(sessionId);
        }, 1, TimeUnit.SECONDS);
      }
      return;
    }
    Semaphore perAgent = agentSemaphore(limit);
    String partitionKey = limit.partition().map(p -> limit.agent() + "\u0000" + p).orElse(null);
    waiting.incrementAndGet();
    boolean gotPartition = false;
    boolean gotAgent = false;
    boolean gotNode = false;
    try {
      if (partitionKey != null) {
        partitions.acquire(partitionKey);
        gotPartition = true;
      }
      if (perAgent != null) {
        perAgent.acquire();
        gotAgent = true;
      }
      nodePermits.acquire();
      gotNode = true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      waiting.decrementAndGet();
    }
    if (!gotNode) {
      if (gotAgent) {
        perAgent.release();
      }
      if (gotPartition) {
        partitions.release(partitionKey);
      }
      active.remove(sessionId, slot);
      if (leasing != null) {
        leasing.abandon(sessionId);
      }
      return;
    }
    running.incrementAndGet();
    SessionRunner.Outcome outcome = new SessionRunner.Outcome.Suspended();
    try {
      boolean again = true;
      while (again) {
        slot.dirty.set(false);
        outcome = leasing == null ? runGuarded(sessionId, slot) : runLeased(sessionId, slot, limit);
        again =
            active.compute(sessionId, (id, s) -> s == slot && s.dirty.get() ? s : null) != null;
      }
    } finally {
      running.decrementAndGet();
      nodePermits.release();
      if (perAgent != null) {
        perAgent.release();
      }
      if (partitionKey != null) {
        partitions.release(partitionKey);
      }
    }
    if (outcome instanceof SessionRunner.Outcome.RetryAfter r && !closed) {
      LOG.info("session {}: will run again in {} s ({})", sessionId, r.delay().toSeconds(), r.reason());
      deferred.add(sessionId);
      timer.schedule(() -> {
        deferred.remove(sessionId);
        wake(sessionId);
      }, r.delay().toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  /**
   * Claims the session's lease, runs it under the lease and releases the lease. When another node
   * holds the session this node does not run it: that node sees the work (it is woken, or it finds
   * the work when its run ends), or the session is claimed by a sweep once that lease is gone.
   */
  private SessionRunner.Outcome runLeased(String sessionId, Slot slot, AgentLimit limit) {
    java.util.Optional<LeaseKeeper.Held> h;
    try {
      h = leasing.claim(sessionId, limit.leaseLimits());
    } catch (KeelException.NotFound gone) {
      // a notification about a session of another schema sharing the database, or one deleted
      return new SessionRunner.Outcome.Suspended();
    } catch (KeelException e) {
      LOG.warn("session {}: cannot claim its lease; retrying shortly: {}", sessionId, e.getMessage());
      return new SessionRunner.Outcome.RetryAfter(Duration.ofSeconds(1), e.getMessage());
    }
    if (h.isEmpty()) {
      return new SessionRunner.Outcome.Suspended();
    }
    slot.held = h.get();
    SessionRunner.Outcome outcome = new SessionRunner.Outcome.Suspended();
    try {
      outcome = runGuarded(sessionId, slot);
      return outcome;
    } finally {
      slot.held = null;
      // a session that will be retried stays this node's (the heartbeat keeps the lease) so that
      // no other node runs it before its retry is due; a suspended one is free for any node
      if (outcome instanceof SessionRunner.Outcome.Suspended || closed) {
        leasing.release(h.get());
      } else {
        leasing.keep(h.get());
      }
    }
  }

  /**
   * Claims sessions with work that no node holds, as many as this node has room for, and runs
   * them: how sessions of a node that died (or that released them with work left) are taken over.
   * Without leases it does nothing.
   *
   * @return how many sessions were claimed
   */
  int claimRunnable() {
    if (leasing == null || closed) {
      return 0;
    }
    int room = Math.min(CLAIM_BATCH, maxConcurrentSteps - running.get() - waiting.get());
    if (room < 1) {
      return 0;
    }
    java.util.List<String> claimed = leasing.claimRunnable(room);
    for (String id : claimed) {
      wake(id);
    }
    return claimed.size();
  }

  /** Whether sessions run under leases here (several nodes on one store). */
  boolean leased() {
    return leasing != null;
  }

  /** Whether this node's lease heartbeat is current; always true without leases. */
  public boolean heartbeating() {
    return leasing == null || leasing.heartbeating();
  }

  private static final int CLAIM_BATCH = 256;

  private SessionRunner.Outcome runGuarded(String sessionId, Slot slot) {
    try {
      return runner.run(sessionId, slot);
    } catch (RuntimeException e) {
      LOG.error("session {}: the run failed unexpectedly; retrying in 30 s", sessionId, e);
      return new SessionRunner.Outcome.RetryAfter(Duration.ofSeconds(30), e.toString());
    }
  }

  private Semaphore agentSemaphore(AgentLimit agentLimit) {
    int limit = agentLimit.maxActive();
    if (limit < 1) {
      return null;
    }
    return agentPermits.compute(
        agentLimit.agent(),
        (k, s) -> s != null && limitOf(s) == limit ? s : new LimitedSemaphore(limit));
  }

  private static int limitOf(Semaphore s) {
    return s instanceof LimitedSemaphore l ? l.limit : -1;
  }

  /**
   * One-permit semaphores by partition, kept only while some session of the partition waits for
   * or holds its permit (so partitions that come and go do not accumulate). Thread-safe.
   */
  private static final class PartitionLocks {
    private static final class Entry {
      final Semaphore permit = new Semaphore(1, true);
      int users;
    }

    private final Map<String, Entry> entries = new ConcurrentHashMap<>();

    void acquire(String key) throws InterruptedException {
      Entry e = entries.compute(key, (k, v) -> {
        Entry x = v == null ? new Entry() : v;
        x.users++;
        return x;
      });
      try {
        e.permit.acquire();
      } catch (InterruptedException interrupted) {
        leave(key);
        throw interrupted;
      }
    }

    void release(String key) {
      Entry e = entries.get(key);
      if (e != null) {
        e.permit.release();
        leave(key);
      }
    }

    private void leave(String key) {
      entries.computeIfPresent(key, (k, v) -> --v.users == 0 ? null : v);
    }
  }

  /** A semaphore that remembers its limit, so a changed agent limit takes a new one. */
  private static final class LimitedSemaphore extends Semaphore {
    private static final long serialVersionUID = 1L;
    final int limit;

    LimitedSemaphore(int limit) {
      super(limit, true);
      this.limit = limit;
    }
  }

  /** Stops starting runs; runs in progress finish their current activity. */
  @Override
  public void close() {
    closed = true;
    timer.shutdownNow();
    if (leasing != null) {
      leasing.close();
    }
  }
}
