package keel.data;

import java.math.BigDecimal;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.PolicyReason;
import tools.jackson.core.type.TypeReference;

/**
 * The approvals inbox over JDBC, one implementation for SQLite and PostgreSQL. A decision is one
 * write transaction: a conditional {@code UPDATE … WHERE status = 'pending'} (on PostgreSQL it takes
 * the row lock, so a concurrent decider on another node waits, then finds the row decided and
 * updates nothing), then the decision's input in the session's inbox. Times are epoch milliseconds.
 *
 * <p>Thread-safe.
 */
final class JdbcApprovalStore implements ApprovalStore {

  /** Puts an input into a session's inbox inside a write, unless the session has ended. */
  @FunctionalInterface
  interface Inbox {
    void deliver(GroupCommitWriter.Tx tx, Input input) throws SQLException;
  }

  private static final String COLUMNS =
      "approval_id, session_id, call_id, agent, owner, tool, arguments, value_usd, reasons, principal, requester,"
          + " reasoning, requested_at, expires_at, status, decided_by, decided_at, decision_reason, decided_arguments";
  private static final TypeReference<List<PolicyReason>> REASONS = new TypeReference<>() {};

  private final JdbcBudgetStore.Transactions transactions;
  private final Inbox inbox;
  private final boolean lockHead;
  private final ApprovalAnnouncer announcer;

  /**
   * @param lockHead whether an audit append locks the chain head (PostgreSQL; see {@link JdbcAuditStore})
   * @param announcer tells other nodes of each change, in its transaction
   */
  JdbcApprovalStore(JdbcBudgetStore.Transactions transactions, Inbox inbox, boolean lockHead, ApprovalAnnouncer announcer) {
    this.transactions = transactions;
    this.inbox = inbox;
    this.lockHead = lockHead;
    this.announcer = announcer;
  }

  /** Inserts new approvals inside an append's transaction, announcing each as requested. */
  static void insert(GroupCommitWriter.Tx tx, List<Approval> approvals, ApprovalAnnouncer announcer) throws SQLException {
    for (Approval a : approvals) {
      announcer.announce(tx.connection(), "requested", a.id());
      tx.update(
          "INSERT INTO approvals (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL)",
          a.id(), a.sessionId(), a.callId(), a.agent(), a.owner(), a.tool(), a.arguments(), a.valueUsd().toPlainString(),
          EventCodec.mapper().writeValueAsString(a.reasons()), a.principal(), a.requester(), a.reasoning(),
          a.requestedAt().toEpochMilli(), a.expiresAt().toEpochMilli(), a.status().wireName());
    }
  }

  @Override
  public Optional<Approval> find(String id) {
    return transactions.read("approval " + id, c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM approvals WHERE approval_id = ?")) {
        return Jdbc.list(Jdbc.bind(ps, id), JdbcApprovalStore::row).stream().findFirst();
      }
    });
  }

  @Override
  public List<Approval> list(Query q) {
    StringBuilder sql = new StringBuilder("SELECT " + COLUMNS + " FROM approvals WHERE 1 = 1");
    List<Object> args = new ArrayList<>();
    q.status().ifPresent(s -> {
      sql.append(" AND status = ?");
      args.add(s.wireName());
    });
    q.agent().ifPresent(a -> {
      sql.append(" AND agent = ?");
      args.add(a);
    });
    if (q.owners().isPresent()) {
      if (q.owners().get().isEmpty()) {
        return List.of();
      }
      sql.append(" AND owner IN (").append(String.join(",", q.owners().get().stream().map(o -> "?").toList())).append(")");
      args.addAll(q.owners().get().stream().sorted().toList());
    }
    sql.append(" ORDER BY requested_at DESC, approval_id LIMIT ?");
    args.add(q.limit());
    return transactions.read("the approvals inbox", c -> {
      try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
        return Jdbc.list(Jdbc.bind(ps, args.toArray()), JdbcApprovalStore::row);
      }
    });
  }

  @Override
  public Approval decide(String id, Approval.Status decision, String by, String reason, String arguments, Instant at) {
    if (decision == Approval.Status.PENDING || decision == Approval.Status.WITHDRAWN) {
      throw new IllegalArgumentException("a decision is approved, denied or expired, not " + decision.wireName());
    }
    return transactions.write("the decision of approval " + id, tx -> {
      // the write comes first, so a transaction never reads before it writes (on SQLite, two
      // writers would then both hold a read lock and neither could write); past its expiry an
      // approval counts as denied, whether or not the sweep has marked it yet
      int changed = tx.update(
          "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?, decided_arguments = ?"
              + " WHERE approval_id = ? AND status = 'pending' AND (? OR expires_at > ?)",
          decision.wireName(), by, at.toEpochMilli(), reason, arguments, id, decision == Approval.Status.EXPIRED,
          at.toEpochMilli());
      PreparedStatement sel = tx.prepare("SELECT " + COLUMNS + " FROM approvals WHERE approval_id = ?");
      Approval a = Jdbc.list(Jdbc.bind(sel, id), JdbcApprovalStore::row).stream().findFirst()
          .orElseThrow(() -> new KeelException.NotFound("approval " + id + " does not exist"));
      if (changed == 0 && a.status() == Approval.Status.PENDING) {
        throw new KeelException.Conflict("approval " + id + " expired at " + a.expiresAt()
            + " (an expired approval counts as denied); it can no longer be " + decision.wireName());
      }
      if (changed == 0) {
        throw new KeelException.Conflict("approval " + id + " is already " + a.status().wireName()
            + a.decision().map(d -> " (by " + d.by() + " at " + d.at() + ": " + d.reason() + ")").orElse("")
            + "; it can be decided only once");
      }
      if (!a.sessionId().isEmpty() && sessionEnded(tx, a.sessionId())) {
        // the session ended (cancelled, failed) before it withdrew the approval: no call waits for a
        // decision any more, so none is recorded; the caller reads the status
        tx.update("UPDATE approvals SET status = 'withdrawn', decided_by = 'keel', decision_reason = ?, decided_arguments = ''"
                + " WHERE approval_id = ?",
            "its session " + a.sessionId() + " has ended", id);
        announcer.announce(tx.connection(), "withdrawn", id);
        return Jdbc.list(Jdbc.bind(tx.prepare("SELECT " + COLUMNS + " FROM approvals WHERE approval_id = ?"), id),
            JdbcApprovalStore::row).getFirst();
      }
      announcer.announce(tx.connection(), decision == Approval.Status.EXPIRED ? "expired" : "decided", id);
      String body = EventCodec.mapper().writeValueAsString(Map.of(
          "approval_id", id, "call_id", a.callId(), "decision", decision.wireName(), "reason", reason,
          "arguments", arguments));
      if (a.sessionId().isEmpty()) {
        // no session records the decision (a call of an outside MCP client): the audit log does, here
        String detail = EventCodec.mapper().writeValueAsString(Map.of(
            "approval_id", id, "call_id", a.callId(), "decision", decision.wireName(), "reason", reason,
            "arguments", arguments, "principal", a.principal()));
        JdbcAuditStore.append(tx, JdbcAuditStore.canonical(List.of(
            new AuditRecord("approval_decided", by, a.owner(), a.agent(), "", a.tool(), detail))), at.toEpochMilli(), lockHead);
      } else {
        inbox.deliver(tx, new Input(a.sessionId(), "approval-" + id, DECISION_KIND, body, by, at));
      }
      return a;
    });
  }

  /** Whether the session has ended (or is gone), read in the deciding transaction. */
  private static boolean sessionEnded(GroupCommitWriter.Tx tx, String sessionId) throws java.sql.SQLException {
    List<String> status = Jdbc.list(Jdbc.bind(tx.prepare("SELECT status FROM sessions WHERE id = ?"), sessionId), rs -> rs.getString(1));
    return status.isEmpty() || List.of("completed", "failed", "cancelled").contains(status.getFirst());
  }

  @Override
  public List<Approval> due(Instant now, int limit) {
    return transactions.read("approvals due to expire", c -> {
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT " + COLUMNS + " FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?")) {
        return Jdbc.list(Jdbc.bind(ps, now.toEpochMilli(), limit), JdbcApprovalStore::row);
      }
    });
  }

  @Override
  public int withdraw(String sessionId, Set<String> ids, String reason, Instant at) {
    if (ids.isEmpty()) {
      return 0;
    }
    return transactions.write("the approvals of session " + sessionId, tx -> {
      int n = 0;
      for (String id : ids.stream().sorted().toList()) {
        int changed = tx.update(
            "UPDATE approvals SET status = 'withdrawn', decided_by = 'keel', decided_at = ?, decision_reason = ?"
                + " WHERE approval_id = ? AND session_id = ? AND status = 'pending'",
            at.toEpochMilli(), reason, id, sessionId);
        if (changed > 0) {
          announcer.announce(tx.connection(), "withdrawn", id);
        }
        n += changed;
      }
      return n;
    });
  }

  private static Approval row(ResultSet rs) throws SQLException {
    Approval.Status status = Approval.Status.fromWire(rs.getString(15));
    String by = rs.getString(16);
    Optional<Approval.Decision> decision = by == null
        ? Optional.empty()
        : Optional.of(new Approval.Decision(by, Instant.ofEpochMilli(rs.getLong(17)), nz(rs.getString(18)), nz(rs.getString(19))));
    return new Approval(
        rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5), rs.getString(6),
        rs.getString(7), new BigDecimal(rs.getString(8)), EventCodec.mapper().readValue(rs.getString(9), REASONS),
        rs.getString(10), rs.getString(11), rs.getString(12), Instant.ofEpochMilli(rs.getLong(13)),
        Instant.ofEpochMilli(rs.getLong(14)), status, decision);
  }

  private static String nz(String s) {
    return s == null ? "" : s;
  }
}
