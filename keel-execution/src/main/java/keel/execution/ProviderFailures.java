package keel.execution;

import dev.langchain4j.exception.HttpException;
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
 * <p>The delay of a 429 is the {@code Retry-After} header when present, else Google's {@code
 * error.details[].retryDelay} ({@code google.rpc.RetryInfo}, e.g. {@code "37s"}). An error answer
 * that refuses the key — 401, 403, or Google's 400 {@code API_KEY_INVALID} — is reported without
 * its body, naming the environment variable to check. No message ever carries the key.
 *
 * <p>Stateless and thread-safe.
 */
final class ProviderFailures {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final int MAX_DETAIL = 300;

  private ProviderFailures() {}

  /**
   * The failure for {@code error}.
   *
   * @param where the provider, endpoint and model, opening every message
   * @param error what the call threw or reported
   * @param key the key that was sent, scrubbed from any text quoted from the failure
   * @param keyVariable the environment variable the key comes from, named when the key is refused
   */
  static ModelFailure classify(String where, Throwable error, String key, String keyVariable) {
    OpenAiHttpClient.StatusException status = null;
    HttpException http = null;
    boolean timeout = false;
    boolean io = false;
    boolean json = false;
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof OpenAiHttpClient.StatusException s && status == null) {
        status = s;
      } else if (t instanceof HttpException h && http == null) {
        http = h;
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
      Duration retryAfter =
          status != null ? status.retryAfter().or(() -> retryDelay(errorNode)).orElse(null) : null;
      if (code == 401 || code == 403 || (code == 400 && refusesKey(errorNode))) {
        // Auth errors may echo part of the key: say nothing of the body.
        return new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": HTTP " + code + ", the API key was refused; check " + keyVariable,
            null,
            null);
      }
      String detail = detail(errorNode, key);
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
        return new ModelFailure(
            ModelFailure.Kind.TRANSIENT, where + ": server error (HTTP " + code + ")" + detail, retryAfter, null);
      }
      return new ModelFailure(
          ModelFailure.Kind.PERMANENT, where + ": request rejected (HTTP " + code + ")" + detail, null, null);
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

  /** The {@code error} object of an OpenAI- or Google-style error body, or a missing node. */
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

  private static String detail(JsonNode error, String key) {
    String message = error.path("message").asString("");
    if (message.isEmpty()) {
      return "";
    }
    String status = error.path("status").asString("");
    message = scrub(message, key);
    if (message.length() > MAX_DETAIL) {
      message = message.substring(0, MAX_DETAIL - 3) + "...";
    }
    return ": " + (status.isEmpty() ? "" : status + ": ") + message;
  }

  static String scrub(String text, String key) {
    return key == null || key.isEmpty() ? text : text.replace(key, "***");
  }
}
