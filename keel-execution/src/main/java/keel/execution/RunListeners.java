package keel.execution;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The run listeners registered on a node, told as one: each is called in turn, and one that throws
 * is logged and skipped, so it affects neither the others nor the session.
 *
 * <p>Thread-safe: listeners may be added while runs are telling them.
 */
final class RunListeners implements RunListener {

  private static final Logger LOG = LoggerFactory.getLogger(RunListeners.class);

  private final List<RunListener> listeners = new CopyOnWriteArrayList<>();

  void add(RunListener listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
  }

  @Override
  public void runEnded(String sessionId, Duration took) {
    for (RunListener l : listeners) {
      try {
        l.runEnded(sessionId, took);
      } catch (RuntimeException e) {
        LOG.warn("session {}: a run listener failed: {}", sessionId, e.toString());
      }
    }
  }

  @Override
  public void rehydrated(String sessionId, String agent, Duration took) {
    for (RunListener l : listeners) {
      try {
        l.rehydrated(sessionId, agent, took);
      } catch (RuntimeException e) {
        LOG.warn("session {}: a run listener failed: {}", sessionId, e.toString());
      }
    }
  }
}
