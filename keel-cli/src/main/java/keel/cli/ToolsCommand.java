package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel tools}: the MCP gateway's tool catalog. */
@Command(
    name = "tools",
    header = "Show the MCP gateway's tool catalog: each tool's version, schema hash, side effects and price.",
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {"  keel tools", "  keel tools invoices", "  keel tools -o json"})
final class ToolsCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(arity = "0..1", paramLabel = "SERVER", description = "Only the tools of this McpServer.")
  String server;

  ToolsCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    KeelClient c = client.connect(io);
    JsonNode r = c.get("/v1/tools" + (server == null ? "" : "?server=" + java.net.URLEncoder.encode(server, java.nio.charset.StandardCharsets.UTF_8)));
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("TOOL", "MODEL NAME", "VERSION", "HASH", "SIDE EFFECTS", "PRICE", "CHANGED");
    for (JsonNode e : r.get("tools")) {
      t.row(
          Text.of(e, "name"),
          Text.of(e, "model_name"),
          Text.of(e, "version"),
          Text.abbreviate(Text.of(e, "hash"), 19),
          Text.of(e, "side_effects"),
          "$" + Text.of(e, "price_usd_per_call"),
          e.path("changed").asBoolean() ? "yes, at " + Text.of(e, "changed_at") : "");
    }
    if (t.isEmpty()) {
      io.out().println("no tools" + (server == null ? "" : " of server " + server));
    } else {
      t.print(io.out());
    }
    for (JsonNode s : r.get("servers")) {
      if (s.has("last_error") || !s.path("problems").isEmpty()) {
        io.out().println();
        io.out().println("server " + Text.of(s, "name") + ": " + (s.has("last_error") ? Text.of(s, "last_error") : "running"));
        for (JsonNode p : s.path("problems")) {
          io.out().println("  " + p.asString());
        }
      }
    }
    return ExitCodes.OK;
  }
}
