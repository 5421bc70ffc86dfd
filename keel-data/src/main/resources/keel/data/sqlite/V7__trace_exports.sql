-- OpenTelemetry export of session traces. The spans themselves are derived from the event log;
-- this table keeps only what the log cannot say: the caller's span a root session's trace hangs
-- under (from its W3C traceparent), and how far each session's spans have been exported (every
-- span that had ended at event exported_seq has been sent). Written before a session is created
-- (remote_parent_span_id) and after each successful export (exported_seq).
CREATE TABLE trace_exports (
  session_id            TEXT PRIMARY KEY,
  remote_parent_span_id TEXT NOT NULL DEFAULT '',
  exported_seq          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
