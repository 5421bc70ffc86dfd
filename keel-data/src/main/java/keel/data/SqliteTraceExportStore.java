package keel.data;

import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;

/** Trace export markers in SQLite, written through the single writer. Thread-safe. */
final class SqliteTraceExportStore implements TraceExportStore {

  private final DataSource readers;
  private final GroupCommitWriter writer;

  SqliteTraceExportStore(DataSource readers, GroupCommitWriter writer) {
    this.readers = readers;
    this.writer = writer;
  }

  @Override
  public void linkRemoteParent(String sessionId, String spanId) {
    writer.execute(
        tx -> tx.update(
            "INSERT INTO trace_exports (session_id, remote_parent_span_id) VALUES (?, ?)"
                + " ON CONFLICT (session_id) DO UPDATE SET remote_parent_span_id = excluded.remote_parent_span_id",
            sessionId,
            spanId));
  }

  @Override
  public Optional<String> remoteParent(String sessionId) {
    return Jdbc.first(
            readers,
            "the trace link of session " + sessionId,
            "SELECT remote_parent_span_id FROM trace_exports WHERE session_id = ?",
            rs -> rs.getString(1),
            sessionId)
        .filter(span -> !span.isEmpty());
  }

  @Override
  public long exportedSeq(String sessionId) {
    return Jdbc.first(
            readers,
            "the trace export marker of session " + sessionId,
            "SELECT exported_seq FROM trace_exports WHERE session_id = ?",
            rs -> rs.getLong(1),
            sessionId)
        .orElse(0L);
  }

  @Override
  public void markExported(String sessionId, long seq) {
    writer.execute(
        tx -> tx.update(
            "INSERT INTO trace_exports (session_id, exported_seq) VALUES (?, ?)"
                + " ON CONFLICT (session_id) DO UPDATE SET exported_seq = max(exported_seq, excluded.exported_seq)",
            sessionId,
            seq));
  }

  @Override
  public List<String> unexported(int limit) {
    return Jdbc.list(
        readers,
        "the sessions with unexported spans",
        "SELECT s.id FROM sessions s LEFT JOIN trace_exports t ON t.session_id = s.id"
            + " WHERE s.last_seq > coalesce(t.exported_seq, 0) AND s.status NOT IN ('runnable', 'running')"
            + " ORDER BY s.updated_at LIMIT ?",
        rs -> rs.getString(1),
        limit);
  }
}
