package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * {@link McpCallStore} over JDBC, one implementation for SQLite and PostgreSQL. Each change is a
 * conditional statement (an insert that finds no row with the key, an update of a row in the
 * expected status) together with its audit records in one write transaction. Times are epoch
 * milliseconds.
 *
 * <p>Thread-safe.
 */
final class JdbcMcpCallStore implements McpCallStore {

  private static final String COLUMNS =
      "principal, idempotency_key, tool, arguments, approval_id, status, result, is_error, structured, created_at, updated_at";

  private final JdbcBudgetStore.Transactions transactions;
  private final boolean lockHead;
  private final ApprovalAnnouncer announcer;

  JdbcMcpCallStore(JdbcBudgetStore.Transactions transactions, boolean lockHead, ApprovalAnnouncer announcer) {
    this.transactions = transactions;
    this.lockHead = lockHead;
    this.announcer = announcer;
  }

  @Override
  public Optional<McpCall> find(String principal, String idempotencyKey) {
    return transactions.read("the MCP call " + idempotencyKey + " of " + principal, c -> {
      try (PreparedStatement ps =
          c.prepareStatement("SELECT " + COLUMNS + " FROM mcp_calls WHERE principal = ? AND idempotency_key = ?")) {
        return Jdbc.list(Jdbc.bind(ps, principal, idempotencyKey), JdbcMcpCallStore::row).stream().findFirst();
      }
    });
  }

  @Override
  public boolean insert(McpCall call, Optional<Approval> approval, List<AuditRecord> audit) {
    List<AuditRecord> records = JdbcAuditStore.canonical(audit);
    return transactions.write("the MCP call " + call.idempotencyKey() + " of " + call.principal(), tx -> {
      PreparedStatement dup = tx.prepare("SELECT 1 FROM mcp_calls WHERE principal = ? AND idempotency_key = ?");
      Jdbc.bind(dup, call.principal(), call.idempotencyKey());
      try (ResultSet rs = dup.executeQuery()) {
        if (rs.next()) {
          return false;
        }
      }
      // on PostgreSQL two nodes may both find no row: the primary key lets one insert win
      int inserted = tx.update(
          "INSERT INTO mcp_calls (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
          call.principal(), call.idempotencyKey(), call.tool(), call.arguments(), call.approvalId(),
          call.status().wireName(), call.result(), call.error() ? 1 : 0, call.structured(),
          call.createdAt().toEpochMilli(), call.updatedAt().toEpochMilli());
      if (inserted == 0) {
        return false;
      }
      if (approval.isPresent()) {
        JdbcApprovalStore.insert(tx, List.of(approval.get()), announcer);
      }
      JdbcAuditStore.append(tx, records, call.createdAt().toEpochMilli(), lockHead);
      return true;
    });
  }

  @Override
  public boolean start(String principal, String idempotencyKey, String arguments, Instant at, List<AuditRecord> audit) {
    List<AuditRecord> records = JdbcAuditStore.canonical(audit);
    return transactions.write("the MCP call " + idempotencyKey + " of " + principal, tx -> {
      int changed = tx.update(
          "UPDATE mcp_calls SET status = 'started', arguments = ?, updated_at = ?"
              + " WHERE principal = ? AND idempotency_key = ? AND status = 'awaiting_approval'",
          arguments, at.toEpochMilli(), principal, idempotencyKey);
      if (changed == 0) {
        return false;
      }
      JdbcAuditStore.append(tx, records, at.toEpochMilli(), lockHead);
      return true;
    });
  }

  @Override
  public void complete(
      String principal, String idempotencyKey, String result, boolean error, String structured, Instant at,
      List<AuditRecord> audit) {
    List<AuditRecord> records = JdbcAuditStore.canonical(audit);
    transactions.write("the MCP call " + idempotencyKey + " of " + principal, tx -> {
      int changed = tx.update(
          "UPDATE mcp_calls SET status = 'completed', result = ?, is_error = ?, structured = ?, updated_at = ?"
              + " WHERE principal = ? AND idempotency_key = ? AND status <> 'completed'",
          result, error ? 1 : 0, structured, at.toEpochMilli(), principal, idempotencyKey);
      if (changed == 1) {
        JdbcAuditStore.append(tx, records, at.toEpochMilli(), lockHead);
      }
      return changed;
    });
  }

  @Override
  public boolean resolve(
      String principal, String idempotencyKey, String result, boolean error, Instant at, List<AuditRecord> audit) {
    List<AuditRecord> records = JdbcAuditStore.canonical(audit);
    return transactions.write("the MCP call " + idempotencyKey + " of " + principal, tx -> {
      int changed = tx.update(
          "UPDATE mcp_calls SET status = 'completed', result = ?, is_error = ?, structured = '', updated_at = ?"
              + " WHERE principal = ? AND idempotency_key = ? AND status = 'started'",
          result, error ? 1 : 0, at.toEpochMilli(), principal, idempotencyKey);
      if (changed == 0) {
        return false;
      }
      JdbcAuditStore.append(tx, records, at.toEpochMilli(), lockHead);
      return true;
    });
  }

  @Override
  public List<McpCall> unfinished(Instant startedBefore, int limit) {
    if (limit < 1) {
      throw new IllegalArgumentException("limit: expected 1 or more, got " + limit);
    }
    return transactions.read("the unfinished MCP calls", c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS
          + " FROM mcp_calls WHERE status = 'started' AND updated_at < ? ORDER BY updated_at, principal, idempotency_key LIMIT ?")) {
        return Jdbc.list(Jdbc.bind(ps, startedBefore.toEpochMilli(), limit), JdbcMcpCallStore::row);
      }
    });
  }

  private static McpCall row(ResultSet rs) throws SQLException {
    return new McpCall(
        rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
        Status.fromWire(rs.getString(6)), rs.getString(7), rs.getInt(8) != 0, rs.getString(9),
        Instant.ofEpochMilli(rs.getLong(10)), Instant.ofEpochMilli(rs.getLong(11)));
  }
}
