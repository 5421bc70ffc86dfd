package keel.cli;

import java.io.Console;
import java.lang.reflect.Method;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;

/** {@code keel diff AGENT REV1 REV2}: what changed between two revisions, and whether it widens. */
@Command(
    name = "diff",
    header = "Show what changed between two revisions of an agent.",
    mixinStandardHelpOptions = true,
    description = {
      "A unified diff of two revisions' descriptors in canonical YAML (sorted keys, defaults filled in, so only real changes show), after a summary of whether going from REV1 to REV2 widens what the agent may do, and why. Coloured when standard output is a terminal (see --color; NO_COLOR turns colour off)."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel diff invoice-reconciler 3 4",
      "  keel diff invoice-reconciler 3 4 --color never > change.diff",
      "  keel diff invoice-reconciler 3 4 -o json"
    })
final class DiffCommand implements Callable<Integer> {

  /** When to colour the diff. */
  enum Color {
    auto,
    always,
    never
  }

  private static final String RESET = "\u001B[0m";
  private static final String BOLD = "\u001B[1m";
  private static final String RED = "\u001B[31m";
  private static final String GREEN = "\u001B[32m";
  private static final String CYAN = "\u001B[36m";
  private static final String YELLOW = "\u001B[33m";

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "AGENT", description = "The agent's name.")
  String agent;

  @Parameters(index = "1", paramLabel = "REV1", description = "The revision to compare from.")
  int from;

  @Parameters(index = "2", paramLabel = "REV2", description = "The revision to compare with it.")
  int to;

  @Option(
      names = "--color",
      paramLabel = "WHEN",
      description = "Colour the diff: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}: when standard output is a terminal).")
  Color color = Color.auto;

  DiffCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    JsonNode d = client.connect(io).get(RolloutCommand.agentPath(agent) + "/diff?from=" + from + "&to=" + to);
    if (client.json()) {
      io.out().println(Main.pretty(d));
      return ExitCodes.OK;
    }
    boolean colour = switch (color) {
      case always -> true;
      case never -> false;
      case auto -> io.env("NO_COLOR").isEmpty() && io.out() == System.out && stdoutIsTerminal();
    };
    String head = "agent/" + agent + " revision " + from + " (" + Text.of(d.path("from"), "status") + ") → revision " + to
        + " (" + Text.of(d.path("to"), "status") + ")";
    if (d.path("widens").asBoolean(false)) {
      io.out().println(paint(colour, BOLD + YELLOW, head + ": widens what the agent may do"));
      d.path("widening").forEach(w -> io.out().println("  widens: " + w.asString()));
    } else {
      io.out().println(paint(colour, BOLD, head + ": does not widen what the agent may do"));
    }
    d.path("narrowing").forEach(n -> io.out().println("  other:  " + n.asString()));
    String diff = Text.of(d, "diff");
    if (diff.isEmpty()) {
      io.out().println("The two revisions have the same descriptor.");
      return ExitCodes.OK;
    }
    io.out().println();
    for (String line : diff.split("\n", -1)) {
      if (line.isEmpty()) {
        continue;
      }
      String style =
          line.startsWith("+++") || line.startsWith("---") ? BOLD
              : line.startsWith("@@") ? CYAN
              : line.startsWith("+") ? GREEN
              : line.startsWith("-") ? RED
              : "";
      io.out().println(paint(colour, style, line));
    }
    return ExitCodes.OK;
  }

  private static String paint(boolean colour, String style, String text) {
    return colour && !style.isEmpty() ? style + text + RESET : text;
  }

  /**
   * Whether this process's standard output is a terminal. From JDK 22 {@code System.console()} may
   * exist when it is not, and {@code Console.isTerminal()} tells; on JDK 21 a console exists only
   * when standard input and output are both terminals.
   */
  static boolean stdoutIsTerminal() {
    Console c = System.console();
    if (c == null) {
      return false;
    }
    try {
      Method isTerminal = Console.class.getMethod("isTerminal");
      return (boolean) isTerminal.invoke(c);
    } catch (NoSuchMethodException e) {
      return true;
    } catch (ReflectiveOperationException e) {
      return false;
    }
  }
}
