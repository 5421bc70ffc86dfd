package keel.testkit.mcp;

/**
 * A tool call that cannot be carried out as asked (unknown invoice, wrong currency, an idempotency
 * key reused with other arguments): answered as a tool result with {@code isError: true} and this
 * message, so the model can read it and correct itself.
 */
final class ToolError extends RuntimeException {
  private static final long serialVersionUID = 1L;

  ToolError(String message) {
    super(message, null, false, false);
  }
}
