package keel.execution;

import java.util.Objects;

/**
 * How the execution plane of one node runs.
 *
 * @param node this node's name, stamped on the events it appends
 * @param maxConcurrentSteps the most sessions running a step at once on this node
 * @param admissionCapacity the most sessions waiting for a slot before new work gets 429
 * @param maxInputChars the longest message accepted
 * @param leaseTtl when present, each session runs under a lease with this time to live, so that
 *     several nodes can share one store (see {@link keel.data.LeaseStore}); empty: this node is the
 *     store's only one and runs sessions without leases
 * @param clusterAdmissionCapacity with leases (several nodes on one store): the most sessions with
 *     work that no node runs yet, counted in the store over the whole cluster, before new work gets
 *     429 on any node
 */
public record ExecutionSettings(
    String node,
    int maxConcurrentSteps,
    int admissionCapacity,
    int maxInputChars,
    java.util.Optional<java.time.Duration> leaseTtl,
    int clusterAdmissionCapacity) {

  /** Settings with the cluster's admission capacity equal to this node's. */
  public ExecutionSettings(
      String node, int maxConcurrentSteps, int admissionCapacity, int maxInputChars, java.util.Optional<java.time.Duration> leaseTtl) {
    this(node, maxConcurrentSteps, admissionCapacity, maxInputChars, leaseTtl, admissionCapacity);
  }

  /** The lease time to live {@code keel serve} uses on a shared store unless told otherwise. */
  public static final java.time.Duration DEFAULT_LEASE_TTL = java.time.Duration.ofSeconds(10);

  /** Settings of a node that runs sessions without leases. */
  public ExecutionSettings(String node, int maxConcurrentSteps, int admissionCapacity, int maxInputChars) {
    this(node, maxConcurrentSteps, admissionCapacity, maxInputChars, java.util.Optional.empty());
  }

  public ExecutionSettings {
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(leaseTtl, "leaseTtl");
    if (leaseTtl.isPresent()
        && (leaseTtl.get().compareTo(java.time.Duration.ofMillis(300)) < 0 || leaseTtl.get().compareTo(java.time.Duration.ofHours(1)) > 0)) {
      throw new IllegalArgumentException("the lease time to live must be between 300 ms and 1 hour, got " + leaseTtl.get());
    }
    if (maxConcurrentSteps < 1) {
      throw new IllegalArgumentException("maxConcurrentSteps must be at least 1, got " + maxConcurrentSteps);
    }
    if (admissionCapacity < 1) {
      throw new IllegalArgumentException("admissionCapacity must be at least 1, got " + admissionCapacity);
    }
    if (clusterAdmissionCapacity < 1) {
      throw new IllegalArgumentException("clusterAdmissionCapacity must be at least 1, got " + clusterAdmissionCapacity);
    }
    if (maxInputChars < 1) {
      throw new IllegalArgumentException("maxInputChars must be at least 1, got " + maxInputChars);
    }
  }

  /** The same settings, running sessions under leases with time to live {@code ttl}. */
  public ExecutionSettings withLeaseTtl(java.time.Duration ttl) {
    return new ExecutionSettings(node, maxConcurrentSteps, admissionCapacity, maxInputChars, java.util.Optional.of(ttl), clusterAdmissionCapacity);
  }

  /** The same settings with another cluster-wide admission capacity. */
  public ExecutionSettings withClusterAdmissionCapacity(int capacity) {
    return new ExecutionSettings(node, maxConcurrentSteps, admissionCapacity, maxInputChars, leaseTtl, capacity);
  }

  /** Defaults for one node: 4,096 running sessions, 20,000 waiting, messages up to 256 KiB. */
  public static ExecutionSettings defaults(String node) {
    return new ExecutionSettings(node, 4096, 20_000, 256 * 1024);
  }
}
