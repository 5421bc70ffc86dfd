package keel.data;

import static keel.data.PostgresEventStore.instant;
import static keel.data.PostgresEventStore.time;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import keel.core.KeelException;

/**
 * Session leases in PostgreSQL, on the session rows. Thread-safe; safe for many nodes sharing one
 * database.
 *
 * <p>Every change of a lease is one conditional {@code UPDATE} of the session's row, so it takes the
 * row lock that appends take: a claim and an append of the same session are ordered, and the
 * append's fencing condition sees the lease as it is. Two nodes claiming one session at once: the
 * second waits for the first's row lock, then re-reads the row and finds it held. {@link
 * #claimRunnable} picks its sessions with {@code FOR UPDATE SKIP LOCKED}, so nodes polling at once
 * take disjoint sessions without waiting for each other.
 */
final class PostgresLeaseStore implements LeaseStore {

  private final PostgresTransactions tx;
  private final Clock clock;

  PostgresLeaseStore(PostgresTransactions tx, Clock clock) {
    this.tx = tx;
    this.clock = clock;
  }

  @Override
  public Optional<Lease> claim(String sessionId, String node, Duration ttl, Limits limits) {
    Leases.node(node);
    long ttlMillis = Leases.ttlMillis(ttl);
    java.util.Objects.requireNonNull(limits, "limits");
    return tx.write(
        "the lease of session " + sessionId,
        c -> {
          long now = clock.millis();
          if (!limits.none() && !allowed(c, sessionId, node, limits, now)) {
            return Optional.empty();
          }
          try (PreparedStatement up =
              c.prepareStatement(
                  "UPDATE sessions SET"
                      + " lease_epoch = CASE WHEN lease_node = ? AND lease_expires > ? THEN lease_epoch"
                      + " ELSE lease_epoch + 1 END,"
                      + " lease_node = ?, lease_expires = ?"
                      + " WHERE id = ? AND (lease_node IS NULL OR lease_expires <= ? OR lease_node = ?)"
                      + " RETURNING lease_epoch, lease_expires")) {
            OffsetDateTime at = time(now);
            up.setString(1, node);
            up.setObject(2, at);
            up.setString(3, node);
            up.setObject(4, time(now + ttlMillis));
            up.setString(5, sessionId);
            up.setObject(6, at);
            up.setString(7, node);
            try (ResultSet rs = up.executeQuery()) {
              if (rs.next()) {
                return Optional.of(new Lease(sessionId, node, rs.getLong(1), instant(rs, 2)));
              }
            }
          }
          if (!exists(c, sessionId)) {
            throw new KeelException.NotFound("session " + sessionId + " does not exist");
          }
          return Optional.empty();
        });
  }

  /**
   * Records the session's limits and tells whether they allow a claim now. Claims of one agent's
   * limited sessions take a transaction-scoped advisory lock on the agent first, so they are decided
   * one at a time across nodes, each seeing the leases the previous one granted. A refused session
   * that {@code node} holds (a sweep claimed it) is released.
   */
  private static boolean allowed(Connection c, String sessionId, String node, Limits limits, long now) throws SQLException {
    String agent;
    try (PreparedStatement ps = c.prepareStatement("SELECT agent FROM sessions WHERE id = ?")) {
      ps.setString(1, sessionId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          throw new KeelException.NotFound("session " + sessionId + " does not exist");
        }
        agent = rs.getString(1);
      }
    }
    try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(hashtextextended(?, 13))")) {
      lock.setString(1, "keel.lease.agent:" + agent);
      lock.execute();
    }
    try (PreparedStatement up =
        c.prepareStatement("UPDATE sessions SET partition_key = ?, max_active = ? WHERE id = ?")) {
      up.setString(1, limits.partition().orElse(null));
      up.setObject(2, limits.maxActive() == 0 ? null : limits.maxActive(), java.sql.Types.INTEGER);
      up.setString(3, sessionId);
      up.executeUpdate();
    }
    OffsetDateTime at = time(now);
    boolean ok = true;
    if (limits.partition().isPresent()) {
      try (PreparedStatement ps =
          c.prepareStatement(
              "SELECT 1 FROM sessions WHERE agent = ? AND partition_key = ? AND id <> ?"
                  + " AND lease_node IS NOT NULL AND lease_expires > ? LIMIT 1")) {
        ps.setString(1, agent);
        ps.setString(2, limits.partition().get());
        ps.setString(3, sessionId);
        ps.setObject(4, at);
        try (ResultSet rs = ps.executeQuery()) {
          ok = !rs.next();
        }
      }
    }
    if (ok && limits.maxActive() > 0) {
      try (PreparedStatement ps =
          c.prepareStatement(
              "SELECT count(*) FROM sessions WHERE agent = ? AND id <> ? AND lease_node IS NOT NULL AND lease_expires > ?")) {
        ps.setString(1, agent);
        ps.setString(2, sessionId);
        ps.setObject(3, at);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          ok = rs.getLong(1) < limits.maxActive();
        }
      }
    }
    if (!ok) {
      try (PreparedStatement up =
          c.prepareStatement("UPDATE sessions SET lease_node = NULL, lease_expires = NULL WHERE id = ? AND lease_node = ?")) {
        up.setString(1, sessionId);
        up.setString(2, node);
        up.executeUpdate();
      }
    }
    return ok;
  }

  private static boolean exists(Connection c, String sessionId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM sessions WHERE id = ?")) {
      ps.setString(1, sessionId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  @Override
  public List<Lease> claimRunnable(String node, int limit, Duration ttl) {
    Leases.node(node);
    Leases.limit(limit);
    long ttlMillis = Leases.ttlMillis(ttl);
    return tx.write(
        "leases on runnable sessions",
        c -> {
          long now = clock.millis();
          // rows another node is claiming right now are skipped, not waited for; a row whose lease
          // changed since this statement's snapshot is re-checked against the condition when locked
          try (PreparedStatement up =
              c.prepareStatement(
                  "WITH picked AS (SELECT id FROM sessions s WHERE " + Leases.HAS_WORK
                      + " AND (lease_node IS NULL OR lease_expires <= ?) AND " + Leases.LIMITS_ALLOW
                      + " ORDER BY updated_at, id LIMIT ? FOR UPDATE SKIP LOCKED)"
                      + " UPDATE sessions s SET lease_node = ?, lease_epoch = s.lease_epoch + 1, lease_expires = ?"
                      + " FROM picked WHERE s.id = picked.id"
                      + " RETURNING s.id, s.lease_epoch, s.lease_expires")) {
            up.setObject(1, time(now));
            up.setObject(2, time(now));
            up.setObject(3, time(now));
            up.setInt(4, limit);
            up.setString(5, node);
            up.setObject(6, time(now + ttlMillis));
            List<Lease> out = new ArrayList<>();
            try (ResultSet rs = up.executeQuery()) {
              while (rs.next()) {
                out.add(new Lease(rs.getString(1), node, rs.getLong(2), instant(rs, 3)));
              }
            }
            return out;
          }
        });
  }

  @Override
  public int renew(String node, Duration ttl) {
    Leases.node(node);
    long ttlMillis = Leases.ttlMillis(ttl);
    return tx.write(
        "the leases of node " + node,
        c -> {
          long now = clock.millis();
          try (PreparedStatement up =
              c.prepareStatement(
                  "UPDATE sessions SET lease_expires = ? WHERE lease_node = ? AND lease_expires > ?")) {
            up.setObject(1, time(now + ttlMillis));
            up.setString(2, node);
            up.setObject(3, time(now));
            return up.executeUpdate();
          }
        });
  }

  @Override
  public boolean release(Lease lease) {
    return tx.write(
        "the lease of session " + lease.sessionId(),
        c -> {
          try (PreparedStatement up =
              c.prepareStatement(
                  "UPDATE sessions SET lease_node = NULL, lease_expires = NULL"
                      + " WHERE id = ? AND lease_node = ? AND lease_epoch = ?")) {
            up.setString(1, lease.sessionId());
            up.setString(2, lease.node());
            up.setLong(3, lease.epoch());
            return up.executeUpdate() == 1;
          }
        });
  }

  @Override
  public long queued() {
    return tx.read(
        "the sessions waiting for a node",
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT count(*) FROM sessions WHERE " + Leases.HAS_WORK + " AND (lease_node IS NULL OR lease_expires <= ?)")) {
            ps.setObject(1, time(clock.millis()));
            try (ResultSet rs = ps.executeQuery()) {
              rs.next();
              return rs.getLong(1);
            }
          }
        });
  }

  @Override
  public Optional<Lease> lease(String sessionId) {
    return tx.read(
        "the lease of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT lease_node, lease_epoch, lease_expires FROM sessions WHERE id = ? AND lease_node IS NOT NULL")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next()
                  ? Optional.of(new Lease(sessionId, rs.getString(1), rs.getLong(2), instant(rs, 3)))
                  : Optional.empty();
            }
          }
        });
  }

  @Override
  public List<Stint> writers(String sessionId) {
    return tx.read(
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
