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
 * Wakes budget-blocked sessions when the window that blocks them ends. Sessions waiting on the same
 * window end share one timer, so the timers number the distinct window ends (a few), not the blocked
 * sessions. This is an optimisation: after a restart nothing is registered, and the session
 * service's periodic sweep wakes every blocked session it does not find here, which then registers
 * again.
 *
 * <p>Thread-safe.
 */
final class BudgetWaits implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(BudgetWaits.class);
  /** A window end already past is checked again after this, so a clock behind the timer never spins. */
  private static final Duration MIN_DELAY = Duration.ofSeconds(1);

  private final Clock clock;
  private final ScheduledExecutorService timer;
  /** window end → the sessions waiting for it; a key exists exactly while its timer is pending. */
  private final Map<Instant, Set<String>> waiting = new ConcurrentHashMap<>();
  /** the sessions in {@code waiting}, for the sweep */
  private final Set<String> registered = ConcurrentHashMap.newKeySet();
  private volatile Consumer<String> wake = id -> {};

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

  /** Wakes {@code sessionId} once {@code until} has passed (on this node's clock). */
  void await(String sessionId, Instant until) {
    registered.add(sessionId);
    waiting.compute(
        until,
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
