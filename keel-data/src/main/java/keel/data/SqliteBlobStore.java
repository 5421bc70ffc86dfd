package keel.data;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.HexFormat;
import java.util.Optional;
import javax.sql.DataSource;
import keel.core.Content;

/** Content-addressed blobs in SQLite. Thread-safe. */
final class SqliteBlobStore implements BlobStore {

  private static final int PREVIEW_CHARS = 200;

  private final DataSource readers;
  private final GroupCommitWriter writer;

  SqliteBlobStore(DataSource readers, GroupCommitWriter writer) {
    this.readers = readers;
    this.writer = writer;
  }

  @Override
  public Content store(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    if (bytes.length <= Content.INLINE_LIMIT_BYTES) {
      return Content.inline(text);
    }
    String sha = sha256(bytes);
    writer.execute(
        tx -> {
          PreparedStatement ps =
              tx.prepare("INSERT OR IGNORE INTO blobs (sha256, size, body) VALUES (?,?,?)");
          ps.setString(1, sha);
          ps.setLong(2, bytes.length);
          ps.setBytes(3, bytes);
          ps.executeUpdate();
          return null;
        });
    String preview = text.length() <= PREVIEW_CHARS ? text : text.substring(0, PREVIEW_CHARS);
    return new Content.Blob(sha, bytes.length, preview);
  }

  @Override
  public Optional<String> load(String sha256) {
    return Jdbc.read(
        readers,
        "blob " + sha256,
        c -> {
          try (PreparedStatement ps = c.prepareStatement("SELECT body FROM blobs WHERE sha256 = ?")) {
            ps.setString(1, sha256);
            try (ResultSet rs = ps.executeQuery()) {
              return rs.next()
                  ? Optional.of(new String(rs.getBytes(1), StandardCharsets.UTF_8))
                  : Optional.empty();
            }
          }
        });
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every Java platform", e);
    }
  }
}
