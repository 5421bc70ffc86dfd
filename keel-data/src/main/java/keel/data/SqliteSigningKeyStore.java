package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
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
          PreparedStatement ins =
              tx.prepare("INSERT INTO signing_keys (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?)");
          ins.setString(1, candidate.kid());
          ins.setString(2, candidate.algorithm());
          ins.setString(3, candidate.publicJwk());
          ins.setString(4, candidate.privateJwk());
          ins.setLong(5, candidate.createdAt().toEpochMilli());
          ins.setLong(6, candidate.retireAt().toEpochMilli());
          ins.setLong(7, candidate.expireAt().toEpochMilli());
          ins.executeUpdate();
          return candidate;
        });
  }

  @Override
  public Optional<SigningKey> key(String kid) {
    return Jdbc.read(
        readers,
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
    return Jdbc.read(
        readers,
        "the signing keys",
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement("SELECT " + COLUMNS + " FROM signing_keys WHERE expire_at > ?"
                  + " ORDER BY created_at DESC, kid DESC")) {
            ps.setLong(1, now.toEpochMilli());
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
    return writer.execute(
        tx -> {
          PreparedStatement ps = tx.prepare("DELETE FROM signing_keys WHERE expire_at <= ?");
          ps.setLong(1, now.toEpochMilli());
          return ps.executeUpdate();
        });
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
