package keel.data;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import keel.core.SessionStatus;

/**
 * A session to create.
 *
 * @param id the session id
 * @param agent the agent's name
 * @param revision the agent revision it runs with
 * @param owner the agent's owner
 * @param traceId the W3C trace id of the session's trace
 * @param parentId the parent session, for a sub-agent
 * @param rootId the root session of the trace (the session itself for a root)
 * @param events the first events, starting with {@code SessionStarted}
 * @param status the status after those events
 * @param firstInput an input to put in the inbox
 */
public record NewSession(
    String id,
    String agent,
    int revision,
    String owner,
    String traceId,
    Optional<String> parentId,
    String rootId,
    List<PendingEvent> events,
    SessionStatus status,
    Optional<Input> firstInput) {
  public NewSession {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(traceId, "traceId");
    Objects.requireNonNull(parentId, "parentId");
    Objects.requireNonNull(rootId, "rootId");
    events = List.copyOf(events);
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(firstInput, "firstInput");
    if (events.isEmpty()) {
      throw new IllegalArgumentException("a new session needs its SessionStarted event");
    }
    if (firstInput.isPresent() && !firstInput.get().sessionId().equals(id)) {
      throw new IllegalArgumentException(
          "the first input of session " + id + " names session " + firstInput.get().sessionId());
    }
  }
}
