package keel.data;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * A filter over the audit log; entries come oldest first.
 *
 * @param kind only entries of this kind
 * @param agent only this agent's entries
 * @param owner only this owner's entries
 * @param sessionId only this session's entries
 * @param tool only this tool's entries ({@code <server>/<tool>})
 * @param since only entries stored at or after this time
 * @param until only entries stored before this time
 * @param afterSeq only entries after this sequence number (for paging; 0 for the start)
 * @param limit at most this many, 1 to 1000
 * @param owners only entries whose owner is one of these (an empty set matches nothing); empty for
 *     every owner. Callers whose roles are scoped to some owners use it.
 */
public record AuditQuery(
    Optional<String> kind,
    Optional<String> agent,
    Optional<String> owner,
    Optional<String> sessionId,
    Optional<String> tool,
    Optional<Instant> since,
    Optional<Instant> until,
    long afterSeq,
    int limit,
    Optional<Set<String>> owners) {
  public AuditQuery {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(tool, "tool");
    Objects.requireNonNull(since, "since");
    Objects.requireNonNull(until, "until");
    Objects.requireNonNull(owners, "owners");
    owners = owners.map(Set::copyOf);
    if (limit < 1 || limit > 1000) {
      throw new IllegalArgumentException("limit must be between 1 and 1000, got " + limit);
    }
    if (afterSeq < 0) {
      throw new IllegalArgumentException("after must be 0 or a sequence number, got " + afterSeq);
    }
  }

  /** Every entry, up to {@code limit}. */
  public static AuditQuery all(int limit) {
    return new AuditQuery(
        Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(),
        Optional.empty(), Optional.empty(), 0, limit, Optional.empty());
  }

  public AuditQuery withKind(String k) {
    return new AuditQuery(Optional.of(k), agent, owner, sessionId, tool, since, until, afterSeq, limit, owners);
  }

  public AuditQuery withAgent(String a) {
    return new AuditQuery(kind, Optional.of(a), owner, sessionId, tool, since, until, afterSeq, limit, owners);
  }

  public AuditQuery withOwner(String o) {
    return new AuditQuery(kind, agent, Optional.of(o), sessionId, tool, since, until, afterSeq, limit, owners);
  }

  public AuditQuery withSession(String s) {
    return new AuditQuery(kind, agent, owner, Optional.of(s), tool, since, until, afterSeq, limit, owners);
  }

  public AuditQuery withTool(String t) {
    return new AuditQuery(kind, agent, owner, sessionId, Optional.of(t), since, until, afterSeq, limit, owners);
  }

  public AuditQuery withSince(Instant t) {
    return new AuditQuery(kind, agent, owner, sessionId, tool, Optional.of(t), until, afterSeq, limit, owners);
  }

  public AuditQuery withUntil(Instant t) {
    return new AuditQuery(kind, agent, owner, sessionId, tool, since, Optional.of(t), afterSeq, limit, owners);
  }

  public AuditQuery withAfter(long seq) {
    return new AuditQuery(kind, agent, owner, sessionId, tool, since, until, seq, limit, owners);
  }

  /** This filter, limited to the entries of these owners. */
  public AuditQuery withOwners(Set<String> only) {
    return new AuditQuery(kind, agent, owner, sessionId, tool, since, until, afterSeq, limit, Optional.of(only));
  }
}
