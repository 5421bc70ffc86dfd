package keel.data;

import java.util.Objects;
import keel.core.SessionEvent;

/** An event to append, with the span it belongs to (16 hex digits). */
public record PendingEvent(SessionEvent event, String spanId) {
  public PendingEvent {
    Objects.requireNonNull(event, "event");
    Objects.requireNonNull(spanId, "spanId");
  }
}
