package keel.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import keel.core.EventCodec;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A small client of Keel's HTTP API, as a user's program would call it: bearer token, JSON bodies.
 * Thread-safe (one {@link HttpClient} shared by all callers).
 */
final class KeelApi {

  private final String baseUrl;
  private final String token;
  private final HttpClient http;

  KeelApi(String baseUrl, String token) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.http =
        HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
  }

  JsonNode call(String method, String path, String body) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(60))
            .header("Authorization", "Bearer " + token);
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    HttpResponse<String> r;
    try {
      r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new IllegalStateException(method + " " + path + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted during " + method + " " + path, e);
    }
    if (r.statusCode() / 100 != 2) {
      throw new IllegalStateException(method + " " + path + " answered " + r.statusCode() + ": " + r.body());
    }
    return EventCodec.mapper().readTree(r.body());
  }

  void apply(String yaml) {
    call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "bench").toString());
  }

  /** Starts a session; returns its id. */
  String start(String agent, String message) {
    ObjectNode b = EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message);
    return call("POST", "/v1/sessions", b.toString()).get("id").asString();
  }

  void send(String sessionId, String message) {
    call("POST", "/v1/sessions/" + sessionId + "/messages", EventCodec.mapper().createObjectNode().put("message", message).toString());
  }

  /** Counts of an agent's sessions by status wire name. */
  Map<String, Long> counts(String agent) {
    JsonNode s = call("GET", "/v1/agents/" + agent, null).get("sessions");
    Map<String, Long> out = new HashMap<>();
    for (Map.Entry<String, JsonNode> e : s.properties()) {
      out.put(e.getKey(), e.getValue().asLong());
    }
    return out;
  }

  /**
   * Follows a session's server-sent events after {@code afterSeq}. The stream is open (subscribed
   * on the server) when this returns.
   */
  Follower follow(String sessionId, long afterSeq) {
    HttpRequest req =
        HttpRequest.newBuilder(URI.create(baseUrl + "/v1/sessions/" + sessionId + "/stream"))
            .header("Authorization", "Bearer " + token)
            .header("Last-Event-ID", Long.toString(afterSeq))
            .build();
    Follower f = new Follower();
    f.thread =
        Thread.ofVirtual()
            .name("bench-sse-" + sessionId)
            .start(
                () -> {
                  try {
                    HttpResponse<Stream<String>> r = http.send(req, HttpResponse.BodyHandlers.ofLines());
                    f.body = r.body();
                    f.read(r.body().iterator());
                  } catch (IOException | RuntimeException e) {
                    f.open.countDown();
                  } catch (InterruptedException e) {
                    f.open.countDown();
                  }
                });
    try {
      if (!f.open.await(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("the event stream of " + sessionId + " did not open");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    return f;
  }

  /** A server-sent event: its type, its JSON data, and when its data line was read ({@link System#nanoTime}). */
  record Sse(String type, JsonNode data, long arrivedNanos) {
    /** Whether this is a model answer without tool calls: the end of a turn. */
    boolean isFinalAnswer() {
      if (!type.equals("ModelResponded")) {
        return false;
      }
      JsonNode d = data.path("data");
      JsonNode calls = d.has("tool_calls") ? d.get("tool_calls") : d.path("toolCalls");
      return calls.isEmpty();
    }
  }

  /** One open event stream; frames are queued (bounded) for the caller. */
  static final class Follower implements AutoCloseable {
    private final BlockingQueue<Sse> frames = new ArrayBlockingQueue<>(100_000);
    private final CountDownLatch open = new CountDownLatch(1);
    private volatile Stream<String> body;
    private Thread thread;

    private void read(Iterator<String> lines) {
      String type = null;
      while (lines.hasNext()) {
        String line = lines.next();
        open.countDown();
        if (line.startsWith("event: ")) {
          type = line.substring(7);
        } else if (line.startsWith("data: ") && type != null) {
          long at = System.nanoTime();
          if (!type.equals("delta")) {
            frames.offer(new Sse(type, EventCodec.mapper().readTree(line.substring(6)), at));
          }
          type = null;
        }
      }
    }

    /** The next event of the stream (deltas skipped), or null when none came within {@code timeout}. */
    Sse next(Duration timeout) throws InterruptedException {
      return frames.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Waits for the next final model answer; returns false on timeout. */
    boolean awaitFinalAnswer(Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (true) {
        Sse s = frames.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
        if (s == null) {
          return false;
        }
        if (s.isFinalAnswer()) {
          return true;
        }
      }
    }

    @Override
    public void close() {
      Stream<String> b = body;
      if (b != null) {
        b.close();
      }
      thread.interrupt();
    }
  }
}
