package keel.cli;

import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel run AGENT MESSAGE}: starts a session. */
@Command(
    name = "run",
    header = "Start a session of an agent with a first message.",
    mixinStandardHelpOptions = true,
    description = {
      "Start a session of an agent with a first message. With --follow, print the agent's turn as it happens (its text, each tool call and result) until it answers; the exit code is 1 if the session fails, is cancelled or waits for a human to resolve a tool call."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel run demo-assistant \"remember that the invoice run is on Fridays\" --follow",
      "  keel run demo-assistant \"what time is it?\" --task     completes after its answer",
      "  keel run demo-assistant \"hello\" -o json"
    })
final class RunCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Mixin FollowOptions wait = new FollowOptions();

  @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
  String agent;

  @Parameters(index = "1", paramLabel = "MESSAGE", description = "The first message.")
  String message;

  @Option(names = {"-f", "--follow"}, description = "Print the agent's turn as it happens, until it answers.")
  boolean follow;

  @Option(names = "--task", description = "Complete the session after its first answer, instead of keeping it open for more messages.")
  boolean task;

  RunCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    KeelClient c = client.connect(io);
    ObjectNode body = KeelClient.JSON.createObjectNode().put("agent", agent).put("message", message).put("task", task);
    JsonNode s = c.post("/v1/sessions", body);
    String id = Text.of(s, "id");
    if (!follow) {
      if (client.json()) {
        io.out().println(Main.pretty(s));
      } else {
        io.out().println(id);
        io.err().println("Started session " + id + " of agent " + Text.of(s, "agent") + " (revision " + Text.of(s, "revision")
            + "). Follow it with `keel events " + id + " --follow`, see it with `keel describe session " + id
            + "`, or send more with `keel send " + id + " \"...\"`.");
      }
      return ExitCodes.OK;
    }
    return new Follower(c, io, client.json(), wait.timeout()).follow(id, 0, Optional.empty());
  }
}
