package keel.data;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import keel.core.SessionStatus;

/**
 * A session's row: what listings show without folding its events.
 *
 * @param status the status its events say (an idle session with pending inputs is runnable)
 * @param pendingInputs inputs accepted and not yet consumed
 */
public record SessionRecord(
    String id,
    String agent,
    int revision,
    String owner,
    SessionStatus status,
    long lastSeq,
    String traceId,
    Optional<String> parentId,
    String rootId,
    Instant createdAt,
    Instant updatedAt,
    int pendingInputs) {
  public SessionRecord {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(traceId, "traceId");
    Objects.requireNonNull(parentId, "parentId");
    Objects.requireNonNull(rootId, "rootId");
    Objects.requireNonNull(createdAt, "createdAt");
    Objects.requireNonNull(updatedAt, "updatedAt");
  }

  /** The status as callers see it: idle with pending inputs is runnable. */
  public SessionStatus effectiveStatus() {
    return status == SessionStatus.IDLE && pendingInputs > 0 ? SessionStatus.RUNNABLE : status;
  }
}
