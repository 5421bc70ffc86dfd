-- Budgets and the cost ledger (SQLite). Times are epoch milliseconds. Amounts are whole numbers in
-- each kind's unit: 1e-10 US dollar for money (usd_per_day, ledger usd), whole calls or tokens
-- otherwise, so sums are exact integers in SQLite and PostgreSQL alike.

-- What each agent spent per budget kind and window (the clock hour, or the UTC day).
CREATE TABLE budget_windows (
  agent        TEXT NOT NULL,
  kind         TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  used         INTEGER NOT NULL,
  PRIMARY KEY (agent, kind, window_start)
) WITHOUT ROWID;

-- Reservations of calls in flight: one row per reservation and budget kind. A hold counts against
-- its window until it is settled or released (the row is deleted) or it expires.
CREATE TABLE budget_holds (
  reservation_id TEXT NOT NULL,
  kind           TEXT NOT NULL,
  agent          TEXT NOT NULL,
  window_start   INTEGER NOT NULL,
  amount         INTEGER NOT NULL,
  session_id     TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  PRIMARY KEY (reservation_id, kind)
) WITHOUT ROWID;
CREATE INDEX budget_holds_window ON budget_holds (agent, kind, window_start, expires_at);
CREATE INDEX budget_holds_expiry ON budget_holds (expires_at);

-- Every cost, attributed to the session (and its agent, owner and root session) whose events
-- record it; written in the same transaction as those events.
CREATE TABLE cost_ledger (
  id              INTEGER PRIMARY KEY,
  at              INTEGER NOT NULL,
  day             TEXT NOT NULL,
  agent           TEXT NOT NULL,
  owner           TEXT NOT NULL,
  session_id      TEXT NOT NULL,
  root_session_id TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  kind            TEXT NOT NULL,
  quantity        INTEGER NOT NULL,
  usd             INTEGER NOT NULL,
  detail          TEXT NOT NULL
);
-- Totals scan a range of time (an agent or owner filter is applied within it); a session's entries
-- are read by session. No other index: every entry costs its indexes' bytes too.
CREATE INDEX cost_ledger_at ON cost_ledger (at);
CREATE INDEX cost_ledger_session ON cost_ledger (session_id, seq);
