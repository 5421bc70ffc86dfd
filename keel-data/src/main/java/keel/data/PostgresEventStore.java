package keel.data;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongConsumer;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;

/**
 * Sessions, events, inboxes and snapshots in PostgreSQL. Thread-safe; safe for many nodes sharing
 * one database.
 *
 * <p>An append orders itself on the session's row: its first statement is {@code UPDATE sessions …
 * WHERE id = ? AND last_seq = ?}, which takes the row lock and checks the expected sequence number
 * at once. A concurrent append of the same session waits for that lock, then finds {@code last_seq}
 * moved and is refused with {@link KeelException.Conflict}; the primary key on {@code (session_id,
 * seq)} backs this up. An append that carries its writer's lease adds {@code AND lease_node = ? AND
 * lease_epoch = ?} to that same update, so the fencing and the sequence check are one decision under
 * one row lock.
 */
final class PostgresEventStore implements EventStore {

  private static final String SESSION_COLUMNS =
      "id, agent, revision, owner, status, last_seq, trace_id, parent_id, root_id, created_at,"
          + " updated_at, pending_inputs";

  private final PostgresTransactions tx;
  private final String node;
  private final Clock clock;
  /** Told how long each append took, in nanoseconds (metrics); never null. */
  private volatile LongConsumer appendTimer = nanos -> {};

  private final ApprovalAnnouncer announcer;

  PostgresEventStore(PostgresTransactions tx, String node, Clock clock, ApprovalAnnouncer announcer) {
    this.tx = tx;
    this.node = node;
    this.clock = clock;
    this.announcer = announcer;
  }

  static OffsetDateTime time(long epochMillis) {
    return OffsetDateTime.ofInstant(Instant.ofEpochMilli(epochMillis), ZoneOffset.UTC);
  }

  static Instant instant(ResultSet rs, int column) throws SQLException {
    return rs.getObject(column, OffsetDateTime.class).toInstant();
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String text(byte[] utf8) {
    return new String(utf8, StandardCharsets.UTF_8);
  }

  @Override
  public void create(NewSession s) {
    long now = clock.millis();
    tx.write(
        "session " + s.id(),
        c -> {
          try (PreparedStatement ins =
              c.prepareStatement(
                  "INSERT INTO sessions (" + SESSION_COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,0)"
                      + " ON CONFLICT (id) DO NOTHING")) {
            ins.setString(1, s.id());
            ins.setString(2, s.agent());
            ins.setInt(3, s.revision());
            ins.setString(4, s.owner());
            ins.setString(5, s.status().wireName());
            ins.setLong(6, s.events().size());
            ins.setString(7, s.traceId());
            ins.setString(8, s.parentId().orElse(null));
            ins.setString(9, s.rootId());
            ins.setObject(10, time(now));
            ins.setObject(11, time(now));
            if (ins.executeUpdate() == 0) {
              throw new KeelException.Conflict("session " + s.id() + " already exists");
            }
          }
          insertEvents(c, s.id(), 0, 0, s.events(), now);
          if (s.firstInput().isPresent()) {
            insertInput(c, s.firstInput().get());
          }
          return null;
        });
  }

  private void insertEvents(Connection c, String sessionId, long afterSeq, long epoch, List<PendingEvent> events, long now)
      throws SQLException {
    try (PreparedStatement ins =
        c.prepareStatement(
            "INSERT INTO events (session_id, seq, at, node, type, span_id, payload, epoch) VALUES (?,?,?,?,?,?,?,?)")) {
      long seq = afterSeq;
      OffsetDateTime at = time(now);
      for (PendingEvent e : events) {
        seq++;
        ins.setString(1, sessionId);
        ins.setLong(2, seq);
        ins.setObject(3, at);
        ins.setString(4, node);
        ins.setString(5, e.event().type());
        ins.setString(6, e.spanId());
        ins.setString(7, EventCodec.encode(e.event()));
        ins.setLong(8, epoch);
        ins.addBatch();
      }
      ins.executeBatch();
    }
  }

  /** Inserts an input unless the session has one with its id; true when it was inserted. */
  private static boolean insertInput(Connection c, Input in) throws SQLException {
    try (PreparedStatement ins =
        c.prepareStatement(
            "INSERT INTO inbox (session_id, input_id, kind, body, sender, received_at) VALUES (?,?,?,?,?,?)"
                + " ON CONFLICT (session_id, input_id) DO NOTHING")) {
      ins.setString(1, in.sessionId());
      ins.setString(2, in.inputId());
      ins.setString(3, in.kind());
      ins.setBytes(4, utf8(in.body()));
      ins.setString(5, in.sender());
      ins.setObject(6, time(in.receivedAt().toEpochMilli()));
      if (ins.executeUpdate() == 0) {
        return false;
      }
    }
    try (PreparedStatement up =
        c.prepareStatement("UPDATE sessions SET pending_inputs = pending_inputs + 1 WHERE id = ?")) {
      up.setString(1, in.sessionId());
      up.executeUpdate();
    }
    // delivered to every listening node when (and only if) this transaction commits
    try (PreparedStatement notify = c.prepareStatement("SELECT pg_notify('" + PostgresInputListener.CHANNEL + "', ?)")) {
      notify.setString(1, in.sessionId());
      notify.execute();
    }
    return true;
  }

  @Override
  public long append(Append a) {
    long started = System.nanoTime();
    long seq = appendTimed(a);
    appendTimer.accept(System.nanoTime() - started);
    return seq;
  }

  /** Tells {@code timer} how long each append took, in nanoseconds (see {@link Store#timeAppends}). */
  void timeAppends(LongConsumer timer) {
    appendTimer = Objects.requireNonNull(timer, "timer");
  }

  private long appendTimed(Append a) {
    long now = clock.millis();
    long newLast = a.expectedSeq() + a.events().size();
    List<AuditRecord> audit = JdbcAuditStore.canonical(a.audit());
    return tx.write(
        "events of session " + a.sessionId(),
        c -> {
          SqliteCostLedger.Attribution who;
          // the row lock, the sequence check and the fencing in one statement: see the class comment
          try (PreparedStatement up =
              c.prepareStatement(
                  "UPDATE sessions SET last_seq = ?, status = ?, updated_at = ? WHERE id = ? AND last_seq = ?"
                      + (a.lease().isPresent() ? " AND lease_node = ? AND lease_epoch = ?" : "")
                      + " RETURNING agent, owner, root_id")) {
            up.setLong(1, newLast);
            up.setString(2, a.status().wireName());
            up.setObject(3, time(now));
            up.setString(4, a.sessionId());
            up.setLong(5, a.expectedSeq());
            if (a.lease().isPresent()) {
              up.setString(6, a.lease().get().node());
              up.setLong(7, a.lease().get().epoch());
            }
            try (ResultSet rs = up.executeQuery()) {
              if (!rs.next()) {
                throw refusal(c, a);
              }
              who = new SqliteCostLedger.Attribution(a.sessionId(), rs.getString(1), rs.getString(2), rs.getString(3));
            }
          }
          insertEvents(c, a.sessionId(), a.expectedSeq(), a.epoch(), a.events(), now);
          if (!a.consumedInputs().isEmpty()) {
            consume(c, a, newLast);
          }
          // the costs and budget settlements the events record commit with them, or not at all
          if (!a.costs().isEmpty() || !a.settlements().isEmpty()) {
            GroupCommitWriter.Tx t = new GroupCommitWriter.Tx(c);
            try {
              PostgresCostLedger.insert(t, who, a.costs(), now);
              for (BudgetStore.Settlement settlement : a.settlements()) {
                JdbcBudgetStore.settle(t, settlement);
              }
            } finally {
              t.closeAll();
            }
          }
          for (Input d : a.deliveries()) {
            deliver(c, d);
          }
          if (!a.approvals().isEmpty()) {
            GroupCommitWriter.Tx t = new GroupCommitWriter.Tx(c);
            try {
              JdbcApprovalStore.insert(t, a.approvals(), announcer);
            } finally {
              t.closeAll();
            }
          }
          if (a.snapshot().isPresent()) {
            try (PreparedStatement put =
                c.prepareStatement(
                    "INSERT INTO snapshots (session_id, seq, state) VALUES (?,?,?)"
                        + " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, state = excluded.state")) {
              put.setString(1, a.sessionId());
              put.setLong(2, newLast);
              put.setString(3, EventCodec.encodeSnapshot(a.snapshot().get()));
              put.executeUpdate();
            }
          }
          // last, so the chain head's row lock (which serializes every node's audit appends) is held
          // only to the commit, and always after the session's row lock: no lock-order cycle
          if (!audit.isEmpty()) {
            GroupCommitWriter.Tx t = new GroupCommitWriter.Tx(c);
            try {
              JdbcAuditStore.append(t, audit, now, true);
            } finally {
              t.closeAll();
            }
          }
          return newLast;
        });
  }

  /**
   * Puts an input in another session's inbox, unless that session is gone or has ended. Its row is
   * locked first, as {@link #enqueue} does, so an append that ends it cannot slip in between.
   */
  static void deliver(Connection c, Input d) throws SQLException {
    try (PreparedStatement st = c.prepareStatement("SELECT status FROM sessions WHERE id = ? FOR UPDATE")) {
      st.setString(1, d.sessionId());
      try (ResultSet rs = st.executeQuery()) {
        if (!rs.next() || SessionStatus.fromWire(rs.getString(1)).terminal()) {
          return;
        }
      }
    }
    insertInput(c, d);
  }

  /** Takes the append's inputs out of the inbox; refuses the append if any is not pending. */
  private static void consume(Connection c, Append a, long newLast) throws SQLException {
    List<String> consumed = new ArrayList<>();
    try (PreparedStatement ps =
        c.prepareStatement(
            "UPDATE inbox SET consumed_seq = ?, body = ''::bytea WHERE session_id = ? AND input_id = ANY (?)"
                + " AND consumed_seq IS NULL RETURNING input_id")) {
      ps.setLong(1, newLast);
      ps.setString(2, a.sessionId());
      ps.setArray(3, c.createArrayOf("text", a.consumedInputs().toArray()));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          consumed.add(rs.getString(1));
        }
      }
    }
    List<String> rest = new ArrayList<>(a.consumedInputs());
    for (String id : consumed) {
      rest.remove(id);
    }
    if (!rest.isEmpty()) {
      throw new KeelException.Conflict("session " + a.sessionId() + ": input " + rest.getFirst() + " is not pending");
    }
    try (PreparedStatement up = c.prepareStatement("UPDATE sessions SET pending_inputs = pending_inputs - ? WHERE id = ?")) {
      up.setInt(1, consumed.size());
      up.setString(2, a.sessionId());
      up.executeUpdate();
    }
  }

  /**
   * Why the conditional update matched no row: no such session, the writer lost its lease, or
   * another writer went first.
   */
  private static KeelException refusal(Connection c, Append a) throws SQLException {
    try (PreparedStatement sel =
        c.prepareStatement("SELECT last_seq, lease_node, lease_epoch FROM sessions WHERE id = ?")) {
      sel.setString(1, a.sessionId());
      try (ResultSet rs = sel.executeQuery()) {
        if (!rs.next()) {
          return new KeelException.NotFound("session " + a.sessionId() + " does not exist");
        }
        if (a.lease().isPresent()) {
          try {
            SqliteEventStore.checkFence(a.lease().get(), rs.getString(2), rs.getLong(3));
          } catch (KeelException.Conflict fenced) {
            return fenced;
          }
        }
        return new KeelException.Conflict(
            "session " + a.sessionId() + ": expected to append after event " + a.expectedSeq()
                + " but the log ends at " + rs.getLong(1) + " (another writer appended first)");
      }
    }
  }

  @Override
  public List<StoredEvent> events(String sessionId, long afterSeq, int limit) {
    return tx.read(
        "the events of session " + sessionId,
        c -> {
          List<StoredEvent> out = new ArrayList<>();
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT e.seq, e.at, e.node, e.type, e.span_id, e.payload, s.trace_id"
                      + " FROM events e JOIN sessions s ON s.id = e.session_id"
                      + " WHERE e.session_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?")) {
            ps.setString(1, sessionId);
            ps.setLong(2, afterSeq);
            ps.setInt(3, limit);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                long seq = rs.getLong(1);
                SessionEvent event;
                try {
                  event = EventCodec.decode(rs.getString(4), rs.getString(6));
                } catch (IllegalArgumentException e) {
                  throw new KeelException.Unavailable(
                      "session " + sessionId + ": stored event " + seq + " is corrupt: " + e.getMessage(), e);
                }
                out.add(
                    new StoredEvent(
                        sessionId, seq, instant(rs, 2), rs.getString(3), rs.getString(7), rs.getString(5), event));
              }
            }
          }
          return out;
        });
  }

  @Override
  public Optional<SessionState.Snapshot> snapshot(String sessionId) {
    return tx.read(
        "the snapshot of session " + sessionId,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("SELECT state FROM snapshots WHERE session_id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? Optional.of(EventCodec.decodeSnapshot(rs.getString(1))) : Optional.empty();
            }
          }
        });
  }

  @Override
  public Optional<SessionRecord> session(String sessionId) {
    return tx.read(
        "session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT " + SESSION_COLUMNS + " FROM sessions WHERE id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? Optional.of(record(rs)) : Optional.empty();
            }
          }
        });
  }

  private static SessionRecord record(ResultSet rs) throws SQLException {
    return new SessionRecord(
        rs.getString(1),
        rs.getString(2),
        rs.getInt(3),
        rs.getString(4),
        SessionStatus.fromWire(rs.getString(5)),
        rs.getLong(6),
        rs.getString(7),
        Optional.ofNullable(rs.getString(8)),
        rs.getString(9),
        instant(rs, 10),
        instant(rs, 11),
        rs.getInt(12));
  }

  @Override
  public List<SessionRecord> sessions(SessionQuery q) {
    return tx.read(
        "sessions",
        c -> {
          StringBuilder sql = new StringBuilder("SELECT " + SESSION_COLUMNS + " FROM sessions WHERE true");
          List<Object> args = new ArrayList<>();
          if (q.agent().isPresent()) {
            sql.append(" AND agent = ?");
            args.add(q.agent().get());
          }
          if (q.status().isPresent()) {
            SessionStatus st = q.status().get();
            if (st == SessionStatus.RUNNABLE) {
              sql.append(" AND (status = 'runnable' OR (status = 'idle' AND pending_inputs > 0))");
            } else if (st == SessionStatus.IDLE) {
              sql.append(" AND status = 'idle' AND pending_inputs = 0");
            } else {
              sql.append(" AND status = ?");
              args.add(st.wireName());
            }
          }
          if (q.owners().isPresent()) {
            Set<String> owners = q.owners().get();
            if (owners.isEmpty()) {
              return List.of();
            }
            sql.append(" AND owner = ANY (?)");
            args.add(c.createArrayOf("text", owners.stream().sorted().toArray()));
          }
          if (q.before().isPresent()) {
            sql.append(" AND (created_at, id) < (SELECT created_at, id FROM sessions WHERE id = ?)");
            args.add(q.before().get());
          }
          sql.append(" ORDER BY created_at DESC, id DESC LIMIT ?");
          args.add(q.limit());
          try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            for (int i = 0; i < args.size(); i++) {
              ps.setObject(i + 1, args.get(i));
            }
            List<SessionRecord> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(record(rs));
              }
            }
            return out;
          }
        });
  }

  @Override
  public Map<SessionStatus, Long> countByStatus(String agent) {
    return tx.read(
        "session counts",
        c -> {
          String sql =
              "SELECT CASE WHEN status = 'idle' AND pending_inputs > 0 THEN 'runnable' ELSE status END"
                  + " AS s, count(*) FROM sessions"
                  + (agent.isEmpty() ? "" : " WHERE agent = ?")
                  + " GROUP BY 1";
          try (PreparedStatement ps = c.prepareStatement(sql)) {
            if (!agent.isEmpty()) {
              ps.setString(1, agent);
            }
            Map<SessionStatus, Long> out = new EnumMap<>(SessionStatus.class);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.put(SessionStatus.fromWire(rs.getString(1)), rs.getLong(2));
              }
            }
            return out;
          }
        });
  }

  @Override
  public Input enqueue(Input input) {
    return tx.write(
        "an input to session " + input.sessionId(),
        c -> {
          // locks the session row, so an append that ends the session cannot slip in between the
          // check and the insert (the input would be accepted and never consumed)
          SessionStatus status;
          try (PreparedStatement sel = c.prepareStatement("SELECT status FROM sessions WHERE id = ? FOR UPDATE")) {
            sel.setString(1, input.sessionId());
            try (ResultSet rs = sel.executeQuery()) {
              if (!rs.next()) {
                throw new KeelException.NotFound("session " + input.sessionId() + " does not exist");
              }
              status = SessionStatus.fromWire(rs.getString(1));
            }
          }
          if (status.terminal()) {
            throw new KeelException.Conflict(
                "session " + input.sessionId() + " is " + status.wireName() + " and accepts no more input");
          }
          if (insertInput(c, input)) {
            return input;
          }
          try (PreparedStatement sel =
              c.prepareStatement(
                  "SELECT kind, body, sender, received_at FROM inbox WHERE session_id = ? AND input_id = ?")) {
            sel.setString(1, input.sessionId());
            sel.setString(2, input.inputId());
            try (ResultSet rs = sel.executeQuery()) {
              rs.next();
              return new Input(
                  input.sessionId(), input.inputId(), rs.getString(1), text(rs.getBytes(2)), rs.getString(3),
                  instant(rs, 4));
            }
          }
        });
  }

  @Override
  public List<Input> pendingInputs(String sessionId) {
    return tx.read(
        "the inbox of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT input_id, kind, body, sender, received_at FROM inbox"
                      + " WHERE session_id = ? AND consumed_seq IS NULL ORDER BY position")) {
            ps.setString(1, sessionId);
            List<Input> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(
                    new Input(
                        sessionId, rs.getString(1), rs.getString(2), text(rs.getBytes(3)), rs.getString(4),
                        instant(rs, 5)));
              }
            }
            return out;
          }
        });
  }

  @Override
  public List<String> sessionsWithWork(int limit) {
    return tx.read(
        "sessions with work",
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT id FROM sessions WHERE status IN ('runnable', 'running')"
                      + " UNION SELECT id FROM sessions WHERE pending_inputs > 0"
                      + " AND status NOT IN ('completed', 'failed', 'cancelled') LIMIT ?")) {
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

  @Override
  public long eventBytes(String sessionId) {
    return tx.read(
        "the size of session " + sessionId,
        c -> {
          // the same measure as the SQLite store's: characters of the encoded columns plus 16 per row
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT coalesce(sum(length(payload) + length(type) + length(node) + length(span_id) + 16), 0)"
                      + " FROM events WHERE session_id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              rs.next();
              return rs.getLong(1);
            }
          }
        });
  }
}
