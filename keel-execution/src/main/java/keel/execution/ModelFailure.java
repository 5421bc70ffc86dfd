package keel.execution;

import java.time.Duration;
import java.util.Optional;

/**
 * A model call that failed, as data: what kind of failure, a message for people, and whether (and
 * when) a retry can help. Never carries a credential or a request body.
 */
public final class ModelFailure extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** The kinds of model failure the executor treats differently. */
  public enum Kind {
    /** A timeout, a connection error or a 5xx: retrying may help. */
    TRANSIENT,
    /** A 429: retry after the provider's {@code Retry-After}. */
    RATE_LIMITED,
    /** The provider answered something that is not a valid response. */
    INVALID_RESPONSE,
    /** A 4xx other than 429, a missing credential, an unknown model: retrying cannot help. */
    PERMANENT
  }

  private final Kind kind;
  private final transient Duration retryAfter;

  public ModelFailure(Kind kind, String message, Duration retryAfter, Throwable cause) {
    super(message, cause);
    this.kind = kind;
    this.retryAfter = retryAfter;
  }

  public ModelFailure(Kind kind, String message) {
    this(kind, message, null, null);
  }

  public Kind kind() {
    return kind;
  }

  /** How long the provider asked callers to wait, when it said. */
  public Optional<Duration> retryAfter() {
    return Optional.ofNullable(retryAfter);
  }

  /** Whether retrying the same call can succeed. */
  public boolean retryable() {
    return kind == Kind.TRANSIENT || kind == Kind.RATE_LIMITED;
  }
}
