package keel.gateway;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * The names models call external tools by. Providers accept only {@code ^[a-zA-Z0-9_-]{1,64}$},
 * so {@code <server>/<tool>} becomes {@code <server>__<tool>}, each other character ({@code .})
 * becomes {@code _}, and a name longer than 64 keeps its first 55 characters, {@code _} and 8 hex
 * digits of the SHA-256 of the catalog name. The mapping is deterministic; two catalog names that
 * map to one model name are a collision the catalog reports and resolves by offering neither.
 *
 * <p>Stateless and thread-safe.
 */
public final class ModelNames {

  private static final Pattern NOT_ALLOWED = Pattern.compile("[^a-zA-Z0-9_-]");

  private ModelNames() {}

  /** The model-facing name of {@code <server>/<tool>}. */
  public static String of(String server, String tool) {
    String name = NOT_ALLOWED.matcher(server + "__" + tool).replaceAll("_");
    if (name.length() <= 64) {
      return name;
    }
    return name.substring(0, 55) + "_" + sha256(server + "/" + tool).substring(0, 8);
  }

  static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
