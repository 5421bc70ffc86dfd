package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel config}: the contexts of the config file. */
@Command(
    name = "config",
    header = "Show and choose the contexts (server and token) the CLI uses.",
    mixinStandardHelpOptions = true,
    description = {
      "Contexts are saved by keel login in the config file (KEEL_CONFIG, else $XDG_CONFIG_HOME/keel/config.yaml,"
          + " else ~/.config/keel/config.yaml). Client commands use the current context unless --server/--token,"
          + " KEEL_SERVER/KEEL_TOKEN or --context NAME say otherwise."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  keel config get-contexts", "  keel config use-context staging", "  keel config current-context"})
final class ConfigCommand implements Callable<Integer> {

  private final Io io;

  @Spec CommandSpec spec;

  ConfigCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    spec.commandLine().usage(io.err());
    return ExitCodes.USAGE;
  }

  @Command(name = "get-contexts", mixinStandardHelpOptions = true, header = "List the contexts; * marks the current one. Tokens are never shown.")
  int getContexts(
      @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", description = "How to print: ${COMPLETION-CANDIDATES} (default: table).")
          ClientOptions.Output output) {
    CliConfig config = CliConfig.load(io);
    if (output == ClientOptions.Output.json) {
      ObjectNode root = KeelClient.JSON.createObjectNode();
      config.current().ifPresent(c -> root.put("current_context", c));
      ArrayNode arr = root.putArray("contexts");
      for (CliConfig.Context c : config.sorted()) {
        arr.addObject().put("name", c.name()).put("server", c.server()).put("principal", c.principal());
      }
      io.out().println(Main.pretty(root));
      return ExitCodes.OK;
    }
    if (config.contexts().isEmpty()) {
      io.err().println("No contexts in " + config.file() + " yet. Create one with: keel login --server URL --token TOKEN");
      return ExitCodes.OK;
    }
    Table t = new Table("CURRENT", "NAME", "SERVER", "PRINCIPAL");
    for (CliConfig.Context c : config.sorted()) {
      t.row(config.current().filter(c.name()::equals).isPresent() ? "*" : "", c.name(), c.server(), c.principal());
    }
    t.print(io.out());
    return ExitCodes.OK;
  }

  @Command(name = "use-context", mixinStandardHelpOptions = true, header = "Make a context the current one.")
  int useContext(@Parameters(paramLabel = "NAME", description = "The context's name.") String name) {
    CliConfig config = CliConfig.load(io);
    if (config.context(name).isEmpty()) {
      throw new CliException(ExitCodes.NOT_FOUND, "there is no context named \"" + name + "\" in " + config.file() + ClientOptions.knownContexts(config));
    }
    config.withCurrent(name).save();
    io.out().println("Switched to context \"" + name + "\" (" + config.context(name).get().server() + ").");
    return ExitCodes.OK;
  }

  @Command(name = "current-context", mixinStandardHelpOptions = true, header = "Print the current context's name.")
  int currentContext() {
    CliConfig config = CliConfig.load(io);
    if (config.current().isEmpty()) {
      throw new CliException(ExitCodes.FAILED, "no context is current in " + config.file()
          + "; choose one with keel config use-context NAME, or create one with keel login");
    }
    io.out().println(config.current().get());
    return ExitCodes.OK;
  }
}
