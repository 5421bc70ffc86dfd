package keel.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code keel apply -f}: stores descriptors; each changed one becomes a new revision. */
@Command(
    name = "apply",
    header = "Apply descriptors from YAML files; each changed one becomes a new revision.",
    mixinStandardHelpOptions = true,
    description = {
      "Apply descriptors (Agent, McpServer, Policy) from YAML files. Each changed descriptor becomes a new immutable revision; an unchanged one is left alone. An invalid file changes nothing, and every problem in it is printed with its file, document and field. With several files, all of them are checked before any is stored."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel apply -f examples/demo.yaml",
      "  keel apply -f examples/                  every *.yaml and *.yml in it, sorted by name",
      "  cat agent.yaml | keel apply -f -",
      "  keel apply -f examples/ --dry-run        check, store nothing"
    })
final class ApplyCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Option(
      names = {"-f", "--filename"},
      paramLabel = "FILE|DIR|-",
      required = true,
      description = "A YAML file, a directory of them, or - for standard input. Repeatable.")
  List<String> files = new ArrayList<>();

  @Option(names = "--dry-run", description = "Validate and report what would change; store nothing.")
  boolean dryRun;

  ApplyCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    List<Applier.Source> sources = new ArrayList<>();
    for (String f : files) {
      sources.addAll(Applier.read(f, io.in()));
    }
    return new Applier(client.connect(io), io).apply(sources, dryRun, client.json());
  }
}
