-- OpenTelemetry export of session traces (PostgreSQL): the same table as the SQLite store's V7.
-- The spans themselves are derived from the event log; this table keeps only what the log cannot
-- say: the caller's span a root session's trace hangs under, and how far each session's spans
-- have been exported (every span that had ended at event exported_seq has been sent).
CREATE TABLE trace_exports (
  session_id            text COLLATE "C" PRIMARY KEY,
  remote_parent_span_id text NOT NULL DEFAULT '',
  exported_seq          bigint NOT NULL DEFAULT 0
);
