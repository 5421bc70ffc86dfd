/**
 * Whole-system benchmarks of Keel: durable steps per second against a framework-free floor, bytes
 * stored per step, and the memory cost of suspended sessions. {@link keel.bench.Bench} is the entry
 * point; everything else is package-private.
 */
package keel.bench;
