package keel.execution;

/**
 * A capability the runtime can execute for an agent. Internal tools (memory, time, skills) run
 * inside the runtime; external ones go through the MCP gateway. Every call is a recorded activity
 * of the session: authorized, started, completed.
 *
 * <p>Implementations must be thread-safe. A tool that throws is caught and its exception becomes an
 * error result the model sees; it never breaks the runtime.
 */
public interface Tool {

  /** The tool as the model sees it. */
  ToolSpec spec();

  /** The capability URI that grants this tool, e.g. {@code internal://memory}. */
  String capability();

  /**
   * Whether running the call twice with the same idempotency key has the same effect as once. Only
   * idempotent calls are re-run after a crash interrupted them; others wait for a human.
   */
  boolean idempotent();

  /**
   * Whether the tool only reads: it changes nothing anywhere. Model calls of an agent whose tools
   * are all read-only may be answered from the response cache, when the agent declares them
   * insensitive.
   */
  default boolean readOnly() {
    return false;
  }

  /**
   * What one call costs in US dollars when the capability is an external action with a price per
   * call (set by the MCP gateway from its server's configuration); zero for free and internal
   * tools. A priced call reserves its price against the agent's {@code usd_per_day} before it
   * runs, and is recorded in the cost ledger as an external action.
   */
  default java.math.BigDecimal pricePerCallUsd() {
    return java.math.BigDecimal.ZERO;
  }

  /** What running a call changes outside Keel, from the MCP server's descriptor for external tools. */
  enum SideEffects {
    /** Changes nothing anywhere. */
    READ_ONLY,
    /** Running it twice with one idempotency key has the effect of running it once. */
    IDEMPOTENT,
    /** Changes something each time it runs. */
    SIDE_EFFECTING;

    /** The descriptor's spelling: {@code read-only}, {@code idempotent}, {@code side-effecting}. */
    public String wireName() {
      return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }
  }

  /**
   * Whether the capability is external: a tool of an upstream MCP server, reached only through the
   * gateway, subject to policy, approval, shadow mode and audit. Internal tools (memory, time,
   * sub-agents) run inside the runtime.
   */
  default boolean external() {
    return false;
  }

  /**
   * The tool's name in the catalog, in policies and in approvals: {@code <server>/<tool>} for an
   * external tool; the model-facing name for an internal one.
   */
  default String catalogName() {
    return spec().name();
  }

  /**
   * The owner of the MCP server an external tool belongs to; empty for internal tools, which belong
   * to no owner. An agent calls only the external tools of its own owner: roles, approvals, budgets
   * and the server's credentials are all scoped to owners.
   */
  default String owner() {
    return "";
  }

  /** The tool's side-effect class; internal tools derive it from {@link #readOnly()} and {@link #idempotent()}. */
  default SideEffects sideEffects() {
    return readOnly() ? SideEffects.READ_ONLY : idempotent() ? SideEffects.IDEMPOTENT : SideEffects.SIDE_EFFECTING;
  }

  /**
   * A CEL expression over {@code args} that gives an action's value in US dollars (the server
   * descriptor's {@code value_usd}, such as {@code args.amount}); compared with the agent's
   * {@code spec.approval.on_action_value_usd_gt}. Empty: the action has no value of its own.
   */
  default java.util.Optional<String> valueUsdExpression() {
    return java.util.Optional.empty();
  }

  /**
   * Runs one call.
   *
   * @param context who calls, for which session, with which idempotency key
   * @param arguments the arguments object as JSON text, as the model wrote it
   * @return the result the model sees (an error result for bad arguments, with what was wrong)
   */
  ToolOutput call(ToolContext context, String arguments);
}
