package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The cost ledger in PostgreSQL. Entries are inserted by {@link PostgresEventStore#append}, in the
 * append's transaction; amounts are whole units of 1e-10 USD, so totals are exact. Thread-safe.
 */
final class PostgresCostLedger implements CostLedger {

  private static final String COLUMNS =
      "id, at, agent, owner, session_id, root_session_id, seq, kind, quantity, usd, detail";

  private final PostgresTransactions pg;

  PostgresCostLedger(PostgresTransactions pg) {
    this.pg = pg;
  }

  /** Inserts costs inside a transaction of the writer (an append's), stamped {@code at}. */
  static void insert(GroupCommitWriter.Tx tx, SqliteCostLedger.Attribution who, List<Cost> costs, long at) throws SQLException {
    if (costs.isEmpty()) {
      return;
    }
    PreparedStatement ins =
        tx.prepare(
            "INSERT INTO cost_ledger (at, day, agent, owner, session_id, root_session_id, seq, kind, quantity,"
                + " usd, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    String day = Instant.ofEpochMilli(at).atZone(ZoneOffset.UTC).toLocalDate().toString();
    for (Cost c : costs) {
      ins.setObject(1, PostgresEventStore.time(at));
      ins.setString(2, day);
      ins.setString(3, who.agent());
      ins.setString(4, who.owner());
      ins.setString(5, who.sessionId());
      ins.setString(6, who.rootSessionId());
      ins.setLong(7, c.seq());
      ins.setString(8, c.kind().wireName());
      ins.setLong(9, c.quantity());
      ins.setLong(10, Money.units(c.usd()));
      ins.setString(11, c.detail());
      ins.addBatch();
    }
    ins.executeBatch();
  }

  @Override
  public List<Entry> entries(String sessionId) {
    return pg.read(
        "the costs of session " + sessionId,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT " + COLUMNS + " FROM cost_ledger WHERE session_id = ? ORDER BY id")) {
            ps.setString(1, sessionId);
            List<Entry> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(
                    new Entry(
                        rs.getLong(1),
                        PostgresEventStore.instant(rs, 2),
                        rs.getString(3),
                        rs.getString(4),
                        rs.getString(5),
                        rs.getString(6),
                        rs.getLong(7),
                        CostKind.fromWire(rs.getString(8)),
                        rs.getLong(9),
                        Money.dollars(rs.getLong(10)),
                        rs.getString(11)));
              }
            }
            return out;
          }
        });
  }

  @Override
  public List<Row> totalsByOwner(Query q) {
    List<Dimension> dims = new ArrayList<>();
    for (Dimension d : Dimension.values()) {
      if (d == Dimension.OWNER || q.groupBy().contains(d)) {
        dims.add(d);
      }
    }
    List<String> columns = dims.stream().map(PostgresCostLedger::column).toList();
    StringBuilder sql =
        new StringBuilder("SELECT ")
            .append(String.join(", ", columns))
            .append(", sum(quantity)::bigint, sum(usd)::bigint, count(*) FROM cost_ledger WHERE at >= ? AND at < ?");
    List<Object> args = new ArrayList<>(List.of(PostgresEventStore.time(q.from().toEpochMilli()), PostgresEventStore.time(q.to().toEpochMilli())));
    if (q.agent().isPresent()) {
      sql.append(" AND agent = ?");
      args.add(q.agent().get());
    }
    if (q.owner().isPresent()) {
      sql.append(" AND owner = ?");
      args.add(q.owner().get());
    }
    sql.append(" GROUP BY ").append(String.join(", ", columns)).append(" ORDER BY ").append(String.join(", ", columns));
    return pg.read(
        "the cost ledger",
        c -> {
          try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            for (int i = 0; i < args.size(); i++) {
              ps.setObject(i + 1, args.get(i));
            }
            List<Row> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                Map<Dimension, String> group = new EnumMap<>(Dimension.class);
                for (int i = 0; i < dims.size(); i++) {
                  group.put(dims.get(i), rs.getString(i + 1));
                }
                int n = dims.size();
                out.add(new Row(group, rs.getLong(n + 1), Money.dollars(rs.getLong(n + 2)), rs.getLong(n + 3)));
              }
            }
            return out;
          }
        });
  }

  private static String column(Dimension d) {
    return switch (d) {
      case AGENT -> "agent";
      case OWNER -> "owner";
      case DAY -> "day";
      case KIND -> "kind";
    };
  }
}
