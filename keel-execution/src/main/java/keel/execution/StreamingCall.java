package keel.execution;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs one LangChain4j streaming chat under a deadline, feeding text to a {@link ModelStream}, and
 * classifies its failures with {@link ProviderFailures}. One instance per provider holds what
 * differs between providers: the worker thread's name, what a stream that ends early is called,
 * and how the provider's error answers read.
 *
 * <p>The exchange runs on its own virtual thread so that the whole call, including a stream that
 * stalls after its headers, is bounded by the timeout: on expiry the thread is interrupted, which
 * aborts its blocking read (the HTTP client must read on the calling thread, as {@link
 * OpenAiHttpClient} does). A stream that ends without a final event fails at once as {@code
 * INVALID_RESPONSE} rather than waiting out the timeout. Immutable and thread-safe.
 */
final class StreamingCall {

  private final String threadName;
  private final String incomplete;
  private final ProviderFailures.Dialect dialect;
  private final String keyVariable;

  /**
   * @param threadName the worker thread's name
   * @param incomplete what the failure says after {@code where} when the stream ends without a
   *     final event
   * @param dialect how the provider's error answers read
   * @param keyVariable the environment variable the key comes from, named when the key is refused
   */
  StreamingCall(String threadName, String incomplete, ProviderFailures.Dialect dialect, String keyVariable) {
    this.threadName = threadName;
    this.incomplete = incomplete;
    this.dialect = dialect;
    this.keyVariable = keyVariable;
  }

  /**
   * Sends {@code request} and waits for the complete answer.
   *
   * @param model the model to call
   * @param request what to send
   * @param stream receives text as it arrives; a subscriber that throws is cut off, not the call
   * @param timeout the time allowed until the complete answer has arrived
   * @param where the provider, endpoint and model, opening every failure message
   * @param key the key the model sends, scrubbed from any failure message
   * @throws ModelFailure when the call fails or times out
   */
  ChatResponse run(
      StreamingChatModel model, ChatRequest request, ModelStream stream, Duration timeout, String where, String key) {
    ModelStream guarded = new GuardedStream(stream, where);
    CompletableFuture<ChatResponse> result = new CompletableFuture<>();
    StreamingChatResponseHandler handler =
        new StreamingChatResponseHandler() {
          @Override
          public void onPartialResponse(String partial) {
            guarded.onText(partial);
          }

          @Override
          public void onCompleteResponse(ChatResponse response) {
            result.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            result.completeExceptionally(error);
          }
        };
    Thread worker =
        Thread.ofVirtual()
            .name(threadName)
            .start(
                () -> {
                  try {
                    model.chat(request, handler);
                    // A stream that ends without a final event completes nothing: say so rather
                    // than wait out the timeout.
                    result.completeExceptionally(
                        new ModelFailure(ModelFailure.Kind.INVALID_RESPONSE, where + ": " + incomplete));
                  } catch (Throwable e) {
                    result.completeExceptionally(e);
                  }
                });
    try {
      return result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof ModelFailure f
          ? f
          : ProviderFailures.classify(where, e.getCause(), key, keyVariable, dialect);
    } catch (TimeoutException e) {
      worker.interrupt();
      throw new ModelFailure(
          ModelFailure.Kind.TRANSIENT, where + ": no complete answer within " + timeout, null, null);
    } catch (InterruptedException e) {
      worker.interrupt();
      Thread.currentThread().interrupt();
      throw new ModelFailure(ModelFailure.Kind.TRANSIENT, where + ": interrupted", null, e);
    }
  }
}
