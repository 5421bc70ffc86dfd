package keel.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import tools.jackson.databind.JsonNode;

/**
 * Scenario "burst": R requests released at once against a real in-process server (durable SQLite,
 * default node settings) whose model is a {@link FakeOpenAi} over HTTP answering after a latency.
 * First R new sessions ({@code POST /v1/sessions}), then R messages to H hot sessions ({@code POST
 * /v1/sessions/{id}/messages}). Measured: accepted and refused (429) counts, admission latency (the
 * request's round trip) p50/p99. Checked: nothing lost — every accepted input appears exactly once
 * as an {@code InputReceived} in its session's events and the session ends idle after a final
 * answer; per-session order kept — every model call sees its session's messages in the order
 * they are stored in the session's events.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class Burst {

  /** What to run. */
  record Options(int requests, int hotSessions, Duration modelLatency, Path workDir) {}

  static final String AGENT = "burst";
  private static final Duration TIMEOUT = Duration.ofMinutes(5);

  private final Options options;
  private final Progress progress;

  Burst(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** One request's outcome: status, round trip in nanoseconds, the answer's body. */
  private record Outcome(int status, long nanos, String body, String sessionId, String text) {}

  Map<String, Object> run() throws Exception {
    Path data = Files.createTempDirectory(options.workDir(), "keel-burst-");
    try (FakeOpenAi fake = FakeOpenAi.start().script(r -> FakeOpenAi.Reply.text("ok: " + r.lastUserText()));
        KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()))) {
      fake.latency(options.modelLatency());
      String token = Files.readString(server.adminTokenFile()).strip();
      KeelApi admin = new KeelApi(server.url(), token);
      admin.apply(Agents.openai(AGENT, fake.baseUrl()));
      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(30)).build();
      int r = options.requests();

      // 1. R new sessions at once
      List<Outcome> starts = burst(r, i -> new String[] {"/v1/sessions",
          EventCodec.mapper().createObjectNode().put("agent", AGENT).put("message", "new " + i).toString(), null, "new " + i},
          http, server.url(), token);
      List<String> newIds = new ArrayList<>();
      for (Outcome o : starts) {
        if (o.status() / 100 == 2) {
          newIds.add(EventCodec.mapper().readTree(o.body()).get("id").asString());
        }
      }
      awaitIdle(admin, newIds.size());
      Map<String, Object> newResult = summary(starts);
      for (String id : newIds) {
        verify(admin, id, 1);
      }
      progress.line("burst: new sessions " + newResult);

      // 2. R messages at once to H hot sessions (already started and idle)
      int h = options.hotSessions();
      List<String> hot = new ArrayList<>();
      for (int i = 0; i < h; i++) {
        hot.add(admin.start(AGENT, "warm " + i));
      }
      awaitIdle(admin, newIds.size() + h);
      List<Outcome> sends = burst(r, i -> new String[] {"/v1/sessions/" + hot.get(i % h) + "/messages",
          EventCodec.mapper().createObjectNode().put("message", "hot " + i).toString(), hot.get(i % h), "hot " + i},
          http, server.url(), token);
      awaitIdle(admin, newIds.size() + h);
      Map<String, Object> hotResult = summary(sends);
      long orderChecked = 0;
      for (String id : hot) {
        List<String> accepted = new ArrayList<>();
        for (Outcome o : sends) {
          if (o.status() / 100 == 2 && id.equals(o.sessionId())) {
            accepted.add(o.text());
          }
        }
        List<String> stored = verify(admin, id, 1 + accepted.size());
        DurableSteps.check(new HashSet<>(stored.subList(1, stored.size())).equals(new HashSet<>(accepted)),
            "session " + id + ": the accepted messages and the stored inputs differ");
        orderChecked += stored.size();
      }
      // every model call saw its session's messages in the stored order
      for (FakeOpenAi.ChatRequest q : fake.requests()) {
        List<String> users = q.messages().stream().filter(m -> m.role().equals("user")).map(FakeOpenAi.WireMessage::content).toList();
        if (users.isEmpty() || !users.get(0).startsWith("warm ")) {
          continue;
        }
        String sid = hot.get(Integer.parseInt(users.get(0).substring(5)));
        List<String> stored = inputs(admin, sid);
        DurableSteps.check(stored.subList(0, Math.min(stored.size(), users.size())).equals(users),
            "a model call of " + sid + " saw the messages out of the stored order");
      }
      progress.line("burst: hot sessions " + hotResult);

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("requests", r);
      out.put("hot_sessions", h);
      out.put("model_latency_ms", options.modelLatency().toMillis());
      out.put("new_sessions", newResult);
      out.put("hot", hotResult);
      out.put("inputs_checked_in_order", orderChecked);
      out.put("model_requests", fake.requestCount());
      return out;
    } finally {
      Bench.deleteTree(data);
    }
  }

  private interface RequestOf {
    String[] at(int i);
  }

  /** Sends R requests released together by a latch; returns every outcome. */
  private static List<Outcome> burst(int r, RequestOf of, HttpClient http, String base, String token) throws Exception {
    List<Outcome> out = Collections.synchronizedList(new ArrayList<>());
    CountDownLatch go = new CountDownLatch(1);
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int i = 0; i < r; i++) {
        String[] q = of.at(i);
        fs.add(ex.submit(() -> {
          HttpRequest req = HttpRequest.newBuilder(URI.create(base + q[0])).timeout(Duration.ofSeconds(60))
              .header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
              .POST(HttpRequest.BodyPublishers.ofString(q[1])).build();
          go.await();
          long t = System.nanoTime();
          HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
          out.add(new Outcome(resp.statusCode(), System.nanoTime() - t, resp.body(), q[2], q[3]));
          return null;
        }));
      }
      go.countDown();
      for (Future<?> f : fs) {
        f.get();
      }
    }
    return out;
  }

  private static Map<String, Object> summary(List<Outcome> os) {
    List<Long> lat = new ArrayList<>();
    int accepted = 0;
    int refused = 0;
    for (Outcome o : os) {
      lat.add(o.nanos());
      if (o.status() / 100 == 2) {
        accepted++;
      } else if (o.status() == 429) {
        refused++;
      } else {
        throw new IllegalStateException("a burst request answered " + o.status() + ": " + o.body());
      }
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("accepted", accepted);
    m.put("refused_429", refused);
    m.put("admission_p50_ms", Stats.percentile(lat, 50) / 1e6);
    m.put("admission_p99_ms", Stats.percentile(lat, 99) / 1e6);
    m.put("admission_max_ms", Stats.percentile(lat, 100) / 1e6);
    return m;
  }

  /** The session's input texts in event order. */
  private static List<String> inputs(KeelApi api, String id) {
    List<String> texts = new ArrayList<>();
    for (JsonNode e : api.call("GET", "/v1/sessions/" + id + "/events?limit=10000", null).get("events")) {
      if (e.get("type").asString().equals("InputReceived")) {
        texts.add(e.get("data").get("text").asString());
      }
    }
    return texts;
  }

  /** Checks the session stored {@code expected} distinct inputs and ends with a final answer; returns its inputs. */
  private static List<String> verify(KeelApi api, String id, int expected) {
    JsonNode events = api.call("GET", "/v1/sessions/" + id + "/events?limit=10000", null).get("events");
    List<String> texts = new ArrayList<>();
    String lastType = "";
    for (JsonNode e : events) {
      lastType = e.get("type").asString();
      if (lastType.equals("InputReceived")) {
        texts.add(e.get("data").get("text").asString());
      }
    }
    Set<String> distinct = new HashSet<>(texts);
    DurableSteps.check(texts.size() == expected && distinct.size() == expected,
        "session " + id + " stored " + texts.size() + " inputs (" + distinct.size() + " distinct), expected " + expected);
    DurableSteps.check(lastType.equals("ModelResponded"), "session " + id + " ends with " + lastType + ", not an answer");
    return texts;
  }

  private void awaitIdle(KeelApi api, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (true) {
      Map<String, Long> c = api.counts(AGENT);
      DurableSteps.check(c.getOrDefault("failed", 0L) == 0, "sessions failed: " + c);
      long total = c.values().stream().mapToLong(Long::longValue).sum();
      if (c.getOrDefault("idle", 0L) >= n && total == c.getOrDefault("idle", 0L)) {
        return;
      }
      DurableSteps.check(System.nanoTime() < deadline, "sessions did not all go idle in " + TIMEOUT + ": " + c);
      Thread.sleep(50);
    }
  }
}
