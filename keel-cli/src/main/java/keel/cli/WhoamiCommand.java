package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import tools.jackson.databind.JsonNode;

/** {@code keel whoami}: who the token stands for, on which server. */
@Command(
    name = "whoami",
    header = "Show who the token stands for: the principal, its roles and the server.",
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {"  keel whoami", "  keel whoami --context staging -o json"})
final class WhoamiCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  WhoamiCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    KeelClient c = client.connect(io);
    JsonNode r = c.get("/v1/whoami");
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    io.out().println(Text.of(r, "principal"));
    io.out().println("  roles:  " + OperatorsCommand.roles(r));
    io.out().println("  server: " + c.url());
    return ExitCodes.OK;
  }
}
