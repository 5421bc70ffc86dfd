package keel.execution;

import dev.langchain4j.http.client.HttpClient;
import dev.langchain4j.http.client.HttpClientBuilder;
import dev.langchain4j.http.client.HttpRequest;
import dev.langchain4j.http.client.SuccessfulHttpResponse;
import dev.langchain4j.http.client.sse.ServerSentEvent;
import dev.langchain4j.http.client.sse.ServerSentEventContext;
import dev.langchain4j.http.client.sse.ServerSentEventListener;
import dev.langchain4j.http.client.sse.ServerSentEventParser;
import java.time.Duration;

/**
 * An {@link HttpClient} decorator that makes a streamed answer fail when one of its events cannot
 * be handled.
 *
 * <p>LangChain4j's {@code DefaultServerSentEventParser} logs and drops an exception thrown while a
 * model handles an event — for example an event that is not valid JSON — and then closes the
 * stream normally, so the Gemini model completes with whatever it had (often an empty answer).
 * This decorator remembers the first such exception, passes no later events on, and reports the
 * exception through {@code onError} in place of {@code onClose}, so a broken stream becomes a
 * failure ({@link ModelFailure.Kind#INVALID_RESPONSE} for bad JSON) instead of a silent empty
 * answer.
 *
 * <p>Thread-safe as its delegate is; each streamed exchange gets its own listener.
 */
final class StrictEventsHttpClient implements HttpClient {

  private final HttpClient delegate;

  private StrictEventsHttpClient(HttpClient delegate) {
    this.delegate = delegate;
  }

  @Override
  public SuccessfulHttpResponse execute(HttpRequest request) {
    return delegate.execute(request);
  }

  @Override
  public void execute(HttpRequest request, ServerSentEventParser parser, ServerSentEventListener listener) {
    delegate.execute(request, parser, new StrictListener(listener));
  }

  /** Forwards to a model's listener until an event fails; then reports that failure once. */
  private static final class StrictListener implements ServerSentEventListener {
    private final ServerSentEventListener model;
    // Events of one stream are parsed on one thread, in order; volatile for the close that may
    // come from another.
    private volatile RuntimeException failed;

    StrictListener(ServerSentEventListener model) {
      this.model = model;
    }

    @Override
    public void onOpen(SuccessfulHttpResponse response) {
      model.onOpen(response);
    }

    @Override
    public void onEvent(ServerSentEvent event) {
      if (failed != null) {
        return;
      }
      try {
        model.onEvent(event);
      } catch (RuntimeException e) {
        failed = e;
      }
    }

    @Override
    public void onEvent(ServerSentEvent event, ServerSentEventContext context) {
      if (failed != null) {
        return;
      }
      try {
        model.onEvent(event, context);
      } catch (RuntimeException e) {
        failed = e;
      }
    }

    @Override
    public void onError(Throwable error) {
      model.onError(error);
    }

    @Override
    public void onClose() {
      RuntimeException e = failed;
      if (e != null) {
        model.onError(e);
      } else {
        model.onClose();
      }
    }
  }

  /** Builds strict clients over the clients of {@code delegate}. */
  static final class Builder implements HttpClientBuilder {
    private final HttpClientBuilder delegate;

    Builder(HttpClientBuilder delegate) {
      this.delegate = delegate;
    }

    @Override
    public Duration connectTimeout() {
      return delegate.connectTimeout();
    }

    @Override
    public HttpClientBuilder connectTimeout(Duration timeout) {
      delegate.connectTimeout(timeout);
      return this;
    }

    @Override
    public Duration readTimeout() {
      return delegate.readTimeout();
    }

    @Override
    public HttpClientBuilder readTimeout(Duration timeout) {
      delegate.readTimeout(timeout);
      return this;
    }

    @Override
    public HttpClient build() {
      return new StrictEventsHttpClient(delegate.build());
    }
  }
}
