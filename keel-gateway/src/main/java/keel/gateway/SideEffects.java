package keel.gateway;

import java.util.Locale;

/** What calling a tool changes outside Keel, as its server's descriptor declares it. */
public enum SideEffects {
  /** Changes nothing anywhere. */
  READ_ONLY,
  /** Running it twice with one idempotency key has the effect of running it once. */
  IDEMPOTENT,
  /** Changes something each time it runs; the default for a tool the descriptor does not list. */
  SIDE_EFFECTING;

  /** The descriptor's spelling: {@code read-only}, {@code idempotent}, {@code side-effecting}. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** The value of a descriptor's spelling (validated by the descriptor parser). */
  public static SideEffects ofWireName(String wire) {
    return valueOf(wire.toUpperCase(Locale.ROOT).replace('-', '_'));
  }
}
