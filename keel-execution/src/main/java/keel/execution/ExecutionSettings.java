package keel.execution;

import java.util.Objects;

/**
 * How the execution plane of one node runs.
 *
 * @param node this node's name, stamped on the events it appends
 * @param maxConcurrentSteps the most sessions running a step at once on this node
 * @param admissionCapacity the most sessions waiting for a slot before new work gets 429
 * @param maxInputChars the longest message accepted
 */
public record ExecutionSettings(
    String node, int maxConcurrentSteps, int admissionCapacity, int maxInputChars) {

  public ExecutionSettings {
    Objects.requireNonNull(node, "node");
    if (maxConcurrentSteps < 1) {
      throw new IllegalArgumentException("maxConcurrentSteps must be at least 1, got " + maxConcurrentSteps);
    }
    if (admissionCapacity < 1) {
      throw new IllegalArgumentException("admissionCapacity must be at least 1, got " + admissionCapacity);
    }
    if (maxInputChars < 1) {
      throw new IllegalArgumentException("maxInputChars must be at least 1, got " + maxInputChars);
    }
  }

  /** Defaults for one node: 4,096 running sessions, 20,000 waiting, messages up to 256 KiB. */
  public static ExecutionSettings defaults(String node) {
    return new ExecutionSettings(node, 4096, 20_000, 256 * 1024);
  }
}
