package keel.data;

import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import keel.core.SessionStatus;

/**
 * A filter over sessions.
 *
 * @param agent only this agent's sessions
 * @param status only sessions with this (stored) status
 * @param limit at most this many, 1 to 1000
 * @param before only sessions created before this session (for paging, newest first)
 * @param owners only sessions whose agent's owner is one of these (an empty set matches nothing);
 *     empty for every owner. Listings for callers whose roles are scoped to some owners use it, so
 *     that paging stays exact.
 */
public record SessionQuery(
    Optional<String> agent,
    Optional<SessionStatus> status,
    int limit,
    Optional<String> before,
    Optional<Set<String>> owners) {
  public SessionQuery {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(before, "before");
    Objects.requireNonNull(owners, "owners");
    owners = owners.map(Set::copyOf);
    if (limit < 1 || limit > 1000) {
      throw new IllegalArgumentException("limit must be between 1 and 1000, got " + limit);
    }
  }

  /** A filter over the sessions of every owner. */
  public SessionQuery(Optional<String> agent, Optional<SessionStatus> status, int limit, Optional<String> before) {
    this(agent, status, limit, before, Optional.empty());
  }

  public static SessionQuery all(int limit) {
    return new SessionQuery(Optional.empty(), Optional.empty(), limit, Optional.empty());
  }

  /** This filter, limited to the sessions of these owners. */
  public SessionQuery withOwners(Set<String> only) {
    return new SessionQuery(agent, status, limit, before, Optional.of(only));
  }
}
