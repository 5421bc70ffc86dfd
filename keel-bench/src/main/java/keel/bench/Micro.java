package keel.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * {@code keel bench jmh [--quick] [REGEX] [--out DIR]}: runs the JMH micro-benchmarks ({@link
 * HotPaths}, {@link Admission}; a regular expression picks some) in a forked JVM and writes JMH's JSON to {@code
 * DIR/jmh.json} ({@code bench-results} by default). Default: 1 fork, 3 warm-up and 5 measured
 * iterations of 1 s; {@code --quick}: 1 and 2 iterations of 200 ms.
 *
 * <p>Not thread-safe; one run per JVM.
 */
final class Micro {

  private Micro() {}

  /** The benchmark classes, as a regular expression on JMH's benchmark names. */
  static final String CLASSES = "keel\\.bench\\.(" + HotPaths.class.getSimpleName() + "|" + Admission.class.getSimpleName() + ")\\.";

  static int main(String[] args) throws RunnerException, java.io.IOException {
    boolean quick = false;
    String include = CLASSES;
    Path out = Path.of("bench-results");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--quick" -> quick = true;
        case "--out" -> {
          if (++i >= args.length) {
            throw new IllegalArgumentException("--out needs a directory; " + Bench.USAGE);
          }
          out = Path.of(args[i]);
        }
        default -> {
          if (args[i].startsWith("-")) {
            throw new IllegalArgumentException("unknown argument \"" + args[i] + "\"; " + Bench.USAGE);
          }
          include = "^(?=" + CLASSES + ").*" + args[i]; // the regex anywhere in the name, class included
        }
      }
    }
    Files.createDirectories(out);
    ChainedOptionsBuilder o = new OptionsBuilder()
        .include(include)
        .forks(1)
        .jvmArgsAppend("--enable-native-access=ALL-UNNAMED", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .warmupIterations(quick ? 1 : 3)
        .warmupTime(TimeValue.milliseconds(quick ? 200 : 1000))
        .measurementIterations(quick ? 2 : 5)
        .measurementTime(TimeValue.milliseconds(quick ? 200 : 1000))
        .resultFormat(ResultFormatType.JSON)
        .result(out.resolve("jmh.json").toString());
    boolean ran = !new Runner(o.build()).run().isEmpty();
    if (!ran) {
      System.err.println("keel bench jmh: no benchmark matched \"" + include + "\"");
      return 1;
    }
    System.err.println("wrote " + out.resolve("jmh.json"));
    return 0;
  }
}
