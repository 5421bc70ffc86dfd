package keel.data;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Leases on sessions: which node may run (and write to) a session, until when, and under which
 * epoch.
 *
 * <p>A session's lease has an owner node, an expiry and an epoch. The epoch grows by one each time
 * the lease is granted to a node that did not hold it unexpired (a first claim, a takeover after
 * expiry, a claim after a release), so two owners of a session never share an epoch. An {@link
 * Append} that carries its writer's lease ({@link Append#withLease}) is refused unless that node
 * still holds the session at that epoch, in the same transaction as the sequence check: a node
 * that lost its lease (paused, partitioned, slow) can never write to the session again. Every event
 * row records the epoch it was written under ({@code 0} for an append that carried no lease), so
 * {@link #writers} shows who wrote what.
 *
 * <p>Expiry is judged by the store's clock, the one it was opened with: nodes sharing a store need
 * clocks in step to well under a lease's time to live. A lease whose expiry passed is lost: it is
 * no longer renewed, and any node may take it over; its epoch stays current until then, so its
 * owner's appends still succeed while nobody else has the session.
 *
 * <p>Implementations are thread-safe and safe for many nodes sharing one store; a contract test
 * suite runs against each.
 */
public interface LeaseStore {

  /**
   * A lease as granted.
   *
   * @param sessionId the session
   * @param node the owner
   * @param epoch the ownership's number, unique to this owner among the session's owners
   * @param expiresAt when it lapses unless renewed
   */
  record Lease(String sessionId, String node, long epoch, Instant expiresAt) {
    public Lease {
      Objects.requireNonNull(sessionId, "sessionId");
      Objects.requireNonNull(node, "node");
      Objects.requireNonNull(expiresAt, "expiresAt");
      if (node.isEmpty()) {
        throw new IllegalArgumentException("a lease of session " + sessionId + " needs a node name");
      }
      if (epoch < 1) {
        throw new IllegalArgumentException(
            "a lease of session " + sessionId + " has epoch " + epoch + "; epochs start at 1");
      }
    }
  }

  /**
   * A run of consecutive events of one session written under one epoch.
   *
   * @param node the node that wrote them
   * @param epoch the lease epoch they were appended under; 0 for events appended without a lease
   *     (a session's first events, a single node's unleased appends)
   * @param firstSeq the first event's sequence number
   * @param lastSeq the last event's sequence number
   */
  record Stint(String node, long epoch, long firstSeq, long lastSeq) {}

  /**
   * What else a claim of a session must respect, cluster-wide: its agent's partition and limit of
   * active sessions. A session is <em>active</em> while some node holds an unexpired lease on it.
   *
   * @param partition the session's partition within its agent ({@code spec.concurrency:
   *     per-partition}): no two sessions of the agent with the same partition are active at once;
   *     empty for none
   * @param maxActive the most sessions of the agent active at once; 0 for no limit
   */
  record Limits(Optional<String> partition, int maxActive) {
    /** No partition and no limit: only the session's own lease decides. */
    public static final Limits NONE = new Limits(Optional.empty(), 0);

    public Limits {
      Objects.requireNonNull(partition, "partition");
      if (maxActive < 0) {
        throw new IllegalArgumentException("maxActive must be 0 (no limit) or more, got " + maxActive);
      }
      if (partition.isPresent() && partition.get().isEmpty()) {
        throw new IllegalArgumentException("a partition needs a non-empty name");
      }
    }

    public boolean none() {
      return partition.isEmpty() && maxActive == 0;
    }
  }

  /**
   * Claims a session for {@code node}: granted when nobody holds it, when its lease expired, or
   * when {@code node} holds it already (then it is renewed, with the same epoch). Same as {@link
   * #claim(String, String, Duration, Limits)} with {@link Limits#NONE}.
   *
   * @param ttl how long the lease lasts unless renewed
   * @return the lease, or empty when another node holds it unexpired
   * @throws keel.core.KeelException.NotFound if the session does not exist
   */
  default Optional<Lease> claim(String sessionId, String node, Duration ttl) {
    return claim(sessionId, node, ttl, Limits.NONE);
  }

  /**
   * Claims a session for {@code node} as {@link #claim(String, String, Duration)} does, and only if
   * the session's limits allow it: no other session of its agent with the same partition is active,
   * and fewer than {@code maxActive} other sessions of its agent are active. The limits are
   * recorded on the session (whether or not the claim is granted), so that {@link #claimRunnable}
   * skips it while its partition is busy or its agent is at its limit. Claims of sessions of one
   * agent with limits are decided one at a time across every node sharing the store, so two
   * nodes never both get sessions the limits allow only one of. When the limits refuse a session
   * that {@code node} holds already (it was claimed by {@link #claimRunnable} meanwhile), its
   * lease is released.
   *
   * @return the lease, or empty when another node holds it unexpired or the limits refuse it
   * @throws keel.core.KeelException.NotFound if the session does not exist
   */
  Optional<Lease> claim(String sessionId, String node, Duration ttl, Limits limits);

  /**
   * Claims for {@code node} up to {@code limit} sessions that have work (an unconsumed input, or a
   * step in progress) and that nobody holds unexpired, longest-waiting first. Nodes calling this at
   * once get disjoint sessions (on PostgreSQL with {@code FOR UPDATE SKIP LOCKED}, so they do not
   * wait for each other either). Sessions whose recorded {@link Limits} refuse them now (their
   * partition is active, their agent is at its limit) are skipped; this is a filter, not the
   * guarantee: a run claims its session with {@link #claim(String, String, Duration, Limits)}
   * before it starts, which decides.
   */
  List<Lease> claimRunnable(String node, int limit, Duration ttl);

  /**
   * The heartbeat: extends every unexpired lease {@code node} holds to {@code ttl} from now, in one
   * statement. Leases that already expired are not renewed (they may be taken over).
   *
   * @return how many leases were extended
   */
  int renew(String node, Duration ttl);

  /**
   * Gives a lease up, so that any node may claim the session at once. Releasing a lease its node no
   * longer holds (taken over, or released already) changes nothing.
   *
   * @return whether the lease was still held and is now released
   */
  boolean release(Lease lease);

  /**
   * How many sessions have work (an unconsumed input, or a step in progress) and no unexpired
   * lease: the cluster's queue, sessions that wait for a node to run them (waiting for a slot on
   * the node that woke them, for their partition or agent limit, or orphaned by a dead node). One
   * count over the store, for cluster-wide admission.
   */
  long queued();

  /** The lease on a session as recorded, if a node holds one (its expiry may have passed). */
  Optional<Lease> lease(String sessionId);

  /** Who wrote a session's events: its log as runs of one epoch each, in sequence order. */
  List<Stint> writers(String sessionId);

}
