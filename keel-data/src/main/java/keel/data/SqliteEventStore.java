package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import javax.sql.DataSource;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;

/** Sessions, events, inboxes and snapshots in SQLite. Thread-safe. */
final class SqliteEventStore implements EventStore {

  private static final String SESSION_COLUMNS =
      "id, agent, revision, owner, status, last_seq, trace_id, parent_id, root_id, created_at,"
          + " updated_at, pending_inputs";

  private final DataSource readers;
  private final GroupCommitWriter writer;
  private final String node;
  private final Clock clock;
  /** Told how long each append took, in nanoseconds (metrics); never null. */
  private volatile java.util.function.LongConsumer appendTimer = nanos -> {};

  SqliteEventStore(DataSource readers, GroupCommitWriter writer, String node, Clock clock) {
    this.readers = readers;
    this.writer = writer;
    this.node = node;
    this.clock = clock;
  }

  @Override
  public void create(NewSession s) {
    long now = clock.millis();
    writer.execute(
        tx -> {
          PreparedStatement exists = tx.prepare("SELECT 1 FROM sessions WHERE id = ?");
          exists.setString(1, s.id());
          try (ResultSet rs = exists.executeQuery()) {
            if (rs.next()) {
              throw new KeelException.Conflict("session " + s.id() + " already exists");
            }
          }
          PreparedStatement ins =
              tx.prepare(
                  "INSERT INTO sessions (" + SESSION_COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,0)");
          ins.setString(1, s.id());
          ins.setString(2, s.agent());
          ins.setInt(3, s.revision());
          ins.setString(4, s.owner());
          ins.setString(5, s.status().wireName());
          ins.setLong(6, s.events().size());
          ins.setString(7, s.traceId());
          ins.setString(8, s.parentId().orElse(null));
          ins.setString(9, s.rootId());
          ins.setLong(10, now);
          ins.setLong(11, now);
          ins.executeUpdate();
          insertEvents(tx, s.id(), 0, 0, s.events(), now);
          if (s.firstInput().isPresent()) {
            insertInput(tx, s.firstInput().get());
          }
          return null;
        });
  }

  private void insertEvents(
      GroupCommitWriter.Tx tx, String sessionId, long afterSeq, long epoch, List<PendingEvent> events, long now)
      throws SQLException {
    PreparedStatement ins =
        tx.prepare(
            "INSERT INTO events (session_id, seq, at, node, type, span_id, payload, epoch) VALUES (?,?,?,?,?,?,?,?)");
    long seq = afterSeq;
    for (PendingEvent e : events) {
      seq++;
      ins.setString(1, sessionId);
      ins.setLong(2, seq);
      ins.setLong(3, now);
      ins.setString(4, node);
      ins.setString(5, e.event().type());
      ins.setString(6, e.spanId());
      ins.setString(7, EventCodec.encode(e.event()));
      ins.setLong(8, epoch);
      ins.addBatch();
    }
    ins.executeBatch();
  }

  private static boolean insertInput(GroupCommitWriter.Tx tx, Input in) throws SQLException {
    PreparedStatement ins =
        tx.prepare(
            "INSERT OR IGNORE INTO inbox (session_id, input_id, kind, body, sender, received_at)"
                + " VALUES (?,?,?,?,?,?)");
    ins.setString(1, in.sessionId());
    ins.setString(2, in.inputId());
    ins.setString(3, in.kind());
    ins.setString(4, in.body());
    ins.setString(5, in.sender());
    ins.setLong(6, in.receivedAt().toEpochMilli());
    if (ins.executeUpdate() == 0) {
      return false;
    }
    PreparedStatement up =
        tx.prepare("UPDATE sessions SET pending_inputs = pending_inputs + 1 WHERE id = ?");
    up.setString(1, in.sessionId());
    up.executeUpdate();
    return true;
  }

  @Override
  public long append(Append a) {
    long started = System.nanoTime();
    long seq = appendTimed(a);
    appendTimer.accept(System.nanoTime() - started);
    return seq;
  }

  void timeAppends(java.util.function.LongConsumer timer) {
    appendTimer = java.util.Objects.requireNonNull(timer, "timer");
  }

  private long appendTimed(Append a) {
    long now = clock.millis();
    List<AuditRecord> audit = JdbcAuditStore.canonical(a.audit());
    return writer.execute(
        tx -> {
          PreparedStatement sel =
              tx.prepare("SELECT last_seq, agent, owner, root_id, lease_node, lease_epoch FROM sessions WHERE id = ?");
          sel.setString(1, a.sessionId());
          long last;
          SqliteCostLedger.Attribution who;
          try (ResultSet rs = sel.executeQuery()) {
            if (!rs.next()) {
              throw new KeelException.NotFound("session " + a.sessionId() + " does not exist");
            }
            last = rs.getLong(1);
            who = new SqliteCostLedger.Attribution(a.sessionId(), rs.getString(2), rs.getString(3), rs.getString(4));
            if (a.lease().isPresent()) {
              checkFence(a.lease().get(), rs.getString(5), rs.getLong(6));
            }
          }
          if (last != a.expectedSeq()) {
            throw new KeelException.Conflict(
                "session "
                    + a.sessionId()
                    + ": expected to append after event "
                    + a.expectedSeq()
                    + " but the log ends at "
                    + last
                    + " (another writer appended first)");
          }
          insertEvents(tx, a.sessionId(), last, a.epoch(), a.events(), now);
          long newLast = last + a.events().size();
          // the costs and budget settlements the events record commit with them, or not at all
          SqliteCostLedger.insert(tx, who, a.costs(), now);
          for (BudgetStore.Settlement settlement : a.settlements()) {
            JdbcBudgetStore.settle(tx, settlement);
          }
          if (!a.consumedInputs().isEmpty()) {
            PreparedStatement consume =
                tx.prepare(
                    "UPDATE inbox SET consumed_seq = ?, body = '' WHERE session_id = ? AND input_id = ?"
                        + " AND consumed_seq IS NULL");
            for (String inputId : a.consumedInputs()) {
              consume.setLong(1, newLast);
              consume.setString(2, a.sessionId());
              consume.setString(3, inputId);
              if (consume.executeUpdate() != 1) {
                throw new KeelException.Conflict(
                    "session " + a.sessionId() + ": input " + inputId + " is not pending");
              }
            }
          }
          PreparedStatement up =
              tx.prepare(
                  "UPDATE sessions SET last_seq = ?, status = ?, updated_at = ?,"
                      + " pending_inputs = pending_inputs - ? WHERE id = ?");
          up.setLong(1, newLast);
          up.setString(2, a.status().wireName());
          up.setLong(3, now);
          up.setInt(4, a.consumedInputs().size());
          up.setString(5, a.sessionId());
          up.executeUpdate();
          for (Input d : a.deliveries()) {
            deliver(tx, d);
          }
          JdbcApprovalStore.insert(tx, a.approvals(), ApprovalAnnouncer.NONE);
          if (a.snapshot().isPresent()) {
            SessionState.Snapshot snap = a.snapshot().get();
            PreparedStatement put =
                tx.prepare("INSERT OR REPLACE INTO snapshots (session_id, seq, state) VALUES (?,?,?)");
            put.setString(1, a.sessionId());
            put.setLong(2, newLast);
            put.setString(3, EventCodec.encodeSnapshot(snap));
            put.executeUpdate();
          }
          // last: the audit records chain from the head only once everything else of the append holds
          JdbcAuditStore.append(tx, audit, now, false);
          return newLast;
        });
  }

  /**
   * Refuses an append whose writer no longer holds the session's lease at its epoch (shared with
   * the PostgreSQL store, which calls it to explain a refused conditional update).
   */
  static void checkFence(LeaseStore.Lease writer, String holder, long currentEpoch) {
    if (writer.node().equals(holder) && writer.epoch() == currentEpoch) {
      return;
    }
    String now =
        holder == null
            ? "nobody holds it now (last epoch " + currentEpoch + ")"
            : holder + " holds it now at epoch " + currentEpoch;
    throw new KeelException.Conflict(
        "session " + writer.sessionId() + ": node " + writer.node() + " no longer holds its lease of epoch "
            + writer.epoch() + " (" + now + "); the append was refused and nothing of it was stored");
  }

  /** Puts an input in another session's inbox, unless that session is gone or has ended. */
  static void deliver(GroupCommitWriter.Tx tx, Input d) throws SQLException {
    PreparedStatement st = tx.prepare("SELECT status FROM sessions WHERE id = ?");
    st.setString(1, d.sessionId());
    try (ResultSet rs = st.executeQuery()) {
      if (!rs.next() || SessionStatus.fromWire(rs.getString(1)).terminal()) {
        return;
      }
    }
    insertInput(tx, d);
  }

  @Override
  public List<StoredEvent> events(String sessionId, long afterSeq, int limit) {
    return Jdbc.read(
        readers,
        "the events of session " + sessionId,
        c -> {
          String traceId;
          try (PreparedStatement ps = c.prepareStatement("SELECT trace_id FROM sessions WHERE id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              if (!rs.next()) {
                return List.of();
              }
              traceId = rs.getString(1);
            }
          }
          List<StoredEvent> out = new ArrayList<>();
          try (PreparedStatement ps =
              c.prepareStatement(
                  "SELECT seq, at, node, type, span_id, payload FROM events"
                      + " WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?")) {
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
                        sessionId,
                        seq,
                        Instant.ofEpochMilli(rs.getLong(2)),
                        rs.getString(3),
                        traceId,
                        rs.getString(5),
                        event));
              }
            }
          }
          return out;
        });
  }

  @Override
  public Optional<SessionState.Snapshot> snapshot(String sessionId) {
    return Jdbc.read(
        readers,
        "the snapshot of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT state FROM snapshots WHERE session_id = ?")) {
            ps.setString(1, sessionId);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next()
                  ? Optional.of(EventCodec.decodeSnapshot(rs.getString(1)))
                  : Optional.empty();
            }
          }
        });
  }

  @Override
  public Optional<SessionRecord> session(String sessionId) {
    return Jdbc.read(
        readers,
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
        Instant.ofEpochMilli(rs.getLong(10)),
        Instant.ofEpochMilli(rs.getLong(11)),
        rs.getInt(12));
  }

  @Override
  public List<SessionRecord> sessions(SessionQuery q) {
    return Jdbc.read(
        readers,
        "sessions",
        c -> {
          StringBuilder sql = new StringBuilder("SELECT " + SESSION_COLUMNS + " FROM sessions WHERE 1=1");
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
            sql.append(" AND owner IN (").append(String.join(",", java.util.Collections.nCopies(owners.size(), "?"))).append(")");
            args.addAll(owners.stream().sorted().toList());
          }
          if (q.before().isPresent()) {
            sql.append(
                " AND (created_at, id) < (SELECT created_at, id FROM sessions WHERE id = ?)");
            args.add(q.before().get());
          }
          sql.append(" ORDER BY created_at DESC, id DESC LIMIT ?");
          args.add(q.limit());
          try (PreparedStatement ps = Jdbc.bind(c.prepareStatement(sql.toString()), args.toArray())) {
            return Jdbc.list(ps, SqliteEventStore::record);
          }
        });
  }

  @Override
  public Map<SessionStatus, Long> countByStatus(String agent) {
    return Jdbc.read(
        readers,
        "session counts",
        c -> {
          String sql =
              "SELECT CASE WHEN status = 'idle' AND pending_inputs > 0 THEN 'runnable' ELSE status END"
                  + " AS s, count(*) FROM sessions"
                  + (agent.isEmpty() ? "" : " WHERE agent = ?")
                  + " GROUP BY s";
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
    return writer.execute(
        tx -> {
          PreparedStatement exists = tx.prepare("SELECT status FROM sessions WHERE id = ?");
          exists.setString(1, input.sessionId());
          SessionStatus status;
          try (ResultSet rs = exists.executeQuery()) {
            if (!rs.next()) {
              throw new KeelException.NotFound("session " + input.sessionId() + " does not exist");
            }
            status = SessionStatus.fromWire(rs.getString(1));
          }
          if (status.terminal()) {
            // nothing would ever consume it, and the session would look as if it had work forever
            throw new KeelException.Conflict(
                "session " + input.sessionId() + " is " + status.wireName() + " and accepts no more input");
          }
          if (insertInput(tx, input)) {
            return input;
          }
          PreparedStatement sel =
              tx.prepare(
                  "SELECT kind, body, sender, received_at FROM inbox WHERE session_id = ? AND input_id = ?");
          sel.setString(1, input.sessionId());
          sel.setString(2, input.inputId());
          try (ResultSet rs = sel.executeQuery()) {
            rs.next();
            return new Input(
                input.sessionId(),
                input.inputId(),
                rs.getString(1),
                rs.getString(2),
                rs.getString(3),
                Instant.ofEpochMilli(rs.getLong(4)));
          }
        });
  }

  @Override
  public List<Input> pendingInputs(String sessionId) {
    return Jdbc.list(
        readers,
        "the inbox of session " + sessionId,
        "SELECT input_id, kind, body, sender, received_at FROM inbox"
            + " WHERE session_id = ? AND consumed_seq IS NULL ORDER BY position",
        rs -> new Input(
            sessionId,
            rs.getString(1),
            rs.getString(2),
            rs.getString(3),
            rs.getString(4),
            Instant.ofEpochMilli(rs.getLong(5))),
        sessionId);
  }

  @Override
  public List<String> sessionsWithWork(int limit) {
    return Jdbc.list(
        readers,
        "sessions with work",
        "SELECT id FROM sessions WHERE status IN ('runnable', 'running')"
            + " UNION SELECT id FROM sessions WHERE pending_inputs > 0"
            + " AND status NOT IN ('completed', 'failed', 'cancelled') LIMIT ?",
        rs -> rs.getString(1),
        limit);
  }

  @Override
  public long eventBytes(String sessionId) {
    return Jdbc.read(
        readers,
        "the size of session " + sessionId,
        c -> {
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
