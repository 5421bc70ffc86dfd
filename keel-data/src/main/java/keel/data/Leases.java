package keel.data;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** What both lease stores share: argument checks and folding a log into stints. Stateless. */
final class Leases {

  /** The longest lease: a node that stops renewing keeps its sessions at most this long. */
  static final Duration MAX_TTL = Duration.ofHours(1);

  /** The most sessions one {@link LeaseStore#claimRunnable} call claims. */
  static final int MAX_CLAIM = 10_000;

  /**
   * Which sessions have work, as a SQL condition on {@code sessions}: the same as {@link
   * EventStore#sessionsWithWork}.
   */
  static final String HAS_WORK =
      "(status IN ('runnable', 'running')"
          + " OR (pending_inputs > 0 AND status NOT IN ('completed', 'failed', 'cancelled')))";

  /**
   * Whether a session's recorded limits allow a claim now, as a SQL condition on {@code sessions s}
   * with two parameters, both the current time: no other active session of its agent in its
   * partition, and fewer active sessions of its agent than its limit.
   */
  static final String LIMITS_ALLOW =
      "(s.partition_key IS NULL OR NOT EXISTS (SELECT 1 FROM sessions o WHERE o.agent = s.agent"
          + " AND o.partition_key = s.partition_key AND o.id <> s.id AND o.lease_node IS NOT NULL AND o.lease_expires > ?))"
          + " AND (s.max_active IS NULL OR (SELECT count(*) FROM sessions o WHERE o.agent = s.agent"
          + " AND o.id <> s.id AND o.lease_node IS NOT NULL AND o.lease_expires > ?) < s.max_active)";

  private Leases() {}

  static String node(String node) {
    Objects.requireNonNull(node, "node");
    if (node.isBlank()) {
      throw new IllegalArgumentException("a lease needs a node name; got an empty one");
    }
    return node;
  }

  static long ttlMillis(Duration ttl) {
    Objects.requireNonNull(ttl, "ttl");
    if (ttl.isNegative() || ttl.isZero() || ttl.compareTo(MAX_TTL) > 0 || ttl.toMillis() == 0) {
      throw new IllegalArgumentException(
          "a lease's time to live must be between 1 ms and " + MAX_TTL.toMinutes() + " minutes, got " + ttl);
    }
    return ttl.toMillis();
  }

  static int limit(int limit) {
    if (limit < 1 || limit > MAX_CLAIM) {
      throw new IllegalArgumentException(
          "claim at least 1 and at most " + MAX_CLAIM + " sessions at a time, got " + limit);
    }
    return limit;
  }

  /** Folds rows of (seq, node, epoch) in sequence order into runs of one node and epoch. */
  static List<LeaseStore.Stint> stints(ResultSet rs) throws SQLException {
    List<LeaseStore.Stint> out = new ArrayList<>();
    String node = null;
    long epoch = -1;
    long first = 0;
    long last = 0;
    while (rs.next()) {
      long seq = rs.getLong(1);
      String n = rs.getString(2);
      long e = rs.getLong(3);
      if (node != null && n.equals(node) && e == epoch) {
        last = seq;
        continue;
      }
      if (node != null) {
        out.add(new LeaseStore.Stint(node, epoch, first, last));
      }
      node = n;
      epoch = e;
      first = seq;
      last = seq;
    }
    if (node != null) {
      out.add(new LeaseStore.Stint(node, epoch, first, last));
    }
    return out;
  }
}
