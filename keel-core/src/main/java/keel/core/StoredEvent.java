package keel.core;

import java.time.Instant;
import java.util.Objects;

/**
 * An event as stored in a session's log.
 *
 * @param sessionId the session
 * @param seq the event's position in the session's log, from 1, without gaps
 * @param at when it was appended
 * @param node the node that appended it
 * @param traceId the W3C trace id of the session's trace (32 hex digits)
 * @param spanId the span the event belongs to (16 hex digits)
 */
public record StoredEvent(
    String sessionId,
    long seq,
    Instant at,
    String node,
    String traceId,
    String spanId,
    SessionEvent event) {
  public StoredEvent {
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(at, "at");
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(traceId, "traceId");
    Objects.requireNonNull(spanId, "spanId");
    Objects.requireNonNull(event, "event");
    if (seq < 1) {
      throw new IllegalArgumentException("seq must be positive, got " + seq);
    }
  }
}
