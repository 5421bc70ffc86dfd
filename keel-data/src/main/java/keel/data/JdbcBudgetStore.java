package keel.data;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import keel.core.BudgetKind;
import keel.core.KeelException;

/**
 * Budgets over JDBC, one implementation for both stores. A reservation is one write transaction
 * that first makes sure the rows of the windows it claims exist ({@code INSERT … ON CONFLICT DO
 * NOTHING}) and reads them with a row lock where the database has one (PostgreSQL's {@code FOR
 * UPDATE}, in {@link BudgetKind} order, the order of {@link Request#claims()}), then sums the
 * unexpired holds and inserts its own. On PostgreSQL a concurrent reservation of the same agent on
 * any node waits for the lock, and its sums include this one's holds; on SQLite every write is one
 * operation of the store's single writer, so the same SQL is atomic without the lock. Settling
 * updates the same rows. Amounts are whole units (1e-10 USD for money) in integer columns, so sums
 * are exact.
 *
 * <p>Thread-safe.
 */
final class JdbcBudgetStore implements BudgetStore {

  /** How the store runs its transactions: the SQLite single writer, or PostgreSQL's pool. */
  interface Transactions {
    <T> T write(String what, GroupCommitWriter.Op<T> op);

    <T> T read(String what, Jdbc.Read<T> read);
  }

  private final Transactions transactions;
  /** Appended to the read of a window row: {@code " FOR UPDATE"} where rows can be locked. */
  private final String rowLock;

  JdbcBudgetStore(Transactions transactions, String rowLock) {
    this.transactions = transactions;
    this.rowLock = rowLock;
  }

  @Override
  public Outcome reserve(Request r) {
    long now = r.at().toEpochMilli();
    long expires = r.at().plus(r.ttl()).toEpochMilli();
    return transactions.write(
        "budget reservation " + r.id(),
        tx -> {
          PreparedStatement dup = tx.prepare("SELECT 1 FROM budget_holds WHERE reservation_id = ?");
          dup.setString(1, r.id());
          try (ResultSet rs = dup.executeQuery()) {
            if (rs.next()) {
              throw new KeelException.Conflict("budget reservation " + r.id() + " already exists");
            }
          }
          List<Level> levels = new ArrayList<>();
          List<Long> amounts = new ArrayList<>();
          for (Claim c : r.claims()) {
            long start = c.kind().windowStart(r.at()).toEpochMilli();
            PreparedStatement open =
                tx.prepare(
                    "INSERT INTO budget_windows (agent, kind, window_start, used) VALUES (?,?,?,0)"
                        + " ON CONFLICT (agent, kind, window_start) DO NOTHING");
            open.setString(1, r.agent());
            open.setString(2, c.kind().wireName());
            open.setLong(3, start);
            open.executeUpdate();
            long used = used(tx, r.agent(), c.kind(), start);
            long held = held(tx, r.agent(), c.kind(), start, now);
            long amount = units(c.kind(), c.amount(), RoundingMode.CEILING);
            long limit = units(c.kind(), c.limit(), RoundingMode.FLOOR);
            Level before = level(c.kind(), r.at(), used, held);
            if (used + held + amount > limit) {
              return new Outcome.Refused(c, before);
            }
            levels.add(level(c.kind(), r.at(), used, held + amount));
            amounts.add(amount);
          }
          PreparedStatement hold =
              tx.prepare(
                  "INSERT INTO budget_holds (reservation_id, kind, agent, window_start, amount, session_id,"
                      + " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (reservation_id, kind) DO NOTHING");
          for (int i = 0; i < r.claims().size(); i++) {
            Claim c = r.claims().get(i);
            hold.setString(1, r.id());
            hold.setString(2, c.kind().wireName());
            hold.setString(3, r.agent());
            hold.setLong(4, c.kind().windowStart(r.at()).toEpochMilli());
            hold.setLong(5, amounts.get(i));
            hold.setString(6, r.sessionId());
            hold.setLong(7, now);
            hold.setLong(8, expires);
            hold.addBatch();
          }
          for (int inserted : hold.executeBatch()) {
            if (inserted == 0) {
              // a concurrent reservation with the same id committed since the check above
              throw new KeelException.Conflict("budget reservation " + r.id() + " already exists");
            }
          }
          return new Outcome.Granted(r.id(), r.at(), levels);
        });
  }

  /** The window's row, locked until the transaction ends where the database locks rows. */
  private long used(GroupCommitWriter.Tx tx, String agent, BudgetKind kind, long start) throws SQLException {
    PreparedStatement ps =
        tx.prepare("SELECT used FROM budget_windows WHERE agent = ? AND kind = ? AND window_start = ?" + rowLock);
    ps.setString(1, agent);
    ps.setString(2, kind.wireName());
    ps.setLong(3, start);
    try (ResultSet rs = ps.executeQuery()) {
      return rs.next() ? rs.getLong(1) : 0;
    }
  }

  private static long held(GroupCommitWriter.Tx tx, String agent, BudgetKind kind, long start, long now)
      throws SQLException {
    PreparedStatement ps =
        tx.prepare(
            "SELECT coalesce(sum(amount), 0) FROM budget_holds"
                + " WHERE agent = ? AND kind = ? AND window_start = ? AND expires_at > ?");
    ps.setString(1, agent);
    ps.setString(2, kind.wireName());
    ps.setLong(3, start);
    ps.setLong(4, now);
    try (ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  @Override
  public void settle(Settlement s) {
    transactions.write(
        "the settlement of budget reservation " + s.reservationId(),
        tx -> {
          settle(tx, s);
          return null;
        });
  }

  /** Settles inside a transaction, e.g. an append's. */
  static void settle(GroupCommitWriter.Tx tx, Settlement s) throws SQLException {
    if (!s.reservationId().isEmpty()) {
      PreparedStatement del = tx.prepare("DELETE FROM budget_holds WHERE reservation_id = ?");
      del.setString(1, s.reservationId());
      del.executeUpdate();
    }
    PreparedStatement charge =
        tx.prepare(
            "INSERT INTO budget_windows (agent, kind, window_start, used) VALUES (?,?,?,?)"
                + " ON CONFLICT (agent, kind, window_start) DO UPDATE SET used = budget_windows.used + excluded.used");
    for (BudgetKind kind : BudgetKind.values()) {
      BigDecimal spent = s.spent().get(kind);
      if (spent == null || spent.signum() == 0) {
        continue;
      }
      charge.setString(1, s.agent());
      charge.setString(2, kind.wireName());
      charge.setLong(3, kind.windowStart(s.at()).toEpochMilli());
      charge.setLong(4, units(kind, spent, RoundingMode.CEILING));
      charge.executeUpdate();
    }
  }

  @Override
  public void release(String reservationId) {
    transactions.write(
        "the release of budget reservation " + reservationId,
        tx -> {
          PreparedStatement del = tx.prepare("DELETE FROM budget_holds WHERE reservation_id = ?");
          del.setString(1, reservationId);
          del.executeUpdate();
          return null;
        });
  }

  @Override
  public List<Level> levels(String agent, Instant at) {
    long now = at.toEpochMilli();
    return transactions.read(
        "the budgets of agent " + agent,
        c -> {
          List<Level> out = new ArrayList<>();
          try (PreparedStatement used = c.prepareStatement(
                  "SELECT used FROM budget_windows WHERE agent = ? AND kind = ? AND window_start = ?");
              PreparedStatement held = c.prepareStatement(
                  "SELECT coalesce(sum(amount), 0) FROM budget_holds WHERE agent = ? AND kind = ? AND window_start = ?"
                      + " AND expires_at > ?")) {
            for (BudgetKind kind : BudgetKind.values()) {
              long start = kind.windowStart(at).toEpochMilli();
              for (PreparedStatement ps : List.of(used, held)) {
                ps.setString(1, agent);
                ps.setString(2, kind.wireName());
                ps.setLong(3, start);
              }
              held.setLong(4, now);
              out.add(level(kind, at, single(used), single(held)));
            }
          }
          return out;
        });
  }

  /** The first column of the first row, or 0 when there is none. */
  private static long single(PreparedStatement ps) throws SQLException {
    try (ResultSet rs = ps.executeQuery()) {
      return rs.next() ? rs.getLong(1) : 0;
    }
  }

  @Override
  public int purge(Instant before) {
    long t = before.toEpochMilli();
    return transactions.write(
        "the budget windows before " + before,
        tx -> {
          PreparedStatement w = tx.prepare("DELETE FROM budget_windows WHERE window_start < ?");
          w.setLong(1, t);
          int n = w.executeUpdate();
          PreparedStatement h = tx.prepare("DELETE FROM budget_holds WHERE expires_at < ?");
          h.setLong(1, t);
          return n + h.executeUpdate();
        });
  }

  private static Level level(BudgetKind kind, Instant at, long used, long reserved) {
    return new Level(kind, kind.windowStart(at), kind.windowEnd(at), amount(kind, used), amount(kind, reserved));
  }

  /** An amount in the store's whole units of the kind: 1e-10 USD for money, else calls or tokens. */
  static long units(BudgetKind kind, BigDecimal amount, RoundingMode rounding) {
    try {
      return amount.setScale(kind.money() ? Money.SCALE : 0, rounding).unscaledValue().longValueExact();
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(
          kind.wireName() + ": " + amount.toPlainString() + " is too large for a budget", e);
    }
  }

  private static BigDecimal amount(BudgetKind kind, long units) {
    return kind.money() ? Money.dollars(units) : BigDecimal.valueOf(units);
  }
}
