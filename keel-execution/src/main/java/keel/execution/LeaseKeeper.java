package keel.execution;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import keel.core.KeelException;
import keel.data.LeaseStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's side of session leases: claims a session before a run, remembers until when each
 * lease it runs under is known to be valid, renews them all with one heartbeat statement, and
 * releases a lease when its run ends.
 *
 * <p>Design: the store judges a lease by its own clock and fences every append by the epoch, so a
 * node that lost a lease can never write; what this class adds is the node's own, conservative view
 * of whether it still holds a lease, checked before a run does something the store cannot undo (a
 * tool call). A lease is taken as valid until its expiry as granted; a heartbeat that starts at
 * {@code t0} and returns at {@code t1} extends it to {@code t0 + ttl} only if it was still valid at
 * {@code t1} (the store extended it then), otherwise the lease is taken as lost. A node that was
 * paused past its leases therefore finds them lost when it resumes, whatever the store says.
 *
 * <p>The heartbeat runs on its own platform thread, so a slow sweep or a busy scheduler timer
 * cannot delay it. Thread-safe.
 */
final class LeaseKeeper implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(LeaseKeeper.class);

  /** A lease this node runs a session under, and until when it is known to hold. */
  static final class Held {
    final LeaseStore.Lease lease;
    /** Epoch milliseconds of the node's clock. */
    final AtomicLong validUntil;

    Held(LeaseStore.Lease lease) {
      this.lease = lease;
      this.validUntil = new AtomicLong(lease.expiresAt().toEpochMilli());
    }
  }

  private final LeaseStore leases;
  private final String node;
  private final Duration ttl;
  private final Clock clock;
  /** Leases of runs in progress on this node, by session id. */
  private final Map<String, Held> held = new ConcurrentHashMap<>();
  /**
   * Leases this node holds for a session it does not run right now: claimed by a sweep and not yet
   * started, or kept for a retry. The heartbeat renews every lease of the node, so each of these
   * must end in a run or a release ({@link #abandon}); otherwise the session would stay this
   * node's, with nobody running it.
   */
  private final Map<String, LeaseStore.Lease> idle = new ConcurrentHashMap<>();
  /** Releases that failed (the store was unreachable), tried again on each heartbeat. */
  private final java.util.Queue<LeaseStore.Lease> releaseLater = new java.util.concurrent.ConcurrentLinkedQueue<>();
  private final ScheduledExecutorService heartbeat;
  private final AtomicLong lastHeartbeat = new AtomicLong();
  private volatile boolean closed;

  LeaseKeeper(LeaseStore leases, String node, Duration ttl, Clock clock) {
    this.leases = leases;
    this.node = node;
    this.ttl = ttl;
    this.clock = clock;
    this.lastHeartbeat.set(clock.millis());
    this.heartbeat =
        Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("keel-lease-heartbeat").daemon(true).factory());
    long period = Math.max(1, ttl.toMillis() / 3);
    heartbeat.scheduleWithFixedDelay(this::beat, period, period, TimeUnit.MILLISECONDS);
  }

  Duration ttl() {
    return ttl;
  }

  String node() {
    return node;
  }

  /**
   * Claims a session for a run on this node.
   *
   * @return the lease, or empty when another node holds it
   */
  Optional<Held> claim(String sessionId) {
    return claim(sessionId, LeaseStore.Limits.NONE);
  }

  /**
   * Claims a session for a run on this node if its limits allow it cluster-wide (its partition is
   * not active on any node, its agent is below its limit of active sessions).
   *
   * @return the lease, or empty when another node holds it or the limits refuse it now
   */
  Optional<Held> claim(String sessionId, LeaseStore.Limits limits) {
    Optional<LeaseStore.Lease> lease = leases.claim(sessionId, node, ttl, limits);
    if (lease.isEmpty()) {
      // a refused claim gave up any lease this node held on the session
      idle.remove(sessionId);
      return Optional.empty();
    }
    Held h = new Held(lease.get());
    held.put(sessionId, h);
    idle.remove(sessionId);
    return Optional.of(h);
  }

  /** Claims up to {@code limit} sessions with work that no node holds; returns their ids. */
  List<String> claimRunnable(int limit) {
    if (limit < 1 || closed) {
      return List.of();
    }
    List<LeaseStore.Lease> claimed = leases.claimRunnable(node, limit, ttl);
    for (LeaseStore.Lease l : claimed) {
      idle.put(l.sessionId(), l);
    }
    return claimed.stream().map(LeaseStore.Lease::sessionId).toList();
  }

  /** Keeps a run's lease after the run ended (a retry is due): the session stays this node's. */
  void keep(Held h) {
    held.remove(h.lease.sessionId(), h);
    idle.put(h.lease.sessionId(), h.lease);
  }

  /**
   * Gives up the lease this node holds on a session it will not run after all (its run could not
   * start); nothing when it holds none.
   */
  void abandon(String sessionId) {
    LeaseStore.Lease l = idle.remove(sessionId);
    if (l != null) {
      release(l);
    }
  }

  /**
   * Throws unless this node still holds the lease with at least a third of its time to live left:
   * called before a run does something that the fencing of appends cannot undo.
   *
   * @throws KeelException.Conflict if the lease is lost or about to be
   */
  void check(Held h) {
    long left = h.validUntil.get() - clock.millis();
    if (left < ttl.toMillis() / 3) {
      throw new KeelException.Conflict(
          "this node (" + node + ") may have lost its lease on session " + h.lease.sessionId() + " (epoch "
              + h.lease.epoch() + "): " + (left <= 0 ? "it expired " + -left + " ms ago" : "only " + left + " ms left")
              + "; another node takes the session over");
    }
  }

  /** Gives a run's lease up; a release that fails is tried again with each heartbeat. */
  void release(Held h) {
    held.remove(h.lease.sessionId(), h);
    release(h.lease);
  }

  private void release(LeaseStore.Lease lease) {
    try {
      leases.release(lease);
    } catch (KeelException e) {
      // the heartbeat renews every lease of this node: without a later release the session would
      // stay this node's for good, with no run
      LOG.warn("session {}: could not release its lease; trying again with the next heartbeat: {}", lease.sessionId(), e.getMessage());
      releaseLater.add(lease);
    }
  }

  /** How many sessions have work that no node holds, cluster-wide ({@link LeaseStore#queued}). */
  long queued() {
    return leases.queued();
  }

  /** When the last heartbeat succeeded, in epoch milliseconds of the node's clock. */
  long lastHeartbeat() {
    return lastHeartbeat.get();
  }

  /** Whether the heartbeat succeeded within the last time to live. */
  boolean heartbeating() {
    return !closed && clock.millis() - lastHeartbeat.get() < ttl.toMillis();
  }

  private void beat() {
    long t0 = clock.millis();
    try {
      leases.renew(node, ttl);
    } catch (RuntimeException e) {
      LOG.warn("lease heartbeat of node {} failed; its runs stop if their leases run out: {}", node, e.toString());
      return;
    }
    long t1 = clock.millis();
    lastHeartbeat.set(t1);
    for (int n = releaseLater.size(); n > 0; n--) {
      LeaseStore.Lease l = releaseLater.poll();
      if (l != null && !held.containsKey(l.sessionId()) && !idle.containsKey(l.sessionId())) {
        release(l);
      }
    }
    for (Held h : held.values()) {
      // extended only when the store still had it unexpired when the statement ran
      h.validUntil.updateAndGet(v -> v > t1 ? Math.max(v, t0 + ttl.toMillis()) : v);
    }
  }

  @Override
  public void close() {
    closed = true;
    heartbeat.shutdownNow();
  }
}
