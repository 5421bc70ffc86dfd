package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel trace SESSION}: the session's spans as a tree. */
@Command(
    name = "trace",
    header = "Print a session's trace as a tree with timings.",
    mixinStandardHelpOptions = true,
    description = {
      "Print a session's trace as a tree: the session, one span per turn, and in each turn its model calls (tokens, tool calls) and tool calls (arguments, decision, result), with durations in milliseconds. Failed spans are marked ✗ ERROR."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel trace s_0123abcd", "  keel trace s_0123abcd -o json"})
final class TraceCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  TraceCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    JsonNode trace = client.connect(io).get("/v1/sessions/" + KeelClient.segment(session) + "/trace");
    if (client.json()) {
      io.out().println(Main.pretty(trace));
    } else {
      TraceTree.print(trace, io.out());
    }
    return ExitCodes.OK;
  }
}
