package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.stream.Collectors;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Kills real {@code keel serve} processes with SIGKILL at random moments while many sessions run
 * tool steps, restarts them on the same data directory, and checks what DESIGN.md promises: every
 * acknowledged input is processed exactly once, every session ends, no event is lost or duplicated,
 * no non-idempotent tool call ran twice, and the cost ledger and the agent's budget agree exactly
 * with what the sessions' events record.
 */
class CrashRecoveryTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: crashy, owner: test}
      spec:
        instructions: Record the effect, check the time, record again, answer.
        model:
          provider: scripted
          name: crash-script
          script:
            - turns:
                - call: [{tool: effect_record, args: {note: "{{input}}"}}]
                - call: [{tool: time_now}]
                - call: [{tool: effect_record, args: {note: "again {{input}}"}}]
                - say: "done: {{input}}"
        tools: [internal://effects, internal://time]
        budgets: {usd_per_day: 1000}
      """;

  static final int SESSIONS = 40;
  static final int MESSAGES_PER_SESSION = 6;
  static final int CRASHES = 6;

  @TempDir Path dir;
  ServerProcess server;

  /** Environment variables that choose the store the servers run on; none: SQLite in the data directory. */
  protected Map<String, String> storeEnvironment() {
    return Map.of();
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  @Timeout(value = 6, unit = TimeUnit.MINUTES)
  void killNine_atRandomPoints_losesNothingAndNeverRepeatsAnEffect() throws Exception {
    Path data = dir.resolve("data");
    Path effects = dir.resolve("effects.log");
    Path log = dir.resolve("server.log");
    Random random = new Random(Long.getLong("keel.crash.seed", System.nanoTime()));
    Map<String, String> env = new HashMap<>(storeEnvironment());
    env.put("KEEL_TEST_EFFECTS_FILE", effects.toString());
    server = new ServerProcess(data, log, env, List.of()).start();
    JsonNode applied = post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", AGENT).toString(), null);
    assertThat(applied.path("results").get(0).path("result").asString()).isEqualTo("created");

    // Clients: each session gets its messages one after another; a request is retried with the
    // same idempotency key until it is acknowledged, whatever the server is doing.
    Map<Integer, String> sessionIds = new ConcurrentHashMap<>();
    AtomicInteger acknowledged = new AtomicInteger();
    AtomicBoolean clientsDone = new AtomicBoolean();
    ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
    List<Future<?>> work = new ArrayList<>();
    for (int s = 0; s < SESSIONS; s++) {
      int session = s;
      work.add(clients.submit(() -> {
        for (int m = 0; m < MESSAGES_PER_SESSION; m++) {
          String text = "s" + session + "-m" + m;
          if (m == 0) {
            String body = EventCodec.mapper().createObjectNode().put("agent", "crashy").put("message", text).toString();
            JsonNode r = postUntilAcknowledged("/v1/sessions", body, "start-" + session);
            sessionIds.put(session, r.get("id").asString());
          } else {
            String body = EventCodec.mapper().createObjectNode().put("message", text).toString();
            postUntilAcknowledged("/v1/sessions/" + sessionIds.get(session) + "/messages", body, "msg-" + session + "-" + m);
          }
          acknowledged.incrementAndGet();
          sleepQuietly(ThreadLocalRandom.current().nextInt(0, 300));
        }
        return null;
      }));
    }

    // The killer: SIGKILL spread over the workload (kill i once i/(CRASHES+1) of the inputs are
    // acknowledged, then a random moment later, so each lands mid-step somewhere), restart on the
    // same data directory.
    int total = SESSIONS * MESSAGES_PER_SESSION;
    int kills = 0;
    int killsWithWorkOutstanding = 0;
    while (kills < CRASHES) {
      int threshold = total * (kills + 1) / (CRASHES + 1);
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
      while (acknowledged.get() < threshold && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      Thread.sleep(random.nextInt(300));
      if (acknowledged.get() < total) {
        killsWithWorkOutstanding++;
      }
      server.kill();
      kills++;
      server.start();
    }
    for (Future<?> f : work) {
      f.get(3, TimeUnit.MINUTES);
    }
    clientsDone.set(true);
    assertThat(acknowledged.get()).isEqualTo(SESSIONS * MESSAGES_PER_SESSION);
    assertThat(killsWithWorkOutstanding).as("kills that landed while clients still had work").isGreaterThanOrEqualTo(CRASHES - 1);

    // A human decides the calls whose outcome a crash made unknown, until every session is idle.
    int unknownResolved = settle();

    // Every acknowledged input processed exactly once, in a gapless log, with exactly one answer.
    Map<String, Long> effectRuns = Files.readAllLines(effects).stream()
        .filter(l -> !l.isBlank())
        .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
    int completedEffects = 0;
    long inputTokens = 0;
    long outputTokens = 0;
    for (int s = 0; s < SESSIONS; s++) {
      String id = sessionIds.get(s);
      JsonNode events = get("/v1/sessions/" + id + "/events?limit=10000").get("events");
      List<String> inputs = new ArrayList<>();
      List<String> answers = new ArrayList<>();
      // Call ids are unique per model response only; the idempotency key of each effect call comes
      // from its ToolCallStarted event.
      Map<String, String> effectCallKeys = new HashMap<>();
      List<String> completedEffectKeys = new ArrayList<>();
      for (int i = 0; i < events.size(); i++) {
        JsonNode e = events.get(i);
        assertThat(e.get("seq").asLong()).as("session %s event %d", id, i).isEqualTo(i + 1);
        JsonNode d = e.get("data");
        switch (e.get("type").asString()) {
          case "InputReceived" -> inputs.add(d.get("text").asString());
          case "ModelResponded" -> {
            inputTokens += d.get("usage").get("inputTokens").asLong();
            outputTokens += d.get("usage").get("outputTokens").asLong();
            effectCallKeys.clear();
            if (d.get("toolCalls").isEmpty()) {
              answers.add(d.get("text").asString());
            }
          }
          case "ToolCallAuthorized" -> {
            if (d.get("capability").asString().equals("internal://effects")) {
              effectCallKeys.put(d.get("callId").asString(), "");
            }
          }
          case "ToolCallStarted" ->
              effectCallKeys.computeIfPresent(d.get("callId").asString(), (k, v) -> d.get("idempotencyKey").asString());
          case "ToolCallCompleted" -> {
            String key = effectCallKeys.get(d.get("callId").asString());
            if (key != null) {
              completedEffectKeys.add(key);
            }
          }
          default -> {}
        }
      }
      List<String> expected = new ArrayList<>();
      for (int m = 0; m < MESSAGES_PER_SESSION; m++) {
        expected.add("s" + s + "-m" + m);
      }
      assertThat(inputs).as("inputs of session %s", id).containsExactlyElementsOf(expected);
      assertThat(answers).as("answers of session %s", id).containsExactlyElementsOf(expected.stream().map(t -> "done: " + t).toList());
      assertThat(completedEffectKeys).as("effect keys of session %s", id).doesNotHaveDuplicates();
      for (String key : completedEffectKeys) {
        completedEffects++;
        assertThat(effectRuns.getOrDefault(key, 0L)).as("completed effect %s ran exactly once", key).isEqualTo(1L);
      }
    }
    assertThat(effectRuns.values()).as("no effect ran twice").allMatch(n -> n == 1L);

    // The ledger was written with the events, in the same transactions, whatever the kills
    // interrupted: it records exactly the tokens and the priced effects the events record.
    Map<String, JsonNode> byKind = new HashMap<>();
    for (JsonNode row : get("/v1/costs?agent=crashy&group_by=kind").get("rows")) {
      byKind.put(row.get("kind").asString(), row);
    }
    assertThat(byKind.get("model_input").get("quantity").asLong()).isEqualTo(inputTokens);
    assertThat(byKind.get("model_output").get("quantity").asLong()).isEqualTo(outputTokens);
    assertThat(byKind.get("external_action").get("quantity").asLong()).isEqualTo(completedEffects);
    java.math.BigDecimal actions = EffectsToolProvider.PRICE.multiply(java.math.BigDecimal.valueOf(completedEffects));
    assertThat(new java.math.BigDecimal(byKind.get("external_action").get("usd").asString())).isEqualByComparingTo(actions);
    JsonNode budget = get("/v1/agents/crashy/budget").get("budgets").get(0);
    if (budget.get("window").get("start").asString().equals(java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.DAYS).toString())
        && !get("/v1/costs?agent=crashy&group_by=day").get("rows").isEmpty()
        && get("/v1/costs?agent=crashy&group_by=day").get("rows").size() == 1) {
      // the scripted model is free, so the day's spending is the priced effects', settled with them
      assertThat(new java.math.BigDecimal(budget.get("used").asString())).isEqualByComparingTo(actions);
    }
    System.out.printf("crash test: %d kills (%d with work outstanding), %d inputs, %d completed effects, %d outcomes resolved by a human%n",
        kills, killsWithWorkOutstanding, acknowledged.get(), completedEffects, unknownResolved);
    clients.shutdownNow();
  }

  private int settle() throws Exception {
    int resolved = 0;
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (System.nanoTime() < deadline) {
      JsonNode sessions = get("/v1/sessions?limit=1000").get("sessions");
      boolean allIdle = true;
      for (JsonNode s : sessions) {
        String status = s.get("status").asString();
        if (status.equals("awaiting_approval")) {
          JsonNode view = get("/v1/sessions/" + s.get("id").asString());
          for (JsonNode p : view.get("pending_tool_calls")) {
            if (p.get("state").asString().equals("outcome_unknown")) {
              String body = EventCodec.mapper().createObjectNode()
                  .put("call_id", p.get("call_id").asString()).put("resolution", "succeeded").toString();
              post("/v1/sessions/" + s.get("id").asString() + "/resolve", body, null);
              resolved++;
            }
          }
        }
        if (!status.equals("idle") || s.get("pending_inputs").asInt() > 0) {
          allIdle = false;
        }
      }
      if (allIdle && sessions.size() == SESSIONS) {
        return resolved;
      }
      Thread.sleep(200);
    }
    throw new AssertionError("sessions did not all settle: " + get("/v1/sessions?limit=1000"));
  }

  private JsonNode postUntilAcknowledged(String path, String body, String key) {
    while (true) {
      try {
        HttpResponse<String> r = server.post(path, body, key);
        if (r.statusCode() / 100 == 2) {
          return EventCodec.mapper().readTree(r.body());
        }
        if (r.statusCode() != 429 && r.statusCode() != 503) {
          throw new AssertionError(path + " answered " + r.statusCode() + ": " + r.body());
        }
      } catch (IOException serverDown) {
        // the server was killed or is restarting: try again with the same key
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      sleepQuietly(100);
    }
  }

  private JsonNode get(String path) throws Exception {
    return server.get(path);
  }

  private JsonNode post(String path, String body, String key) throws Exception {
    HttpResponse<String> r = server.post(path, body, key);
    assertThat(r.statusCode() / 100).as(path + ": " + r.body()).isEqualTo(2);
    return EventCodec.mapper().readTree(r.body());
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
