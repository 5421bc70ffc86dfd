package keel.data;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * Exact amounts in the store: US dollars are kept as whole units of 10<sup>-{@value #SCALE}</sup>
 * dollar, so that sums in SQL are exact integer sums in every database. Keel's prices produce costs
 * at exactly this scale.
 */
public final class Money {

  /** Decimal places of a dollar the store keeps. */
  public static final int SCALE = 10;

  private Money() {}

  /**
   * A dollar amount as whole units.
   *
   * @throws IllegalArgumentException if it has more than {@value #SCALE} decimal places or is too
   *     large for the store
   */
  static long units(BigDecimal usd) {
    try {
      return usd.setScale(SCALE, RoundingMode.UNNECESSARY).unscaledValue().longValueExact();
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(
          "amount " + usd.toPlainString() + " USD has more than " + SCALE + " decimal places or is too large", e);
    }
  }

  /** Whole units back to dollars, at scale {@value #SCALE}. */
  static BigDecimal dollars(long units) {
    return BigDecimal.valueOf(units, SCALE);
  }
}
