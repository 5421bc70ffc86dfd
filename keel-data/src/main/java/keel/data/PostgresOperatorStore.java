package keel.data;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import keel.core.KeelException;

/**
 * Operators in PostgreSQL. Each write is one transaction that locks the operator's row first, so a
 * revocation and a new token on another node cannot interleave; a revocation is committed (and
 * visible to every node) before it is acknowledged. The token lookup is one query on the primary
 * key of {@code operator_tokens}.
 *
 * <p>Thread-safe.
 */
final class PostgresOperatorStore implements OperatorStore {

  /** Operator columns, the live token's issue time, then one grant per row (none for no grants). */
  private static final String SELECT =
      "SELECT o.name, o.created_by, o.created_at, o.revoked_by, o.revoked_at,"
          + " (SELECT max(t.issued_at) FROM operator_tokens t WHERE t.operator = o.name AND t.revoked_at IS NULL),"
          + " r.role, r.owner"
          + " FROM operators o LEFT JOIN operator_roles r ON r.operator = o.name";

  private final PostgresTransactions pg;
  private final Clock clock;

  PostgresOperatorStore(PostgresTransactions pg, Clock clock) {
    this.pg = pg;
    this.clock = clock;
  }

  @Override
  public Operator create(String name, List<Grant> grants, String tokenSha256, String createdBy) {
    Objects.requireNonNull(name, "name");
    List<Grant> checked = List.copyOf(grants);
    String hash = OperatorStore.checkedHash(tokenSha256);
    Objects.requireNonNull(createdBy, "createdBy");
    long now = clock.millis();
    pg.writeTx(
        "operator " + name,
        tx -> {
          PreparedStatement exists = tx.prepare("SELECT revoked_at FROM operators WHERE name = ?");
          exists.setString(1, name);
          try (ResultSet rs = exists.executeQuery()) {
            if (rs.next()) {
              throw new KeelException.Conflict(
                  rs.getObject(1) == null
                      ? "an operator named \"" + name + "\" already exists"
                      : "an operator named \"" + name + "\" existed and was revoked; names are not reused, so"
                          + " that what its name recorded stays unambiguous: choose another name");
            }
          }
          PreparedStatement op =
              tx.prepare("INSERT INTO operators (name, created_by, created_at) VALUES (?,?,?) ON CONFLICT (name) DO NOTHING");
          op.setString(1, name);
          op.setString(2, createdBy);
          op.setObject(3, PostgresEventStore.time(now));
          if (op.executeUpdate() == 0) {
            // another node created it since the check above
            throw new KeelException.Conflict("an operator named \"" + name + "\" already exists");
          }
          PreparedStatement role =
              tx.prepare("INSERT INTO operator_roles (operator, position, role, owner) VALUES (?,?,?,?)");
          for (int i = 0; i < checked.size(); i++) {
            role.setString(1, name);
            role.setInt(2, i);
            role.setString(3, checked.get(i).role());
            role.setString(4, checked.get(i).owner());
            role.executeUpdate();
          }
          insertToken(tx, hash, name, createdBy, now);
          return null;
        });
    return new Operator(
        name, checked, createdBy, Instant.ofEpochMilli(now), Optional.empty(), Optional.empty(),
        Optional.of(Instant.ofEpochMilli(now)));
  }

  private static void insertToken(GroupCommitWriter.Tx tx, String hash, String name, String issuedBy, long now)
      throws SQLException {
    PreparedStatement tok =
        tx.prepare("INSERT INTO operator_tokens (sha256, operator, issued_by, issued_at) VALUES (?,?,?,?)");
    tok.setString(1, hash);
    tok.setString(2, name);
    tok.setString(3, issuedBy);
    tok.setObject(4, PostgresEventStore.time(now));
    tok.executeUpdate();
  }

  @Override
  public Optional<Operator> find(String name) {
    Objects.requireNonNull(name, "name");
    return query("operator " + name, SELECT + " WHERE o.name = ? ORDER BY r.position", name).stream().findFirst();
  }

  @Override
  public List<Operator> list() {
    return query("operators", SELECT + " ORDER BY o.name, r.position");
  }

  @Override
  public Operator revoke(String name, String revokedBy) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(revokedBy, "revokedBy");
    long now = clock.millis();
    pg.writeTx(
        "the revocation of operator " + name,
        tx -> {
          PreparedStatement op =
              tx.prepare("UPDATE operators SET revoked_by = ?, revoked_at = ? WHERE name = ? AND revoked_at IS NULL");
          op.setString(1, revokedBy);
          op.setObject(2, PostgresEventStore.time(now));
          op.setString(3, name);
          if (op.executeUpdate() == 0) {
            requireExists(tx, name);
            return null; // already revoked: nothing changes
          }
          PreparedStatement tok =
              tx.prepare("UPDATE operator_tokens SET revoked_at = ? WHERE operator = ? AND revoked_at IS NULL");
          tok.setObject(1, PostgresEventStore.time(now));
          tok.setString(2, name);
          tok.executeUpdate();
          return null;
        });
    return find(name).orElseThrow(() -> notFound(name));
  }

  @Override
  public Operator replaceToken(String name, String tokenSha256, String issuedBy) {
    Objects.requireNonNull(name, "name");
    String hash = OperatorStore.checkedHash(tokenSha256);
    Objects.requireNonNull(issuedBy, "issuedBy");
    long now = clock.millis();
    pg.writeTx(
        "a token of operator " + name,
        tx -> {
          PreparedStatement st = tx.prepare("SELECT revoked_at FROM operators WHERE name = ? FOR UPDATE");
          st.setString(1, name);
          try (ResultSet rs = st.executeQuery()) {
            if (!rs.next()) {
              throw notFound(name);
            }
            if (rs.getObject(1) != null) {
              throw new KeelException.Conflict(
                  "operator \"" + name + "\" is revoked; a revoked operator gets no new token (create a new operator instead)");
            }
          }
          PreparedStatement old =
              tx.prepare("UPDATE operator_tokens SET revoked_at = ? WHERE operator = ? AND revoked_at IS NULL");
          old.setObject(1, PostgresEventStore.time(now));
          old.setString(2, name);
          old.executeUpdate();
          insertToken(tx, hash, name, issuedBy, now);
          return null;
        });
    return find(name).orElseThrow(() -> notFound(name));
  }

  @Override
  public Optional<Operator> byToken(String tokenSha256) {
    String hash = OperatorStore.checkedHash(tokenSha256);
    return query(
            "an API token",
            SELECT
                + " WHERE o.name = (SELECT t.operator FROM operator_tokens t WHERE t.sha256 = ? AND t.revoked_at IS NULL)"
                + " AND o.revoked_at IS NULL ORDER BY r.position",
            hash)
        .stream()
        .findFirst();
  }

  private static void requireExists(GroupCommitWriter.Tx tx, String name) throws SQLException {
    PreparedStatement st = tx.prepare("SELECT 1 FROM operators WHERE name = ?");
    st.setString(1, name);
    try (ResultSet rs = st.executeQuery()) {
      if (!rs.next()) {
        throw notFound(name);
      }
    }
  }

  private static KeelException.NotFound notFound(String name) {
    return new KeelException.NotFound("there is no operator named \"" + name + "\"");
  }

  /** Reads operators from rows of {@link #SELECT}, one row per grant, rows of one operator adjacent. */
  private List<Operator> query(String what, String sql, Object... args) {
    return pg.read(what, (Connection c) -> {
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        for (int i = 0; i < args.length; i++) {
          ps.setObject(i + 1, args[i]);
        }
        Map<String, Operator> byName = new LinkedHashMap<>();
        Map<String, List<Grant>> grants = new LinkedHashMap<>();
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            String name = rs.getString(1);
            if (!byName.containsKey(name)) {
              byName.put(name, new Operator(
                  name,
                  List.of(),
                  rs.getString(2),
                  PostgresEventStore.instant(rs, 3),
                  optionalInstant(rs, 5),
                  Optional.ofNullable(rs.getString(4)),
                  optionalInstant(rs, 6)));
              grants.put(name, new ArrayList<>());
            }
            String role = rs.getString(7);
            if (role != null) {
              grants.get(name).add(new Grant(role, rs.getString(8)));
            }
          }
        }
        List<Operator> out = new ArrayList<>(byName.size());
        for (Operator o : byName.values()) {
          out.add(new Operator(o.name(), grants.get(o.name()), o.createdBy(), o.createdAt(), o.revokedAt(), o.revokedBy(),
              o.tokenIssuedAt()));
        }
        return out;
      }
    });
  }

  private static Optional<Instant> optionalInstant(ResultSet rs, int column) throws SQLException {
    java.time.OffsetDateTime v = rs.getObject(column, java.time.OffsetDateTime.class);
    return v == null ? Optional.empty() : Optional.of(v.toInstant());
  }
}
