package keel.testkit.mcp;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One {@code tools/call} request a demo server received, as it arrived (before any check), so a
 * test can assert what a client sent: arguments, trace context, idempotency key.
 *
 * @param tool the tool's name
 * @param arguments the call's arguments (values as parsed from JSON; nulls allowed)
 * @param meta the request's {@code _meta} (empty when absent)
 * @param at when it was received, by the server's clock
 */
public record ReceivedCall(String tool, Map<String, Object> arguments, Map<String, Object> meta, Instant at) {

  public ReceivedCall {
    Objects.requireNonNull(tool, "tool");
    arguments = Collections.unmodifiableMap(new LinkedHashMap<>(arguments));
    meta = Collections.unmodifiableMap(new LinkedHashMap<>(meta));
    Objects.requireNonNull(at, "at");
  }

  /** The idempotency key in {@code _meta} ({@value McpMeta#IDEMPOTENCY_KEY}), or empty. */
  public Optional<String> idempotencyKey() {
    return McpMeta.string(meta, McpMeta.IDEMPOTENCY_KEY);
  }

  /** The trace context in {@code _meta} ({@value McpMeta#TRACEPARENT}), or empty. */
  public Optional<String> traceparent() {
    return McpMeta.string(meta, McpMeta.TRACEPARENT);
  }
}
