package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;

/**
 * Signing keys in SQLite. {@link #activeOrInsert} reads and inserts in one write operation of the
 * single writer, which makes it atomic. Thread-safe.
 */
final class SqliteSigningKeyStore implements SigningKeyStore {

  private static final String COLUMNS = "kid, algorithm, public_jwk, private_jwk, created_at, retire_at, expire_at";

  private final DataSource readers;
  private final GroupCommitWriter writer;

  SqliteSigningKeyStore(DataSource readers, GroupCommitWriter writer) {
    this.readers = readers;
    this.writer = writer;
  }

  @Override
  public SigningKey activeOrInsert(SigningKey candidate, Instant now) {
    return writer.execute(
        tx -> {
          PreparedStatement sel =
              tx.prepare("SELECT " + COLUMNS + " FROM signing_keys WHERE retire_at > ?"
                  + " ORDER BY created_at DESC, kid DESC LIMIT 1");
          sel.setLong(1, now.toEpochMilli());
          try (ResultSet rs = sel.executeQuery()) {
            if (rs.next()) {
              return key(rs);
            }
          }
          tx.update(
              "INSERT INTO signing_keys (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?)",
              candidate.kid(),
              candidate.algorithm(),
              candidate.publicJwk(),
              candidate.privateJwk(),
              candidate.createdAt().toEpochMilli(),
              candidate.retireAt().toEpochMilli(),
              candidate.expireAt().toEpochMilli());
          return candidate;
        });
  }

  @Override
  public Optional<SigningKey> key(String kid) {
    return Jdbc.first(
        readers,
        "signing key " + kid,
        "SELECT " + COLUMNS + " FROM signing_keys WHERE kid = ?",
        SqliteSigningKeyStore::key,
        kid);
  }

  @Override
  public List<SigningKey> published(Instant now) {
    return Jdbc.list(
        readers,
        "the signing keys",
        "SELECT " + COLUMNS + " FROM signing_keys WHERE expire_at > ? ORDER BY created_at DESC, kid DESC",
        SqliteSigningKeyStore::key,
        now.toEpochMilli());
  }

  @Override
  public int purgeExpired(Instant now) {
    return writer.execute(tx -> tx.update("DELETE FROM signing_keys WHERE expire_at <= ?", now.toEpochMilli()));
  }

  private static SigningKey key(ResultSet rs) throws SQLException {
    return new SigningKey(
        rs.getString(1),
        rs.getString(2),
        rs.getString(3),
        rs.getString(4),
        Instant.ofEpochMilli(rs.getLong(5)),
        Instant.ofEpochMilli(rs.getLong(6)),
        Instant.ofEpochMilli(rs.getLong(7)));
  }
}
