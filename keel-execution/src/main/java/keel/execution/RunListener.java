package keel.execution;

import java.time.Duration;

/**
 * Told when a run of a session on this node has rehydrated the session ({@link #rehydrated}) and
 * when the run ends ({@link #runEnded}): the session suspended (waiting for input, a human, a
 * sub-agent), ended, or will be retried. Called on the session's own thread, so an implementation
 * must be quick, must not block and must be thread-safe (runs of different sessions call it at
 * once); a listener that throws is logged and does not affect the session.
 */
@FunctionalInterface
public interface RunListener {

  /**
   * @param sessionId the session whose run ended
   * @param took how long the run took, from taking its slot to suspending
   */
  void runEnded(String sessionId, Duration took);

  /**
   * A run has rehydrated its session and is ready to make its first decision: the session's record
   * read, its latest snapshot restored and the events after it folded, its agent revision resolved
   * and its inbox read. This is what a suspended session costs to bring back; it holds nothing in
   * memory before.
   *
   * @param sessionId the session the run rehydrated
   * @param agent the session's agent
   * @param took from the run taking its slot to the session being ready
   */
  default void rehydrated(String sessionId, String agent, Duration took) {}
}
