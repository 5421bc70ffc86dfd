package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The audit log over JDBC, one implementation for both stores (the SQL is the same). An append
 * reads the head row ({@code audit_head}, one row), numbers and chains its records from it,
 * inserts them and moves the head, all in the caller's transaction. On PostgreSQL the head row is
 * read {@code FOR UPDATE}, so concurrent appends from any node wait for each other and each chains
 * from the committed head of the one before; on SQLite every write is one operation of the store's
 * single writer, so the same SQL needs no lock. In a session append the audit records are written
 * last, so the head lock is held only for the end of the transaction and is never taken before a
 * session's row lock (no lock-order cycle).
 *
 * <p>Verification reads the head, then walks the entries up to it in pages of {@value #PAGE}, so its
 * memory does not grow with the log; entries appended meanwhile are past the head and not walked.
 *
 * <p>Thread-safe.
 */
final class JdbcAuditStore implements AuditStore {

  static final int PAGE = 1000;
  private static final String COLUMNS =
      "seq, at, kind, actor, owner, agent, session_id, tool, detail, prev_hash, hash";

  private final JdbcBudgetStore.Transactions transactions;
  private final boolean lockHead;
  private final Clock clock;

  JdbcAuditStore(JdbcBudgetStore.Transactions transactions, boolean lockHead, Clock clock) {
    this.transactions = transactions;
    this.lockHead = lockHead;
    this.clock = clock;
  }

  @Override
  public List<AuditEntry> append(List<AuditRecord> records) {
    List<AuditRecord> copy = List.copyOf(records);
    if (copy.isEmpty()) {
      return List.of();
    }
    List<AuditRecord> canonical = canonical(copy);
    long now = clock.millis();
    return transactions.write("audit records", tx -> append(tx, canonical, now, lockHead));
  }

  /** The records with their details in canonical form; throws on a detail that is not a JSON object. */
  static List<AuditRecord> canonical(List<AuditRecord> records) {
    List<AuditRecord> out = new ArrayList<>(records.size());
    for (AuditRecord r : records) {
      out.add(new AuditRecord(
          r.kind(), r.actor(), r.owner(), r.agent(), r.sessionId(), r.tool(),
          AuditChain.canonicalDetail(r.detail(), r.kind())));
    }
    return out;
  }

  /**
   * Chains and inserts records inside a transaction (a standalone append's or a session append's);
   * their details must already be canonical ({@link #canonical}).
   */
  static List<AuditEntry> append(GroupCommitWriter.Tx tx, List<AuditRecord> records, long now, boolean lockHead)
      throws SQLException {
    if (records.isEmpty()) {
      return List.of();
    }
    PreparedStatement head = tx.prepare("SELECT seq, hash FROM audit_head WHERE id = 1" + (lockHead ? " FOR UPDATE" : ""));
    long seq;
    String prev;
    try (ResultSet rs = head.executeQuery()) {
      if (!rs.next()) {
        throw new SQLException("the audit log's head row is missing: the audit_head table was tampered with");
      }
      seq = rs.getLong(1);
      prev = rs.getString(2);
    }
    if (!AuditChain.wellFormed(prev)) {
      throw new SQLException("the audit log's head row holds a malformed hash: the audit_head table was tampered with");
    }
    PreparedStatement ins =
        tx.prepare("INSERT INTO audit_log (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    List<AuditEntry> out = new ArrayList<>(records.size());
    for (AuditRecord r : records) {
      seq++;
      String hash = AuditChain.hash(prev, seq, now, r);
      ins.setLong(1, seq);
      ins.setLong(2, now);
      ins.setString(3, r.kind());
      ins.setString(4, r.actor());
      ins.setString(5, r.owner());
      ins.setString(6, r.agent());
      ins.setString(7, r.sessionId());
      ins.setString(8, r.tool());
      ins.setString(9, r.detail());
      ins.setString(10, prev);
      ins.setString(11, hash);
      ins.addBatch();
      out.add(new AuditEntry(seq, Instant.ofEpochMilli(now), r, prev, hash));
      prev = hash;
    }
    ins.executeBatch();
    tx.update("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, prev);
    return out;
  }

  @Override
  public List<AuditEntry> query(AuditQuery q) {
    StringBuilder sql = new StringBuilder("SELECT " + COLUMNS + " FROM audit_log WHERE seq > ?");
    List<Object> args = new ArrayList<>();
    args.add(q.afterSeq());
    filter(sql, args, "kind", q.kind());
    filter(sql, args, "agent", q.agent());
    filter(sql, args, "owner", q.owner());
    filter(sql, args, "session_id", q.sessionId());
    filter(sql, args, "tool", q.tool());
    if (q.since().isPresent()) {
      sql.append(" AND at >= ?");
      args.add(q.since().get().toEpochMilli());
    }
    if (q.until().isPresent()) {
      sql.append(" AND at < ?");
      args.add(q.until().get().toEpochMilli());
    }
    if (q.owners().isPresent()) {
      Set<String> owners = q.owners().get();
      if (owners.isEmpty()) {
        return List.of();
      }
      sql.append(" AND owner IN (").append(String.join(",", Collections.nCopies(owners.size(), "?"))).append(")");
      args.addAll(owners.stream().sorted().toList());
    }
    sql.append(" ORDER BY seq LIMIT ?");
    args.add(q.limit());
    return transactions.read("the audit log", c -> {
      try (PreparedStatement ps = Jdbc.bind(c.prepareStatement(sql.toString()), args.toArray())) {
        return Jdbc.list(ps, JdbcAuditStore::entry);
      }
    });
  }

  private static void filter(StringBuilder sql, List<Object> args, String column, Optional<String> value) {
    if (value.isPresent()) {
      sql.append(" AND ").append(column).append(" = ?");
      args.add(value.get());
    }
  }

  private static AuditEntry entry(ResultSet rs) throws SQLException {
    return new AuditEntry(
        rs.getLong(1),
        Instant.ofEpochMilli(rs.getLong(2)),
        new AuditRecord(
            rs.getString(3), rs.getString(4), rs.getString(5), rs.getString(6), rs.getString(7),
            rs.getString(8), rs.getString(9)),
        rs.getString(10),
        rs.getString(11));
  }

  @Override
  public Head head() {
    return transactions.read("the audit log's head", c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT seq, hash FROM audit_head WHERE id = 1");
          ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          throw new SQLException("the audit log's head row is missing: the audit_head table was tampered with");
        }
        return new Head(rs.getLong(1), rs.getString(2));
      }
    });
  }

  /** One stored row, as stored: nothing is parsed or normalized before it is hashed. */
  private record Row(
      long seq, long at, String kind, String actor, String owner, String agent, String sessionId, String tool,
      String detail, String prevHash, String hash) {}

  @Override
  public Verification verify(Optional<String> expectHead) {
    expectHead.ifPresent(h -> AuditStore.checkHash(h, "the expected head"));
    Head head = head();
    Optional<Long> anchor = expectHead.filter(GENESIS::equals).map(h -> 0L);
    long expectedSeq = 1;
    String prev = GENESIS;
    long checked = 0;
    while (expectedSeq <= head.seq()) {
      long after = expectedSeq - 1;
      List<Row> page = transactions.read("the audit log", c -> {
        try (PreparedStatement ps =
            Jdbc.bind(
                c.prepareStatement("SELECT " + COLUMNS + " FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"),
                after, head.seq(), PAGE)) {
          return Jdbc.list(ps, rs -> new Row(
              rs.getLong(1), rs.getLong(2), rs.getString(3), rs.getString(4), rs.getString(5), rs.getString(6),
              rs.getString(7), rs.getString(8), rs.getString(9), rs.getString(10), rs.getString(11)));
        }
      });
      if (page.isEmpty()) {
        break;
      }
      for (Row r : page) {
        if (r.seq() != expectedSeq) {
          return new Verification.Broken(expectedSeq, Problem.SEQUENCE_GAP,
              "entry " + expectedSeq + (r.seq() - expectedSeq > 1 ? " to " + (r.seq() - 1) : "")
                  + " missing: the chain goes from entry " + (expectedSeq - 1) + " to entry " + r.seq()
                  + " (deleted)", checked);
        }
        if (!prev.equals(r.prevHash())) {
          return new Verification.Broken(r.seq(), Problem.LINK_MISMATCH,
              "entry " + r.seq() + " names " + r.prevHash() + " as its previous hash, but entry " + (r.seq() - 1)
                  + " hashes to " + prev + " (an entry was replaced or re-hashed)", checked);
        }
        String actual = AuditChain.hash(r.prevHash(), r.seq(), r.at(), nn(r.kind()), nn(r.actor()), nn(r.owner()),
            nn(r.agent()), nn(r.sessionId()), nn(r.tool()), nn(r.detail()));
        if (!actual.equals(r.hash())) {
          return new Verification.Broken(r.seq(), Problem.HASH_MISMATCH,
              "entry " + r.seq() + " (" + r.kind() + ") does not hash to its stored hash " + r.hash()
                  + " but to " + actual + " (edited)", checked);
        }
        checked++;
        if (anchor.isEmpty() && expectHead.isPresent() && expectHead.get().equals(r.hash())) {
          anchor = Optional.of(r.seq());
        }
        prev = r.hash();
        expectedSeq++;
      }
    }
    if (expectedSeq <= head.seq()) {
      return new Verification.Broken(expectedSeq, Problem.TAIL_MISSING,
          "the head row says the log ends at entry " + head.seq() + " but it ends at entry " + (expectedSeq - 1)
              + ": entries " + expectedSeq + " to " + head.seq() + " are missing (deleted)", checked);
    }
    if (!prev.equals(head.hash())) {
      return new Verification.Broken(head.seq(), Problem.HEAD_MISMATCH,
          "the head row says entry " + head.seq() + " hashes to " + head.hash() + " but it hashes to " + prev
              + " (the last entry was re-hashed, or the head row edited)", checked);
    }
    if (expectHead.isPresent() && anchor.isEmpty()) {
      return new Verification.Broken(0, Problem.ANCHOR_MISSING,
          "no entry of the chain hashes to the expected head " + expectHead.get()
              + ": the log was rewritten since that head was taken (or the hash belongs to another log)", checked);
    }
    return new Verification.Intact(checked, prev, anchor);
  }

  private static String nn(String s) {
    return s == null ? "" : s;
  }
}
