package keel.core;

/**
 * The root of every error Keel raises on purpose. Each subclass maps to one HTTP status at the edge
 * of the server, in exactly one place; the message is written for a person to act on.
 */
public abstract sealed class KeelException extends RuntimeException
    permits KeelException.Invalid,
        KeelException.NotFound,
        KeelException.Conflict,
        KeelException.Overloaded,
        KeelException.Unauthenticated,
        KeelException.Forbidden,
        KeelException.Unavailable {

  private static final long serialVersionUID = 1L;

  KeelException(String message, Throwable cause) {
    super(message, cause);
  }

  /** A short machine-readable name of the kind of error, used as the problem type. */
  public abstract String kind();

  /** Input that cannot be accepted: a malformed descriptor, a bad API call. Lists every problem. */
  public static final class Invalid extends KeelException {
    private static final long serialVersionUID = 1L;
    private final java.util.List<String> problems;

    public Invalid(java.util.List<String> problems) {
      super(String.join("\n", problems), null);
      this.problems = java.util.List.copyOf(problems);
    }

    public Invalid(String problem) {
      this(java.util.List.of(problem));
    }

    public java.util.List<String> problems() {
      return problems;
    }

    @Override
    public String kind() {
      return "invalid";
    }
  }

  /** Something named by the caller does not exist. */
  public static final class NotFound extends KeelException {
    private static final long serialVersionUID = 1L;

    public NotFound(String message) {
      super(message, null);
    }

    @Override
    public String kind() {
      return "not-found";
    }
  }

  /** The request conflicts with the current state: a stale sequence number, a busy session. */
  public static final class Conflict extends KeelException {
    private static final long serialVersionUID = 1L;

    public Conflict(String message) {
      super(message, null);
    }

    @Override
    public String kind() {
      return "conflict";
    }
  }

  /** A bounded queue is full; the caller should retry after the given number of seconds. */
  public static final class Overloaded extends KeelException {
    private static final long serialVersionUID = 1L;
    private final int retryAfterSeconds;

    public Overloaded(String message, int retryAfterSeconds) {
      super(message, null);
      this.retryAfterSeconds = retryAfterSeconds;
    }

    public int retryAfterSeconds() {
      return retryAfterSeconds;
    }

    @Override
    public String kind() {
      return "overloaded";
    }
  }

  /** No valid credentials were presented. */
  public static final class Unauthenticated extends KeelException {
    private static final long serialVersionUID = 1L;

    public Unauthenticated(String message) {
      super(message, null);
    }

    @Override
    public String kind() {
      return "unauthenticated";
    }
  }

  /** Valid credentials that do not allow this action. */
  public static final class Forbidden extends KeelException {
    private static final long serialVersionUID = 1L;

    public Forbidden(String message) {
      super(message, null);
    }

    @Override
    public String kind() {
      return "forbidden";
    }
  }

  /** A dependency (the store, a disk, a provider) failed; nothing acknowledged was lost. */
  public static final class Unavailable extends KeelException {
    private static final long serialVersionUID = 1L;

    public Unavailable(String message, Throwable cause) {
      super(message, cause);
    }

    @Override
    public String kind() {
      return "unavailable";
    }
  }
}
