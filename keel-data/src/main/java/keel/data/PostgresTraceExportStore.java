package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Trace export markers in PostgreSQL, each write one transaction. Thread-safe. */
final class PostgresTraceExportStore implements TraceExportStore {

  private final PostgresTransactions pg;

  PostgresTraceExportStore(PostgresTransactions pg) {
    this.pg = pg;
  }

  @Override
  public void linkRemoteParent(String sessionId, String spanId) {
    pg.writeTx(
        "the trace link of session " + sessionId,
        tx -> {
          PreparedStatement ps =
              tx.prepare("INSERT INTO trace_exports (session_id, remote_parent_span_id) VALUES (?, ?)"
                  + " ON CONFLICT (session_id) DO UPDATE SET remote_parent_span_id = excluded.remote_parent_span_id");
          ps.setString(1, sessionId);
          ps.setString(2, spanId);
          return ps.executeUpdate();
        });
  }

  @Override
  public Optional<String> remoteParent(String sessionId) {
    return pg.read(
        "the trace link of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT remote_parent_span_id FROM trace_exports WHERE session_id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() && !rs.getString(1).isEmpty() ? Optional.of(rs.getString(1)) : Optional.empty();
            }
          }
        });
  }

  @Override
  public long exportedSeq(String sessionId) {
    return pg.read(
        "the trace export marker of session " + sessionId,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("SELECT exported_seq FROM trace_exports WHERE session_id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? rs.getLong(1) : 0L;
            }
          }
        });
  }

  @Override
  public void markExported(String sessionId, long seq) {
    pg.writeTx(
        "the trace export marker of session " + sessionId,
        tx -> {
          PreparedStatement ps =
              tx.prepare("INSERT INTO trace_exports (session_id, exported_seq) VALUES (?, ?)"
                  + " ON CONFLICT (session_id) DO UPDATE SET exported_seq = greatest(trace_exports.exported_seq, excluded.exported_seq)");
          ps.setString(1, sessionId);
          ps.setLong(2, seq);
          return ps.executeUpdate();
        });
  }

  @Override
  public List<String> unexported(int limit) {
    return pg.read(
        "the sessions with unexported spans",
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT s.id FROM sessions s LEFT JOIN trace_exports t ON t.session_id = s.id"
                      + " WHERE s.last_seq > coalesce(t.exported_seq, 0) AND s.status NOT IN ('runnable', 'running')"
                      + " ORDER BY s.updated_at LIMIT ?")) {
            ps.setInt(1, limit);
            List<String> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(rs.getString(1));
              }
            }
            return out;
          }
        });
  }
}
