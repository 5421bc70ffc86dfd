package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel resolve SESSION CALL_ID succeeded|failed|retry}: decides an unknown tool outcome. */
@Command(
    name = "resolve",
    header = "Decide a tool call whose outcome a crash made unknown.",
    mixinStandardHelpOptions = true,
    description = {
      "Say what became of a tool call whose outcome is unknown (it started before a crash and its tool is not idempotent, so Keel did not run it again). Check whether it happened, then: succeeded  it happened; the model is told --result failed     it did not happen; the model is told --result retry      run it again A call that is not waiting for a decision is a conflict (exit code 5)."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel resolve s_0123abcd call_1_0 succeeded --result \"payment 4711 scheduled\"",
      "  keel resolve s_0123abcd call_1_0 retry"
    })
final class ResolveCommand implements Callable<Integer> {

  /** The decisions a human can make. */
  enum Resolution {
    succeeded,
    failed,
    retry
  }

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  @Parameters(index = "1", paramLabel = "CALL_ID", description = "The tool call's id, as `keel describe session` shows it.")
  String callId;

  @Parameters(index = "2", paramLabel = "RESOLUTION", description = "One of: ${COMPLETION-CANDIDATES}.")
  Resolution resolution;

  @Option(names = "--result", paramLabel = "TEXT", description = "What the model is told the call returned (succeeded, failed).")
  String result;

  ResolveCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    ObjectNode body = KeelClient.JSON.createObjectNode().put("call_id", callId).put("resolution", resolution.name());
    if (result != null) {
      body.put("result", result);
    }
    JsonNode r = client.connect(io).post("/v1/sessions/" + KeelClient.segment(session) + "/resolve", body);
    if (client.json()) {
      io.out().println(Main.pretty(r));
    } else {
      io.out().println("call " + callId + " of session " + session + " resolved as " + resolution
          + "; the session goes on. Follow it with `keel events " + session + " --follow`.");
    }
    return ExitCodes.OK;
  }
}
