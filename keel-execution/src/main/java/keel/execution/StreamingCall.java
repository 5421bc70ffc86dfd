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
import java.util.function.Function;

/**
 * Runs one LangChain4j streaming chat under a deadline, feeding text to a {@link ModelStream}.
 *
 * <p>The exchange runs on its own virtual thread so that the whole call, including a stream that
 * stalls after its headers, is bounded by the timeout: on expiry the thread is interrupted, which
 * aborts its blocking read (the HTTP client must read on the calling thread, as {@link
 * OpenAiHttpClient} does). Stateless and thread-safe.
 */
final class StreamingCall {

  private StreamingCall() {}

  /**
   * Sends {@code request} and waits for the complete answer.
   *
   * @param model the model to call
   * @param request what to send
   * @param stream receives text as it arrives; a subscriber that throws is cut off, not the call
   * @param timeout the time allowed until the complete answer has arrived
   * @param threadName the worker thread's name
   * @param where the provider, endpoint and model, for messages and the worker thread
   * @param incomplete what the {@code INVALID_RESPONSE} failure says after {@code where} when the
   *     stream ends without a final event
   * @param classify turns what the model reported or threw into a {@link ModelFailure}
   * @throws ModelFailure when the call fails or times out
   */
  static ChatResponse run(
      StreamingChatModel model,
      ChatRequest request,
      ModelStream stream,
      Duration timeout,
      String threadName,
      String where,
      String incomplete,
      Function<Throwable, ModelFailure> classify) {
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
      throw e.getCause() instanceof ModelFailure f ? f : classify.apply(e.getCause());
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
