package keel.data;

import java.nio.charset.StandardCharsets;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Optional;
import keel.core.Content;

/** Content-addressed blobs in PostgreSQL. Thread-safe; storing the same text from many nodes at once stores it once. */
final class PostgresBlobStore implements BlobStore {

  private static final int PREVIEW_CHARS = 200;

  private final PostgresTransactions tx;

  PostgresBlobStore(PostgresTransactions tx) {
    this.tx = tx;
  }

  @Override
  public Content store(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    if (bytes.length <= Content.INLINE_LIMIT_BYTES) {
      return Content.inline(text);
    }
    String sha = SqliteBlobStore.sha256(bytes);
    tx.write(
        "blob " + sha,
        c -> {
          try (PreparedStatement ps =
              c.prepareStatement(
                  "INSERT INTO blobs (sha256, size, body) VALUES (?,?,?) ON CONFLICT (sha256) DO NOTHING")) {
            ps.setString(1, sha);
            ps.setLong(2, bytes.length);
            ps.setBytes(3, bytes);
            ps.executeUpdate();
            return null;
          }
        });
    String preview = text.length() <= PREVIEW_CHARS ? text : text.substring(0, PREVIEW_CHARS);
    return new Content.Blob(sha, bytes.length, preview);
  }

  @Override
  public Optional<String> load(String sha256) {
    return tx.read(
        "blob " + sha256,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("SELECT body FROM blobs WHERE sha256 = ?")) {
            ps.setString(1, sha256);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next() ? Optional.of(new String(rs.getBytes(1), StandardCharsets.UTF_8)) : Optional.empty();
            }
          }
        });
  }
}
