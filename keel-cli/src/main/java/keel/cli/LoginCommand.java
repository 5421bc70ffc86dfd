package keel.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;

/** {@code keel login}: checks a token with the server and saves it as a named context. */
@Command(
    name = "login",
    header = "Save a server and an API token as a context, after checking the token.",
    mixinStandardHelpOptions = true,
    description = {
      "Ask the server who the token stands for (GET /v1/whoami); if it accepts the token, save the server"
          + " and the token as a context in the config file and make it the current context. Client commands"
          + " then use it unless --server/--token, KEEL_SERVER/KEEL_TOKEN or --context say otherwise. Nothing is"
          + " saved when the server refuses the token.",
      "",
      "The config file is KEEL_CONFIG, else $XDG_CONFIG_HOME/keel/config.yaml, else ~/.config/keel/config.yaml;"
          + " it is written with mode 0600 because it holds tokens."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel login --server https://keel.example.com --token -       reads the token from standard input",
      "  keel login --server http://127.0.0.1:8420 --token keel_... --context local"
    })
final class LoginCommand implements Callable<Integer> {

  private final Io io;

  @Option(
      names = "--server",
      paramLabel = "URL",
      description = "The Keel server (env KEEL_SERVER; default http://127.0.0.1:8420, or the port in KEEL_PORT).")
  String server;

  @Option(
      names = "--token",
      paramLabel = "TOKEN|-",
      required = true,
      description = "The API token, or - to read it from standard input (keeps it out of the shell's history).")
  String token;

  @Option(
      names = "--context",
      paramLabel = "NAME",
      description = "The context's name (default: the server's host and port). An existing context of that name is replaced.")
  String context;

  LoginCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    String url = ClientOptions.withoutTrailingSlash(
        server != null && !server.isBlank() ? server.strip() : io.env("KEEL_SERVER").orElseGet(() -> ClientOptions.localServer(io)));
    String t = token.equals("-") ? readToken() : token.strip();
    if (t.isEmpty()) {
      throw new CliException(ExitCodes.USAGE, "the token is empty; pass --token TOKEN or --token - with the token on standard input");
    }
    KeelClient client = KeelClient.create(url, t);
    String name = CliConfig.checkedName(context != null ? context : defaultName(url));
    JsonNode me = client.get("/v1/whoami");
    String principal = Text.of(me, "principal");
    List<String> roles = new ArrayList<>();
    me.path("roles").forEach(r -> roles.add(r.asString()));
    CliConfig config = CliConfig.load(io);
    config.with(new CliConfig.Context(name, url, t, principal)).withCurrent(name).save();
    io.out().println("Logged in to " + url + " as " + principal + " (" + (roles.isEmpty() ? "no roles" : String.join(", ", roles)) + ").");
    io.out().println("Context \"" + name + "\" is saved in " + config.file() + " and is now the current context.");
    return ExitCodes.OK;
  }

  /** {@code host:port} of a URL (the port only when the URL names one). */
  static String defaultName(String url) {
    URI u = URI.create(url);
    return u.getHost().replace("[", "").replace("]", "") + (u.getPort() >= 0 ? ":" + u.getPort() : "");
  }

  private String readToken() {
    try {
      String line = new BufferedReader(new InputStreamReader(io.in(), StandardCharsets.UTF_8)).readLine();
      return line == null ? "" : line.strip();
    } catch (IOException e) {
      throw new CliException(ExitCodes.USAGE, "cannot read the token from standard input: " + e.getMessage());
    }
  }
}
