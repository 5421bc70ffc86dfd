package keel.execution;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Ticker;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Predicate;
import keel.core.Usage;

/**
 * Responses of model calls that are declared insensitive, kept for a while so that the same
 * request is answered without calling the model again.
 *
 * <p>Only deterministic, side-effect-free requests are cacheable: {@link #key} is present only when
 * the agent's temperature is set to 0 and every tool the model is offered is read-only, because a
 * cached answer that asks for a write would repeat an action the model never chose again. Whether
 * a call is declared insensitive is the caller's decision; this class does not know it.
 *
 * <p>Entries expire {@code ttl} after they were written, by the injected clock (Caffeine reads time
 * through a {@link Ticker} over it), and the least recently used go first beyond {@code
 * maxEntries}.
 *
 * <p>Thread-safe.
 */
final class ResponseCache {

  private final Cache<String, ModelResponse> cache;

  /**
   * @param ttl how long a response is served after it was stored; positive
   * @param maxEntries the most responses kept; positive
   * @param clock the time source for expiry
   */
  ResponseCache(Duration ttl, long maxEntries, Clock clock) {
    Objects.requireNonNull(ttl, "ttl");
    Objects.requireNonNull(clock, "clock");
    if (ttl.isNegative() || ttl.isZero()) {
      throw new IllegalArgumentException("ttl must be positive, got " + ttl);
    }
    if (maxEntries <= 0) {
      throw new IllegalArgumentException("maxEntries must be positive, got " + maxEntries);
    }
    Ticker ticker =
        () -> {
          Instant now = clock.instant();
          return now.getEpochSecond() * 1_000_000_000L + now.getNano();
        };
    this.cache =
        Caffeine.newBuilder()
            .ticker(ticker)
            .expireAfterWrite(ttl)
            .maximumSize(maxEntries)
            .recordStats()
            .build();
  }

  /**
   * The cache key of a request, present only when the request is cacheable: the agent's
   * temperature is present and exactly 0, and {@code readOnlyTool} says yes for every tool in the
   * request (a request without tools qualifies). The key is the SHA-256 of a canonical JSON of the
   * provider, the model, the instructions, the conversation and the tools (see {@link
   * RequestDigest}).
   *
   * @param provider the provider that would answer
   * @param model the exact model name that would be requested
   * @param readOnlyTool whether the tool with this name only reads
   */
  static Optional<String> key(
      ModelRequest request, String provider, String model, Predicate<String> readOnlyTool) {
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(provider, "provider");
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(readOnlyTool, "readOnlyTool");
    boolean deterministic = request.model().temperature().filter(t -> t == 0.0).isPresent();
    if (!deterministic) {
      return Optional.empty();
    }
    for (ToolSpec tool : request.tools()) {
      if (!readOnlyTool.test(tool.name())) {
        return Optional.empty();
      }
    }
    return Optional.of(RequestDigest.sha256(null, request, provider, model));
  }

  /**
   * The stored response for a key, if it has not expired. A hit used no tokens, so the response
   * comes back with {@link Usage#ZERO}: recording it costs nothing.
   */
  Optional<ModelResponse> get(String key) {
    Objects.requireNonNull(key, "key");
    ModelResponse r = cache.getIfPresent(key);
    if (r == null) {
      return Optional.empty();
    }
    return Optional.of(new ModelResponse(r.text(), r.toolCalls(), Usage.ZERO, r.modelVersion()));
  }

  /** Stores a response under a key from {@link #key}, replacing any older one. */
  void put(String key, ModelResponse response) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(response, "response");
    cache.put(key, response);
  }

  /** Lookups that found a response. */
  long hits() {
    return cache.stats().hitCount();
  }

  /** Lookups that found none, including expired ones. */
  long misses() {
    return cache.stats().missCount();
  }

  /** Responses held now (approximate), for metrics. */
  long size() {
    cache.cleanUp();
    return cache.estimatedSize();
  }
}
