package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import keel.core.KeelException;

/**
 * Descriptors and their immutable revisions, each with a status: the one {@linkplain Status#ACTIVE
 * active} revision is the descriptor in force (new sessions use it); a change that widens what an
 * agent may do waits as the one {@linkplain Status#PENDING pending} revision until someone decides
 * it. Thread-safe.
 *
 * <p>A revision's descriptor, author and time never change; only its status moves, along {@link
 * Status#canBecome}. Every operation that moves statuses runs in one transaction, so there is never
 * more than one active and one pending revision of a descriptor (the schema enforces it too).
 *
 * <p>Applying a descriptor equal to the pending one creates nothing; equal to the active one
 * creates nothing and withdraws a pending one (the applier asked for what is in force); anything
 * else creates the next revision, reviewed against the active one, and supersedes a pending one.
 * Several descriptors apply in one transaction: all or nothing.
 */
public interface InventoryStore {

  /** A descriptor to apply, as its canonical JSON. */
  record Change(String kind, String name, String owner, String spec) {
    public Change {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(spec, "spec");
    }
  }

  /**
   * Where a revision stands. A revision is created {@link #ACTIVE} or {@link #PENDING}; a pending
   * one becomes active (approved), {@link #REJECTED}, or {@link #SUPERSEDED} (a newer apply
   * replaced it before anyone decided); an active one becomes superseded when another is activated.
   * Rejected and superseded are final.
   */
  enum Status {
    /** In force: new sessions, and the budget checks, use it. At most one per descriptor. */
    ACTIVE,
    /** A widening change waiting for an approver. At most one per descriptor. */
    PENDING,
    /** Refused by an approver; never in force. */
    REJECTED,
    /** Replaced: by a later active revision, or (still pending) by a later apply. */
    SUPERSEDED;

    /** The name used in the store, the API and the CLI: lower case. */
    public String wireName() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Status fromWire(String s) {
      for (Status st : values()) {
        if (st.wireName().equals(s)) {
          return st;
        }
      }
      throw new IllegalArgumentException("unknown revision status \"" + s + "\"");
    }

    /** The transition table: whether a revision in this status may move to {@code next}. */
    public boolean canBecome(Status next) {
      return switch (this) {
        case PENDING -> next == ACTIVE || next == REJECTED || next == SUPERSEDED;
        case ACTIVE -> next == SUPERSEDED;
        case REJECTED, SUPERSEDED -> false;
      };
    }
  }

  /**
   * What a change does compared with the active revision, one reason per field that changed.
   *
   * @param widening the reasons it grants more (any of them makes the revision wait for approval)
   * @param narrowing every other change: what it takes away, or changes without granting more
   */
  record Review(List<String> widening, List<String> narrowing) {
    /** Nothing to report: a first revision, or a kind that needs no approval. */
    public static final Review NONE = new Review(List.of(), List.of());

    public Review {
      widening = List.copyOf(widening);
      narrowing = List.copyOf(narrowing);
    }

    /** Whether the change waits for approval. */
    public boolean widens() {
      return !widening.isEmpty();
    }
  }

  /**
   * Classifies a change against the active revision, inside the apply's transaction. It must be a
   * fast, pure function: it runs on the store's writer. It is not asked about a descriptor's first
   * revision (an admin applied it; it is active at once), nor about a change equal to the active or
   * pending revision.
   */
  @FunctionalInterface
  interface Reviewer {
    /** Every change becomes active at once. */
    Reviewer ACTIVATE = (active, change) -> Review.NONE;

    Review review(Revision active, Change change);
  }

  /**
   * Who moved a revision out of pending, when, and why.
   *
   * @param reason the approver's or rejecter's words; for a superseded pending revision, what
   *     replaced it; empty for a plain approval
   */
  record Decision(String by, Instant at, String reason) {
    public Decision {
      Objects.requireNonNull(by, "by");
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /**
   * One revision of a descriptor.
   *
   * @param review what the change did compared with the revision that was active when it was
   *     applied
   * @param rollbackOf the earlier revision whose descriptor this one restores, when it is a rollback
   * @param activatedAt when it became active, if it ever did
   * @param decision who decided it, when it was pending
   */
  record Revision(
      String kind,
      String name,
      int number,
      String owner,
      String spec,
      String appliedBy,
      Instant appliedAt,
      Status status,
      Review review,
      Optional<Integer> rollbackOf,
      Optional<Instant> activatedAt,
      Optional<Decision> decision) {
    public Revision {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(spec, "spec");
      Objects.requireNonNull(appliedBy, "appliedBy");
      Objects.requireNonNull(appliedAt, "appliedAt");
      Objects.requireNonNull(status, "status");
      Objects.requireNonNull(review, "review");
      Objects.requireNonNull(rollbackOf, "rollbackOf");
      Objects.requireNonNull(activatedAt, "activatedAt");
      Objects.requireNonNull(decision, "decision");
    }

    /** Whether this revision was ever in force (so a rollback may return to it). */
    public boolean wasActive() {
      return activatedAt.isPresent();
    }
  }

  /**
   * What applying one change did.
   *
   * @param revision the revision created, or the existing one the change equals
   * @param created whether a revision was created
   * @param superseded the pending revision this apply replaced or withdrew, if there was one
   */
  record Applied(Revision revision, boolean created, Optional<Revision> superseded) {
    public Applied {
      Objects.requireNonNull(revision, "revision");
      Objects.requireNonNull(superseded, "superseded");
    }

    /** Whether this apply made a new revision active. */
    public boolean activated() {
      return created && revision.status() == Status.ACTIVE;
    }
  }

  /**
   * Applies every change atomically, in order; returns one result per change. Each created
   * revision is reviewed against the active one and is pending when the review widens.
   */
  List<Applied> apply(List<Change> changes, String appliedBy, Reviewer reviewer);

  /** Applies every change atomically, each new revision active at once (no review). */
  default List<Applied> apply(List<Change> changes, String appliedBy) {
    return apply(changes, appliedBy, Reviewer.ACTIVATE);
  }

  /**
   * Applies an earlier revision's descriptor again, as a new revision that records which one it
   * restores, reviewed like any apply.
   *
   * @throws KeelException.NotFound if there is no such revision
   * @throws KeelException.Conflict if that revision was never active (a rejected or withdrawn one)
   */
  Applied rollback(String kind, String name, int to, String by, Reviewer reviewer);

  /**
   * Makes a pending revision active; the previously active one becomes superseded.
   *
   * @throws KeelException.NotFound if there is no such revision
   * @throws KeelException.Conflict if it is not pending (any more)
   */
  Revision approve(String kind, String name, int number, String by);

  /**
   * Rejects a pending revision; the active one stays in force.
   *
   * @throws KeelException.NotFound if there is no such revision
   * @throws KeelException.Conflict if it is not pending (any more)
   */
  Revision reject(String kind, String name, int number, String by, String reason);

  /** The active revision: the one in force. A pending revision is never returned here. */
  Optional<Revision> latest(String kind, String name);

  /** The revision waiting for approval, if any. */
  Optional<Revision> pending(String kind, String name);

  Optional<Revision> revision(String kind, String name, int number);

  /** Every revision of one descriptor, oldest first, whatever its status. */
  List<Revision> history(String kind, String name);

  /** The active revision of every descriptor of a kind, by name. */
  List<Revision> latestOfKind(String kind);

  /** The pending revision of every descriptor of a kind that has one, by name. */
  List<Revision> pendingOfKind(String kind);
}
