package keel.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Applies descriptor files through {@code POST /v1/apply}, one request per file so the server's
 * errors name the file. With several files, every file is first checked with a dry run, and
 * nothing is stored unless all of them are valid.
 */
final class Applier {

  /** One file's YAML and the name the server's messages use for it. */
  record Source(String name, String yaml) {}

  private final KeelClient client;
  private final Io io;

  Applier(KeelClient client, Io io) {
    this.client = client;
    this.io = io;
  }

  /** Reads {@code -} (standard input), a file, or every {@code *.yaml}/{@code *.yml} in a directory. */
  static List<Source> read(String arg, InputStream stdin) {
    try {
      if (arg.equals("-")) {
        return List.of(new Source("stdin", new String(stdin.readAllBytes(), StandardCharsets.UTF_8)));
      }
      Path p = Path.of(arg);
      if (Files.isDirectory(p)) {
        List<Path> files;
        try (Stream<Path> s = Files.list(p)) {
          files =
              s.filter(Files::isRegularFile)
                  .filter(f -> {
                    String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
                    return n.endsWith(".yaml") || n.endsWith(".yml");
                  })
                  .sorted()
                  .toList();
        }
        if (files.isEmpty()) {
          throw new CliException(ExitCodes.USAGE, "the directory " + arg + " holds no *.yaml or *.yml files");
        }
        List<Source> out = new ArrayList<>();
        for (Path f : files) {
          out.add(new Source(f.toString(), Files.readString(f, StandardCharsets.UTF_8)));
        }
        return out;
      }
      if (!Files.exists(p)) {
        throw new CliException(ExitCodes.USAGE, "-f " + arg + ": no such file or directory");
      }
      return List.of(new Source(arg, Files.readString(p, StandardCharsets.UTF_8)));
    } catch (IOException e) {
      throw new CliException(ExitCodes.USAGE, "-f " + arg + ": cannot read it: " + e.getMessage());
    }
  }

  /** Applies the sources; prints one line per descriptor (or the JSON); returns the exit code. */
  int apply(List<Source> sources, boolean dryRun, boolean json) {
    if (sources.size() > 1 && !dryRun) {
      List<String> problems = new ArrayList<>();
      int code = ExitCodes.OK;
      for (Source s : sources) {
        try {
          send(s, true);
        } catch (CliException e) {
          if (e.exitCode() != ExitCodes.FAILED) {
            throw e;
          }
          code = ExitCodes.FAILED;
          problems.add(e.getMessage());
          problems.addAll(e.details());
        }
      }
      if (code != ExitCodes.OK) {
        throw new CliException(
            ExitCodes.FAILED, "nothing was applied: " + problems.size() + " problem(s) in the files", problems);
      }
    }
    ArrayNode all = KeelClient.JSON.createArrayNode();
    for (Source s : sources) {
      JsonNode response = send(s, dryRun);
      if (json) {
        ObjectNode o = (ObjectNode) response.deepCopy();
        o.put("source", s.name());
        all.add(sources.size() == 1 ? response : o);
        continue;
      }
      for (JsonNode r : response.path("results")) {
        String result = Text.of(r, "result");
        boolean pending = Text.of(r, "status").equals("pending");
        String revision = "revision " + Text.of(r, "revision") + (pending && result.equals("unchanged") ? ", pending approval" : "");
        io.out().println(
            Text.of(r, "kind").toLowerCase(Locale.ROOT) + "/" + Text.of(r, "name") + " " + result.replace('_', ' ')
                + " (" + revision + ")" + (dryRun ? " (dry run)" : ""));
        if (result.equals("pending_approval")) {
          if (dryRun) {
            r.path("widening").forEach(w -> io.out().println("  widens: " + w.asString()));
          } else {
            RolloutCommand.printPending(io, Text.of(r, "name"), r);
          }
        }
        if (r.has("superseded_revision")) {
          io.out().println("  pending revision " + Text.of(r, "superseded_revision") + " was superseded and will not be decided");
        }
        for (JsonNode w : r.path("warnings")) {
          io.out().println("  warning: " + w.asString());
        }
      }
    }
    if (json) {
      io.out().println(Main.pretty(sources.size() == 1 ? all.get(0) : all));
    }
    return ExitCodes.OK;
  }

  private JsonNode send(Source s, boolean dryRun) {
    ObjectNode body = KeelClient.JSON.createObjectNode();
    body.put("yaml", s.yaml());
    body.put("source", s.name());
    body.put("dry_run", dryRun);
    return client.post("/v1/apply", body);
  }
}
