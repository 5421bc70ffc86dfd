-- Budgets and the cost ledger (PostgreSQL): the same tables as the SQLite store's V4. Amounts are
-- whole numbers in each kind's unit: 1e-10 US dollar for money (ledger usd, usd_per_day windows),
-- whole calls or tokens otherwise, so sums are exact. Budget windows and holds keep their times as
-- epoch milliseconds (bigint), as computed by the budget kinds; the ledger's time is a timestamptz.

-- What each agent spent per budget kind and window (the clock hour, or the UTC day). A reservation
-- locks the rows of its windows (SELECT … FOR UPDATE), so reservations of one agent from any
-- number of nodes are checked one after the other.
CREATE TABLE budget_windows (
  agent        text COLLATE "C" NOT NULL,
  kind         text COLLATE "C" NOT NULL,
  window_start bigint NOT NULL,
  used         bigint NOT NULL,
  PRIMARY KEY (agent, kind, window_start)
);

-- Reservations of calls in flight: one row per reservation and budget kind. A hold counts against
-- its window until it is settled or released (the row is deleted) or it expires.
CREATE TABLE budget_holds (
  reservation_id text COLLATE "C" NOT NULL,
  kind           text COLLATE "C" NOT NULL,
  agent          text COLLATE "C" NOT NULL,
  window_start   bigint NOT NULL,
  amount         bigint NOT NULL,
  session_id     text COLLATE "C" NOT NULL,
  created_at     bigint NOT NULL,
  expires_at     bigint NOT NULL,
  PRIMARY KEY (reservation_id, kind)
);
CREATE INDEX budget_holds_window ON budget_holds (agent, kind, window_start, expires_at);
CREATE INDEX budget_holds_expiry ON budget_holds (expires_at);

-- Every cost, attributed to the session (and its agent, owner and root session) whose events
-- record it; written in the same transaction as those events.
CREATE TABLE cost_ledger (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at              timestamptz NOT NULL,
  day             text COLLATE "C" NOT NULL,
  agent           text COLLATE "C" NOT NULL,
  owner           text COLLATE "C" NOT NULL,
  session_id      text COLLATE "C" NOT NULL,
  root_session_id text COLLATE "C" NOT NULL,
  seq             bigint NOT NULL,
  kind            text COLLATE "C" NOT NULL,
  quantity        bigint NOT NULL,
  usd             bigint NOT NULL,
  detail          text NOT NULL
);
-- Totals scan a range of time (an agent or owner filter is applied within it); a session's entries
-- are read by session.
CREATE INDEX cost_ledger_at ON cost_ledger (at);
CREATE INDEX cost_ledger_session ON cost_ledger (session_id, seq);
