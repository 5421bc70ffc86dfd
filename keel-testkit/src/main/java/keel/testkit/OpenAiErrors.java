package keel.testkit;

import io.javalin.http.Context;
import tools.jackson.databind.node.ObjectNode;

/**
 * The errors {@link FakeOpenAi} and {@link FakeOpenAiResponses} write, in OpenAI's shape {@code
 * {"error": {"message", "type", "param", "code"}}}. Stateless.
 */
final class OpenAiErrors {

  private OpenAiErrors() {}

  /** Writes an error; {@code code} may be null, and {@code retryAfterSeconds} < 0 sends no {@code Retry-After}. */
  static void write(Context ctx, int status, String type, String code, String message, int retryAfterSeconds) {
    ObjectNode body = FakeServer.JSON.createObjectNode();
    ObjectNode error = body.putObject("error");
    error.put("message", message);
    error.put("type", type);
    error.putNull("param");
    if (code == null) {
      error.putNull("code");
    } else {
      error.put("code", code);
    }
    if (retryAfterSeconds >= 0) {
      ctx.header("Retry-After", Integer.toString(retryAfterSeconds));
    }
    ctx.status(status).contentType("application/json").result(FakeServer.JSON.writeValueAsString(body));
  }

  /** Writes the error for an injected HTTP {@code status}: a rate limit, a server error or a rejection. */
  static void injected(Context ctx, int status, int retryAfterSeconds) {
    if (status == 429) {
      write(ctx, 429, "requests", "rate_limit_exceeded", "Rate limit reached for requests.", retryAfterSeconds);
    } else if (status >= 500) {
      write(ctx, status, "server_error", null, "The server had an error while processing your request.", -1);
    } else {
      write(ctx, status, "invalid_request_error", null, "The request was rejected (injected fault).", -1);
    }
  }

  /**
   * Whether the request's bearer token is {@code expectedApiKey} (null: any key, or none); when not,
   * writes 401 {@code invalid_api_key} and answers false.
   */
  static boolean admit(Context ctx, String expectedApiKey) {
    if (expectedApiKey != null && !("Bearer " + expectedApiKey).equals(ctx.header("Authorization"))) {
      write(ctx, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.", -1);
      return false;
    }
    return true;
  }

  /** Writes the error for a script that threw {@code e}. */
  static void scriptFailed(Context ctx, RuntimeException e) {
    write(ctx, 500, "server_error", null, "the fake's script failed: " + e, -1);
  }
}
