package keel.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;

/** {@code keel approvals}: the approvals inbox, as a table or JSON, or followed live. */
@Command(
    name = "approvals",
    header = "List the approvals inbox: external calls waiting for a human.",
    mixinStandardHelpOptions = true,
    description = {
      "Lists approvals the caller may view, newest first: pending ones by default. Each names the action (tool and arguments), its value in USD and why it needs approval. Decide with `keel approve ID` or `keel deny ID --reason ...`. With --watch, prints each approval requested, decided or expired as it happens (until interrupted)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel approvals", "  keel approvals --status all --agent invoice-payer -o json", "  keel approvals --watch"})
final class ApprovalsCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Option(names = "--status", paramLabel = "STATUS", description = "pending (default), approved, denied, expired, withdrawn or all.")
  String status = "pending";

  @Option(names = "--agent", paramLabel = "NAME", description = "Only this agent's approvals.")
  String agent;

  @Option(names = "--watch", description = "Follow the notification stream instead of listing.")
  boolean watch;

  ApprovalsCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() throws IOException {
    KeelClient c = client.connect(io);
    if (watch) {
      return watch(c);
    }
    String query = "?status=" + KeelClient.segment(status) + (agent == null ? "" : "&agent=" + KeelClient.segment(agent));
    JsonNode r = c.get("/v1/approvals" + query);
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("ID", "STATUS", "AGENT", "TOOL", "VALUE_USD", "WHY", "EXPIRES");
    for (JsonNode a : r.path("approvals")) {
      t.row(a.path("id").asString(), a.path("status").asString(), a.path("agent").asString(), a.path("tool").asString(),
          a.path("value_usd").asString(), why(a), a.path("expires_at").asString());
    }
    if (t.isEmpty()) {
      io.out().println("no " + (status.equals("all") ? "" : status + " ") + "approvals");
    } else {
      t.print(io.out());
    }
    return ExitCodes.OK;
  }

  static String why(JsonNode a) {
    StringBuilder b = new StringBuilder();
    for (JsonNode r : a.path("reasons")) {
      if (!b.isEmpty()) {
        b.append("; ");
      }
      b.append(r.path("rule").asString()).append(": ").append(r.path("reason").asString());
    }
    return b.toString();
  }

  private int watch(KeelClient c) throws IOException {
    try (InputStream in = c.approvalStream();
        BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      String event = "";
      for (String line; (line = r.readLine()) != null; ) {
        if (line.startsWith("event: ")) {
          event = line.substring(7);
        } else if (line.startsWith("data: ") && !event.isEmpty()) {
          JsonNode a = KeelClient.JSON.readTree(line.substring(6));
          if (client.json()) {
            io.out().println(KeelClient.JSON.createObjectNode().put("type", event).set("approval", a));
          } else {
            io.out().println(event + " " + a.path("id").asString() + " " + a.path("agent").asString() + " " + a.path("tool").asString()
                + " $" + a.path("value_usd").asString()
                + (a.has("decision") ? " by " + a.path("decision").path("by").asString() + ": " + a.path("decision").path("reason").asString()
                    : " (" + why(a) + ")"));
          }
          io.out().flush();
          event = "";
        }
      }
    }
    return ExitCodes.OK;
  }
}
