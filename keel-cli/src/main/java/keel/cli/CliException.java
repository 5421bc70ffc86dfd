package keel.cli;

import java.util.List;

/**
 * A command failed in a way the user should read: the message (and any details, one per line) go
 * to standard error and the process exits with {@link #exitCode()}.
 */
final class CliException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  private final int exitCode;
  private final List<String> details;

  CliException(int exitCode, String message) {
    this(exitCode, message, List.of());
  }

  CliException(int exitCode, String message, List<String> details) {
    super(message);
    this.exitCode = exitCode;
    this.details = List.copyOf(details);
  }

  int exitCode() {
    return exitCode;
  }

  List<String> details() {
    return details;
  }
}
