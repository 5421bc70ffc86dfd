package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code keel logout}: forgets a context and its token. */
@Command(
    name = "logout",
    header = "Remove a context (by default the current one) and its token from the config file.",
    mixinStandardHelpOptions = true,
    description = {
      "Remove a context and its token from the config file. The token itself keeps working on the server"
          + " until an admin revokes it (keel operators revoke NAME) or issues a new one (keel operators rotate NAME)."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel logout", "  keel logout staging"})
final class LogoutCommand implements Callable<Integer> {

  private final Io io;

  @Parameters(index = "0", arity = "0..1", paramLabel = "NAME", description = "The context to remove (default: the current one).")
  String name;

  LogoutCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    CliConfig config = CliConfig.load(io);
    String target = name;
    if (target == null) {
      target = config.current().orElseThrow(() -> new CliException(
          ExitCodes.USAGE, "there is no current context to log out of; name one: keel logout NAME" + ClientOptions.knownContexts(config)));
    }
    if (config.context(target).isEmpty()) {
      String t = target;
      throw new CliException(ExitCodes.NOT_FOUND, "there is no context named \"" + t + "\" in " + config.file() + ClientOptions.knownContexts(config));
    }
    boolean wasCurrent = config.current().filter(target::equals).isPresent();
    config.without(target).save();
    io.out().println("Context \"" + target + "\" and its token are removed from " + config.file() + "."
        + (wasCurrent ? " No context is current now." : ""));
    return ExitCodes.OK;
  }
}
