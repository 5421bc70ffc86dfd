package keel.execution;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Wakes budget-blocked sessions when their budget should be looked at again: when the window that
 * blocks them ends, or a little later while other calls hold reservations that may settle below
 * their estimates. Sessions waiting for the same second share one timer, so there are a few timers
 * (the window ends, the next seconds), not one per blocked session. This is an optimisation: after a restart nothing is registered, and the session
 * service's periodic sweep wakes every blocked session it does not find here, which then registers
 * again.
 *
 * <p>Thread-safe.
 */
final class BudgetWaits implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(BudgetWaits.class);
  /** A window end already past is checked again after this, so a clock behind the timer never spins. */
  private static final Duration MIN_DELAY = Duration.ofSeconds(1);
  /** The first look again while reservations may free room; each further one waits twice as long. */
  private static final Duration FIRST_RECHECK = Duration.ofSeconds(1);
  /** The longest wait between looks while reservations may free room. */
  private static final Duration MAX_RECHECK = Duration.ofMinutes(1);

  private final Clock clock;
  private final ScheduledExecutorService timer;
  /** window end → the sessions waiting for it; a key exists exactly while its timer is pending. */
  private final Map<Instant, Set<String>> waiting = new ConcurrentHashMap<>();
  /** the sessions in {@code waiting}, for the sweep */
  private final Set<String> registered = ConcurrentHashMap.newKeySet();
  private volatile Consumer<String> wake = id -> {};
  /**
   * How many times in a row each session looked again and found no room, for the backoff; bounded
   * (an entry outlives a session that ended while blocked only until it expires).
   */
  private final com.github.benmanes.caffeine.cache.Cache<String, Integer> rechecks =
      com.github.benmanes.caffeine.cache.Caffeine.newBuilder().maximumSize(100_000).expireAfterAccess(Duration.ofHours(2)).build();

  BudgetWaits(Clock clock) {
    this.clock = clock;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("keel-budget-waits").daemon(true).factory());
  }

  /** Sets what waking a session means (the scheduler's wake); called once when wiring. */
  void wakeWith(Consumer<String> wake) {
    this.wake = wake;
  }

  /**
   * Wakes {@code sessionId} when its window ends at {@code windowEnd}; when {@code roomMayFree},
   * sooner, backing off from a second to a minute while it keeps finding no room.
   */
  void await(String sessionId, Instant windowEnd, boolean roomMayFree) {
    Instant until = windowEnd;
    if (roomMayFree) {
      int n = rechecks.asMap().merge(sessionId, 1, Integer::sum);
      Duration delay = FIRST_RECHECK.multipliedBy(1L << Math.min(n - 1, 6));
      Instant soon = clock.instant().plus(delay.compareTo(MAX_RECHECK) > 0 ? MAX_RECHECK : delay);
      until = soon.isBefore(windowEnd) ? soon : windowEnd;
    }
    await(sessionId, until);
  }

  /** The session may go on: it no longer waits here, and its backoff starts again at the next block. */
  void unblocked(String sessionId) {
    rechecks.invalidate(sessionId);
    registered.remove(sessionId);
  }

  /** Wakes {@code sessionId} once {@code until} has passed (on this node's clock). */
  void await(String sessionId, Instant until) {
    registered.add(sessionId);
    // whole seconds, so that sessions looking again at about the same time share a timer
    Instant second = until.truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
    waiting.compute(
        second.equals(until) ? second : second.plusSeconds(1),
        (at, ids) -> {
          if (ids == null) {
            Duration delay = Duration.between(clock.instant(), at);
            if (delay.compareTo(MIN_DELAY) < 0) {
              delay = MIN_DELAY;
            }
            ids = ConcurrentHashMap.newKeySet();
            timer.schedule(() -> fire(at), delay.toMillis(), TimeUnit.MILLISECONDS);
          }
          ids.add(sessionId);
          return ids;
        });
  }

  /** Whether the session waits for a window end here. */
  boolean registered(String sessionId) {
    return registered.contains(sessionId);
  }

  private void fire(Instant at) {
    Set<String> ids = waiting.remove(at);
    if (ids == null) {
      return;
    }
    LOG.info("budget window ended at {}: waking {} budget-blocked sessions", at, ids.size());
    for (String id : ids) {
      registered.remove(id);
      try {
        wake.accept(id);
      } catch (RuntimeException e) {
        LOG.warn("session {}: could not wake it after its budget window ended: {}", id, e.toString());
      }
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
