package keel.data;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import keel.core.SessionState;
import keel.core.SessionStatus;

/**
 * One atomic append to a session.
 *
 * @param sessionId the session
 * @param expectedSeq the sequence number the first new event must follow
 * @param events the events, in order
 * @param status the session's status after them
 * @param consumedInputs inbox inputs these events consume (they stop being pending)
 * @param snapshot a snapshot of the state after these events, replacing the previous one; its
 *     {@code lastSeq} must be {@code expectedSeq + events.size()}
 * @param deliveries inputs for other sessions' inboxes, stored in the same transaction as these
 *     events (a sub-agent's result for its parent, a cancellation for a child), so that they are
 *     delivered exactly when the events that cause them are recorded. An input whose session does
 *     not exist or has ended is not delivered (nothing would ever consume it); an input whose id
 *     the session already accepted is not delivered twice.
 * @param costs ledger entries for what these events record as spent, each naming one of them
 * @param settlements budget reservations these events settle (the calls they record)
 * @param lease the writer's lease on the session, when it runs the session under one: the append is
 *     refused unless that node still holds the session at that epoch (see {@link LeaseStore}); empty
 *     for a writer that needs no lease (one node per store)
 * @param approvals approvals inbox rows the events request ({@code ApprovalRequested}), written in
 *     the same transaction, so an approval is in the inbox exactly when its request is recorded
 * @param audit audit records of what these events record (an external call, a policy decision),
 *     chained into the audit log in the same transaction: both are stored, or neither (see {@link
 *     AuditStore})
 */
public record Append(
    String sessionId,
    long expectedSeq,
    List<PendingEvent> events,
    SessionStatus status,
    List<String> consumedInputs,
    Optional<SessionState.Snapshot> snapshot,
    List<Input> deliveries,
    List<Cost> costs,
    List<BudgetStore.Settlement> settlements,
    Optional<LeaseStore.Lease> lease,
    List<Approval> approvals,
    List<AuditRecord> audit) {
  public Append {
    Objects.requireNonNull(sessionId, "sessionId");
    events = List.copyOf(events);
    Objects.requireNonNull(status, "status");
    consumedInputs = List.copyOf(consumedInputs);
    Objects.requireNonNull(snapshot, "snapshot");
    deliveries = List.copyOf(deliveries);
    costs = List.copyOf(costs);
    settlements = List.copyOf(settlements);
    Objects.requireNonNull(lease, "lease");
    audit = List.copyOf(audit);
    approvals = approvals == null ? List.of() : List.copyOf(approvals);
    for (Approval a : approvals) {
      if (!a.sessionId().equals(sessionId)) {
        throw new IllegalArgumentException(
            "append to session " + sessionId + " carries approval " + a.id() + " of session " + a.sessionId());
      }
    }
    if (lease.isPresent() && !lease.get().sessionId().equals(sessionId)) {
      throw new IllegalArgumentException(
          "append to session " + sessionId + " carries the lease of session " + lease.get().sessionId());
    }
    if (events.isEmpty()) {
      throw new IllegalArgumentException("an append needs at least one event");
    }
    for (Input d : deliveries) {
      if (d.sessionId().equals(sessionId)) {
        throw new IllegalArgumentException(
            "append to session " + sessionId + ": input " + d.inputId()
                + " is for the session itself; deliveries are for other sessions");
      }
    }
    long end = expectedSeq + events.size();
    if (snapshot.isPresent() && snapshot.get().lastSeq() != end) {
      throw new IllegalArgumentException(
          "snapshot of session " + sessionId + " is at event " + snapshot.get().lastSeq()
              + " but the append ends at event " + end);
    }
    for (Cost c : costs) {
      if (c.seq() <= expectedSeq || c.seq() > end) {
        throw new IllegalArgumentException(
            "a cost of session " + sessionId + " names event " + c.seq() + ", which is not one of this append's ("
                + (expectedSeq + 1) + " to " + end + ")");
      }
    }
  }

  /** An append written without a lease. */
  public Append(
      String sessionId,
      long expectedSeq,
      List<PendingEvent> events,
      SessionStatus status,
      List<String> consumedInputs,
      Optional<SessionState.Snapshot> snapshot,
      List<Input> deliveries,
      List<Cost> costs,
      List<BudgetStore.Settlement> settlements) {
    this(sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements, Optional.empty(),
        List.of(), List.of());
  }

  /** An append written without a lease, requesting {@code approvals}. */
  public Append(
      String sessionId,
      long expectedSeq,
      List<PendingEvent> events,
      SessionStatus status,
      List<String> consumedInputs,
      Optional<SessionState.Snapshot> snapshot,
      List<Input> deliveries,
      List<Cost> costs,
      List<BudgetStore.Settlement> settlements,
      List<Approval> approvals) {
    this(sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements, Optional.empty(),
        approvals, List.of());
  }

  /** An append with a lease, requesting {@code approvals}, writing no audit record. */
  public Append(
      String sessionId,
      long expectedSeq,
      List<PendingEvent> events,
      SessionStatus status,
      List<String> consumedInputs,
      Optional<SessionState.Snapshot> snapshot,
      List<Input> deliveries,
      List<Cost> costs,
      List<BudgetStore.Settlement> settlements,
      Optional<LeaseStore.Lease> lease,
      List<Approval> approvals) {
    this(sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements, lease, approvals,
        List.of());
  }

  /** An append with a lease and no approvals. */
  public Append(
      String sessionId,
      long expectedSeq,
      List<PendingEvent> events,
      SessionStatus status,
      List<String> consumedInputs,
      Optional<SessionState.Snapshot> snapshot,
      List<Input> deliveries,
      List<Cost> costs,
      List<BudgetStore.Settlement> settlements,
      Optional<LeaseStore.Lease> lease) {
    this(sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements, lease, List.of(), List.of());
  }

  /** This append, fenced by its writer's lease on the session. */
  public Append withLease(LeaseStore.Lease lease) {
    return new Append(
        sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements,
        Optional.of(lease), approvals, audit);
  }

  /** This append, also chaining {@code records} into the audit log (after any it already carries). */
  public Append withAudit(List<AuditRecord> records) {
    if (records.isEmpty()) {
      return this;
    }
    List<AuditRecord> all = new java.util.ArrayList<>(audit);
    all.addAll(records);
    return new Append(
        sessionId, expectedSeq, events, status, consumedInputs, snapshot, deliveries, costs, settlements, lease, approvals, all);
  }

  /** The epoch this append is written under, recorded on each of its events; 0 without a lease. */
  long epoch() {
    return lease.map(LeaseStore.Lease::epoch).orElse(0L);
  }

  /** An append that delivers nothing to other sessions, records no costs and settles no budget. */
  public Append(
      String sessionId,
      long expectedSeq,
      List<PendingEvent> events,
      SessionStatus status,
      List<String> consumedInputs,
      Optional<SessionState.Snapshot> snapshot) {
    this(sessionId, expectedSeq, events, status, consumedInputs, snapshot, List.of(), List.of(), List.of());
  }
}
