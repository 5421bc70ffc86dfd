package keel.execution;

import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.KeelException;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The partition of a session of a {@code spec.concurrency: per-partition} agent: the value of the
 * {@code partition_key} field ({@code input.<field>[.<field>…]}) of the session's first message,
 * which must be a JSON object. Sessions of one agent with the same partition run one step at a
 * time between them, on any node. Stateless and thread-safe.
 */
final class Partitions {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String PREFIX = "input.";

  private Partitions() {}

  /**
   * The partition a first message puts a session of this agent in; empty when the agent is not
   * per-partition.
   *
   * @throws KeelException.Invalid if the agent is per-partition and the message is not a JSON
   *     object with a non-empty scalar at the key's path
   */
  static Optional<String> of(String agent, AgentDescriptor.ConcurrencySpec concurrency, String message) {
    if (concurrency.mode() != AgentDescriptor.ConcurrencyMode.PER_PARTITION || concurrency.partitionKey().isEmpty()) {
      return Optional.empty();
    }
    String key = concurrency.partitionKey().get();
    String path = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
    String expect = "agent " + agent + " runs per partition of " + key + ": the first message must be a JSON object with "
        + path + " set to a string or a number, e.g. {\"" + path.replace(".", "\": {\"") + "\": \"…\"}";
    JsonNode node;
    try {
      node = JSON.readTree(message);
    } catch (JacksonException e) {
      throw new KeelException.Invalid(expect + "; got text that is not JSON");
    }
    if (node == null || !node.isObject()) {
      throw new KeelException.Invalid(expect + "; got JSON that is not an object");
    }
    for (String field : path.split("\\.")) {
      node = node.path(field);
    }
    if (!(node.isString() || node.isNumber() || node.isBoolean()) || node.asString().isEmpty()) {
      throw new KeelException.Invalid(expect + "; " + path + (node.isMissingNode() || node.isNull() ? " is missing" : " is not a string or a number"));
    }
    return Optional.of(node.asString());
  }

  /** As {@link #of}, but empty (no partition) for a message that names none. */
  static Optional<String> lenient(String agent, AgentDescriptor.ConcurrencySpec concurrency, String message) {
    try {
      return of(agent, concurrency, message);
    } catch (KeelException.Invalid e) {
      return Optional.empty();
    }
  }
}
