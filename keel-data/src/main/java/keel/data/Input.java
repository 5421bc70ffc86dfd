package keel.data;

import java.time.Instant;
import java.util.Objects;

/**
 * An input in a session's inbox: persisted before it is acknowledged, consumed by the step that
 * records it as an event.
 *
 * @param sessionId the session
 * @param inputId unique within the session; a caller's idempotency key when it gave one
 * @param kind {@code message}, {@code resolve} (a human's answer to an unknown tool outcome) or
 *     {@code cancel}
 * @param body the message text, or the kind's JSON
 * @param sender the principal that sent it
 * @param receivedAt when it was accepted
 */
public record Input(
    String sessionId, String inputId, String kind, String body, String sender, Instant receivedAt) {
  public Input {
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(inputId, "inputId");
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(body, "body");
    Objects.requireNonNull(sender, "sender");
    Objects.requireNonNull(receivedAt, "receivedAt");
  }
}
