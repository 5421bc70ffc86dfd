package keel.data;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.cfg.JsonNodeFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The audit chain's encoding and hash, shared by both stores and the verifier.
 *
 * <p>The canonical encoding of an entry is its fields, in this order, each written as a netstring
 * ({@code <length of its UTF-8 bytes in decimal>:<the bytes>,}): seq and time (epoch milliseconds)
 * in decimal, kind, actor, owner, agent, session id, tool, detail (the stored canonical JSON). The
 * hash is {@code SHA-256(previous hash's 32 bytes ‖ canonical encoding)}, in lowercase hex. Anyone
 * can recompute it from the stored columns without Keel (docs/audit.md shows how).
 *
 * <p>Stateless and thread-safe.
 */
final class AuditChain {

  private static final HexFormat HEX = HexFormat.of();
  private static final JsonMapper JSON =
      JsonMapper.builder()
          .enable(JsonNodeFeature.WRITE_PROPERTIES_SORTED)
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .build();

  private AuditChain() {}

  /** The hash of an entry chained after {@code prevHash}. */
  static String hash(String prevHash, long seq, long atMillis, AuditRecord r) {
    return hash(prevHash, seq, atMillis, r.kind(), r.actor(), r.owner(), r.agent(), r.sessionId(), r.tool(), r.detail());
  }

  /** The hash of an entry's stored columns, exactly as stored (the verifier's view). */
  static String hash(
      String prevHash, long seq, long atMillis, String kind, String actor, String owner, String agent,
      String sessionId, String tool, String detail) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256", e);
    }
    sha.update(HEX.parseHex(prevHash));
    StringBuilder canonical = new StringBuilder(128 + detail.length());
    for (String field :
        new String[] {
          Long.toString(seq), Long.toString(atMillis), kind, actor, owner, agent, sessionId, tool, detail
        }) {
      canonical.append(field.getBytes(StandardCharsets.UTF_8).length).append(':').append(field).append(',');
    }
    return HEX.formatHex(sha.digest(canonical.toString().getBytes(StandardCharsets.UTF_8)));
  }

  /** Whether a stored hash is well formed (so that it can be chained from). */
  static boolean wellFormed(String hash) {
    return hash != null && hash.length() == 64 && hash.chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  }

  /** A detail document in canonical form: a JSON object, keys sorted, no insignificant spaces. */
  static String canonicalDetail(String detail, String kind) {
    JsonNode node;
    try {
      node = JSON.readTree(detail.isBlank() ? "{}" : detail);
    } catch (JacksonException e) {
      throw new IllegalArgumentException(
          "audit record of kind " + kind + ": the detail is not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (!node.isObject()) {
      throw new IllegalArgumentException(
          "audit record of kind " + kind + ": the detail must be a JSON object, got " + node.getNodeType());
    }
    return JSON.writeValueAsString(node);
  }
}
