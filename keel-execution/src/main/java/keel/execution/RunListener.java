package keel.execution;

import java.time.Duration;

/**
 * Told when a run of a session on this node ends: the session suspended (waiting for input, a
 * human, a sub-agent), ended, or will be retried. Called on the session's own thread right after
 * the run, so an implementation must be quick and must not block; a listener that throws is logged
 * and does not affect the session.
 */
@FunctionalInterface
public interface RunListener {

  /**
   * @param sessionId the session whose run ended
   * @param took how long the run took, from taking its slot to suspending
   */
  void runEnded(String sessionId, Duration took);
}
