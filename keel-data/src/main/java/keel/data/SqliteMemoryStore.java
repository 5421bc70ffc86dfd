package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import javax.sql.DataSource;

/** Agent notes in SQLite, with a simple word search. Thread-safe. */
final class SqliteMemoryStore implements MemoryStore {

  private static final int MAX_QUERY_WORDS = 8;

  private final DataSource readers;
  private final GroupCommitWriter writer;
  private final Clock clock;

  SqliteMemoryStore(DataSource readers, GroupCommitWriter writer, Clock clock) {
    this.readers = readers;
    this.writer = writer;
    this.clock = clock;
  }

  @Override
  public void put(String agent, String scope, String key, String value) {
    long now = clock.millis();
    writer.execute(
        tx -> {
          PreparedStatement ps =
              tx.prepare(
                  "INSERT INTO memory (agent, scope, key, value, updated_at) VALUES (?,?,?,?,?)"
                      + " ON CONFLICT (agent, scope, key) DO UPDATE SET value = excluded.value,"
                      + " updated_at = excluded.updated_at");
          ps.setString(1, agent);
          ps.setString(2, scope);
          ps.setString(3, key);
          ps.setString(4, value);
          ps.setLong(5, now);
          ps.executeUpdate();
          return null;
        });
  }

  @Override
  public Optional<Note> get(String agent, String scope, String key) {
    return Jdbc.read(
        readers,
        "memory of agent " + agent,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT key, value, updated_at FROM memory WHERE agent = ? AND scope = ? AND key = ?")) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            ps.setString(3, key);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next()
                  ? Optional.of(new Note(rs.getString(1), rs.getString(2), Instant.ofEpochMilli(rs.getLong(3))))
                  : Optional.empty();
            }
          }
        });
  }

  @Override
  public List<Note> search(String agent, String scope, String query, int limit) {
    List<String> words = new ArrayList<>();
    for (String w : query.toLowerCase(Locale.ROOT).split("\\W+")) {
      if (!w.isBlank() && words.size() < MAX_QUERY_WORDS) {
        words.add(w);
      }
    }
    if (words.isEmpty()) {
      return List.of();
    }
    return Jdbc.read(
        readers,
        "memory of agent " + agent,
        c -> {
          StringBuilder sql =
              new StringBuilder(
                  "SELECT key, value, updated_at FROM memory WHERE agent = ? AND scope = ? AND (");
          for (int i = 0; i < words.size(); i++) {
            sql.append(i == 0 ? "" : " OR ")
                .append("lower(key) LIKE ? ESCAPE '\\' OR lower(value) LIKE ? ESCAPE '\\'");
          }
          sql.append(")");
          List<Note> found = new ArrayList<>();
          try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            int p = 3;
            for (String w : words) {
              String like = "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
              ps.setString(p++, like);
              ps.setString(p++, like);
            }
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                found.add(new Note(rs.getString(1), rs.getString(2), Instant.ofEpochMilli(rs.getLong(3))));
              }
            }
          }
          Comparator<Note> byScore =
              Comparator.comparingInt((Note n) -> -score(n, words))
                  .thenComparing(Note::updatedAt, Comparator.reverseOrder());
          found.sort(byScore);
          return found.size() > limit ? List.copyOf(found.subList(0, limit)) : found;
        });
  }

  private static int score(Note n, List<String> words) {
    String text = (n.key() + " " + n.value()).toLowerCase(Locale.ROOT);
    int s = 0;
    for (String w : words) {
      if (text.contains(w)) {
        s++;
      }
    }
    return s;
  }

  @Override
  public int deleteScope(String agent, String scope) {
    return writer.execute(
        tx -> {
          PreparedStatement ps = tx.prepare("DELETE FROM memory WHERE agent = ? AND scope = ?");
          ps.setString(1, agent);
          ps.setString(2, scope);
          return ps.executeUpdate();
        });
  }

  @Override
  public int purge(String agent, String scope, Instant before) {
    return writer.execute(
        tx -> {
          PreparedStatement ps =
              tx.prepare("DELETE FROM memory WHERE agent = ? AND scope = ? AND updated_at < ?");
          ps.setString(1, agent);
          ps.setString(2, scope);
          ps.setLong(3, before.toEpochMilli());
          return ps.executeUpdate();
        });
  }
}
