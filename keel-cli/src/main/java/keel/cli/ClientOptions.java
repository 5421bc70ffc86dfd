package keel.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;
import keel.server.ServerConfig;
import picocli.CommandLine.Option;

/**
 * The options every client command shares: which server, which token, how to print.
 *
 * <p>Where the server and the token come from, first found wins: {@code --server}/{@code --token};
 * {@code KEEL_SERVER}/{@code KEEL_TOKEN}; the context named by {@code --context}, else the current
 * context of the config file ({@code keel login}); the local server ({@code 127.0.0.1}, its port
 * from {@code KEEL_PORT}) and its data directory's admin token. A context's token is only ever sent
 * to that context's server: when the server comes from a flag or the environment and is another
 * one, the context's token is not used.
 */
final class ClientOptions {

  /** How results are printed. */
  enum Output {
    table,
    json
  }

  @Option(
      names = "--server",
      paramLabel = "URL",
      description =
          "The Keel server to talk to (env KEEL_SERVER; default: the context's server, else"
              + " http://127.0.0.1:8420 or the port in KEEL_PORT).")
  String server;

  @Option(
      names = "--token",
      paramLabel = "TOKEN",
      description =
          "The API token (env KEEL_TOKEN; default: the context's token, else the admin token of the local"
              + " server, read from <data dir>/admin.token).")
  String token;

  @Option(
      names = "--context",
      paramLabel = "NAME",
      description = "Use this context of the config file (see keel login) instead of the current one.")
  String context;

  @Option(
      names = "--data-dir",
      paramLabel = "DIR",
      description =
          "The local server's data directory, where its admin token is (env KEEL_DATA_DIR; default"
              + " .keel in the current directory).")
  Path dataDir;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "FORMAT",
      description = "How to print results: ${COMPLETION-CANDIDATES} (default: table).")
  Output output = Output.table;

  boolean json() {
    return output == Output.json;
  }

  /** The server's base URL, without a trailing slash. */
  String serverUrl(Io io) {
    String url;
    if (server != null && !server.isBlank()) {
      url = server.strip();
    } else if (io.env("KEEL_SERVER").isPresent()) {
      url = io.env("KEEL_SERVER").get();
    } else {
      url = selectedContext(io).map(CliConfig.Context::server).orElseGet(() -> localServer(io));
    }
    return withoutTrailingSlash(url);
  }

  static String localServer(Io io) {
    return "http://127.0.0.1:" + io.env("KEEL_PORT").orElse(Integer.toString(ServerConfig.DEFAULT_PORT));
  }

  static String withoutTrailingSlash(String url) {
    String u = url;
    while (u.endsWith("/")) {
      u = u.substring(0, u.length() - 1);
    }
    return u;
  }

  /**
   * The context these options select: the one named by {@code --context}, else the config file's
   * current one; none when the server and the token both come from flags or the environment.
   */
  Optional<CliConfig.Context> selectedContext(Io io) {
    if (selected == null) {
      selected = loadContext(io);
    }
    return selected;
  }

  /** The context once looked up (the config file is read at most once per command). */
  private Optional<CliConfig.Context> selected;

  private Optional<CliConfig.Context> loadContext(Io io) {
    boolean serverGiven = (server != null && !server.isBlank()) || io.env("KEEL_SERVER").isPresent();
    boolean tokenGiven = (token != null && !token.isBlank()) || io.env("KEEL_TOKEN").isPresent();
    if (context == null && serverGiven && tokenGiven) {
      return Optional.empty();
    }
    CliConfig config = CliConfig.load(io);
    if (context != null) {
      return Optional.of(config.context(context).orElseThrow(() -> new CliException(
          ExitCodes.NOT_FOUND,
          "there is no context named \"" + context + "\" in " + config.file() + knownContexts(config))));
    }
    if (config.current().isEmpty()) {
      return Optional.empty();
    }
    String current = config.current().get();
    return Optional.of(config.context(current).orElseThrow(() -> new CliException(
        ExitCodes.USAGE,
        "the current context \"" + current + "\" is not defined in " + config.file()
            + "; choose another with keel config use-context NAME, or log in again with keel login")));
  }

  static String knownContexts(CliConfig config) {
    return config.contexts().isEmpty()
        ? " (it has none yet; create one with keel login --server URL --token TOKEN)"
        : " (it has " + String.join(", ", config.sorted().stream().map(CliConfig.Context::name).toList()) + ")";
  }

  /** The token: the option, the environment, the context (for its own server), the local token file. */
  String token(Io io) {
    if (token != null && !token.isBlank()) {
      return token.strip();
    }
    if (io.env("KEEL_TOKEN").isPresent()) {
      return io.env("KEEL_TOKEN").get();
    }
    Optional<CliConfig.Context> ctx = selectedContext(io);
    if (ctx.isPresent() && withoutTrailingSlash(ctx.get().server()).equals(serverUrl(io))) {
      return ctx.get().token();
    }
    Path file = io.dataDir(dataDir).resolve("admin.token");
    try {
      String t = Files.readString(file, StandardCharsets.UTF_8).strip();
      if (!t.isEmpty()) {
        return t;
      }
      throw new CliException(
          ExitCodes.UNREACHABLE,
          "the token file " + file + " is empty. " + howToGetToken(file));
    } catch (NoSuchFileException e) {
      throw new CliException(
          ExitCodes.UNREACHABLE, "no API token found (there is no " + file + "). " + howToGetToken(file));
    } catch (IOException e) {
      throw new CliException(
          ExitCodes.UNREACHABLE, "cannot read the token file " + file + ": " + e + ". " + howToGetToken(file));
    }
  }

  private static String howToGetToken(Path looked) {
    return "Log in with keel login --server URL --token TOKEN, pass --token TOKEN, or set KEEL_TOKEN. A server"
        + " started with `keel serve` writes its admin token to <data dir>/admin.token: run this command in the"
        + " directory where you ran `keel serve`, or pass --data-dir DIR (or set KEEL_DATA_DIR) to point at its"
        + " data directory (looked in "
        + looked.getParent()
        + ").";
  }

  /** A client for the server these options name. */
  KeelClient connect(Io io) {
    return KeelClient.create(serverUrl(io), token(io));
  }
}
