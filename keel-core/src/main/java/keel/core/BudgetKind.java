package keel.core;

import java.math.BigDecimal;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/**
 * The hard limits an agent's {@code spec.budgets} can set, each counted over a fixed window of UTC
 * time: the clock hour for the per-hour kinds, the UTC day for the per-day ones. A window starts on
 * the hour (or at midnight UTC) and ends where the next one starts; what was spent in a window is
 * never carried into the next.
 */
public enum BudgetKind {
  /** Model calls per clock hour. */
  CALLS_PER_HOUR(ChronoUnit.HOURS, "calls"),
  /** US dollars per UTC day: model tokens and priced external actions. */
  USD_PER_DAY(ChronoUnit.DAYS, "usd"),
  /** Model tokens (input, output and cache, all counted) per UTC day. */
  TOKENS_PER_DAY(ChronoUnit.DAYS, "tokens"),
  /** Tool calls per clock hour. */
  TOOL_CALLS_PER_HOUR(ChronoUnit.HOURS, "tool calls");

  private final ChronoUnit window;
  private final String unit;

  BudgetKind(ChronoUnit window, String unit) {
    this.window = window;
    this.unit = unit;
  }

  /** The name in descriptors, events and the API, e.g. {@code usd_per_day}. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** What the amounts count, for people: {@code calls}, {@code usd}, {@code tokens}, {@code tool calls}. */
  public String unit() {
    return unit;
  }

  /** Whether amounts are money (decimals) rather than counts (whole numbers). */
  public boolean money() {
    return this == USD_PER_DAY;
  }

  /** The start of the window holding {@code at}: the hour, or midnight UTC. */
  public Instant windowStart(Instant at) {
    return at.truncatedTo(window);
  }

  /** The end of the window holding {@code at}, which is the start of the next one. */
  public Instant windowEnd(Instant at) {
    return windowStart(at).plus(1, window);
  }

  /** The limit this kind has in an agent's budgets, if it sets one. */
  public Optional<BigDecimal> limit(AgentDescriptor.Budgets budgets) {
    return switch (this) {
      case CALLS_PER_HOUR -> budgets.callsPerHour().map(BigDecimal::valueOf);
      case USD_PER_DAY -> budgets.usdPerDay();
      case TOKENS_PER_DAY -> budgets.tokensPerDay().map(BigDecimal::valueOf);
      case TOOL_CALLS_PER_HOUR -> budgets.toolCallsPerHour().map(BigDecimal::valueOf);
    };
  }

  /** Parses a wire name such as {@code tokens_per_day}. */
  public static BudgetKind fromWire(String name) {
    for (BudgetKind k : values()) {
      if (k.wireName().equals(name)) {
        return k;
      }
    }
    throw new KeelException.Invalid(
        "unknown budget kind \"" + name + "\"; expected one of "
            + Arrays.stream(values()).map(BudgetKind::wireName).toList());
  }
}
