package keel.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import tools.jackson.databind.JsonNode;

/**
 * The {@code keel} command: {@code serve} runs a server; the other commands talk to one over HTTP.
 * Exit codes are in {@link ExitCodes}.
 */
@Command(
    name = "keel",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
      "Keel runs AI agents durably: declare them in YAML, apply them, start sessions, and see what"
          + " they did and why.",
      ""
    },
    commandListHeading = "%nCommands:%n",
    footerHeading = "%n",
    footer = {
      "Getting started:",
      "  ./keel demo                      a server in this process, an agent, a session, its trace",
      "  ./keel serve                     run a server on 127.0.0.1:8420 with its data in ./.keel",
      "  ./keel apply -f examples/        in another terminal, from the same directory",
      "  ./keel run demo-assistant \"remember that the invoice run is on Fridays\" --follow",
      "",
      "Client commands find the server and the token with --server/--token, KEEL_SERVER/KEEL_TOKEN, the"
          + " current context (keel login, keel config), or else the local server and its <data dir>/admin.token.",
      "",
      "Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 cannot reach the server or the token"
          + " was refused, 4 not found, 5 conflict or overloaded."
    })
public final class Main implements Callable<Integer> {

  @Spec CommandSpec spec;

  private final Io io;

  private Main(Io io) {
    this.io = io;
  }

  /** Runs the command line and exits with its exit code. */
  public static void main(String[] args) {
    configureLogging(args);
    int code = run(args, System.in, System.out, System.err, System.getenv());
    System.out.flush();
    System.exit(code);
  }

  /**
   * Runs one command line in this process, reading standard input from {@code System.in}.
   *
   * @return the exit code (see {@link ExitCodes})
   */
  public static int run(String[] args, PrintStream out, PrintStream err, Map<String, String> env) {
    return run(args, System.in, out, err, env);
  }

  /**
   * Runs one command line in this process with the given streams and environment variables, for
   * embedding and for tests.
   *
   * @return the exit code (see {@link ExitCodes})
   */
  public static int run(
      String[] args, InputStream in, PrintStream out, PrintStream err, Map<String, String> env) {
    Io io = new Io(in, out, err, env);
    CommandLine cl = new CommandLine(new Main(io));
    for (Object sub :
        List.of(
            new ServeCommand(io),
            new ApplyCommand(io),
            new GetCommand(io),
            new DescribeCommand(io),
            new RunCommand(io),
            new SendCommand(io),
            new EventsCommand(io),
            new TraceCommand(io),
            new CancelCommand(io),
            new ResumeCommand(io),
            new ResolveCommand(io),
            new DemoCommand(io),
            RolloutCommand.create(io),
            new DiffCommand(io),
            new LoginCommand(io),
            new LogoutCommand(io),
            new ConfigCommand(io),
            new OperatorsCommand(io),
            new WhoamiCommand(io),
            new ToolsCommand(io),
            new CostsCommand(io),
            new AuditCommand(io),
            new BudgetCommand(io),
            new ApprovalsCommand(io),
            new DecideCommand.Approve(io),
            new DecideCommand.Deny(io))) {
      cl.addSubcommand(sub);
    }
    cl.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cl.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
    cl.setCaseInsensitiveEnumValuesAllowed(true);
    cl.setExecutionExceptionHandler(
        (e, command, parsed) -> {
          if (e instanceof CliException c) {
            err.println("keel: " + c.getMessage());
            for (String d : c.details()) {
              err.println("  - " + d);
            }
            return c.exitCode();
          }
          err.println("keel: unexpected error: " + e);
          return ExitCodes.FAILED;
        });
    try {
      return cl.execute(args);
    } finally {
      out.flush();
      err.flush();
    }
  }

  @Override
  public Integer call() {
    spec.commandLine().usage(io.err());
    return ExitCodes.USAGE;
  }

  /** Pretty-printed JSON, as {@code -o json} prints it. */
  static String pretty(JsonNode node) {
    return KeelClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node);
  }

  /**
   * Sets slf4j-simple's levels before anything logs: {@code serve} logs at info, everything else at
   * warn, so client commands print only their results. Settings given with {@code -D} win.
   */
  static void configureLogging(String[] args) {
    String command = "";
    for (String a : args) {
      if (!a.startsWith("-")) {
        command = a;
        break;
      }
    }
    setDefault("org.slf4j.simpleLogger.defaultLogLevel", command.equals("serve") ? "info" : "warn");
    setDefault("org.slf4j.simpleLogger.log.org.eclipse.jetty", "warn");
    setDefault("org.slf4j.simpleLogger.log.io.javalin", "warn");
    setDefault("org.slf4j.simpleLogger.log.org.flywaydb", "warn");
    setDefault("org.slf4j.simpleLogger.log.com.zaxxer.hikari", "warn");
    setDefault("org.slf4j.simpleLogger.showDateTime", "true");
    setDefault("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSZ");
  }

  private static void setDefault(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }

  /** The version from the jar's manifest, or "development build" when run from classes. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Main.class.getPackage().getImplementationVersion();
      return new String[] {"keel " + (v == null ? "(development build)" : v)};
    }
  }
}
