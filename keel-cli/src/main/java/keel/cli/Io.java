package keel.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Where a command writes and what it reads from its environment. Commands never touch {@code
 * System.out}, {@code System.err} or {@code System.getenv()} directly, so tests run them in-process.
 *
 * @param in the standard input (for {@code apply -f -})
 * @param out the output for results (tables, JSON)
 * @param err the output for problems and progress
 * @param env the environment variables
 */
record Io(InputStream in, PrintStream out, PrintStream err, Map<String, String> env) {

  Io {
    Objects.requireNonNull(in, "in");
    Objects.requireNonNull(out, "out");
    Objects.requireNonNull(err, "err");
    env = Map.copyOf(env);
  }

  /** A non-blank environment variable. */
  Optional<String> env(String name) {
    return Optional.ofNullable(env.get(name)).map(String::strip).filter(s -> !s.isEmpty());
  }

  /** The data directory: the option, else {@code KEEL_DATA_DIR}, else {@code .keel} here. */
  Path dataDir(Path option) {
    if (option != null) {
      return option.toAbsolutePath().normalize();
    }
    return Path.of(env("KEEL_DATA_DIR").orElse(keel.server.ServerConfig.DEFAULT_DATA_DIR))
        .toAbsolutePath()
        .normalize();
  }
}
