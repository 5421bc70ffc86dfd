package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;

/** Descriptor revisions in SQLite. Thread-safe. */
final class SqliteInventoryStore implements InventoryStore {

  private static final String COLUMNS = "kind, name, number, owner, spec, applied_by, applied_at";

  private final DataSource readers;
  private final GroupCommitWriter writer;
  private final Clock clock;

  SqliteInventoryStore(DataSource readers, GroupCommitWriter writer, Clock clock) {
    this.readers = readers;
    this.writer = writer;
    this.clock = clock;
  }

  @Override
  public List<Applied> apply(List<Change> changes, String appliedBy) {
    List<Change> checked = List.copyOf(changes); // no null among them, before anything is written
    java.util.Objects.requireNonNull(appliedBy, "appliedBy");
    long now = clock.millis();
    return writer.execute(
        tx -> {
          List<Applied> out = new ArrayList<>();
          for (Change ch : checked) {
            PreparedStatement sel =
                tx.prepare(
                    "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ?"
                        + " ORDER BY number DESC LIMIT 1");
            sel.setString(1, ch.kind());
            sel.setString(2, ch.name());
            Revision latest = null;
            try (ResultSet rs = sel.executeQuery()) {
              if (rs.next()) {
                latest = revision(rs);
              }
            }
            if (latest != null && latest.spec().equals(ch.spec()) && latest.owner().equals(ch.owner())) {
              out.add(new Applied(latest, false));
              continue;
            }
            int number = latest == null ? 1 : latest.number() + 1;
            PreparedStatement ins =
                tx.prepare("INSERT INTO revisions (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?)");
            ins.setString(1, ch.kind());
            ins.setString(2, ch.name());
            ins.setInt(3, number);
            ins.setString(4, ch.owner());
            ins.setString(5, ch.spec());
            ins.setString(6, appliedBy);
            ins.setLong(7, now);
            ins.executeUpdate();
            out.add(
                new Applied(
                    new Revision(
                        ch.kind(), ch.name(), number, ch.owner(), ch.spec(), appliedBy,
                        Instant.ofEpochMilli(now)),
                    true));
          }
          return out;
        });
  }

  private static Revision revision(ResultSet rs) throws SQLException {
    return new Revision(
        rs.getString(1),
        rs.getString(2),
        rs.getInt(3),
        rs.getString(4),
        rs.getString(5),
        rs.getString(6),
        Instant.ofEpochMilli(rs.getLong(7)));
  }

  private List<Revision> query(String what, String sql, Object... args) {
    return Jdbc.read(
        readers,
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
        kind + " " + name,
        "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? ORDER BY number",
        kind,
        name);
  }

  @Override
  public List<Revision> latestOfKind(String kind) {
    return query(
        "every " + kind,
        "SELECT " + COLUMNS + " FROM revisions r WHERE kind = ? AND number ="
            + " (SELECT max(number) FROM revisions WHERE kind = r.kind AND name = r.name) ORDER BY name",
        kind);
  }
}
