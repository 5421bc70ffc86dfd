package keel.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * {@code keel rollout history|approve|reject|undo}: an agent's revisions and the approval of
 * changes that widen what it may do.
 */
@Command(
    name = "rollout",
    header = "Revisions of an agent: history, approve, reject, undo.",
    mixinStandardHelpOptions = true,
    description = {
      "Every applied change to an agent is an immutable revision. A change that widens what the agent may do (new tools, higher budgets or approval thresholds, more autonomy, another model, …) waits as a pending revision until an admin or an approver for the agent's owner, other than whoever applied it, approves it; everything else is active at once. See docs/agents.md."
    },
    commandListHeading = "%nCommands:%n",
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel rollout history invoice-reconciler",
      "  keel rollout approve invoice-reconciler 4",
      "  keel rollout reject invoice-reconciler 4 --reason \"the budget is ten times what we agreed\"",
      "  keel rollout undo invoice-reconciler                  back to the revision active before this one",
      "  keel rollout undo invoice-reconciler --to-revision 2",
      "  keel diff invoice-reconciler 3 4                      what a revision changes"
    })
final class RolloutCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  private final Io io;

  private RolloutCommand(Io io) {
    this.io = io;
  }

  /** The command with its subcommands, ready to add to {@code keel}. */
  static CommandLine create(Io io) {
    CommandLine cl = new CommandLine(new RolloutCommand(io));
    cl.addSubcommand(new History(io));
    cl.addSubcommand(new Approve(io));
    cl.addSubcommand(new Reject(io));
    cl.addSubcommand(new Undo(io));
    return cl;
  }

  @Override
  public Integer call() {
    spec.commandLine().usage(io.err());
    return ExitCodes.USAGE;
  }

  static String agentPath(String agent) {
    return "/v1/agents/" + KeelClient.segment(agent);
  }

  /** Prints why a revision widens, and how to decide it when it is pending. */
  static void printPending(Io io, String agent, JsonNode r) {
    for (JsonNode w : r.path("widening")) {
      io.out().println("  widens: " + w.asString());
    }
    if (Text.of(r, "status").equals("pending")) {
      String n = Text.of(r, "revision");
      io.out().println("  it becomes active once someone other than " + Text.of(r, "applied_by")
          + " approves it: keel rollout approve " + agent + " " + n + " (or: keel rollout reject " + agent + " " + n
          + " --reason ...)");
    }
  }

  @Command(
      name = "history",
      header = "List an agent's revisions: status, who applied and decided each, and why.",
      mixinStandardHelpOptions = true,
      description = {
        "Every revision of an agent, oldest first: active (in force), pending (waits for approval), rejected, or superseded; who applied it and when, who decided it, and the changes that made it widen."
      },
      footerHeading = "%nExamples:%n",
      footer = {"  keel rollout history invoice-reconciler", "  keel rollout history invoice-reconciler -o json"})
  static final class History implements Callable<Integer> {
    private final Io io;

    @Mixin ClientOptions client = new ClientOptions();

    @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
    String agent;

    History(Io io) {
      this.io = io;
    }

    @Override
    public Integer call() {
      JsonNode h = client.connect(io).get(agentPath(agent) + "/revisions");
      if (client.json()) {
        io.out().println(Main.pretty(h));
        return ExitCodes.OK;
      }
      Table t = new Table("REVISION", "STATUS", "APPLIED BY", "APPLIED AT", "DECIDED BY", "NOTE");
      List<JsonNode> widened = new ArrayList<>();
      for (JsonNode r : h.path("revisions")) {
        t.row(
            Text.of(r, "revision"),
            Text.of(r, "status"),
            Text.of(r, "applied_by"),
            Text.of(r, "applied_at"),
            r.has("decided_by") ? Text.of(r, "decided_by") : "-",
            note(r));
        if (r.path("widens").asBoolean(false)) {
          widened.add(r);
        }
      }
      t.print(io.out());
      for (JsonNode r : widened) {
        io.out().println();
        io.out().println("Revision " + Text.of(r, "revision") + " widens what the agent may do:");
        printPending(io, agent, r);
      }
      return ExitCodes.OK;
    }

    private static String note(JsonNode r) {
      List<String> parts = new ArrayList<>();
      if (r.has("rollback_of")) {
        parts.add("rollback to " + Text.of(r, "rollback_of"));
      }
      switch (Text.of(r, "status")) {
        case "pending" -> parts.add("waits for approval");
        case "rejected" -> parts.add("rejected: " + Text.abbreviate(Text.of(r, "reason"), 80));
        case "superseded" -> {
          if (!r.has("activated_at")) {
            parts.add(Text.abbreviate(Text.of(r, "reason"), 80));
          }
        }
        default -> {}
      }
      if (r.path("widens").asBoolean(false) && !Text.of(r, "status").equals("pending")) {
        parts.add("widened");
      }
      return parts.isEmpty() ? "-" : String.join("; ", parts);
    }
  }

  @Command(
      name = "approve",
      header = "Approve an agent's pending revision: it becomes active.",
      mixinStandardHelpOptions = true,
      description = {
        "Approve a pending revision. You need the role approver (or admin) for the agent's owner, and you may not approve a revision you applied yourself (exit code 3). A revision that is not pending is a conflict (exit code 5)."
      },
      footerHeading = "%nExamples:%n",
      footer = {"  keel rollout approve invoice-reconciler 4"})
  static final class Approve implements Callable<Integer> {
    private final Io io;

    @Mixin ClientOptions client = new ClientOptions();

    @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
    String agent;

    @Parameters(index = "1", paramLabel = "REV", description = "The pending revision's number.")
    int revision;

    Approve(Io io) {
      this.io = io;
    }

    @Override
    public Integer call() {
      JsonNode r = client.connect(io).post(agentPath(agent) + "/revisions/" + revision + "/approve", KeelClient.JSON.createObjectNode());
      if (client.json()) {
        io.out().println(Main.pretty(r));
      } else {
        io.out().println("agent/" + agent + " revision " + revision + " approved by " + Text.of(r, "decided_by")
            + "; it is now active");
      }
      return ExitCodes.OK;
    }
  }

  @Command(
      name = "reject",
      header = "Reject an agent's pending revision; the active one stays in force.",
      mixinStandardHelpOptions = true,
      description = {
        "Reject a pending revision, saying why. You need the role approver (or admin) for the agent's owner; whoever applied the revision may also reject (withdraw) it. A revision that is not pending is a conflict (exit code 5)."
      },
      footerHeading = "%nExamples:%n",
      footer = {"  keel rollout reject invoice-reconciler 4 --reason \"the budget is ten times what we agreed\""})
  static final class Reject implements Callable<Integer> {
    private final Io io;

    @Mixin ClientOptions client = new ClientOptions();

    @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
    String agent;

    @Parameters(index = "1", paramLabel = "REV", description = "The pending revision's number.")
    int revision;

    @Option(names = "--reason", paramLabel = "TEXT", required = true, description = "Why, recorded with the revision.")
    String reason;

    Reject(Io io) {
      this.io = io;
    }

    @Override
    public Integer call() {
      ObjectNode body = KeelClient.JSON.createObjectNode().put("reason", reason);
      JsonNode r = client.connect(io).post(agentPath(agent) + "/revisions/" + revision + "/reject", body);
      if (client.json()) {
        io.out().println(Main.pretty(r));
      } else {
        io.out().println("agent/" + agent + " revision " + revision + " rejected by " + Text.of(r, "decided_by")
            + "; the active revision stays in force");
      }
      return ExitCodes.OK;
    }
  }

  @Command(
      name = "undo",
      header = "Roll an agent back to an earlier revision, as a new revision.",
      mixinStandardHelpOptions = true,
      description = {
        "Roll back to the revision that was active before the active one, or to --to-revision N. The rollback is a new revision with that revision's descriptor, reviewed like any apply: if it widens what the agent may do (the earlier revision allowed more), it waits for approval by someone else. Needs the role admin for the agent's owner."
      },
      footerHeading = "%nExamples:%n",
      footer = {"  keel rollout undo invoice-reconciler", "  keel rollout undo invoice-reconciler --to-revision 2"})
  static final class Undo implements Callable<Integer> {
    private final Io io;

    @Mixin ClientOptions client = new ClientOptions();

    @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
    String agent;

    @Option(names = "--to-revision", paramLabel = "N", description = "The revision to return to (default: the one active before the active one).")
    Integer toRevision;

    Undo(Io io) {
      this.io = io;
    }

    @Override
    public Integer call() {
      ObjectNode body = KeelClient.JSON.createObjectNode();
      if (toRevision != null) {
        body.put("revision", toRevision);
      }
      JsonNode r = client.connect(io).post(agentPath(agent) + "/rollback", body);
      if (client.json()) {
        io.out().println(Main.pretty(r));
        return ExitCodes.OK;
      }
      String n = Text.of(r, "revision");
      switch (Text.of(r, "result")) {
        case "unchanged" ->
            io.out().println("agent/" + agent + " unchanged: revision " + n + " (" + Text.of(r, "status")
                + ") already has that descriptor");
        case "pending_approval" -> {
          io.out().println("agent/" + agent + " rollback to revision " + Text.of(r, "rollback_of") + " is revision " + n
              + ", pending approval");
          printPending(io, agent, r);
        }
        default ->
            io.out().println("agent/" + agent + " rolled back to revision " + Text.of(r, "rollback_of") + " as revision " + n
                + " (active)");
      }
      if (r.has("superseded_revision")) {
        io.out().println("  pending revision " + Text.of(r, "superseded_revision") + " was superseded and will not be decided");
      }
      return ExitCodes.OK;
    }
  }
}
