package keel.execution;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Delivers a session's frames to its live subscribers on this node, after the events are stored.
 * Listeners must not block; a listener that throws is logged and removed, never breaks a step.
 *
 * <p>Thread-safe.
 */
public final class EventBus {

  private static final Logger LOG = LoggerFactory.getLogger(EventBus.class);

  private final Map<String, List<Consumer<SessionFrame>>> listeners = new ConcurrentHashMap<>();
  private final List<Consumer<SessionFrame>> everything = new CopyOnWriteArrayList<>();

  /** Subscribes to one session; close the returned handle to stop. */
  public AutoCloseable subscribe(String sessionId, Consumer<SessionFrame> listener) {
    listeners.computeIfAbsent(sessionId, k -> new CopyOnWriteArrayList<>()).add(listener);
    return () ->
        listeners.computeIfPresent(
            sessionId,
            (k, list) -> {
              list.remove(listener);
              return list.isEmpty() ? null : list;
            });
  }

  /** Subscribes to every session on this node. */
  public AutoCloseable subscribeAll(Consumer<SessionFrame> listener) {
    everything.add(listener);
    return () -> everything.remove(listener);
  }

  /** Whether anyone listens to this session now (streaming can be skipped otherwise). */
  public boolean hasListeners(String sessionId) {
    return listeners.containsKey(sessionId) || !everything.isEmpty();
  }

  void publish(String sessionId, SessionFrame frame) {
    List<Consumer<SessionFrame>> list = listeners.get(sessionId);
    if (list != null) {
      for (Consumer<SessionFrame> l : list) {
        deliver(sessionId, l, frame, list);
      }
    }
    for (Consumer<SessionFrame> l : everything) {
      deliver(sessionId, l, frame, everything);
    }
  }

  private static void deliver(
      String sessionId, Consumer<SessionFrame> l, SessionFrame frame, List<Consumer<SessionFrame>> from) {
    try {
      l.accept(frame);
    } catch (RuntimeException e) {
      LOG.warn("a subscriber of session {} failed and was removed: {}", sessionId, e.toString());
      from.remove(l);
    }
  }
}
