package keel.execution;

import java.math.BigDecimal;
import java.util.Optional;
import keel.gateway.CallMeta;
import keel.gateway.CallResult;
import keel.gateway.CatalogEntry;
import keel.gateway.Gateway;

/**
 * A tool of the MCP gateway's catalog as the step executor sees it: one version of one upstream
 * tool, called through the gateway with the session's trace context and idempotency key in the
 * request's {@code _meta}.
 *
 * <p>Immutable and thread-safe.
 */
final class GatewayTool implements Tool {

  private final Gateway gateway;
  private final CatalogEntry entry;
  private final ToolSpec spec;

  GatewayTool(Gateway gateway, CatalogEntry entry) {
    this.gateway = gateway;
    this.entry = entry;
    this.spec = new ToolSpec(entry.modelName(), entry.description(), entry.inputSchema());
  }

  @Override
  public ToolSpec spec() {
    return spec;
  }

  /** {@code mcp://gateway/<server>/<tool>@<version>}: a pin to another version does not cover it. */
  @Override
  public String capability() {
    return entry.capability();
  }

  @Override
  public boolean idempotent() {
    return entry.sideEffects() != keel.gateway.SideEffects.SIDE_EFFECTING;
  }

  @Override
  public boolean readOnly() {
    return entry.sideEffects() == keel.gateway.SideEffects.READ_ONLY;
  }

  @Override
  public BigDecimal pricePerCallUsd() {
    return entry.priceUsdPerCall();
  }

  @Override
  public boolean external() {
    return true;
  }

  @Override
  public String catalogName() {
    return entry.catalogName();
  }

  @Override
  public String owner() {
    return entry.owner();
  }

  @Override
  public SideEffects sideEffects() {
    return switch (entry.sideEffects()) {
      case READ_ONLY -> SideEffects.READ_ONLY;
      case IDEMPOTENT -> SideEffects.IDEMPOTENT;
      case SIDE_EFFECTING -> SideEffects.SIDE_EFFECTING;
    };
  }

  @Override
  public Optional<String> valueUsdExpression() {
    return entry.valueUsd();
  }

  /** The catalog entry this tool stands for. */
  CatalogEntry entry() {
    return entry;
  }

  @Override
  public ToolOutput call(ToolContext context, String arguments) {
    CallResult r = gateway.call(
        entry.catalogName(), arguments,
        new CallMeta(context.sessionId(), context.principal(), context.idempotencyKey(), context.traceparent()));
    return new ToolOutput(r.text(), r.error());
  }
}
