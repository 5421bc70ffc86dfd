package keel.testkit;

import java.time.Duration;
import java.util.Optional;

/**
 * What every fake model server offers, whatever wire format it speaks ({@link FakeOpenAi}, {@link
 * FakeOpenAiResponses}, {@link FakeAnthropic}, {@link FakeGemini}): simple scripts, fault injection
 * and what the last request said. Lets one test suite drive every provider against its fake; each
 * fake's own class has the wire-specific scripts and records.
 *
 * <p>Implementations are thread-safe.
 */
public interface FakeModelServer extends AutoCloseable {

  /** A request the fake received, in the terms every wire format has. */
  interface Request {
    /** The model it asked for. */
    String model();

    /** Whether it asked for a streamed answer. */
    boolean stream();

    /** The temperature it asked for, if it did. */
    Optional<Double> temperature();

    /** Its body as it arrived. */
    String json();
  }

  /** The base URL a provider is configured with. */
  String baseUrl();

  /** Answers every request with {@code text}. */
  FakeModelServer answerText(String text);

  /**
   * Answers with calls to {@code toolName} until the conversation has K tool results, K read from
   * {@code steps=K} in the last user message, then with text.
   */
  FakeModelServer answerToolLoop(String toolName);

  /** Reports {@code model} in every response, as a provider whose version drifted would. */
  FakeModelServer reportModel(String model);

  /** Refuses requests that do not carry {@code apiKey}. */
  FakeModelServer requireApiKey(String apiKey);

  /** The next {@code n} requests get the provider's 429, with {@code Retry-After}. */
  FakeModelServer rateLimitNext(int n, int retryAfterSeconds);

  /** The next {@code n} requests get the provider's error for {@code status}. */
  FakeModelServer failNext(int n, int status);

  /** The next {@code n} requests get no answer for {@code duration}. */
  FakeModelServer hangNext(int n, Duration duration);

  /** The next {@code n} streams stop after they began, for {@code duration}. */
  FakeModelServer stallStreamNext(int n, Duration duration);

  /** The next {@code n} answers are not valid JSON. */
  FakeModelServer malformedNext(int n);

  /** How many requests arrived. */
  long requestCount();

  /** The last request, if any arrived. */
  Optional<? extends Request> lastRecorded();

  @Override
  void close();
}
