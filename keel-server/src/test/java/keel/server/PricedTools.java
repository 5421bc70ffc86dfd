package keel.server;

import java.math.BigDecimal;
import java.util.List;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolEnvironment;
import keel.execution.ToolOutput;
import keel.execution.ToolProvider;
import keel.execution.ToolSpec;

/**
 * A test tool provider, found by the server through {@code META-INF/services}, with one priced
 * external action: {@code charge_card} ({@code internal://payments}), US$0.25 a call.
 */
public final class PricedTools implements ToolProvider {

  static final BigDecimal PRICE = new BigDecimal("0.25");

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
            return ToolOutput.ok("charged");
          }
        });
  }
}
