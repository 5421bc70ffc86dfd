package keel.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import java.util.Set;
import keel.control.Operators;
import keel.core.KeelException;

/**
 * The admin token a server creates on its first start, in a file only its owner can read: the
 * bootstrap operator {@code admin} (admin for every owner), which creates the other operators. The
 * server keeps only the token's SHA-256 in memory and compares in constant time.
 */
final class AdminToken {

  static final String FILE_NAME = "admin.token";

  private final byte[] sha256;
  private final Path file;
  private final Instant createdAt;

  private AdminToken(byte[] sha256, Path file, Instant createdAt) {
    this.sha256 = sha256;
    this.file = file;
    this.createdAt = createdAt;
  }

  /** Reads the token file of a data directory, creating it (mode 0600) if it does not exist. */
  static AdminToken loadOrCreate(Path dataDir) {
    Path file = dataDir.resolve(FILE_NAME);
    try {
      if (!Files.exists(file)) {
        byte[] raw = new byte[32];
        new SecureRandom().nextBytes(raw);
        String token = "keel_" + Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
        try {
          Files.createFile(file, PosixFilePermissions.asFileAttribute(Set.of(
              java.nio.file.attribute.PosixFilePermission.OWNER_READ,
              java.nio.file.attribute.PosixFilePermission.OWNER_WRITE)));
          Files.writeString(file, token + "\n", StandardCharsets.UTF_8, StandardOpenOption.TRUNCATE_EXISTING);
        } catch (FileAlreadyExistsException raced) {
          // another process created it first; read theirs
        }
      }
      String token = Files.readString(file, StandardCharsets.UTF_8).strip();
      if (token.isEmpty()) {
        throw new KeelException.Unavailable("the admin token file " + file + " is empty; delete it to get a new one", null);
      }
      return new AdminToken(sha256(token), file, Files.getLastModifiedTime(file).toInstant());
    } catch (IOException e) {
      throw new KeelException.Unavailable("cannot read or create the admin token " + file + ": " + e.getMessage(), e);
    }
  }

  /** The bootstrap operator this token authenticates as. */
  Operators.Bootstrap bootstrap() {
    return new Operators.Bootstrap(sha256, createdAt);
  }

  Path file() {
    return file;
  }

  private static byte[] sha256(String s) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
