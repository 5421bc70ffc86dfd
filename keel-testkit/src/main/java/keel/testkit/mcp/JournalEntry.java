package keel.testkit.mcp;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One executed side-effecting (or idempotent) call, as a demo server's journal holds it: a call
 * that was replayed from its idempotency key adds no entry, so the journal proves how many times
 * an action really ran.
 *
 * @param sequence 1 for the first entry of the journal, then 2, 3…
 * @param tool the tool's name
 * @param arguments the call's arguments
 * @param result the structured result the call returned (and returns again on a replay)
 * @param meta the request's {@code _meta}
 * @param at when it ran, by the server's clock
 */
public record JournalEntry(
    long sequence,
    String tool,
    Map<String, Object> arguments,
    Map<String, Object> result,
    Map<String, Object> meta,
    Instant at) {

  public JournalEntry {
    if (sequence < 1) {
      throw new IllegalArgumentException("sequence must be 1 or more, got " + sequence);
    }
    Objects.requireNonNull(tool, "tool");
    arguments = Collections.unmodifiableMap(new LinkedHashMap<>(arguments));
    result = Collections.unmodifiableMap(new LinkedHashMap<>(result));
    meta = Collections.unmodifiableMap(new LinkedHashMap<>(meta));
    Objects.requireNonNull(at, "at");
  }

  /** The idempotency key the call carried in {@code _meta}, or empty. */
  public Optional<String> idempotencyKey() {
    return McpMeta.string(meta, McpMeta.IDEMPOTENCY_KEY);
  }

  /** The trace context the call carried in {@code _meta}, or empty. */
  public Optional<String> traceparent() {
    return McpMeta.string(meta, McpMeta.TRACEPARENT);
  }
}
