package keel.execution;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What a LangChain4j-based provider reads from its environment, the same way for each provider:
 * the API key, the base URL to call when a descriptor names none, the time allowed for one call,
 * and the JDK HTTP client that all of the provider's models share. It also makes the two choices
 * each call makes from them: which base URL to call, and which key to send.
 *
 * <p>The key is only ever handed to a model being built; no message made here carries it.
 * Immutable and thread-safe.
 */
final class ProviderSettings {

  /** The key sent to servers other than the provider's own when its key variable is not set. */
  static final String PLACEHOLDER_KEY = "keel-no-key";

  private final String keyVariable;
  private final String ownBaseUrl;
  private final Optional<String> apiKey;
  private final String defaultBaseUrl;
  private final Duration timeout;
  private final java.net.http.HttpClient http;

  /**
   * Reads the settings from {@code env}.
   *
   * @param env the environment
   * @param timeout the time allowed for one call, from sending to the last byte of the answer
   * @param keyVariable the variable holding the API key
   * @param baseUrlVariable the variable naming the default base URL
   * @param ownBaseUrl the provider's own endpoint: the default base URL when {@code
   *     baseUrlVariable} is not set, and the one endpoint that is never sent a placeholder key
   * @throws IllegalArgumentException when {@code timeout} is not positive
   */
  ProviderSettings(
      Map<String, String> env, Duration timeout, String keyVariable, String baseUrlVariable, String ownBaseUrl) {
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    this.keyVariable = keyVariable;
    this.ownBaseUrl = ownBaseUrl;
    this.apiKey = nonBlank(env.get(keyVariable));
    this.defaultBaseUrl = nonBlank(env.get(baseUrlVariable)).orElse(ownBaseUrl);
    this.timeout = timeout;
    this.http =
        java.net.http.HttpClient.newBuilder()
            .connectTimeout(timeout)
            .version(java.net.http.HttpClient.Version.HTTP_1_1)
            .build();
  }

  /** The time allowed for one call. */
  Duration timeout() {
    return timeout;
  }

  /** The variable holding the API key, named in failures about the key. */
  String keyVariable() {
    return keyVariable;
  }

  /** A builder of {@link OpenAiHttpClient}s over the shared JDK client, with the call's timeout. */
  OpenAiHttpClient.Builder httpClient() {
    return new OpenAiHttpClient.Builder(http, timeout);
  }

  /** The request's {@code baseUrl} when set, else the default base URL; without a trailing slash. */
  String baseUrl(ModelRequest request) {
    return stripSlash(request.model().baseUrl().flatMap(ProviderSettings::nonBlank).orElse(defaultBaseUrl));
  }

  /**
   * The key to send to {@code baseUrl}: the environment's key, else a placeholder for any endpoint
   * but the provider's own.
   *
   * @throws ModelFailure {@code PERMANENT} when there is no key and {@code baseUrl} is the
   *     provider's own endpoint
   */
  String key(String baseUrl, String where) {
    if (apiKey.isPresent()) {
      return apiKey.get();
    }
    if (baseUrl.equals(stripSlash(ownBaseUrl))) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT,
          where + ": " + keyVariable + " is not set; set it in the server's environment");
    }
    return PLACEHOLDER_KEY;
  }

  private static Optional<String> nonBlank(String value) {
    return Optional.ofNullable(value).map(String::strip).filter(s -> !s.isEmpty());
  }

  private static String stripSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }
}
