package keel.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel describe agent NAME|session ID}: one object in detail. */
@Command(
    name = "describe",
    header = "Show one agent or one session in detail.",
    mixinStandardHelpOptions = true,
    description = {
      "Show one agent (its active descriptor, its revisions and any revision pending approval) or one session (status, usage, the conversation and any tool calls waiting for a decision)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel describe agent demo-assistant", "  keel describe session s_0123abcd -o json"})
final class DescribeCommand implements Callable<Integer> {

  private static final int TEXT_CHARS = 300;

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "agent|session", description = "What to describe.")
  String what;

  @Parameters(index = "1", paramLabel = "NAME|ID", description = "The agent's name or the session's id.")
  String name;

  DescribeCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    return switch (what.toLowerCase(Locale.ROOT)) {
      case "agent", "agents" -> agent();
      case "session", "sessions" -> session();
      default ->
          throw new CliException(ExitCodes.USAGE, "cannot describe \"" + what + "\"; expected agent or session");
    };
  }

  private int agent() {
    JsonNode a = client.connect(io).get("/v1/agents/" + KeelClient.segment(name));
    if (client.json()) {
      io.out().println(Main.pretty(a));
      return ExitCodes.OK;
    }
    JsonNode spec = a.path("descriptor").path("spec");
    List<String[]> fields = new ArrayList<>();
    fields.add(new String[] {"Name", Text.of(a, "name")});
    fields.add(new String[] {"Owner", Text.of(a, "owner")});
    fields.add(new String[] {"Revision", Text.of(a, "revision") + " (applied by " + Text.of(a, "applied_by") + " at " + Text.of(a, "applied_at") + ")"});
    String pin = Text.of(a.path("model"), "pinned_revision");
    fields.add(new String[] {"Model", Text.of(a.path("model"), "provider") + "/" + Text.of(a.path("model"), "name") + (pin.isEmpty() ? "" : " pinned " + pin)});
    fields.add(new String[] {"Mode", Text.of(a, "mode")});
    List<String> tools = new ArrayList<>();
    a.path("tools").forEach(t -> tools.add(t.asString()));
    fields.add(new String[] {"Tools", tools.isEmpty() ? "-" : String.join(", ", tools)});
    fields.add(new String[] {"Sessions", GetCommand.counts(a.path("sessions"))});
    String instructions = Text.of(spec, "instructions");
    if (!instructions.isEmpty()) {
      fields.add(new String[] {"Instructions", Text.abbreviate(instructions, TEXT_CHARS)});
    }
    printFields(fields);
    io.out().println();
    io.out().println("Revisions:");
    Table t = new Table("  REVISION", "STATUS", "APPLIED BY", "APPLIED AT", "DECIDED BY");
    for (JsonNode r : a.path("revisions")) {
      t.row("  " + Text.of(r, "revision"), Text.of(r, "status"), Text.of(r, "applied_by"), Text.of(r, "applied_at"),
          r.has("decided_by") ? Text.of(r, "decided_by") : "-");
    }
    t.print(io.out());
    if (a.has("pending")) {
      io.out().println();
      io.out().println("Pending: revision " + Text.of(a.path("pending"), "revision") + " widens what the agent may do:");
      RolloutCommand.printPending(io, name, a.path("pending"));
    }
    return ExitCodes.OK;
  }

  private int session() {
    JsonNode s = client.connect(io).get("/v1/sessions/" + KeelClient.segment(name));
    if (client.json()) {
      io.out().println(Main.pretty(s));
      return ExitCodes.OK;
    }
    JsonNode u = s.path("usage");
    List<String[]> fields = new ArrayList<>();
    fields.add(new String[] {"Session", Text.of(s, "id")});
    fields.add(new String[] {"Agent", Text.of(s, "agent") + " revision " + Text.of(s, "revision") + " (owner " + Text.of(s, "owner") + ")"});
    fields.add(new String[] {"Status", Text.of(s, "status")});
    if (s.has("failure")) {
      fields.add(new String[] {"Failure", Text.of(s, "failure")});
    }
    if (s.has("budget_blocked")) {
      JsonNode b = s.get("budget_blocked");
      fields.add(new String[] {"Waits for", "budget " + Text.of(b, "kind") + ": " + Text.of(b, "used") + " used + "
          + Text.of(b, "reserved") + " reserved of " + Text.of(b, "limit") + ", the next call needs " + Text.of(b, "requested")
          + "; goes on when the window ends at " + Text.of(b, "window_end") + " or the limit is raised"});
    }
    fields.add(new String[] {"Cost", Text.of(s, "cost_usd") + " USD (model calls)"});
    fields.add(new String[] {"Created", Text.of(s, "created_at")});
    fields.add(new String[] {"Updated", Text.of(s, "updated_at")});
    fields.add(new String[] {"Events", Text.of(s, "last_seq")});
    fields.add(new String[] {"Model calls", Text.of(s, "model_calls")});
    fields.add(new String[] {"Tokens", Text.of(u, "input_tokens") + " in / " + Text.of(u, "output_tokens") + " out (cache: "
        + Text.of(u, "cache_read_tokens") + " read, " + Text.of(u, "cache_write_tokens") + " written)"});
    fields.add(new String[] {"Trace", Text.of(s, "trace_id")});
    if (s.has("parent_id")) {
      fields.add(new String[] {"Parent", Text.of(s, "parent_id") + " (root " + Text.of(s, "root_id") + ")"});
    }
    List<String> chain = new ArrayList<>();
    s.path("delegation_chain").forEach(p -> chain.add(p.asString()));
    if (!chain.isEmpty()) {
      fields.add(new String[] {"Acts as", "agent:" + Text.of(s, "agent") + ", delegated by " + String.join(" → ", chain)});
    }
    List<String> grants = new ArrayList<>();
    s.path("grants").forEach(g -> grants.add(g.asString()));
    fields.add(new String[] {"Grants", grants.isEmpty() ? "(none)" : String.join(", ", grants)});
    printFields(fields);
    io.out().println();
    io.out().println("Conversation:");
    for (JsonNode m : s.path("conversation")) {
      String role = Text.of(m, "role");
      switch (role) {
        case "assistant" -> {
          if (!Text.of(m, "text").isEmpty()) {
            io.out().println("  assistant: " + Text.abbreviate(Text.of(m, "text"), TEXT_CHARS));
          }
          for (JsonNode c : m.path("tool_calls")) {
            io.out().println("    → " + Text.of(c, "name") + " " + Text.abbreviate(Text.of(c, "arguments"), 160) + "  [" + Text.of(c, "id") + "]");
          }
        }
        case "tool" ->
            io.out().println("    ← " + Text.of(m, "name") + (m.path("error").asBoolean(false) ? " failed: " : ": ")
                + Text.abbreviate(Text.of(m, "text"), 200));
        default -> io.out().println("  " + role + ": " + Text.abbreviate(Text.of(m, "text"), TEXT_CHARS));
      }
    }
    JsonNode pending = s.path("pending_tool_calls");
    if (!pending.isEmpty()) {
      io.out().println();
      io.out().println("Pending tool calls:");
      Table t = new Table("  CALL", "TOOL", "STATE", "ATTEMPT", "ARGUMENTS");
      for (JsonNode p : pending) {
        String state = Text.of(p, "state") + (p.has("subagent_session_id") ? " (session " + Text.of(p, "subagent_session_id") + ")" : "");
        t.row("  " + Text.of(p, "call_id"), Text.of(p, "name"), state, Text.of(p, "attempt"),
            Text.abbreviate(Text.of(p, "arguments"), 80));
      }
      t.print(io.out());
    }
    return ExitCodes.OK;
  }

  private void printFields(List<String[]> fields) {
    int w = 0;
    for (String[] f : fields) {
      w = Math.max(w, f[0].length());
    }
    for (String[] f : fields) {
      io.out().println(f[0] + ":" + " ".repeat(w - f[0].length() + 2) + f[1]);
    }
  }
}
