package keel.server;

import io.javalin.http.Context;
import keel.core.KeelException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The one place where errors become HTTP: each {@link KeelException} kind maps to a status and an
 * {@code application/problem+json} body whose detail a person can act on. Anything else is a bug:
 * it is logged with its stack trace and answered with a 500 that reveals nothing internal.
 */
final class Problems {

  private static final Logger LOG = LoggerFactory.getLogger(Problems.class);

  private Problems() {}

  static int status(KeelException e) {
    return switch (e) {
      case KeelException.Invalid i -> 400;
      case KeelException.NotFound n -> 404;
      case KeelException.Conflict c -> 409;
      case KeelException.Overloaded o -> 429;
      case KeelException.Unauthenticated u -> 401;
      case KeelException.Forbidden f -> 403;
      case KeelException.Unavailable u -> 503;
    };
  }

  static void write(Context ctx, KeelException e) {
    int status = status(e);
    ObjectNode body = body(status, e.kind(), e.getMessage(), ctx.path());
    switch (e) {
      case KeelException.Invalid i -> {
        ArrayNode errors = body.putArray("errors");
        i.problems().forEach(errors::add);
      }
      case KeelException.Overloaded o -> {
        body.put("retry_after_seconds", o.retryAfterSeconds());
        ctx.header("Retry-After", Integer.toString(o.retryAfterSeconds()));
      }
      case KeelException.Unauthenticated u -> ctx.header("WWW-Authenticate", "Bearer realm=\"keel\"");
      case KeelException.Unavailable u -> LOG.warn("{} {}: {}", ctx.method(), ctx.path(), e.getMessage());
      default -> {}
    }
    send(ctx, status, body);
  }

  static void unexpected(Context ctx, Exception e) {
    LOG.error("{} {} failed unexpectedly", ctx.method(), ctx.path(), e);
    send(ctx, 500, body(500, "internal", "the server failed unexpectedly; the error is in its log", ctx.path()));
  }

  static ObjectNode body(int status, String kind, String detail, String instance) {
    ObjectNode o = Views.JSON.createObjectNode();
    o.put("type", "urn:keel:problem:" + kind);
    o.put("title", titleOf(status));
    o.put("status", status);
    o.put("detail", detail);
    o.put("instance", instance);
    return o;
  }

  static void send(Context ctx, int status, ObjectNode body) {
    ctx.status(status);
    ctx.contentType("application/problem+json");
    ctx.result(Views.JSON.writeValueAsString(body));
  }

  private static String titleOf(int status) {
    return switch (status) {
      case 400 -> "Bad request";
      case 401 -> "Unauthenticated";
      case 403 -> "Forbidden";
      case 404 -> "Not found";
      case 409 -> "Conflict";
      case 429 -> "Too many requests";
      case 503 -> "Unavailable";
      default -> "Internal error";
    };
  }
}
