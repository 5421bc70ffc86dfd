package keel.execution;

import java.math.BigDecimal;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test {@link ToolProvider} with an external action that has a price per call, as the MCP gateway
 * will set for priced capabilities: {@code charge_card} ({@code internal://payments}, US$0.25 a
 * call, not idempotent). It counts its calls so tests can tell whether a blocked call ran.
 */
final class PricedToolProvider implements ToolProvider {

  static final BigDecimal PRICE = new BigDecimal("0.25");
  static final AtomicInteger CALLS = new AtomicInteger();

  @Override
  public List<Tool> tools(ToolEnvironment environment) {
    return List.of(
        new Tool() {
          @Override
          public ToolSpec spec() {
            return new ToolSpec("charge_card", "Charges a card.", "{\"type\":\"object\"}");
          }

          @Override
          public String capability() {
            return "internal://payments";
          }

          @Override
          public boolean idempotent() {
            return false;
          }

          @Override
          public BigDecimal pricePerCallUsd() {
            return PRICE;
          }

          @Override
          public ToolOutput call(ToolContext context, String arguments) {
            CALLS.incrementAndGet();
            return ToolOutput.ok("charged");
          }
        });
  }
}
