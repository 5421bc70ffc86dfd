package keel.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import keel.server.ServerConfig;
import picocli.CommandLine.Option;

/** The options every client command shares: which server, which token, how to print. */
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
          "The Keel server to talk to (env KEEL_SERVER; default http://127.0.0.1:8420, or the port in"
              + " KEEL_PORT).")
  String server;

  @Option(
      names = "--token",
      paramLabel = "TOKEN",
      description =
          "The API token (env KEEL_TOKEN; default: the admin token of the local server, read from"
              + " <data dir>/admin.token).")
  String token;

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
    String url =
        server != null && !server.isBlank()
            ? server.strip()
            : io.env("KEEL_SERVER")
                .orElseGet(
                    () ->
                        "http://127.0.0.1:"
                            + io.env("KEEL_PORT").orElse(Integer.toString(ServerConfig.DEFAULT_PORT)));
    while (url.endsWith("/")) {
      url = url.substring(0, url.length() - 1);
    }
    return url;
  }

  /** The token from the option, the environment, or the local server's token file. */
  String token(Io io) {
    if (token != null && !token.isBlank()) {
      return token.strip();
    }
    if (io.env("KEEL_TOKEN").isPresent()) {
      return io.env("KEEL_TOKEN").get();
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
    return "Pass --token TOKEN or set KEEL_TOKEN. A server started with `keel serve` writes its admin"
        + " token to <data dir>/admin.token: run this command in the directory where you ran `keel"
        + " serve`, or pass --data-dir DIR (or set KEEL_DATA_DIR) to point at its data directory"
        + " (looked in "
        + looked.getParent()
        + ").";
  }

  /** A client for the server these options name. */
  KeelClient connect(Io io) {
    return KeelClient.create(serverUrl(io), token(io));
  }
}
