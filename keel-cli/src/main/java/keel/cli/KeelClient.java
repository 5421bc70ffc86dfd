package keel.cli;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import keel.core.EventCodec;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A small client of the Keel HTTP API. Every failure becomes a {@link CliException} with the exit
 * code its HTTP status implies and the server's problem detail (and, for invalid requests, every
 * entry of its {@code errors}).
 *
 * <p>Thread-safe.
 */
final class KeelClient {

  static final JsonMapper JSON = EventCodec.mapper();

  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);
  private static final int MAX_ERROR_BODY = 64 * 1024;

  private final URI base;
  private final String token;
  private final HttpClient http;

  private KeelClient(URI base, String token) {
    this.base = base;
    this.token = token;
    this.http = HttpClient.newBuilder().connectTimeout(CONNECT_TIMEOUT).build();
  }

  /** A client of the server at {@code url} that presents {@code token}. */
  static KeelClient create(String url, String token) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      throw badUrl(url);
    }
    if (uri.getScheme() == null
        || !(uri.getScheme().equals("http") || uri.getScheme().equals("https"))
        || uri.getHost() == null) {
      throw badUrl(url);
    }
    return new KeelClient(uri, token);
  }

  private static CliException badUrl(String url) {
    return new CliException(
        ExitCodes.UNREACHABLE,
        "the server URL \""
            + url
            + "\" is not an http:// or https:// URL with a host; pass --server"
            + " http://HOST:PORT or set KEEL_SERVER");
  }

  /** The server's base URL as given. */
  String url() {
    return base.toString();
  }

  /** Encodes one path segment, such as a session id. */
  static String segment(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  JsonNode get(String path) {
    return send(request(path).GET().build());
  }

  JsonNode post(String path, JsonNode body) {
    return send(
        request(path)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
            .build());
  }

  /** Opens the approvals notification stream (server-sent events). */
  InputStream approvalStream() {
    HttpRequest r =
        HttpRequest.newBuilder(resolve("/v1/approvals/stream"))
            .header("Authorization", "Bearer " + token)
            .header("Accept", "text/event-stream")
            .timeout(Duration.ofDays(1))
            .GET()
            .build();
    HttpResponse<InputStream> response = exchange(r, HttpResponse.BodyHandlers.ofInputStream());
    if (response.statusCode() == 200) {
      return response.body();
    }
    String body;
    try (InputStream in = response.body()) {
      body = new String(in.readNBytes(MAX_ERROR_BODY), StandardCharsets.UTF_8);
    } catch (IOException e) {
      body = "";
    }
    throw problem(response.statusCode(), body, r);
  }

  /** Opens a session's server-sent event stream after the given sequence number. */
  InputStream stream(String sessionId, long after) {
    HttpRequest r =
        HttpRequest.newBuilder(resolve("/v1/sessions/" + segment(sessionId) + "/stream"))
            .header("Authorization", "Bearer " + token)
            .header("Accept", "text/event-stream")
            .header("Last-Event-ID", Long.toString(after))
            .timeout(Duration.ofDays(1))
            .GET()
            .build();
    HttpResponse<InputStream> response = exchange(r, HttpResponse.BodyHandlers.ofInputStream());
    if (response.statusCode() == 200) {
      return response.body();
    }
    String body;
    try (InputStream in = response.body()) {
      body = new String(in.readNBytes(MAX_ERROR_BODY), StandardCharsets.UTF_8);
    } catch (IOException e) {
      body = "";
    }
    throw problem(response.statusCode(), body, r);
  }

  private HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(resolve(path))
        .header("Authorization", "Bearer " + token)
        .header("Accept", "application/json")
        .timeout(REQUEST_TIMEOUT);
  }

  private URI resolve(String path) {
    String prefix = base.getPath() == null ? "" : base.getPath();
    return base.resolve(prefix + path);
  }

  private JsonNode send(HttpRequest r) {
    HttpResponse<String> response = exchange(r, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    if (response.statusCode() / 100 != 2) {
      throw problem(response.statusCode(), response.body(), r);
    }
    try {
      return JSON.readTree(response.body());
    } catch (JacksonException e) {
      throw new CliException(
          ExitCodes.FAILED,
          r.method() + " " + r.uri() + " answered something that is not JSON; is " + base + " a Keel server?");
    }
  }

  private <T> HttpResponse<T> exchange(HttpRequest r, HttpResponse.BodyHandler<T> handler) {
    try {
      return http.send(r, handler);
    } catch (HttpConnectTimeoutException e) {
      throw unreachable("the connection timed out after " + CONNECT_TIMEOUT.toSeconds() + " s");
    } catch (HttpTimeoutException e) {
      throw new CliException(
          ExitCodes.UNREACHABLE,
          "the server at " + base + " did not answer " + r.method() + " " + r.uri().getPath() + " within "
              + REQUEST_TIMEOUT.toSeconds() + " s");
    } catch (ConnectException e) {
      throw unreachable("connection refused");
    } catch (IOException e) {
      throw unreachable(e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CliException(ExitCodes.FAILED, "interrupted");
    }
  }

  private CliException unreachable(String why) {
    return new CliException(
        ExitCodes.UNREACHABLE,
        "cannot reach the Keel server at "
            + base
            + " ("
            + why
            + "). Is it running? Start one with `./keel serve`, or point --server (or KEEL_SERVER) at"
            + " the right address.");
  }

  private CliException problem(int status, String body, HttpRequest r) {
    String detail = null;
    List<String> errors = new ArrayList<>();
    try {
      JsonNode n = JSON.readTree(body == null ? "" : body);
      if (n != null && n.isObject()) {
        detail = Text.of(n, "detail");
        for (JsonNode e : n.path("errors")) {
          errors.add(e.isString() ? e.asString() : e.toString());
        }
        if (n.has("retry_after_seconds")) {
          detail = detail + " (retry after " + n.get("retry_after_seconds").asInt() + " s)";
        }
      }
    } catch (JacksonException notJson) {
      // fall through to the status line
    }
    if (detail == null || detail.isBlank()) {
      detail =
          r.method() + " " + r.uri().getPath() + " answered HTTP " + status
              + (body == null || body.isBlank() ? "" : ": " + Text.abbreviate(body, 200));
    }
    int code =
        switch (status) {
          case 401, 403 -> ExitCodes.UNREACHABLE;
          case 404 -> ExitCodes.NOT_FOUND;
          case 409, 429 -> ExitCodes.CONFLICT;
          case 503 -> ExitCodes.UNREACHABLE;
          default -> ExitCodes.FAILED;
        };
    if (status == 401) {
      detail =
          detail
              + ". Check --token (or KEEL_TOKEN, or the context: keel config get-contexts) or log in again with"
              + " keel login; a local server's admin token is in its data directory's admin.token.";
    }
    return new CliException(code, detail, errors);
  }
}
