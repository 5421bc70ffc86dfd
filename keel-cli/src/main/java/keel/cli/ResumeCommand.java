package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel resume SESSION}: lets a session suspended on a model drift go on. */
@Command(
    name = "resume",
    header = "Let a session suspended on a model drift go on.",
    mixinStandardHelpOptions = true,
    description = {
      "When an agent pins its model (spec.model.pinned_revision) with on_drift: suspend and the provider answers with another version, the session waits for a human. Resuming accepts that version for this session: the model call is made again and its answer used. A session that is not suspended on a drift cannot be resumed (exit code 5)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel resume s_0123abcd"})
final class ResumeCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  ResumeCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    JsonNode r = client.connect(io).post("/v1/sessions/" + KeelClient.segment(session) + "/resume", KeelClient.JSON.createObjectNode());
    if (client.json()) {
      io.out().println(Main.pretty(r));
    } else {
      io.out().println("session " + session + " resumes, accepting the model version it was suspended on");
    }
    return ExitCodes.OK;
  }
}
