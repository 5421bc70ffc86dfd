package keel.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import keel.testkit.FakeOpenAi;
import tools.jackson.databind.JsonNode;

/**
 * Scenario "interactive": the latency a person chatting with an agent sees, over the persistent
 * server-sent-events path against plain request/response. A real in-process server (durable
 * SQLite, default node settings) whose model is a {@link FakeOpenAi} over HTTP answering at once
 * (zero latency), so what is measured is Keel's own path. Each path has its own session; the
 * paths take turns message by message (the first path rotates), so they see the same machine.
 *
 * <ul>
 *   <li>{@code sse}: {@code GET /v1/sessions/{id}/stream} held open for the whole run; each message
 *       is {@code POST /v1/sessions/{id}/messages}, then its events are read from the stream.
 *   <li>{@code poll_<P>ms}: a client without streaming: it posts the message, then calls {@code GET
 *       /v1/sessions/{id}/events?after=<last seq>} every P ms (0: back to back) until the answer is
 *       there.
 * </ul>
 *
 * <p>Measured for each message, from just before the POST: the POST's {@code 202}, the first event
 * of the turn (its {@code InputReceived}) and the final answer ({@code ModelResponded} without tool
 * calls). Checked: every turn's events arrive exactly once, in sequence order with no gap, starting
 * with its own input and holding exactly one answer, the answer to that input; and at the end each
 * session's stored inputs and answers are the messages sent, once each, in order.
 *
 * <p>Not thread-safe: one run at a time.
 */
final class Interactive {

  /** What to run: measured messages per path, warm-up messages per path, the poll intervals. */
  record Options(int messages, int warmups, List<Integer> pollIntervalsMillis, Path workDir) {
    Options {
      pollIntervalsMillis = List.copyOf(pollIntervalsMillis);
    }
  }

  static final String AGENT = "interactive";
  private static final Duration TURN_TIMEOUT = Duration.ofSeconds(30);

  private final Options options;
  private final Progress progress;

  Interactive(Options options, Progress progress) {
    this.options = options;
    this.progress = progress;
  }

  /** One turn's times in nanoseconds from just before the POST. */
  private record Turn(long ackNanos, long firstEventNanos, long answerNanos) {}

  /** A stored event as a client sees it: its sequence number, type, text and when it arrived. */
  private record Frame(long seq, String type, String text, boolean finalAnswer, long modelLatencyMillis, long arrivedNanos) {
    static Frame of(JsonNode e, long arrivedNanos) {
      String type = e.get("type").asString();
      JsonNode d = e.path("data");
      JsonNode calls = d.has("tool_calls") ? d.get("tool_calls") : d.path("toolCalls");
      boolean answer = type.equals("ModelResponded") && calls.isEmpty();
      long latency = d.has("latency_millis") ? d.get("latency_millis").asLong() : d.path("latencyMillis").asLong(-1);
      return new Frame(e.get("seq").asLong(), type, d.path("text").asString(""), answer, latency, arrivedNanos);
    }
  }

  /** One way of following a session: how a turn's events reach the client. */
  private interface Follow extends AutoCloseable {
    String name();

    /** The session this path talks to. */
    String session();

    /** Sends {@code message} and waits for its answer; returns the turn's times. */
    Turn turn(String message) throws Exception;

    @Override
    void close();
  }

  Map<String, Object> run() throws Exception {
    Path data = Files.createTempDirectory(options.workDir(), "keel-interactive-");
    List<Follow> paths = new ArrayList<>();
    try (FakeOpenAi fake = FakeOpenAi.start().script(r -> FakeOpenAi.Reply.text("ok: " + r.lastUserText()));
        KeelServer server = KeelServer.start(ServerConfig.of(0, data).withEnvironment(Map.of()))) {
      fake.latency(Duration.ZERO);
      String token = Files.readString(server.adminTokenFile()).strip();
      KeelApi admin = new KeelApi(server.url(), token);
      admin.apply(Agents.openai(AGENT, fake.baseUrl()));
      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
      Client client = new Client(http, server.url(), token);

      Map<String, String> sessionOf = new LinkedHashMap<>();
      paths.add(new Streamed(admin, client, started(admin, client)));
      for (int p : options.pollIntervalsMillis()) {
        paths.add(new Polled(client, started(admin, client), p));
      }
      for (Follow p : paths) {
        sessionOf.put(p.name(), p.session());
      }

      int total = options.warmups() + options.messages();
      Map<String, List<Turn>> turns = new LinkedHashMap<>();
      paths.forEach(p -> turns.put(p.name(), new ArrayList<>()));
      for (int i = 0; i < total; i++) {
        for (int k = 0; k < paths.size(); k++) {
          Follow p = paths.get((i + k) % paths.size());
          Turn t = p.turn("m " + i);
          if (i >= options.warmups()) {
            turns.get(p.name()).add(t);
          }
        }
        if ((i + 1) % Math.max(1, total / 10) == 0) {
          progress.line("interactive: " + (i + 1) + " of " + total + " messages on each of " + paths.size() + " paths");
        }
      }

      // every session stored exactly the messages sent and one answer to each, in order
      List<Long> modelMillis = new ArrayList<>();
      for (Map.Entry<String, String> e : sessionOf.entrySet()) {
        List<Frame> all = client.events(e.getValue(), 0);
        List<String> inputs = new ArrayList<>();
        List<String> answers = new ArrayList<>();
        for (Frame f : all) {
          if (f.type().equals("InputReceived")) {
            inputs.add(f.text());
          } else if (f.finalAnswer()) {
            answers.add(f.text());
            modelMillis.add(f.modelLatencyMillis());
          }
        }
        List<String> sent = new ArrayList<>(List.of("hello"));
        for (int i = 0; i < total; i++) {
          sent.add("m " + i);
        }
        DurableSteps.check(inputs.equals(sent), "session " + e.getValue() + " (" + e.getKey() + ") stored other inputs than were sent");
        DurableSteps.check(answers.equals(sent.stream().map(s -> "ok: " + s).toList()),
            "session " + e.getValue() + " (" + e.getKey() + ") stored other answers than one to each input in order");
      }

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("messages", options.messages());
      out.put("warmups", options.warmups());
      out.put("model", "FakeOpenAi over HTTP, zero latency");
      out.put("model_call_ms_p50", Stats.percentile(modelMillis, 50));
      out.put("poll_intervals_ms", options.pollIntervalsMillis());
      Map<String, Object> byPath = new LinkedHashMap<>();
      for (Map.Entry<String, List<Turn>> e : turns.entrySet()) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("post_202_ms", percentiles(e.getValue().stream().map(Turn::ackNanos).toList()));
        m.put("first_event_ms", percentiles(e.getValue().stream().map(Turn::firstEventNanos).toList()));
        m.put("final_answer_ms", percentiles(e.getValue().stream().map(Turn::answerNanos).toList()));
        m.put("requests", client.requests(e.getKey()));
        byPath.put(e.getKey(), m);
        progress.line("interactive: " + e.getKey() + " " + m);
      }
      out.put("paths", byPath);
      out.put("answers_checked", (long) total * paths.size());
      return out;
    } finally {
      for (Follow p : paths) {
        p.close();
      }
      Bench.deleteTree(data);
    }
  }

  /** Starts a session and waits for the answer to its first message; returns its id. */
  private static String started(KeelApi admin, Client client) throws Exception {
    String id = admin.start(AGENT, "hello");
    long deadline = System.nanoTime() + TURN_TIMEOUT.toNanos();
    while (client.events(id, 0).stream().noneMatch(Frame::finalAnswer)) {
      DurableSteps.check(System.nanoTime() < deadline, "session " + id + " did not answer its first message in " + TURN_TIMEOUT);
      Thread.sleep(5);
    }
    return id;
  }

  private static Map<String, Object> percentiles(List<Long> nanos) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", Stats.percentile(nanos, 50) / 1e6);
    m.put("p90", Stats.percentile(nanos, 90) / 1e6);
    m.put("p99", Stats.percentile(nanos, 99) / 1e6);
    m.put("max", Stats.percentile(nanos, 100) / 1e6);
    m.put("mean", Stats.mean(nanos) / 1e6);
    m.put("n", nanos.size());
    return m;
  }

  /** The HTTP calls both paths make, with one client; counts requests per path. Thread-safe. */
  private static final class Client {
    private final HttpClient http;
    private final String base;
    private final String token;
    private final Map<String, AtomicLong> requests = new java.util.concurrent.ConcurrentHashMap<>();

    Client(HttpClient http, String base, String token) {
      this.http = http;
      this.base = base;
      this.token = token;
    }

    long requests(String path) {
      return requests.getOrDefault(path, new AtomicLong()).get();
    }

    void count(String path) {
      requests.computeIfAbsent(path, k -> new AtomicLong()).incrementAndGet();
    }

    /** Posts a message; returns once the 202 is in. */
    void send(String session, String message) throws IOException, InterruptedException {
      HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/v1/sessions/" + session + "/messages"))
          .timeout(TURN_TIMEOUT).header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(EventCodec.mapper().createObjectNode().put("message", message).toString()))
          .build();
      HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
      DurableSteps.check(r.statusCode() == 202, "POST a message to " + session + " answered " + r.statusCode() + ": " + r.body());
    }

    /** The session's events after {@code after}, stamped with when the response was in. */
    List<Frame> events(String session, long after) throws IOException, InterruptedException {
      HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/v1/sessions/" + session + "/events?after=" + after + "&limit=10000"))
          .timeout(TURN_TIMEOUT).header("Authorization", "Bearer " + token).GET().build();
      HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
      long at = System.nanoTime();
      DurableSteps.check(r.statusCode() == 200, "GET the events of " + session + " answered " + r.statusCode() + ": " + r.body());
      List<Frame> out = new ArrayList<>();
      for (JsonNode e : EventCodec.mapper().readTree(r.body()).get("events")) {
        out.add(Frame.of(e, at));
      }
      return out;
    }
  }

  /**
   * Checks the events of one turn as they arrive, in order: the first is the turn's own input, the
   * sequence numbers follow each other with no gap or repeat, and exactly one final answer, the
   * answer to that input, ends it. Not thread-safe.
   */
  private static final class TurnCheck {
    private final String session;
    private long lastSeq;
    private String message;
    private int seen;
    private long firstAt;
    private long answerAt;

    TurnCheck(String session, long lastSeq) {
      this.session = session;
      this.lastSeq = lastSeq;
    }

    void begin(String m) {
      message = m;
      seen = 0;
      firstAt = 0;
      answerAt = 0;
    }

    /** Takes the next frame; returns true when it is the turn's answer. */
    boolean take(Frame f) {
      DurableSteps.check(f.seq() == lastSeq + 1, "session " + session + ": event " + f.seq() + " (" + f.type()
          + ") arrived after event " + lastSeq + "; expected " + (lastSeq + 1) + " (repeated, lost or out of order)");
      lastSeq = f.seq();
      if (seen++ == 0) {
        DurableSteps.check(f.type().equals("InputReceived") && f.text().equals(message),
            "session " + session + ": the turn of \"" + message + "\" began with " + f.type() + " \"" + f.text() + "\"");
        firstAt = f.arrivedNanos();
      }
      if (f.finalAnswer()) {
        DurableSteps.check(f.text().equals("ok: " + message),
            "session " + session + ": the answer to \"" + message + "\" was \"" + f.text() + "\"");
        answerAt = f.arrivedNanos();
        return true;
      }
      return false;
    }
  }

  /** The persistent stream: one {@code GET …/stream} held open for the whole run. */
  private static final class Streamed implements Follow {
    private final Client client;
    private final String session;
    private final TurnCheck check;
    private final KeelApi.Follower stream;

    Streamed(KeelApi api, Client client, String session) throws Exception {
      this.client = client;
      this.session = session;
      long last = client.events(session, 0).getLast().seq();
      this.check = new TurnCheck(session, last);
      this.stream = api.follow(session, last);
      client.count(name());
    }

    @Override
    public String name() {
      return "sse";
    }

    @Override
    public String session() {
      return session;
    }

    @Override
    public Turn turn(String message) throws Exception {
      check.begin(message);
      long t0 = System.nanoTime();
      client.send(session, message);
      client.count(name());
      long ack = System.nanoTime();
      long deadline = t0 + TURN_TIMEOUT.toNanos();
      while (true) {
        KeelApi.Sse e = stream.next(Duration.ofNanos(deadline - System.nanoTime()));
        DurableSteps.check(e != null, "session " + session + ": no answer to \"" + message + "\" on the stream in " + TURN_TIMEOUT);
        if (check.take(Frame.of(e.data(), e.arrivedNanos()))) {
          return new Turn(ack - t0, check.firstAt - t0, check.answerAt - t0);
        }
      }
    }

    @Override
    public void close() {
      stream.close();
    }
  }

  /** Request/response only: post, then poll the events until the answer is there. */
  private static final class Polled implements Follow {
    private final Client client;
    private final String session;
    private final int intervalMillis;
    private final TurnCheck check;
    private long lastSeq;

    Polled(Client client, String session, int intervalMillis) throws Exception {
      this.client = client;
      this.session = session;
      this.intervalMillis = intervalMillis;
      this.lastSeq = client.events(session, 0).getLast().seq();
      this.check = new TurnCheck(session, lastSeq);
    }

    @Override
    public String name() {
      return "poll_" + intervalMillis + "ms";
    }

    @Override
    public String session() {
      return session;
    }

    @Override
    public Turn turn(String message) throws Exception {
      check.begin(message);
      long t0 = System.nanoTime();
      client.send(session, message);
      client.count(name());
      long ack = System.nanoTime();
      long deadline = t0 + TURN_TIMEOUT.toNanos();
      while (true) {
        if (intervalMillis > 0) {
          Thread.sleep(intervalMillis);
        }
        List<Frame> page = client.events(session, lastSeq);
        client.count(name());
        for (Frame f : page) {
          lastSeq = f.seq();
          if (check.take(f)) {
            DurableSteps.check(f == page.getLast(), "session " + session + ": events after the answer to \"" + message + "\"");
            return new Turn(ack - t0, check.firstAt - t0, check.answerAt - t0);
          }
        }
        DurableSteps.check(System.nanoTime() < deadline, "session " + session + ": no answer to \"" + message + "\" in " + TURN_TIMEOUT);
      }
    }

    @Override
    public void close() {
      // nothing held open
    }
  }
}
