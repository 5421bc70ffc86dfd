package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel budget AGENT}: an agent's budgets as they stand. */
@Command(
    name = "budget",
    header = "Show an agent's budgets: limit, used, reserved, window.",
    mixinStandardHelpOptions = true,
    description = {
      "For each limit in the agent's spec.budgets: what was spent in the current window (the clock hour for"
          + " calls_per_hour and tool_calls_per_hour, the UTC day for usd_per_day and tokens_per_day), what calls in"
          + " flight have reserved, and the share of the limit. A session that would exceed a limit waits"
          + " (budget_blocked) until the window ends or a raised limit becomes active (keel apply, then keel rollout approve)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel budget invoice-agent", "  keel budget invoice-agent -o json"})
final class BudgetCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
  String agent;

  BudgetCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    JsonNode r = client.connect(io).get("/v1/agents/" + KeelClient.segment(agent) + "/budget");
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("BUDGET", "LIMIT", "USED", "RESERVED", "PERCENT", "WINDOW ENDS");
    for (JsonNode b : r.path("budgets")) {
      t.row(
          Text.of(b, "kind"),
          Text.of(b, "limit"),
          Text.of(b, "used"),
          Text.of(b, "reserved"),
          Text.of(b, "percent") + " %",
          Text.of(b.path("window"), "end"));
    }
    if (t.isEmpty()) {
      io.out().println("Agent " + agent + " (revision " + Text.of(r, "revision") + ") sets no budgets (spec.budgets).");
      return ExitCodes.OK;
    }
    t.print(io.out());
    long blocked = r.path("budget_blocked_sessions").asLong(0);
    if (blocked > 0) {
      io.out().println();
      io.out().println(blocked == 1
          ? "1 session waits for a budget (budget_blocked): it goes on by itself when the window ends, or when the limit"
              + " is raised (keel apply; a raise waits for keel rollout approve)."
          : blocked + " sessions wait for a budget (budget_blocked): they go on by themselves when the window ends, or"
              + " when the limit is raised (keel apply; a raise waits for keel rollout approve).");
    }
    return ExitCodes.OK;
  }
}
