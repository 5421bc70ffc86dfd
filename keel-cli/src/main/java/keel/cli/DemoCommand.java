package keel.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import keel.execution.ExecutionSettings;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * {@code keel demo}: starts a server in this process, applies the example agent, runs a session of
 * two messages exactly as {@code keel run --follow} shows it, prints its trace and says what to try
 * next. It needs no network and no model credentials: the example agent's model is scripted.
 */
@Command(
    name = "demo",
    header = "See Keel work in one command, offline.",
    mixinStandardHelpOptions = true,
    description = {
      "See Keel work in one command, offline: start a server in this process, apply the example agent demo-assistant (examples/demo.yaml), ask it to remember something and then to recall it, and print what it did and its trace. The data stays in the data directory, so `keel serve` from the same directory shows the demo's session afterwards."
    },
    footerHeading = "%nExamples:%n",
    footer = {"  ./keel demo", "  ./keel demo --data-dir /tmp/keel-demo"})
final class DemoCommand implements Callable<Integer> {

  static final String AGENT = "demo-assistant";
  static final String REMEMBER = "remember that the invoice run is on Fridays";
  static final String RECALL = "what do you remember about invoices?";

  private final Io io;

  @Option(names = "--data-dir", paramLabel = "DIR", description = "Where the demo server keeps its data (env KEEL_DATA_DIR; default .keel in the current directory).")
  Path dataDir;

  @Option(names = "--examples", paramLabel = "DIR", description = "Where the example descriptors are (default: examples/ beside the keel launcher).")
  Path examples;

  @Option(names = "--all", description = "Apply every example file, not only demo.yaml.")
  boolean all;

  DemoCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    Path dir = examplesDir();
    Path data = io.dataDir(dataDir);
    ExecutionSettings settings = ExecutionSettings.defaults(ServerConfig.nodeName());
    ServerConfig config = new ServerConfig("127.0.0.1", 0, data, true, settings, io.env());
    try (KeelServer server = ServeCommand.start(config)) {
      String token = readToken(server.adminTokenFile());
      KeelClient client = KeelClient.create(server.url(), token);
      io.out().println("== A Keel server is running in this process on " + server.url() + " (data in " + data + ")");
      io.out().println();
      io.out().println("== keel apply -f " + (all ? dir : dir.resolve("demo.yaml")));
      List<Applier.Source> sources = Applier.read((all ? dir : dir.resolve("demo.yaml")).toString(), io.in());
      new Applier(client, io).apply(sources, false, false);
      io.out().println();

      io.out().println("== keel run " + AGENT + " \"" + REMEMBER + "\" --follow");
      ObjectNode start = KeelClient.JSON.createObjectNode().put("agent", AGENT).put("message", REMEMBER);
      String id = Text.of(client.post("/v1/sessions", start), "id");
      Follower follower = new Follower(client, io, false, Duration.ofMinutes(2));
      int code = follower.follow(id, 0, Optional.empty());
      if (code != ExitCodes.OK) {
        return code;
      }
      io.out().println();

      io.out().println("== keel send " + id + " \"" + RECALL + "\" --follow");
      String path = "/v1/sessions/" + KeelClient.segment(id);
      long after = client.get(path).path("last_seq").asLong(0);
      JsonNode in = client.post(path + "/messages", KeelClient.JSON.createObjectNode().put("message", RECALL));
      code = follower.follow(id, after, Optional.of(Text.of(in, "input_id")));
      if (code != ExitCodes.OK) {
        return code;
      }
      io.out().println();

      io.out().println("== keel trace " + id);
      TraceTree.print(client.get(path + "/trace"), io.out());
      io.out().println();

      boolean defaultDir = data.equals(Path.of(ServerConfig.DEFAULT_DATA_DIR).toAbsolutePath().normalize());
      io.out().println("== What to try next");
      if (!defaultDir) {
        io.out().println("  export KEEL_DATA_DIR=" + data + "   (so that serve and the client commands use the demo's data)");
      }
      Table next = new Table("  COMMAND", "WHAT IT DOES");
      next.row("  ./keel serve", "run a server with this data; leave it running, use another terminal in this directory");
      next.row("  ./keel get agents", "the agents and their sessions");
      next.row("  ./keel get sessions", "the sessions, newest first");
      next.row("  ./keel run " + AGENT + " \"remember that the audit is in March\" --follow", "a new session, turn by turn");
      next.row("  ./keel send " + id + " \"" + RECALL + "\" --follow", "more of this conversation");
      next.row("  ./keel trace " + id, "this session's trace");
      next.row("  ./keel apply -f " + dir, "every example (they warn about what this server cannot reach yet)");
      next.row("  ./keel --help", "every command; ./keel COMMAND --help for its options");
      next.print(io.out());
      return ExitCodes.OK;
    }
  }

  private Path examplesDir() {
    if (examples != null) {
      if (!Files.isDirectory(examples)) {
        throw new CliException(ExitCodes.USAGE, "--examples " + examples + ": no such directory");
      }
      return examples.toAbsolutePath().normalize();
    }
    String home = System.getProperty("keel.home");
    if (home != null && Files.isRegularFile(Path.of(home, "examples", "demo.yaml"))) {
      return Path.of(home, "examples").toAbsolutePath().normalize();
    }
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("examples").resolve("demo.yaml"))) {
        return p.resolve("examples");
      }
    }
    throw new CliException(
        ExitCodes.USAGE,
        "cannot find the example agents (examples/demo.yaml beside the keel launcher); pass --examples DIR");
  }

  private static String readToken(Path file) {
    try {
      return Files.readString(file, StandardCharsets.UTF_8).strip();
    } catch (IOException e) {
      throw new CliException(ExitCodes.FAILED, "cannot read the demo server's token " + file + ": " + e.getMessage());
    }
  }
}
