package keel.execution;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.Objects;

/**
 * How a node prices compute and estimates calls for budgets.
 *
 * @param computeUsdPerSecond what a second of compute costs: the time steps spend running in Keel
 *     and the time tools run, recorded in the cost ledger
 * @param outputTokenEstimate the completion tokens a model call is assumed to produce when its
 *     cost is reserved before the call (the prompt is estimated from its text); a larger estimate
 *     blocks earlier, a smaller one lets calls in flight overspend more
 * @param reservationTtl how long a budget reservation holds when its call is never settled (its
 *     node died)
 */
public record CostSettings(BigDecimal computeUsdPerSecond, long outputTokenEstimate, Duration reservationTtl) {

  /**
   * The default compute price: US$0.00001 per second (US$0.036 an hour), about what one vCPU with
   * 2 GB of memory costs on demand from a public cloud's container service.
   */
  public static final BigDecimal DEFAULT_COMPUTE_USD_PER_SECOND = new BigDecimal("0.00001");

  /** The default completion estimate: 1,024 tokens. */
  public static final long DEFAULT_OUTPUT_TOKEN_ESTIMATE = 1024;

  public CostSettings {
    Objects.requireNonNull(computeUsdPerSecond, "computeUsdPerSecond");
    Objects.requireNonNull(reservationTtl, "reservationTtl");
    if (computeUsdPerSecond.signum() < 0) {
      throw new IllegalArgumentException("computeUsdPerSecond cannot be negative, got " + computeUsdPerSecond.toPlainString());
    }
    if (outputTokenEstimate < 0) {
      throw new IllegalArgumentException("outputTokenEstimate cannot be negative, got " + outputTokenEstimate);
    }
    if (reservationTtl.isNegative() || reservationTtl.isZero()) {
      throw new IllegalArgumentException("reservationTtl must be positive, got " + reservationTtl);
    }
  }

  /** The defaults: US$0.00001 per compute-second, 1,024 output tokens, 10-minute reservations. */
  public static CostSettings defaults() {
    return new CostSettings(
        DEFAULT_COMPUTE_USD_PER_SECOND, DEFAULT_OUTPUT_TOKEN_ESTIMATE, keel.control.Budgets.DEFAULT_RESERVATION_TTL);
  }

  public CostSettings withComputeUsdPerSecond(BigDecimal usd) {
    return new CostSettings(usd, outputTokenEstimate, reservationTtl);
  }

  public CostSettings withOutputTokenEstimate(long tokens) {
    return new CostSettings(computeUsdPerSecond, tokens, reservationTtl);
  }
}
