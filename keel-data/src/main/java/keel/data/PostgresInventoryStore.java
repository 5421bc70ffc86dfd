package keel.data;

import static keel.data.PostgresEventStore.instant;
import static keel.data.PostgresEventStore.time;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Descriptor revisions in PostgreSQL. Thread-safe. Applies from every node are serialized by a
 * transaction-scoped advisory lock, so two nodes applying at once never number two revisions
 * alike: applies are rare, and one at a time across the cluster is what the single SQLite writer
 * gives too.
 */
final class PostgresInventoryStore implements InventoryStore {

  private static final String COLUMNS = "kind, name, number, owner, spec, applied_by, applied_at";
  /** The advisory lock key of inventory applies ("keel.inv" in ASCII). */
  private static final long APPLY_LOCK = 0x6b65656c2e696e76L;

  private final PostgresTransactions tx;
  private final Clock clock;

  PostgresInventoryStore(PostgresTransactions tx, Clock clock) {
    this.tx = tx;
    this.clock = clock;
  }

  @Override
  public List<Applied> apply(List<Change> changes, String appliedBy) {
    List<Change> checked = List.copyOf(changes); // no null among them, before anything is written
    Objects.requireNonNull(appliedBy, "appliedBy");
    long now = clock.millis();
    return tx.write(
        "the inventory",
        c -> {
          try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
            lock.setLong(1, APPLY_LOCK);
            lock.executeQuery().close();
          }
          List<Applied> out = new ArrayList<>();
          for (Change ch : checked) {
            Revision latest = latest(c, ch.kind(), ch.name());
            if (latest != null && latest.spec().equals(ch.spec()) && latest.owner().equals(ch.owner())) {
              out.add(new Applied(latest, false));
              continue;
            }
            int number = latest == null ? 1 : latest.number() + 1;
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO revisions (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?)")) {
              ins.setString(1, ch.kind());
              ins.setString(2, ch.name());
              ins.setInt(3, number);
              ins.setString(4, ch.owner());
              ins.setString(5, ch.spec());
              ins.setString(6, appliedBy);
              ins.setObject(7, time(now));
              ins.executeUpdate();
            }
            out.add(
                new Applied(
                    new Revision(ch.kind(), ch.name(), number, ch.owner(), ch.spec(), appliedBy, Instant.ofEpochMilli(now)),
                    true));
          }
          return out;
        });
  }

  private static Revision latest(Connection c, String kind, String name) throws SQLException {
    try (PreparedStatement sel =
        c.prepareStatement("SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? ORDER BY number DESC LIMIT 1")) {
      sel.setString(1, kind);
      sel.setString(2, name);
      try (ResultSet rs = sel.executeQuery()) {
        return rs.next() ? revision(rs) : null;
      }
    }
  }

  private static Revision revision(ResultSet rs) throws SQLException {
    return new Revision(
        rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5), rs.getString(6), instant(rs, 7));
  }

  private List<Revision> query(String what, String sql, Object... args) {
    return tx.read(
        what,
        c -> {
          try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
              ps.setObject(i + 1, args[i]);
            }
            List<Revision> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(revision(rs));
              }
            }
            return out;
          }
        });
  }

  @Override
  public Optional<Revision> latest(String kind, String name) {
    return query(
            kind + " " + name,
            "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? ORDER BY number DESC LIMIT 1",
            kind,
            name)
        .stream()
        .findFirst();
  }

  @Override
  public Optional<Revision> revision(String kind, String name, int number) {
    return query(
            kind + " " + name,
            "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? AND number = ?",
            kind,
            name,
            number)
        .stream()
        .findFirst();
  }

  @Override
  public List<Revision> history(String kind, String name) {
    return query(
        kind + " " + name, "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? ORDER BY number", kind, name);
  }

  @Override
  public List<Revision> latestOfKind(String kind) {
    return query(
        "every " + kind,
        "SELECT DISTINCT ON (name) " + COLUMNS + " FROM revisions WHERE kind = ? ORDER BY name, number DESC",
        kind);
  }
}
