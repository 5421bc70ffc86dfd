package keel.cli;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel get agents|sessions}: lists what the server holds. */
@Command(
    name = "get",
    header = "List agents or sessions.",
    mixinStandardHelpOptions = true,
    description = {
      "List agents (active revision and any pending one, model, mode, sessions by status) or sessions (newest first)."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel get agents",
      "  keel get sessions --agent demo-assistant --status idle --limit 10",
      "  keel get sessions -o json"
    })
final class GetCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "agents|sessions", description = "What to list.")
  String what;

  @Option(names = "--agent", paramLabel = "NAME", description = "Sessions: only this agent's.")
  String agent;

  @Option(
      names = "--status",
      paramLabel = "STATUS",
      description = "Sessions: only those with this status (idle, runnable, running, completed, failed, cancelled, …).")
  String status;

  @Option(names = "--limit", paramLabel = "N", description = "Sessions: at most this many (default ${DEFAULT-VALUE}).")
  int limit = 50;

  GetCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    return switch (what.toLowerCase(Locale.ROOT)) {
      case "agents", "agent" -> agents();
      case "sessions", "session" -> sessions();
      default ->
          throw new CliException(ExitCodes.USAGE, "cannot list \"" + what + "\"; expected agents or sessions");
    };
  }

  private int agents() {
    JsonNode r = client.connect(io).get("/v1/agents");
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("NAME", "OWNER", "REVISION", "MODEL", "MODE", "TOOLS", "SESSIONS");
    for (JsonNode a : r.path("agents")) {
      t.row(
          Text.of(a, "name"),
          Text.of(a, "owner"),
          Text.of(a, "revision") + (a.has("pending") ? " (" + Text.of(a.path("pending"), "revision") + " pending)" : ""),
          Text.of(a.path("model"), "provider") + "/" + Text.of(a.path("model"), "name"),
          Text.of(a, "mode"),
          Integer.toString(a.path("tools").size()),
          counts(a.path("sessions")));
    }
    if (t.isEmpty()) {
      io.err().println("No agents yet. Apply some with: keel apply -f examples/");
    } else {
      t.print(io.out());
    }
    return ExitCodes.OK;
  }

  static String counts(JsonNode sessions) {
    List<String> parts = new ArrayList<>();
    for (var e : sessions.properties()) {
      if (e.getValue().asLong() > 0) {
        parts.add(e.getValue().asLong() + " " + e.getKey());
      }
    }
    return parts.isEmpty() ? "-" : String.join(", ", parts);
  }

  private int sessions() {
    StringBuilder q = new StringBuilder("/v1/sessions?limit=" + limit);
    if (agent != null) {
      q.append("&agent=").append(URLEncoder.encode(agent, StandardCharsets.UTF_8));
    }
    if (status != null) {
      q.append("&status=").append(URLEncoder.encode(status, StandardCharsets.UTF_8));
    }
    JsonNode r = client.connect(io).get(q.toString());
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Instant now = Instant.now();
    Table t = new Table("ID", "AGENT", "REVISION", "STATUS", "EVENTS", "CREATED", "UPDATED");
    for (JsonNode s : r.path("sessions")) {
      t.row(
          Text.of(s, "id"),
          Text.of(s, "agent"),
          Text.of(s, "revision"),
          Text.of(s, "status"),
          Text.of(s, "last_seq"),
          Text.age(Text.of(s, "created_at"), now) + " ago",
          Text.age(Text.of(s, "updated_at"), now) + " ago");
    }
    if (t.isEmpty()) {
      io.err().println("No sessions" + (agent != null || status != null ? " match." : " yet. Start one with: keel run AGENT \"message\" --follow"));
    } else {
      t.print(io.out());
    }
    return ExitCodes.OK;
  }
}
