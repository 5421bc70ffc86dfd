package keel.cli;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;

/** {@code keel costs}: the cost ledger's totals over a time range, grouped. */
@Command(
    name = "costs",
    header = "Show what agents cost, from the cost ledger.",
    mixinStandardHelpOptions = true,
    description = {
      "Totals of the cost ledger over a time range, grouped by agent, owner, day and kind (model_input, model_output,"
          + " model_cache_write, model_cache_read, external_action, compute_step, compute_tool), in exact US dollars."
          + " Times are UTC; a date in --to includes that day. Without --from and --to: the last seven days."
          + " Only the owners your token may view are counted."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel costs",
      "  keel costs --by agent,kind",
      "  keel costs --from 2026-11-01 --to 2026-11-30 --by owner,day",
      "  keel costs --agent invoice-agent --by kind -o json"
    })
final class CostsCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Option(names = "--from", paramLabel = "WHEN", description = "First day (2026-11-21) or instant (2026-11-21T09:30:00Z) counted.")
  String from;

  @Option(names = "--to", paramLabel = "WHEN", description = "Last day counted, or the instant the range ends.")
  String to;

  @Option(names = "--by", paramLabel = "DIMS", description = "Group by a comma-separated list of agent, owner, day, kind (default: agent).")
  String by = "agent";

  @Option(names = "--agent", paramLabel = "NAME", description = "Only this agent's costs.")
  String agent;

  @Option(names = "--owner", paramLabel = "OWNER", description = "Only the costs of agents with this owner.")
  String owner;

  CostsCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    for (String d : by.split(",")) {
      if (!List.of("agent", "owner", "day", "kind", "").contains(d.strip())) {
        throw new CliException(ExitCodes.USAGE, "--by: unknown dimension \"" + d.strip() + "\"; expected a comma-separated list of agent, owner, day, kind");
      }
    }
    StringBuilder q = new StringBuilder("/v1/costs?group_by=").append(encode(by));
    append(q, "from", from);
    append(q, "to", to);
    append(q, "agent", agent);
    append(q, "owner", owner);
    JsonNode r = client.connect(io).get(q.toString());
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    List<String> dims = new ArrayList<>();
    r.path("group_by").forEach(d -> dims.add(d.asString()));
    boolean byKind = dims.contains("kind");
    List<String> headers = new ArrayList<>();
    dims.forEach(d -> headers.add(d.toUpperCase(java.util.Locale.ROOT)));
    if (byKind) {
      headers.add("QUANTITY");
    }
    headers.add("USD");
    headers.add("ENTRIES");
    Table t = new Table(headers.toArray(String[]::new));
    for (JsonNode row : r.path("rows")) {
      List<String> cells = new ArrayList<>();
      dims.forEach(d -> cells.add(Text.of(row, d)));
      if (byKind) {
        cells.add(Text.of(row, "quantity") + " " + Text.of(row, "unit"));
      }
      cells.add(Text.of(row, "usd"));
      cells.add(Text.of(row, "entries"));
      t.row(cells.toArray(String[]::new));
    }
    String range = Text.of(r, "from") + " to " + Text.of(r, "to");
    if (t.isEmpty()) {
      io.err().println("No costs from " + range + ".");
      return ExitCodes.OK;
    }
    t.print(io.out());
    JsonNode total = r.path("total");
    io.out().println();
    io.out().println("Total: " + Text.of(total, "usd") + " USD in " + Text.of(total, "entries") + " entries, " + range + ".");
    return ExitCodes.OK;
  }

  private static void append(StringBuilder q, String name, String value) {
    if (value != null && !value.isBlank()) {
      q.append('&').append(name).append('=').append(encode(value));
    }
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
