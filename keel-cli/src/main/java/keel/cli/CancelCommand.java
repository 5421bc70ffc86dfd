package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel cancel SESSION}: cancels a session at its next safe point. */
@Command(
    name = "cancel",
    header = "Cancel a session at its next safe point.",
    mixinStandardHelpOptions = true,
    description = {
      "Cancel a session. A running step stops at its next safe point; a session that has already ended cannot be cancelled (exit code 5)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel cancel s_0123abcd --reason \"wrong customer\""})
final class CancelCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  @Option(names = "--reason", paramLabel = "TEXT", description = "Why, recorded in the session's log.")
  String reason;

  CancelCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    ObjectNode body = KeelClient.JSON.createObjectNode();
    if (reason != null) {
      body.put("reason", reason);
    }
    JsonNode r = client.connect(io).post("/v1/sessions/" + KeelClient.segment(session) + "/cancel", body);
    if (client.json()) {
      io.out().println(Main.pretty(r));
    } else {
      io.out().println("session " + session + " is cancelling; it stops at its next safe point");
    }
    return ExitCodes.OK;
  }
}
