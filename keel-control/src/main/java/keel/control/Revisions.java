package keel.control;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import keel.core.KeelException;
import keel.data.InventoryStore;
import keel.data.InventoryStore.Applied;
import keel.data.InventoryStore.Change;
import keel.data.InventoryStore.Revision;
import keel.data.InventoryStore.Status;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Agent revisions and the approval of widening changes: apply, approve, reject, roll back, diff.
 *
 * <p>A change that widens what an agent may do ({@link ChangeReview}) is stored as the agent's
 * pending revision; it becomes active only when someone other than the principal who applied it,
 * holding {@link Role#APPROVER} (or admin) for the agent's owner, approves it. Everything else is
 * active at once. A rollback is a new revision with an earlier one's descriptor, reviewed the same
 * way, so rolling back to a wider revision needs approval too.
 *
 * <p>After every activation (an apply, an approval, a rollback) the {@code onActivated} listener is
 * told the agent's name, once the new active revision is stored: that is how the execution plane
 * learns, for instance, that a budget was raised. A listener that throws is logged and does not undo
 * the activation.
 *
 * <p>Thread-safe: the store decides every change atomically; this class holds no mutable state.
 */
public final class Revisions {

  private static final Logger LOG = LoggerFactory.getLogger(Revisions.class);
  private static final String AGENT = "Agent";

  private final InventoryStore store;
  private final Consumer<String> onActivated;
  private final Consumer<Revision> onAnyActivated;

  /**
   * @param store where revisions live
   * @param onActivated told an agent's name each time one of its revisions becomes active
   */
  public Revisions(InventoryStore store, Consumer<String> onActivated) {
    this(store, onActivated, r -> {});
  }

  /**
   * @param store where revisions live
   * @param onActivated told an agent's name each time one of its revisions becomes active
   * @param onAnyActivated told every revision of any kind that becomes active (an {@code McpServer}
   *     activation reconfigures the gateway)
   */
  public Revisions(InventoryStore store, Consumer<String> onActivated, Consumer<Revision> onAnyActivated) {
    this.store = Objects.requireNonNull(store, "store");
    this.onActivated = Objects.requireNonNull(onActivated, "onActivated");
    this.onAnyActivated = Objects.requireNonNull(onAnyActivated, "onAnyActivated");
  }

  /**
   * What applying one descriptor would do, for a dry run.
   *
   * @param revision the revision it would create, or the existing one it equals
   * @param created whether it would create a revision
   * @param status the status that revision would have
   * @param review the review against the active revision (empty for a first revision)
   */
  public record Preview(Change change, int revision, boolean created, Status status, InventoryStore.Review review) {}

  /**
   * Stores descriptors in one transaction; each changed agent is reviewed against its active
   * revision and is pending when the change widens.
   */
  public List<Applied> apply(List<Change> changes, String principal) {
    List<Applied> applied = store.apply(changes, principal, ChangeReview.reviewer());
    for (Applied a : applied) {
      if (a.activated()) {
        activated(a.revision());
      }
    }
    return applied;
  }

  /** What {@link #apply} would do now, storing nothing. */
  public List<Preview> preview(List<Change> changes) {
    List<Preview> out = new ArrayList<>();
    InventoryStore.Reviewer reviewer = ChangeReview.reviewer();
    for (Change c : changes) {
      Optional<Revision> active = store.latest(c.kind(), c.name());
      Optional<Revision> pending = store.pending(c.kind(), c.name());
      Optional<Revision> same =
          pending.filter(p -> same(p, c)).or(() -> active.filter(a -> same(a, c)));
      if (same.isPresent()) {
        out.add(new Preview(c, same.get().number(), false, same.get().status(), same.get().review()));
        continue;
      }
      int next = store.history(c.kind(), c.name()).stream().mapToInt(Revision::number).max().orElse(0) + 1;
      InventoryStore.Review review = active.map(a -> reviewer.review(a, c)).orElse(InventoryStore.Review.NONE);
      out.add(new Preview(c, next, true, review.widens() ? Status.PENDING : Status.ACTIVE, review));
    }
    return out;
  }

  private static boolean same(Revision r, Change c) {
    return r.spec().equals(c.spec()) && r.owner().equals(c.owner());
  }

  /**
   * Approves an agent's pending revision: it becomes active.
   *
   * @throws KeelException.Forbidden if the caller applied it (a widening change needs a second
   *     person) or is not an approver for the revision's owner
   * @throws KeelException.Conflict if the revision is not pending
   */
  public Revision approve(String agent, int number, Caller caller) {
    Revision r = revision(agent, number);
    if (r.status() == Status.PENDING) {
      if (r.appliedBy().equals(caller.principal())) {
        throw new KeelException.Forbidden(
            caller.principal() + " applied revision " + number + " of agent \"" + agent + "\", so it may not approve it:"
                + " a change that widens what an agent may do needs a second person. Ask an admin, or an approver for"
                + " owner \"" + r.owner() + "\", other than " + caller.principal() + " to approve it (keel rollout approve "
                + agent + " " + number + ")");
      }
      requireRole(caller, Role.APPROVER, agent, r, "approve");
    }
    Revision approved = store.approve(AGENT, agent, number, caller.principal());
    LOG.info("agent {} revision {} approved by {}; it is now active", agent, number, caller.principal());
    activated(approved);
    return approved;
  }

  /**
   * Rejects an agent's pending revision; the active one stays in force. The principal who applied
   * it may reject it too: that only withdraws a change, it grants nothing.
   *
   * @throws KeelException.Invalid if the reason is blank
   * @throws KeelException.Conflict if the revision is not pending
   */
  public Revision reject(String agent, int number, Caller caller, String reason) {
    if (reason == null || reason.isBlank()) {
      throw new KeelException.Invalid("reason: required: say why revision " + number + " of agent \"" + agent + "\" is rejected");
    }
    Revision r = revision(agent, number);
    if (r.status() == Status.PENDING && !r.appliedBy().equals(caller.principal())) {
      requireRole(caller, Role.APPROVER, agent, r, "reject");
    }
    Revision rejected = store.reject(AGENT, agent, number, caller.principal(), reason.strip());
    LOG.info("agent {} revision {} rejected by {}", agent, number, caller.principal());
    return rejected;
  }

  /**
   * Rolls an agent back to an earlier revision's descriptor, as a new revision reviewed like any
   * apply: narrowing is active at once, widening waits for someone else's approval.
   *
   * @param to the revision to return to; empty for the one that was active before the active one
   * @throws KeelException.Forbidden if the caller is not an admin for the owners involved
   * @throws KeelException.Conflict if there is no earlier active revision, or {@code to} was never
   *     active
   */
  public Applied rollback(String agent, Optional<Integer> to, Caller caller) {
    Revision active =
        store.latest(AGENT, agent)
            .orElseThrow(() -> new KeelException.NotFound("there is no agent named \"" + agent + "\""));
    int target =
        to.orElseGet(
            () ->
                store.history(AGENT, agent).stream()
                    .filter(r -> r.number() < active.number() && r.wasActive())
                    .max(Comparator.comparingInt(Revision::number))
                    .orElseThrow(
                        () ->
                            new KeelException.Conflict(
                                "agent \"" + agent + "\" has no revision before the active revision " + active.number()
                                    + " that was ever active, so there is nothing to undo"))
                    .number());
    Revision goal = revision(agent, target);
    for (String owner : List.of(active.owner(), goal.owner())) {
      if (!caller.may(Role.ADMIN, owner)) {
        throw new KeelException.Forbidden(
            caller.principal() + " may not roll back agent \"" + agent + "\": it needs the role admin for owner \""
                + owner + "\"");
      }
    }
    Applied a = store.rollback(AGENT, agent, target, caller.principal(), ChangeReview.reviewer());
    if (a.activated()) {
      activated(a.revision());
    }
    return a;
  }

  /** The difference between two revisions of an agent. */
  public RevisionDiff diff(String agent, int from, int to) {
    return RevisionDiff.between(revision(agent, from), revision(agent, to));
  }

  /** Every revision of an agent, oldest first. */
  public List<Revision> history(String agent) {
    List<Revision> h = store.history(AGENT, agent);
    if (h.isEmpty()) {
      throw new KeelException.NotFound("there is no agent named \"" + agent + "\"");
    }
    return h;
  }

  private Revision revision(String agent, int number) {
    return store
        .revision(AGENT, agent, number)
        .orElseThrow(() -> new KeelException.NotFound("agent \"" + agent + "\" has no revision " + number));
  }

  private void requireRole(Caller caller, Role role, String agent, Revision r, String verb) {
    List<String> owners = new ArrayList<>(List.of(r.owner()));
    store.latest(AGENT, agent).map(Revision::owner).filter(o -> !owners.contains(o)).ifPresent(owners::add);
    for (String owner : owners) {
      if (!caller.may(role, owner)) {
        throw new KeelException.Forbidden(
            caller.principal() + " may not " + verb + " revision " + r.number() + " of agent \"" + agent
                + "\": it needs the role " + role.wireName() + " for owner \"" + owner + "\"");
      }
    }
  }

  private void activated(Revision r) {
    try {
      onAnyActivated.accept(r);
    } catch (RuntimeException e) {
      LOG.warn("{} {} revision {} is active, but telling the runtime failed", r.kind(), r.name(), r.number(), e);
    }
    if (!r.kind().equals(AGENT)) {
      return;
    }
    try {
      onActivated.accept(r.name());
    } catch (RuntimeException e) {
      LOG.warn("agent {} revision {} is active, but telling the runtime failed", r.name(), r.number(), e);
    }
  }
}
