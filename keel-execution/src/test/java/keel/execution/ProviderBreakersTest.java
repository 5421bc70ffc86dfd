package keel.execution;

import static keel.execution.GatewayRequests.response;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ProviderBreakersTest {

  private static final String OPENAI = ProviderBreakers.endpoint("openai", "https://api.openai.com/v1");
  private static final String LOCAL = ProviderBreakers.endpoint("openai", "http://localhost:8000/v1");

  private final MutableTestClock clock = new MutableTestClock();
  private final AtomicInteger calls = new AtomicInteger();

  /** Window of 4 calls, all needed, 50 %; open 10 s; 2 trial calls. */
  private ProviderBreakers small() {
    return new ProviderBreakers(
        CircuitBreakerConfig.custom()
            .slidingWindow(4, 4, CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
            .failureRateThreshold(50)
            .waitDurationInOpenState(Duration.ofSeconds(10))
            .permittedNumberOfCallsInHalfOpenState(2)
            .clock(clock)
            .build());
  }

  private ModelResponse ok() {
    calls.incrementAndGet();
    return response("fine");
  }

  private ModelResponse fail(ModelFailure.Kind kind) {
    calls.incrementAndGet();
    throw new ModelFailure(kind, "HTTP " + (kind == ModelFailure.Kind.PERMANENT ? 400 : 503));
  }

  private void failing(ProviderBreakers breakers, String endpoint, ModelFailure.Kind kind, int times) {
    for (int i = 0; i < times; i++) {
      assertThatThrownBy(() -> breakers.call(endpoint, () -> fail(kind)))
          .isInstanceOf(ModelFailure.class)
          .hasMessageStartingWith("HTTP");
    }
  }

  @Test
  void retryableFailures_openTheBreaker_whichThenFailsWithoutCalling() {
    ProviderBreakers breakers = small();
    breakers.call(OPENAI, this::ok);
    breakers.call(OPENAI, this::ok);
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 1);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.CLOSED);
    failing(breakers, OPENAI, ModelFailure.Kind.RATE_LIMITED, 1);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.OPEN);

    int before = calls.get();
    clock.advance(Duration.ofMillis(2500));
    assertThatThrownBy(() -> breakers.call(OPENAI, this::ok))
        .isInstanceOfSatisfying(
            ModelFailure.class,
            f -> {
              assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
              assertThat(f.retryable()).isTrue();
              assertThat(f.retryAfter()).contains(Duration.ofMillis(7500));
              assertThat(f.getMessage())
                  .isEqualTo("model endpoint " + OPENAI + " is failing; its circuit is open for 8 s");
            });
    assertThat(calls).hasValue(before);
  }

  @Test
  void permanentFailures_doNotCount() {
    ProviderBreakers breakers = small();
    failing(breakers, OPENAI, ModelFailure.Kind.PERMANENT, 10);
    failing(breakers, OPENAI, ModelFailure.Kind.INVALID_RESPONSE, 10);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.CLOSED);
    assertThatThrownBy(() -> breakers.call(OPENAI, () -> { throw new IllegalStateException("a bug"); }))
        .isInstanceOf(IllegalStateException.class);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.CLOSED);
    assertThat(breakers.call(OPENAI, this::ok).text()).isEqualTo("fine");
  }

  @Test
  void eachEndpoint_hasItsOwnBreaker() {
    ProviderBreakers breakers = small();
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 4);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.OPEN);
    assertThat(breakers.state(LOCAL)).isEqualTo(CircuitBreaker.State.CLOSED);
    assertThat(breakers.call(LOCAL, this::ok).text()).isEqualTo("fine");
  }

  @Test
  void afterTheWait_trialCallsThatSucceed_closeTheBreaker() {
    ProviderBreakers breakers = small();
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 4);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.OPEN);
    clock.advance(Duration.ofSeconds(10));
    // Resilience4j lets a trial call through only once the wait has strictly passed
    assertThatThrownBy(() -> breakers.call(OPENAI, this::ok))
        .isInstanceOfSatisfying(ModelFailure.class, f -> assertThat(f.retryAfter()).contains(Duration.ofSeconds(1)));
    clock.advance(Duration.ofMillis(1));
    assertThat(breakers.call(OPENAI, this::ok).text()).isEqualTo("fine");
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.HALF_OPEN);
    breakers.call(OPENAI, this::ok);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.CLOSED);
  }

  @Test
  void afterTheWait_trialCallsThatFail_reopenTheBreakerForAnotherWait() {
    ProviderBreakers breakers = small();
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 4);
    clock.advance(Duration.ofSeconds(11));
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 2);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.OPEN);
    assertThatThrownBy(() -> breakers.call(OPENAI, this::ok))
        .isInstanceOfSatisfying(ModelFailure.class, f -> assertThat(f.retryAfter()).contains(Duration.ofSeconds(10)));
  }

  @Test
  void defaults_needTenCallsBeforeOpening() {
    ProviderBreakers breakers = ProviderBreakers.defaults();
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 9);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.CLOSED);
    failing(breakers, OPENAI, ModelFailure.Kind.TRANSIENT, 1);
    assertThat(breakers.state(OPENAI)).isEqualTo(CircuitBreaker.State.OPEN);
    assertThatThrownBy(() -> breakers.call(OPENAI, this::ok))
        .isInstanceOf(ModelFailure.class)
        .hasMessageEndingWith("its circuit is open for 30 s");
  }

  @Test
  void unknownEndpoint_isClosed() {
    assertThat(small().state("nobody")).isEqualTo(CircuitBreaker.State.CLOSED);
  }
}
