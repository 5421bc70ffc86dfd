package keel.execution;

import dev.langchain4j.exception.HttpException;
import dev.langchain4j.http.client.HttpClient;
import dev.langchain4j.http.client.HttpClientBuilder;
import dev.langchain4j.http.client.HttpRequest;
import dev.langchain4j.http.client.SuccessfulHttpResponse;
import dev.langchain4j.http.client.sse.ServerSentEventListener;
import dev.langchain4j.http.client.sse.ServerSentEventParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * LangChain4j's HTTP client seam, implemented over the JDK client so that an error answer keeps its
 * {@code Retry-After} header (LangChain4j's own JDK client drops every header of an error answer).
 *
 * <p>Requests run on the calling thread; a streamed answer is parsed on the calling thread too, so
 * the caller's own timeout bounds the whole exchange. Thread-safe.
 */
final class OpenAiHttpClient implements HttpClient {

  /** Most bytes of an error body kept for the failure message. */
  private static final int MAX_ERROR_BODY = 8192;

  private final java.net.http.HttpClient jdk;
  private final Duration readTimeout;

  private OpenAiHttpClient(java.net.http.HttpClient jdk, Duration readTimeout) {
    this.jdk = jdk;
    this.readTimeout = readTimeout;
  }

  /** An HTTP answer outside 2xx, with the {@code Retry-After} it carried. */
  static final class StatusException extends HttpException {
    private static final long serialVersionUID = 1L;
    private final transient Duration retryAfter;
    private final String body;

    StatusException(int status, String body, Duration retryAfter) {
      // The body is kept out of the exception message: an auth error may echo part of the key.
      super(status, "HTTP " + status);
      this.body = body;
      this.retryAfter = retryAfter;
    }

    Optional<Duration> retryAfter() {
      return Optional.ofNullable(retryAfter);
    }

    String body() {
      return body;
    }
  }

  @Override
  public SuccessfulHttpResponse execute(HttpRequest request) {
    HttpResponse<String> response;
    try {
      response = jdk.send(toJdk(request), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while calling the model", e);
    }
    if (response.statusCode() / 100 != 2) {
      throw failure(response.statusCode(), response.headers(), response.body());
    }
    return SuccessfulHttpResponse.builder()
        .statusCode(response.statusCode())
        .headers(response.headers().map())
        .body(response.body())
        .build();
  }

  @Override
  public void execute(
      HttpRequest request, ServerSentEventParser parser, ServerSentEventListener listener) {
    HttpResponse<InputStream> response;
    try {
      response = jdk.send(toJdk(request), HttpResponse.BodyHandlers.ofInputStream());
    } catch (IOException e) {
      listener.onError(e);
      return;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      listener.onError(e);
      return;
    }
    try (InputStream body = response.body()) {
      if (response.statusCode() / 100 != 2) {
        byte[] bytes = body.readNBytes(MAX_ERROR_BODY);
        listener.onError(
            failure(response.statusCode(), response.headers(), new String(bytes, StandardCharsets.UTF_8)));
        return;
      }
      listener.onOpen(
          SuccessfulHttpResponse.builder()
              .statusCode(response.statusCode())
              .headers(response.headers().map())
              .build());
      parser.parse(body, listener);
      listener.onClose();
    } catch (IOException | RuntimeException e) {
      listener.onError(e);
    }
  }

  private java.net.http.HttpRequest toJdk(HttpRequest request) {
    java.net.http.HttpRequest.Builder b =
        java.net.http.HttpRequest.newBuilder(URI.create(request.url())).timeout(readTimeout);
    for (Map.Entry<String, List<String>> h : request.headers().entrySet()) {
      for (String value : h.getValue()) {
        b.header(h.getKey(), value);
      }
    }
    // the model call's span is the parent of whatever the provider traces for this request
    TraceContext.current().ifPresent(tp -> b.setHeader("traceparent", tp));
    String body = request.body();
    java.net.http.HttpRequest.BodyPublisher publisher =
        body == null
            ? java.net.http.HttpRequest.BodyPublishers.noBody()
            : java.net.http.HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8);
    b.method(request.method().name(), publisher);
    return b.build();
  }

  private static StatusException failure(
      int status, java.net.http.HttpHeaders headers, String body) {
    return new StatusException(
        status, body, headers.firstValue("Retry-After").flatMap(OpenAiHttpClient::parseRetryAfter).orElse(null));
  }

  /** Parses {@code Retry-After} as delta-seconds or an HTTP date. */
  static Optional<Duration> parseRetryAfter(String value) {
    String v = value.trim();
    try {
      long seconds = Long.parseLong(v);
      return seconds >= 0 ? Optional.of(Duration.ofSeconds(seconds)) : Optional.empty();
    } catch (NumberFormatException e) {
      // not delta-seconds; try an HTTP date
    }
    try {
      ZonedDateTime at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME);
      Duration d = Duration.between(ZonedDateTime.now(at.getZone()), at);
      return Optional.of(d.isNegative() ? Duration.ZERO : d);
    } catch (DateTimeParseException e) {
      return Optional.empty();
    }
  }

  /** Builds {@link OpenAiHttpClient}s sharing one JDK client. */
  static final class Builder implements HttpClientBuilder {
    private final java.net.http.HttpClient jdk;
    private Duration connectTimeout;
    private Duration readTimeout;

    Builder(java.net.http.HttpClient jdk, Duration timeout) {
      this.jdk = jdk;
      this.connectTimeout = timeout;
      this.readTimeout = timeout;
    }

    @Override
    public Duration connectTimeout() {
      return connectTimeout;
    }

    @Override
    public HttpClientBuilder connectTimeout(Duration timeout) {
      if (timeout != null) {
        this.connectTimeout = timeout;
      }
      return this;
    }

    @Override
    public Duration readTimeout() {
      return readTimeout;
    }

    @Override
    public HttpClientBuilder readTimeout(Duration timeout) {
      if (timeout != null) {
        this.readTimeout = timeout;
      }
      return this;
    }

    @Override
    public HttpClient build() {
      return new OpenAiHttpClient(jdk, readTimeout);
    }
  }
}
