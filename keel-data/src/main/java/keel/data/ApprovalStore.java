package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The approvals inbox. Rows are created with the {@code ApprovalRequested} events that ask for them
 * (see {@link Append#approvals()}); this interface reads them and decides them.
 *
 * <p>Thread-safe, and safe for many nodes on one PostgreSQL database: a decision is a conditional
 * update of a pending row, so of two concurrent deciders exactly one wins and the other gets a
 * conflict.
 */
public interface ApprovalStore {

  /** The kind of the inbox input that carries a decision to its session. */
  String DECISION_KIND = "approval";

  /**
   * Which approvals to list, newest first.
   *
   * @param owners only approvals of agents of these owners; empty: every owner
   */
  record Query(Optional<Approval.Status> status, Optional<String> agent, Optional<Set<String>> owners, int limit) {
    public Query {
      Objects.requireNonNull(status, "status");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(owners, "owners");
      owners = owners.map(Set::copyOf);
      if (limit < 1 || limit > 1000) {
        throw new IllegalArgumentException("limit: expected 1 to 1000, got " + limit);
      }
    }
  }

  Optional<Approval> find(String id);

  List<Approval> list(Query query);

  /**
   * Decides a pending approval, and in the same transaction puts the decision into its session's
   * inbox (an input of kind {@link #DECISION_KIND}, id {@code approval-<id>}, from {@code by}) unless
   * the session has ended. An approval without a session (a call of an outside MCP client, whose
   * request waits for the decision itself) gets an {@code approval_decided} audit record instead,
   * in the same transaction.
   *
   * @param decision {@link Approval.Status#APPROVED}, {@link Approval.Status#DENIED} or {@link
   *     Approval.Status#EXPIRED}
   * @param arguments the arguments an approver set instead of the model's; empty when unchanged
   * @return the decided approval
   * @throws keel.core.KeelException.NotFound if there is no such approval
   * @throws keel.core.KeelException.Conflict if it is no longer pending (decided, expired or
   *     withdrawn), naming who decided it
   */
  Approval decide(String id, Approval.Status decision, String by, String reason, String arguments, Instant at);

  /** Pending approvals whose expiry is at or before {@code now}, oldest expiry first. */
  List<Approval> due(Instant now, int limit);

  /**
   * Marks a session's pending approvals withdrawn: their calls no longer wait (the session was
   * interrupted, cancelled or failed). Decided rows are unchanged.
   *
   * @return how many were withdrawn
   */
  int withdraw(String sessionId, Set<String> ids, String reason, Instant at);
}
