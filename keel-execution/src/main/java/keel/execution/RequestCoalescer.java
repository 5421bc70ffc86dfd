package keel.execution;

import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * Sends identical concurrent model requests once: the first caller with a key makes the call, and
 * callers that arrive with the same key while it is in flight wait for it and get the same
 * response, or the same exception. Nothing is kept once the call is done: a request that arrives
 * afterwards makes a new call (caching is {@link ResponseCache}'s job, for insensitive calls only).
 *
 * <p>Design: one {@link CompletableFuture} per key in flight, claimed with {@code putIfAbsent}. The
 * caller that wins runs the call on its own thread (a virtual thread in the executor), removes the
 * key, then completes the future; so a caller either joins a call that is still running or starts a
 * new one, never gets a stale answer. A call must not coalesce into its own key, or it waits for
 * itself.
 *
 * <p>Thread-safe.
 */
final class RequestCoalescer {

  /** Calls in flight by key; an entry lives exactly as long as its call. */
  private final ConcurrentHashMap<String, CompletableFuture<ModelResponse>> inFlight = new ConcurrentHashMap<>();

  private final LongAdder shared = new LongAdder();

  /**
   * The key of a request: the SHA-256 of a canonical JSON of the agent, provider, model and the
   * request's body (instructions, conversation, tools, temperature; see {@link RequestDigest}).
   */
  static String key(String agent, ModelRequest request, String provider, String model) {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(provider, "provider");
    Objects.requireNonNull(model, "model");
    return RequestDigest.sha256(agent, request, provider, model);
  }

  /**
   * Runs {@code call}, or waits for an identical call in flight and returns its result.
   *
   * @throws RuntimeException whatever {@code call} threw, the same instance for every caller that
   *     shared it
   * @throws ModelFailure of kind {@code TRANSIENT} when interrupted while waiting for another
   *     caller's call
   */
  ModelResponse call(String key, Supplier<ModelResponse> call) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(call, "call");
    CompletableFuture<ModelResponse> mine = new CompletableFuture<>();
    CompletableFuture<ModelResponse> running = inFlight.putIfAbsent(key, mine);
    if (running != null) {
      shared.increment();
      return await(running);
    }
    ModelResponse response;
    try {
      response = Objects.requireNonNull(call.get(), "the model call returned no response");
    } catch (Throwable t) {
      inFlight.remove(key, mine);
      mine.completeExceptionally(t);
      throw t;
    }
    inFlight.remove(key, mine);
    mine.complete(response);
    return response;
  }

  private static ModelResponse await(CompletableFuture<ModelResponse> running) {
    try {
      return running.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ModelFailure(
          ModelFailure.Kind.TRANSIENT, "interrupted while waiting for an identical model call", null, e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException("the shared model call failed", cause);
    }
  }

  /** Calls answered by another caller's call instead of their own. */
  long shared() {
    return shared.sum();
  }

  /** Keys whose call is in flight now. */
  int inFlight() {
    return inFlight.size();
  }
}
