package keel.cli;

import java.time.Duration;
import picocli.CommandLine.Option;

/** How long a command that follows a session waits. */
final class FollowOptions {

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      description = "With --follow: stop following after this many seconds; the session goes on (default ${DEFAULT-VALUE}).")
  long timeoutSeconds = 600;

  Duration timeout() {
    if (timeoutSeconds < 1) {
      throw new CliException(ExitCodes.USAGE, "--timeout: expected at least 1 second, got " + timeoutSeconds);
    }
    return Duration.ofSeconds(timeoutSeconds);
  }
}
