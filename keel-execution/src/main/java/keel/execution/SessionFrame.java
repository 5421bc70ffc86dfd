package keel.execution;

import keel.core.StoredEvent;

/** What a live subscriber to a session receives. */
public sealed interface SessionFrame {

  /** An event, once it is durably stored. */
  record Event(StoredEvent event) implements SessionFrame {}

  /** Text the model is generating, not persisted; the complete answer follows as an event. */
  record Delta(String sessionId, String text) implements SessionFrame {}
}
