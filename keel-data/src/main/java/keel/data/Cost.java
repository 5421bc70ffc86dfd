package keel.data;

import java.math.BigDecimal;
import java.util.Objects;

/**
 * A cost to record in the ledger with the events of an {@link Append}. The store attributes it to
 * the session's agent, owner and root session and stamps it with the append's time, so an entry
 * always agrees with the events it is written with.
 *
 * @param seq the sequence number of the event that records what was spent (for compute, the last
 *     event of the append)
 * @param kind what was spent
 * @param quantity how much, in the kind's unit (tokens, calls, milliseconds); not negative
 * @param usd what it cost in US dollars; not negative, at most {@value Money#SCALE} decimal places
 * @param detail what it was spent on: {@code openai/gpt-4o}, a tool's name
 */
public record Cost(long seq, CostKind kind, long quantity, BigDecimal usd, String detail) {
  public Cost {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(usd, "usd");
    Objects.requireNonNull(detail, "detail");
    if (quantity < 0) {
      throw new IllegalArgumentException("a cost's quantity cannot be negative, got " + quantity);
    }
    if (usd.signum() < 0) {
      throw new IllegalArgumentException("a cost cannot be negative, got " + usd.toPlainString());
    }
    Money.units(usd); // checks the scale
  }
}
