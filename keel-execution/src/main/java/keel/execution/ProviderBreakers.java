package keel.execution;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * One Resilience4j circuit breaker per model endpoint (a provider and its base URL), so that an
 * endpoint that keeps failing is given time to recover instead of being called by every session.
 *
 * <p>Only failures that say something about the endpoint count: a {@link ModelFailure} that is
 * {@linkplain ModelFailure#retryable() retryable} (a timeout, a 5xx, a 429). Any other exception —
 * a permanent 400, which is the caller's fault, an invalid response, a bug — is ignored by the
 * breaker: it neither counts as a failure nor as a success. Whatever the given configuration says
 * about exceptions is replaced by this rule.
 *
 * <p>When a breaker is open, {@link #call} fails at once with a transient {@link ModelFailure}
 * whose {@code retryAfter} is the time left until the breaker lets a trial call through. Resilience4j
 * does not expose that time, so this class notes when each breaker opened (from the breaker's own
 * state-transition events and the configuration's clock) and counts how often it re-opened, for
 * wait interval functions that grow.
 *
 * <p>Thread-safe. Breakers are created on first use; at most {@value #MAX_ENDPOINTS} are kept, the
 * least recently used being dropped beyond that (endpoints come from agent descriptors).
 */
final class ProviderBreakers {

  static final int MAX_ENDPOINTS = 10_000;

  private static final Predicate<Throwable> COUNTS =
      t -> t instanceof ModelFailure f && f.retryable();

  private final CircuitBreakerConfig config;
  private final Cache<String, Endpoint> endpoints = Caffeine.newBuilder().maximumSize(MAX_ENDPOINTS).build();

  /**
   * @param config the breakers' configuration; its exception predicates are replaced by the rule
   *     above, the rest (window, thresholds, waits, clock) is kept
   */
  ProviderBreakers(CircuitBreakerConfig config) {
    Objects.requireNonNull(config, "config");
    this.config =
        CircuitBreakerConfig.from(config).recordException(COUNTS).ignoreException(COUNTS.negate()).build();
  }

  /**
   * Breakers that open when half of the last 20 calls failed (once at least 10 were made), stay
   * open 30 s, then let 3 trial calls through.
   */
  static ProviderBreakers defaults() {
    return new ProviderBreakers(defaultConfig().build());
  }

  /** The default configuration, to adjust (tests set a clock and shorter waits). */
  static CircuitBreakerConfig.Builder defaultConfig() {
    return CircuitBreakerConfig.custom()
        .slidingWindow(20, 10, CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
        .failureRateThreshold(50)
        .waitDurationInOpenState(Duration.ofSeconds(30))
        .permittedNumberOfCallsInHalfOpenState(3)
        .automaticTransitionFromOpenToHalfOpenEnabled(false);
  }

  /** The endpoint name of a provider at a base URL, e.g. {@code openai https://api.openai.com/v1}. */
  static String endpoint(String provider, String baseUrl) {
    return provider + " " + baseUrl;
  }

  /**
   * Makes a call through the endpoint's breaker.
   *
   * @throws ModelFailure of kind {@code TRANSIENT}, without calling, when the endpoint's breaker is
   *     open; otherwise whatever {@code call} throws
   */
  ModelResponse call(String endpoint, Supplier<ModelResponse> call) {
    Objects.requireNonNull(endpoint, "endpoint");
    Objects.requireNonNull(call, "call");
    Endpoint e = endpoint(endpoint);
    try {
      return e.breaker.executeSupplier(call);
    } catch (CallNotPermittedException notPermitted) {
      Duration remaining = e.remainingWait();
      // A half-open breaker whose trial calls are all taken has no wait left: ask for a second.
      Duration wait = remaining.isZero() ? Duration.ofSeconds(1) : remaining;
      long seconds = Math.max(1, (wait.toMillis() + 999) / 1000);
      throw new ModelFailure(
          ModelFailure.Kind.TRANSIENT,
          "model endpoint " + endpoint + " is failing; its circuit is open for " + seconds + " s",
          wait,
          null);
    }
  }

  /** The state of an endpoint's breaker ({@code CLOSED} for an endpoint not called yet). */
  CircuitBreaker.State state(String endpoint) {
    Objects.requireNonNull(endpoint, "endpoint");
    Endpoint e = endpoints.getIfPresent(endpoint);
    return e == null ? CircuitBreaker.State.CLOSED : e.breaker.getState();
  }

  private Endpoint endpoint(String name) {
    return endpoints.get(name, n -> new Endpoint(CircuitBreaker.of(n, config), config));
  }

  /** A breaker and when it last opened. */
  private static final class Endpoint {
    final CircuitBreaker breaker;
    private final Clock clock;
    /** Guards {@link #openUntil} and {@link #opens}, written by transition events. */
    private final Object lock = new Object();

    private Instant openUntil = Instant.MIN;
    private int opens;

    Endpoint(CircuitBreaker breaker, CircuitBreakerConfig config) {
      this.breaker = breaker;
      this.clock = config.getClock();
      breaker
          .getEventPublisher()
          .onStateTransition(
              event -> {
                synchronized (lock) {
                  switch (event.getStateTransition().getToState()) {
                    case OPEN -> {
                      opens++;
                      long millis = config.getWaitIntervalFunctionInOpenState().apply(opens);
                      openUntil = clock.instant().plusMillis(millis);
                    }
                    case CLOSED -> opens = 0;
                    default -> {}
                  }
                }
              });
    }

    /** Time left until a trial call is let through; zero when it is due (or half-open is full). */
    Duration remainingWait() {
      Instant until;
      synchronized (lock) {
        until = openUntil;
      }
      Instant now = clock.instant();
      if (until.equals(Instant.MIN) || !until.isAfter(now)) {
        return Duration.ZERO;
      }
      return Duration.between(now, until);
    }
  }
}
