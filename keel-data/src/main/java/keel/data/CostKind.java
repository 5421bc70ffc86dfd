package keel.data;

import java.util.Arrays;
import java.util.Locale;
import keel.core.KeelException;

/**
 * What a cost ledger entry is for. Each kind counts one quantity in its own unit and its price in
 * US dollars.
 */
public enum CostKind {
  /** Prompt tokens not read from a cache. */
  MODEL_INPUT("tokens"),
  /** Completion tokens. */
  MODEL_OUTPUT("tokens"),
  /** Prompt tokens written to the provider's cache. */
  MODEL_CACHE_WRITE("tokens"),
  /** Prompt tokens read from the provider's cache. */
  MODEL_CACHE_READ("tokens"),
  /** Calls of a capability that has a price per call (an external action). */
  EXTERNAL_ACTION("calls"),
  /** Milliseconds a session's steps spent running in Keel: neither waiting for a model nor in a tool. */
  COMPUTE_STEP("ms"),
  /** Milliseconds tool calls ran (in-process tools and tool processes alike). */
  COMPUTE_TOOL("ms");

  private final String unit;

  CostKind(String unit) {
    this.unit = unit;
  }

  /** The name in the API and the store, e.g. {@code model_cache_read}. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The unit of the quantity: {@code tokens}, {@code calls} or {@code ms}. */
  public String unit() {
    return unit;
  }

  /** Whether this is one of the four model token kinds. */
  public boolean model() {
    return this == MODEL_INPUT || this == MODEL_OUTPUT || this == MODEL_CACHE_WRITE || this == MODEL_CACHE_READ;
  }

  public static CostKind fromWire(String name) {
    for (CostKind k : values()) {
      if (k.wireName().equals(name)) {
        return k;
      }
    }
    throw new KeelException.Invalid(
        "unknown cost kind \"" + name + "\"; expected one of " + Arrays.stream(values()).map(CostKind::wireName).toList());
  }
}
