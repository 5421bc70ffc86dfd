package keel.execution;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Test external tools, as the MCP gateway would provide them, for the policy enforcement point:
 * {@code bank_pay} ({@code bank/pay}, side-effecting, not idempotent, value {@code args.amount})
 * and {@code bank_balance} ({@code bank/balance}, read-only). Every call that ran is recorded with
 * its arguments, so tests can tell what was executed and in which order. Shared through this
 * module's test-jar: keel-server's and keel-cli's tests register it in {@code META-INF/services}.
 * Thread-safe.
 */
public final class ApprovalToolProvider implements ToolProvider {

  /** Every call that ran, as {@code <tool> <arguments>}, over every instance, in order. */
  public static final ConcurrentLinkedQueue<String> EXECUTED = new ConcurrentLinkedQueue<>();

  /** Creates the provider; it is found through {@code ServiceLoader}, which needs this. */
  public ApprovalToolProvider() {}

  @Override
  public List<Tool> tools(ToolEnvironment environment) {
    return List.of(
        external("bank_pay", "bank/pay", Tool.SideEffects.SIDE_EFFECTING,
            "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"},\"to\":{\"type\":\"string\"}},"
                + "\"required\":[\"amount\"]}", Optional.of("args.amount")),
        external("bank_balance", "bank/balance", Tool.SideEffects.READ_ONLY, "{\"type\":\"object\"}", Optional.empty()));
  }

  private static Tool external(String name, String catalogName, Tool.SideEffects effects, String schema, Optional<String> value) {
    return new Tool() {
      @Override
      public ToolSpec spec() {
        return new ToolSpec(name, "Test external tool " + catalogName + ".", schema);
      }

      @Override
      public String capability() {
        return "mcp://gateway/" + catalogName;
      }

      @Override
      public boolean idempotent() {
        return effects != SideEffects.SIDE_EFFECTING;
      }

      @Override
      public boolean readOnly() {
        return effects == SideEffects.READ_ONLY;
      }

      @Override
      public boolean external() {
        return true;
      }

      @Override
      public String catalogName() {
        return catalogName;
      }

      @Override
      public SideEffects sideEffects() {
        return effects;
      }

      @Override
      public Optional<String> valueUsdExpression() {
        return value;
      }

      @Override
      public ToolOutput call(ToolContext context, String arguments) {
        EXECUTED.add(catalogName + " " + arguments);
        return ToolOutput.ok(catalogName + " done: " + arguments);
      }
    };
  }
}
