package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Signing keys in PostgreSQL. {@link #activeOrInsert} takes a transaction-scoped advisory lock
 * before it reads, so nodes starting together agree on one active key. Thread-safe.
 */
final class PostgresSigningKeyStore implements SigningKeyStore {

  private static final String COLUMNS = "kid, algorithm, public_jwk, private_jwk, created_at, retire_at, expire_at";

  /** The advisory lock key of key rotation ("keel.key" in ASCII). */
  private static final long ROTATION_LOCK = 0x6b65656c2e6b6579L;

  private final PostgresTransactions pg;

  PostgresSigningKeyStore(PostgresTransactions pg) {
    this.pg = pg;
  }

  @Override
  public SigningKey activeOrInsert(SigningKey candidate, Instant now) {
    return pg.writeTx(
        "a signing key",
        tx -> {
          PreparedStatement lock = tx.prepare("SELECT pg_advisory_xact_lock(?)");
          lock.setLong(1, ROTATION_LOCK);
          lock.executeQuery().close();
          PreparedStatement sel =
              tx.prepare("SELECT " + COLUMNS + " FROM signing_keys WHERE retire_at > ?"
                  + " ORDER BY created_at DESC, kid DESC LIMIT 1");
          sel.setObject(1, PostgresEventStore.time(now.toEpochMilli()));
          try (ResultSet rs = sel.executeQuery()) {
            if (rs.next()) {
              return key(rs);
            }
          }
          PreparedStatement ins =
              tx.prepare("INSERT INTO signing_keys (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?)");
          ins.setString(1, candidate.kid());
          ins.setString(2, candidate.algorithm());
          ins.setString(3, candidate.publicJwk());
          ins.setString(4, candidate.privateJwk());
          ins.setObject(5, PostgresEventStore.time(candidate.createdAt().toEpochMilli()));
          ins.setObject(6, PostgresEventStore.time(candidate.retireAt().toEpochMilli()));
          ins.setObject(7, PostgresEventStore.time(candidate.expireAt().toEpochMilli()));
          ins.executeUpdate();
          return candidate;
        });
  }

  @Override
  public Optional<SigningKey> key(String kid) {
    return pg.read(
        "signing key " + kid,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM signing_keys WHERE kid = ?")) {
            ps.setString(1, kid);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? Optional.of(key(rs)) : Optional.empty();
            }
          }
        });
  }

  @Override
  public List<SigningKey> published(Instant now) {
    return pg.read(
        "the signing keys",
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT " + COLUMNS + " FROM signing_keys WHERE expire_at > ?"
                  + " ORDER BY created_at DESC, kid DESC")) {
            ps.setObject(1, PostgresEventStore.time(now.toEpochMilli()));
            List<SigningKey> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(key(rs));
              }
            }
            return out;
          }
        });
  }

  @Override
  public int purgeExpired(Instant now) {
    return pg.writeTx(
        "the expired signing keys",
        tx -> {
          PreparedStatement ps = tx.prepare("DELETE FROM signing_keys WHERE expire_at <= ?");
          ps.setObject(1, PostgresEventStore.time(now.toEpochMilli()));
          return ps.executeUpdate();
        });
  }

  private static SigningKey key(ResultSet rs) throws SQLException {
    return new SigningKey(
        rs.getString(1),
        rs.getString(2),
        rs.getString(3),
        rs.getString(4),
        PostgresEventStore.instant(rs, 5),
        PostgresEventStore.instant(rs, 6),
        PostgresEventStore.instant(rs, 7));
  }
}
