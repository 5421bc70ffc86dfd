package keel.testkit.mcp;

import java.util.Map;
import java.util.Optional;

/**
 * The keys of an MCP request's {@code _meta} that the demo servers read: the idempotency key that
 * makes a side-effecting call run at most once, and the W3C trace context.
 *
 * <p>Thread-safe: constants and pure functions only.
 */
public final class McpMeta {

  /** The idempotency key of a call: a second call with the same key returns the first result. */
  public static final String IDEMPOTENCY_KEY = "dev.keel/idempotency-key";

  /** The W3C trace context of the calling session, as in the HTTP {@code traceparent} header. */
  public static final String TRACEPARENT = "traceparent";

  /** The W3C vendor trace state, passed along with {@link #TRACEPARENT} when present. */
  public static final String TRACESTATE = "tracestate";

  /**
   * Set to {@code true} in a result's {@code _meta} when the result is the stored first result of an
   * earlier call with the same idempotency key (nothing was executed again).
   */
  public static final String REPLAYED = "dev.keel/replayed";

  private McpMeta() {}

  /** The non-blank string at {@code key} in {@code meta}, or empty. */
  static Optional<String> string(Map<String, Object> meta, String key) {
    return meta.get(key) instanceof String s && !s.isBlank() ? Optional.of(s) : Optional.empty();
  }
}
