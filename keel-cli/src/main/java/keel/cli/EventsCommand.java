package keel.cli;

import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel events SESSION}: a session's event log. */
@Command(
    name = "events",
    header = "Print a session's event log.",
    mixinStandardHelpOptions = true,
    description = {
      "Print a session's events (its append-only log) after a sequence number. With --follow, print what happens next as it happens, until the agent answers."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel events s_0123abcd", "  keel events s_0123abcd --after 12 -o json", "  keel events s_0123abcd --follow"})
final class EventsCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Mixin FollowOptions wait = new FollowOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  @Option(names = "--after", paramLabel = "N", description = "Only events after sequence number N (default ${DEFAULT-VALUE}).")
  long after = 0;

  @Option(names = "--limit", paramLabel = "N", description = "At most this many events (default ${DEFAULT-VALUE}).")
  int limit = 1000;

  @Option(names = {"-f", "--follow"}, description = "Follow the session from --after until its current turn ends.")
  boolean follow;

  EventsCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    if (after < 0) {
      throw new CliException(ExitCodes.USAGE, "--after: expected a number of 0 or more, got " + after);
    }
    KeelClient c = client.connect(io);
    if (follow) {
      return new Follower(c, io, client.json(), wait.timeout()).follow(session, after, Optional.empty());
    }
    JsonNode r = c.get("/v1/sessions/" + KeelClient.segment(session) + "/events?after=" + after + "&limit=" + limit);
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("SEQ", "AT", "TYPE", "DETAIL");
    for (JsonNode e : r.path("events")) {
      t.row(Text.of(e, "seq"), Text.of(e, "at"), Text.of(e, "type"), Text.abbreviate(detail(Text.of(e, "type"), e.path("data")), 120));
    }
    if (t.isEmpty()) {
      io.err().println("No events after " + after + ".");
    } else {
      t.print(io.out());
    }
    return ExitCodes.OK;
  }

  /** Who an event's action was taken as, and with which token, when it says so. */
  private static String as(JsonNode d) {
    String principal = Text.of(d, "principal");
    String token = Text.of(d, "tokenId");
    return principal.isEmpty() ? "" : " (as " + principal + (token.isEmpty() ? "" : ", token " + token) + ")";
  }

  /** The gist of an event, in a few words. */
  static String detail(String type, JsonNode d) {
    return switch (type) {
      case "SessionStarted" -> "agent " + Text.of(d, "agent") + " r" + Text.of(d, "revision") + " by " + Text.of(d, "principal")
          + (Text.of(d, "parentSessionId").isEmpty() ? "" : " (sub-agent of " + Text.of(d, "parentSessionId") + ")");
      case "InputReceived" -> Text.of(d, "sender") + ": " + Text.of(d, "text");
      case "ModelCalled" -> "step " + Text.of(d, "step") + " " + Text.of(d, "provider") + "/" + Text.of(d, "model") + as(d);
      case "ModelResponded" -> {
        StringBuilder sb = new StringBuilder();
        if (!Text.of(d, "text").isEmpty()) {
          sb.append('"').append(Text.of(d, "text")).append('"');
        }
        for (JsonNode c : d.path("toolCalls")) {
          sb.append(sb.isEmpty() ? "" : " ").append("→ ").append(Text.of(c, "name")).append(' ').append(Text.of(c, "arguments"));
        }
        yield sb.toString();
      }
      case "ToolCallAuthorized" -> Text.of(d, "callId") + " by " + Text.of(d, "capability") + as(d);
      case "ToolCallDenied" -> Text.of(d, "callId") + ": " + Text.of(d, "reason") + as(d);
      case "SubagentSpawned" ->
          Text.of(d, "callId") + " → agent " + Text.of(d, "agent") + " r" + Text.of(d, "revision") + " in session "
              + Text.of(d, "childSessionId") + as(d);
      case "SubagentCompleted" ->
          Text.of(d, "callId") + " ← session " + Text.of(d, "childSessionId") + " " + Text.of(d, "outcome") + ": "
              + Text.content(d.get("result"));
      case "ToolCallStarted" -> Text.of(d, "callId") + " attempt " + Text.of(d, "attempt");
      case "ToolCallCompleted" ->
          Text.of(d, "callId") + (d.path("error").asBoolean(false) ? " failed: " : ": ") + Text.content(d.get("result"));
      case "ToolOutcomeUnknown" -> Text.of(d, "callId") + ": " + Text.of(d, "reason");
      case "ToolOutcomeResolved" -> Text.of(d, "callId") + " " + Text.of(d, "resolution") + " by " + Text.of(d, "decidedBy");
      case "ApprovalRequested" ->
          Text.of(d, "callId") + " " + Text.of(d, "tool") + " $" + Text.of(d, "valueUsd") + " waits for approval "
              + Text.of(d, "approvalId") + " (" + reasons(d) + ") until " + Text.of(d, "expiresAt");
      case "ApprovalDecided" ->
          Text.of(d, "callId") + " " + Text.of(d, "decision") + " by " + Text.of(d, "by") + ": " + Text.of(d, "reason")
              + (Text.of(d, "arguments").isEmpty() ? "" : " with arguments " + Text.of(d, "arguments"));
      case "ActionProposed" ->
          Text.of(d, "callId") + " " + Text.of(d, "tool") + " " + Text.of(d, "arguments") + " proposed (shadow mode), not executed";
      case "SessionCompleted" -> Text.of(d, "answer");
      case "SessionFailed" -> Text.of(d, "code") + ": " + Text.of(d, "message");
      case "SessionCancelled" -> "by " + Text.of(d, "by") + ": " + Text.of(d, "reason");
      case "BudgetBlocked" ->
          Text.of(d, "kind") + ": " + Text.of(d, "used") + " used + " + Text.of(d, "reserved") + " reserved + "
              + Text.of(d, "requested") + " requested > limit " + Text.of(d, "limit") + "; waits until " + Text.of(d, "windowEnd")
              + " or a raised limit";
      case "BudgetUnblocked" -> Text.of(d, "kind") + ": " + Text.of(d, "reason");
      case "BudgetWarning" ->
          Text.of(d, "kind") + " at " + Text.of(d, "used") + " of " + Text.of(d, "limit") + " in the window ending "
              + Text.of(d, "windowEnd");
      default -> d.toString();
    };
  }

  /** An approval request's reasons, each with the rule that gave it. */
  static String reasons(JsonNode d) {
    StringBuilder b = new StringBuilder();
    for (JsonNode r : d.path("reasons")) {
      b.append(b.isEmpty() ? "" : "; ").append(Text.of(r, "rule")).append(": ").append(Text.of(r, "reason"));
    }
    return b.toString();
  }
}
