package keel.data;

import static keel.data.PostgresEventStore.instant;
import static keel.data.PostgresEventStore.text;
import static keel.data.PostgresEventStore.time;
import static keel.data.PostgresEventStore.utf8;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Agent notes in PostgreSQL, with the same word search as the SQLite store. Keys and values are
 * stored as UTF-8 bytes (PostgreSQL text cannot hold U+0000); a lower-cased copy of both serves
 * the search. Thread-safe.
 */
final class PostgresMemoryStore implements MemoryStore {

  private static final int MAX_QUERY_WORDS = 8;

  private final PostgresTransactions tx;
  private final Clock clock;

  PostgresMemoryStore(PostgresTransactions tx, Clock clock) {
    this.tx = tx;
    this.clock = clock;
  }

  /** What the search matches words in: query words never hold a space or U+0000. */
  private static String searchable(String key, String value) {
    return (key + " " + value).toLowerCase(Locale.ROOT).replace('\u0000', ' ');
  }

  @Override
  public void put(String agent, String scope, String key, String value) {
    long now = clock.millis();
    tx.write(
        "a note of agent " + agent,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "INSERT INTO memory (agent, scope, key, value, search, updated_at) VALUES (?,?,?,?,?,?)"
                      + " ON CONFLICT (agent, scope, key) DO UPDATE SET value = excluded.value,"
                      + " search = excluded.search, updated_at = excluded.updated_at")) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            ps.setBytes(3, utf8(key));
            ps.setBytes(4, utf8(value));
            ps.setString(5, searchable(key, value));
            ps.setObject(6, time(now));
            ps.executeUpdate();
            return null;
          }
        });
  }

  private static Note note(ResultSet rs) throws SQLException {
    return new Note(text(rs.getBytes(1)), text(rs.getBytes(2)), instant(rs, 3));
  }

  @Override
  public Optional<Note> get(String agent, String scope, String key) {
    return tx.read(
        "memory of agent " + agent,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT key, value, updated_at FROM memory WHERE agent = ? AND scope = ? AND key = ?")) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            ps.setBytes(3, utf8(key));
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? Optional.of(note(rs)) : Optional.empty();
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
    return tx.read(
        "memory of agent " + agent,
        c -> {
          StringBuilder sql =
              new StringBuilder("SELECT key, value, updated_at FROM memory WHERE agent = ? AND scope = ? AND (");
          for (int i = 0; i < words.size(); i++) {
            sql.append(i == 0 ? "" : " OR ").append("search LIKE ? ESCAPE '\\'");
          }
          sql.append(")");
          List<Note> found = new ArrayList<>();
          try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            int p = 3;
            for (String w : words) {
              ps.setString(p++, "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%");
            }
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                found.add(note(rs));
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
    String text = searchable(n.key(), n.value());
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
    return tx.write(
        "the notes of agent " + agent,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("DELETE FROM memory WHERE agent = ? AND scope = ?")) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            return ps.executeUpdate();
          }
        });
  }

  @Override
  public int purge(String agent, String scope, Instant before) {
    return tx.write(
        "the notes of agent " + agent,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("DELETE FROM memory WHERE agent = ? AND scope = ? AND updated_at < ?")) {
            ps.setString(1, agent);
            ps.setString(2, scope);
            ps.setObject(3, time(before.toEpochMilli()));
            return ps.executeUpdate();
          }
        });
  }
}
