package keel.data;

import java.util.Objects;
import java.util.Optional;
import keel.core.SessionStatus;

/**
 * A filter over sessions.
 *
 * @param agent only this agent's sessions
 * @param status only sessions with this (stored) status
 * @param limit at most this many, 1 to 1000
 * @param before only sessions created before this session (for paging, newest first)
 */
public record SessionQuery(
    Optional<String> agent, Optional<SessionStatus> status, int limit, Optional<String> before) {
  public SessionQuery {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(before, "before");
    if (limit < 1 || limit > 1000) {
      throw new IllegalArgumentException("limit must be between 1 and 1000, got " + limit);
    }
  }

  public static SessionQuery all(int limit) {
    return new SessionQuery(Optional.empty(), Optional.empty(), limit, Optional.empty());
  }
}
