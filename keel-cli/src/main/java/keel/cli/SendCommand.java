package keel.cli;

import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel send SESSION MESSAGE}: sends a message to a session. */
@Command(
    name = "send",
    header = "Send a message to a session.",
    mixinStandardHelpOptions = true,
    description = {
      "Send a message to a session. The server stores it before it answers; if the session is busy, the message waits for the current step (or as the agent's on_busy says). With --follow, print the turn this message starts until the agent answers."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel send s_0123abcd \"what do you remember about invoices?\" --follow"})
final class SendCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Mixin FollowOptions wait = new FollowOptions();

  @Parameters(index = "0", paramLabel = "SESSION", description = "The session's id.")
  String session;

  @Parameters(index = "1", paramLabel = "MESSAGE", description = "The message.")
  String message;

  @Option(names = {"-f", "--follow"}, description = "Print the turn this message starts, until the agent answers.")
  boolean follow;

  SendCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    KeelClient c = client.connect(io);
    String path = "/v1/sessions/" + KeelClient.segment(session);
    long after = follow ? c.get(path).path("last_seq").asLong(0) : 0;
    ObjectNode body = KeelClient.JSON.createObjectNode().put("message", message);
    JsonNode in = c.post(path + "/messages", body);
    if (!follow) {
      if (client.json()) {
        io.out().println(Main.pretty(in));
      } else {
        io.out().println("message " + Text.of(in, "input_id") + " stored for session " + session);
      }
      return ExitCodes.OK;
    }
    return new Follower(c, io, client.json(), wait.timeout()).follow(session, after, Optional.of(Text.of(in, "input_id")));
  }
}
