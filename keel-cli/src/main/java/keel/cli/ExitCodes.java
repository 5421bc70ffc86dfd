package keel.cli;

/** The exit codes of the {@code keel} command, the same for every command. */
public final class ExitCodes {

  /** The command did what it was asked. */
  public static final int OK = 0;

  /** The operation failed: invalid descriptors, a failed or cancelled session, a timeout. */
  public static final int FAILED = 1;

  /** The command line was wrong: an unknown option, a missing argument, a file that is not there. */
  public static final int USAGE = 2;

  /** The server cannot be reached, or it refused the token. */
  public static final int UNREACHABLE = 3;

  /** The agent or session named does not exist. */
  public static final int NOT_FOUND = 4;

  /** The request conflicts with the current state, or the server is overloaded. */
  public static final int CONFLICT = 5;

  private ExitCodes() {}
}
