package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;
import keel.core.KeelException;

/**
 * Session leases in SQLite, on the session rows, written through the single writer: each claim,
 * renewal and release is one conditional update in the writer's transaction, so they are ordered
 * with the appends they fence. Each operation starts with its write, so SQLite takes the write lock
 * before reading anything: a second process on the same file (not a deployment Keel supports, but
 * what the contract's second node is here) waits for the lock rather than failing on a stale read.
 * Thread-safe.
 */
final class SqliteLeaseStore implements LeaseStore {

  /**
   * Grants the lease to a node when it is free, expired, or that node's already; the epoch grows
   * unless the node holds it unexpired (every right-hand side reads the row as it was).
   */
  private static final String GRANT =
      "UPDATE sessions SET"
          + " lease_epoch = CASE WHEN lease_node = ?1 AND lease_expires > ?2 THEN lease_epoch ELSE lease_epoch + 1 END,"
          + " lease_node = ?1, lease_expires = ?3"
          + " WHERE id = ?4 AND (lease_node IS NULL OR lease_expires <= ?2 OR lease_node = ?1)";

  private final DataSource readers;
  private final GroupCommitWriter writer;
  private final Clock clock;

  SqliteLeaseStore(DataSource readers, GroupCommitWriter writer, Clock clock) {
    this.readers = readers;
    this.writer = writer;
    this.clock = clock;
  }

  @Override
  public Optional<Lease> claim(String sessionId, String node, Duration ttl, Limits limits) {
    Leases.node(node);
    long ttlMillis = Leases.ttlMillis(ttl);
    java.util.Objects.requireNonNull(limits, "limits");
    return writer.execute(
        tx -> {
          long now = clock.millis();
          if (!limits.none() && !allowed(tx, sessionId, node, limits, now)) {
            return Optional.empty();
          }
          if (tx.update(GRANT, node, now, now + ttlMillis, sessionId) == 1) {
            return Optional.of(held(tx, sessionId, node));
          }
          PreparedStatement exists = tx.prepare("SELECT 1 FROM sessions WHERE id = ?");
          exists.setString(1, sessionId);
          try (ResultSet rs = exists.executeQuery()) {
            if (!rs.next()) {
              throw new KeelException.NotFound("session " + sessionId + " does not exist");
            }
          }
          return Optional.empty();
        });
  }

  /**
   * Records the session's limits and tells whether they allow a claim now (in the single writer's
   * transaction, so claims are decided one at a time). A refused session {@code node} holds is
   * released.
   */
  private static boolean allowed(GroupCommitWriter.Tx tx, String sessionId, String node, Limits limits, long now)
      throws SQLException {
    // the write first: SQLite takes the write lock before anything is read
    if (tx.update("UPDATE sessions SET partition_key = ?, max_active = ? WHERE id = ?",
        limits.partition().orElse(null), limits.maxActive() == 0 ? null : limits.maxActive(), sessionId) != 1) {
      throw new KeelException.NotFound("session " + sessionId + " does not exist");
    }
    PreparedStatement ps =
        tx.prepare("SELECT 1 FROM sessions s WHERE s.id = ? AND " + Leases.LIMITS_ALLOW);
    ps.setString(1, sessionId);
    ps.setLong(2, now);
    ps.setLong(3, now);
    boolean ok;
    try (ResultSet rs = ps.executeQuery()) {
      ok = rs.next();
    }
    if (!ok) {
      tx.update("UPDATE sessions SET lease_node = NULL, lease_expires = NULL WHERE id = ? AND lease_node = ?", sessionId, node);
    }
    return ok;
  }

  private static Lease held(GroupCommitWriter.Tx tx, String sessionId, String node) throws SQLException {
    PreparedStatement sel = tx.prepare("SELECT lease_epoch, lease_expires FROM sessions WHERE id = ?");
    sel.setString(1, sessionId);
    try (ResultSet rs = sel.executeQuery()) {
      rs.next();
      return new Lease(sessionId, node, rs.getLong(1), Instant.ofEpochMilli(rs.getLong(2)));
    }
  }

  @Override
  public List<Lease> claimRunnable(String node, int limit, Duration ttl) {
    Leases.node(node);
    Leases.limit(limit);
    long ttlMillis = Leases.ttlMillis(ttl);
    return writer.execute(
        tx -> {
          long now = clock.millis();
          // one statement, a write from its start: SQLite takes the write lock first (waiting for
          // another process's writer if there is one) and picks and grants under it
          PreparedStatement up =
              tx.prepare(
                  "UPDATE sessions SET lease_node = ?, lease_epoch = lease_epoch + 1, lease_expires = ?"
                      + " WHERE id IN (SELECT id FROM sessions s WHERE " + Leases.HAS_WORK
                      + " AND (lease_node IS NULL OR lease_expires <= ?) AND " + Leases.LIMITS_ALLOW
                      + " ORDER BY updated_at, id LIMIT ?)"
                      + " RETURNING id, lease_epoch, lease_expires");
          up.setString(1, node);
          up.setLong(2, now + ttlMillis);
          up.setLong(3, now);
          up.setLong(4, now);
          up.setLong(5, now);
          up.setInt(6, limit);
          List<Lease> out = new ArrayList<>();
          try (ResultSet rs = up.executeQuery()) {
            while (rs.next()) {
              out.add(new Lease(rs.getString(1), node, rs.getLong(2), Instant.ofEpochMilli(rs.getLong(3))));
            }
          }
          return out;
        });
  }

  @Override
  public int renew(String node, Duration ttl) {
    Leases.node(node);
    long ttlMillis = Leases.ttlMillis(ttl);
    return writer.execute(
        tx -> {
          long now = clock.millis();
          return tx.update(
              "UPDATE sessions SET lease_expires = ? WHERE lease_node = ? AND lease_expires > ?",
              now + ttlMillis, node, now);
        });
  }

  @Override
  public boolean release(Lease lease) {
    return writer.execute(
        tx -> tx.update(
            "UPDATE sessions SET lease_node = NULL, lease_expires = NULL"
                + " WHERE id = ? AND lease_node = ? AND lease_epoch = ?",
            lease.sessionId(), lease.node(), lease.epoch()) == 1);
  }

  @Override
  public long queued() {
    long now = clock.millis();
    return Jdbc.first(
            readers,
            "the sessions waiting for a node",
            "SELECT count(*) FROM sessions WHERE " + Leases.HAS_WORK + " AND (lease_node IS NULL OR lease_expires <= ?)",
            rs -> rs.getLong(1),
            now)
        .orElse(0L);
  }

  @Override
  public Optional<Lease> lease(String sessionId) {
    return Jdbc.first(
        readers,
        "the lease of session " + sessionId,
        "SELECT lease_node, lease_epoch, lease_expires FROM sessions WHERE id = ? AND lease_node IS NOT NULL",
        rs -> new Lease(sessionId, rs.getString(1), rs.getLong(2), Instant.ofEpochMilli(rs.getLong(3))),
        sessionId);
  }

  @Override
  public List<Stint> writers(String sessionId) {
    return Jdbc.read(
        readers,
        "the writers of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT seq, node, epoch FROM events WHERE session_id = ? ORDER BY seq")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return Leases.stints(rs);
            }
          }
        });
  }
}
