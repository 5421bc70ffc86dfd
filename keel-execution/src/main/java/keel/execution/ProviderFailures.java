package keel.execution;

import dev.langchain4j.exception.HttpException;
import dev.langchain4j.model.anthropic.internal.api.AnthropicStreamingException;
import java.io.IOException;
import java.math.BigDecimal;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeoutException;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Classifies a failed LangChain4j call into a {@link ModelFailure}, for the providers that call
 * through {@link OpenAiHttpClient} (which keeps an error answer's status, body and {@code
 * Retry-After}). Timeouts, connection errors and 5xx are {@code TRANSIENT}; 429 is {@code
 * RATE_LIMITED} with the server's delay; a body that is not a valid response is {@code
 * INVALID_RESPONSE}; any other 4xx is {@code PERMANENT}.
 *
 * <p>The delay of a 429 is the {@code Retry-After} header when present, else (in the {@link
 * Dialect#OPENAI_OR_GOOGLE} dialect) Google's {@code error.details[].retryDelay} ({@code
 * google.rpc.RetryInfo}, e.g. {@code "37s"}). An error answer that refuses the key — 401, 403, or
 * (in that dialect) Google's 400 {@code API_KEY_INVALID} — is reported without its body, naming the
 * environment variable to check. Any other error answer's message is quoted, scrubbed of the key
 * and cut to {@value #MAX_DETAIL} characters. No message ever carries the key.
 *
 * <p>Stateless and thread-safe.
 */
final class ProviderFailures {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final int MAX_DETAIL = 300;

  private ProviderFailures() {}

  /** How a provider's error answers read, where providers differ. */
  enum Dialect {
    /** OpenAI Chat Completions: the detail is {@code error.message}. */
    OPENAI,
    /**
     * OpenAI Responses and Google Gemini: the detail is {@code error.status} (Google's) and {@code
     * error.message}; Google's {@code RetryInfo} delay and 400 {@code API_KEY_INVALID} are read.
     */
    OPENAI_OR_GOOGLE,
    /**
     * Anthropic: the detail is {@code error.type} and {@code error.message}; 529 is "overloaded";
     * an error event inside a 200 stream ({@link AnthropicStreamingException}) is classified by its
     * type.
     */
    ANTHROPIC
  }

  /**
   * The failure for {@code error}.
   *
   * @param where the provider, endpoint and model, opening every message
   * @param error what the call threw or reported
   * @param key the key that was sent, scrubbed from any text quoted from the failure
   * @param keyVariable the environment variable the key comes from, named when the key is refused
   * @param dialect how the provider's error answers read
   */
  static ModelFailure classify(
      String where, Throwable error, String key, String keyVariable, Dialect dialect) {
    OpenAiHttpClient.StatusException status = null;
    HttpException http = null;
    AnthropicStreamingException streamError = null;
    boolean timeout = false;
    boolean io = false;
    boolean json = false;
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof OpenAiHttpClient.StatusException s && status == null) {
        status = s;
      } else if (t instanceof HttpException h && http == null) {
        http = h;
      } else if (dialect == Dialect.ANTHROPIC && t instanceof AnthropicStreamingException s && streamError == null) {
        streamError = s;
      }
      String cls = t.getClass().getName();
      if (t instanceof HttpTimeoutException
          || t instanceof TimeoutException
          || t instanceof dev.langchain4j.exception.TimeoutException) {
        timeout = true;
      } else if (cls.startsWith("com.fasterxml.jackson.") || cls.startsWith("tools.jackson.")) {
        // Checked before IOException: Jackson 2's parse errors are IOExceptions.
        json = true;
      } else if (t instanceof IOException) {
        io = true;
      }
    }
    if (status != null || http != null) {
      int code = status != null ? status.statusCode() : http.statusCode();
      String body = status != null ? status.body() : null;
      JsonNode errorNode = errorNode(body);
      boolean google = dialect == Dialect.OPENAI_OR_GOOGLE;
      Duration retryAfter =
          status != null
              ? status.retryAfter().or(() -> google ? retryDelay(errorNode) : Optional.empty()).orElse(null)
              : null;
      if (code == 401 || code == 403 || (code == 400 && google && refusesKey(errorNode))) {
        // Auth errors may echo part of the key: say nothing of the body.
        return new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": HTTP " + code + ", the API key was refused; check " + keyVariable,
            null,
            null);
      }
      String detail = detail(errorNode, key, dialect);
      if (code == 429) {
        return new ModelFailure(
            ModelFailure.Kind.RATE_LIMITED,
            where + ": rate limited (HTTP 429)"
                + (retryAfter != null ? ", retry after " + retryAfter.toSeconds() + "s" : "")
                + detail,
            retryAfter,
            null);
      }
      if (code >= 500 || code == 408) {
        String what = dialect == Dialect.ANTHROPIC && code == 529 ? "overloaded" : "server error";
        return new ModelFailure(
            ModelFailure.Kind.TRANSIENT, where + ": " + what + " (HTTP " + code + ")" + detail, retryAfter, null);
      }
      return new ModelFailure(
          ModelFailure.Kind.PERMANENT, where + ": request rejected (HTTP " + code + ")" + detail, null, null);
    }
    if (streamError != null) {
      return streamFailure(where, streamError, key);
    }
    if (timeout) {
      return new ModelFailure(ModelFailure.Kind.TRANSIENT, where + ": timed out", null, error);
    }
    if (json) {
      return new ModelFailure(
          ModelFailure.Kind.INVALID_RESPONSE, where + ": the answer is not valid JSON", null, null);
    }
    if (io) {
      return new ModelFailure(
          ModelFailure.Kind.TRANSIENT,
          where + ": connection failed: " + scrub(String.valueOf(error.getMessage()), key),
          null,
          error);
    }
    return new ModelFailure(
        ModelFailure.Kind.INVALID_RESPONSE,
        where + ": unexpected failure " + error.getClass().getSimpleName() + ": "
            + scrub(String.valueOf(error.getMessage()), key),
        null,
        null);
  }

  /** An Anthropic error event inside a 200 stream: its type says what an HTTP status would have said. */
  private static ModelFailure streamFailure(String where, AnthropicStreamingException error, String key) {
    String type = String.valueOf(error.type());
    String detail = ": " + type + ": " + truncate(scrub(String.valueOf(error.getMessage()), key));
    ModelFailure.Kind kind =
        switch (type) {
          case "overloaded_error", "api_error", "timeout_error" -> ModelFailure.Kind.TRANSIENT;
          case "rate_limit_error" -> ModelFailure.Kind.RATE_LIMITED;
          case "authentication_error", "permission_error", "invalid_request_error", "not_found_error",
              "request_too_large", "billing_error" -> ModelFailure.Kind.PERMANENT;
          default -> ModelFailure.Kind.INVALID_RESPONSE;
        };
    return new ModelFailure(kind, where + ": the stream failed" + detail, null, null);
  }

  /** The {@code error} object of an OpenAI-, Google- or Anthropic-style error body, or a missing node. */
  private static JsonNode errorNode(String body) {
    if (body == null || body.isBlank()) {
      return JSON.missingNode();
    }
    try {
      return JSON.readTree(body).path("error");
    } catch (JacksonException e) {
      return JSON.missingNode();
    }
  }

  private static boolean refusesKey(JsonNode error) {
    for (JsonNode d : error.path("details")) {
      if (d.path("reason").asString("").equals("API_KEY_INVALID")) {
        return true;
      }
    }
    return error.path("message").asString("").contains("API key not valid");
  }

  /** Google's {@code RetryInfo.retryDelay}, a protobuf duration such as {@code "37s"}. */
  static Optional<Duration> retryDelay(JsonNode error) {
    for (JsonNode d : error.path("details")) {
      String delay = d.path("retryDelay").asString("").strip();
      if (delay.endsWith("s")) {
        try {
          BigDecimal seconds = new BigDecimal(delay.substring(0, delay.length() - 1));
          if (seconds.signum() >= 0) {
            return Optional.of(Duration.ofMillis(seconds.movePointRight(3).longValue()));
          }
        } catch (NumberFormatException e) {
          // not a duration; ignore it
        }
      }
    }
    return Optional.empty();
  }

  /** The error answer's {@code ": label: message"}, the label as the dialect has it; else empty. */
  private static String detail(JsonNode error, String key, Dialect dialect) {
    String label =
        switch (dialect) {
          case OPENAI -> "";
          case OPENAI_OR_GOOGLE -> error.path("status").asString("");
          case ANTHROPIC -> error.path("type").asString("");
        };
    String message = error.path("message").asString("");
    if (message.isEmpty()) {
      return dialect == Dialect.ANTHROPIC && !label.isEmpty() ? ": " + label : "";
    }
    return ": " + (label.isEmpty() ? "" : label + ": ") + truncate(scrub(message, key));
  }

  private static String truncate(String message) {
    return message.length() > MAX_DETAIL ? message.substring(0, MAX_DETAIL - 3) + "..." : message;
  }

  static String scrub(String text, String key) {
    return key == null || key.isEmpty() ? text : text.replace(key, "***");
  }
}
