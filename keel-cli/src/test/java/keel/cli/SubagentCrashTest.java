package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Kills real {@code keel serve} processes with SIGKILL at random moments while many sessions
 * delegate to sub-agents, restarts them on the same data directory, and checks that every call
 * spawned exactly one child, every child's result reached its parent exactly once, and every
 * session ended with the answer its script gives.
 */
class SubagentCrashTest {

  static final String AGENTS =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: boss, owner: test}
      spec:
        instructions: Delegate.
        model:
          provider: scripted
          name: boss-script
          script:
            - turns:
                - call: [{tool: pause_briefly}]
                - call: [{tool: agent_worker, args: {task: "{{input}}"}}]
                - say: "boss: {{result}}"
        tools: [agent://worker, internal://pause]
      ---
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: worker, owner: test}
      spec:
        instructions: Work.
        model:
          provider: scripted
          name: worker-script
          script:
            - turns:
                - call: [{tool: pause_briefly}]
                - call: [{tool: pause_briefly}]
                - say: "worker did {{input}}"
        tools: [internal://pause]
      """;

  static final int SESSIONS = 30;
  static final int CRASHES = 5;

  @TempDir Path dir;
  ServerProcess server;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  @Timeout(value = 6, unit = TimeUnit.MINUTES)
  void killNine_duringSpawnsAndDeliveries_neverSpawnsTwice_andDeliversEachResultOnce() throws Exception {
    Random random = new Random(Long.getLong("keel.crash.seed", System.nanoTime()));
    server = new ServerProcess(dir.resolve("data"), dir.resolve("server.log"), Map.of("KEEL_TEST_PAUSE", "1"), List.of()).start();
    HttpResponse<String> applied = server.post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", AGENTS).toString(), null);
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);

    // a wave of sessions is started (each start retried with its key until acknowledged), and the
    // server is killed a random moment later, while that wave delegates; then restarted
    Map<Integer, String> ids = new java.util.concurrent.ConcurrentHashMap<>();
    ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
    int killsAmidDelegation = 0;
    int perWave = SESSIONS / CRASHES;
    for (int k = 0; k < CRASHES; k++) {
      List<Future<?>> wave = new ArrayList<>();
      for (int s = k * perWave; s < (k + 1) * perWave; s++) {
        int session = s;
        wave.add(clients.submit(() -> {
          String body = EventCodec.mapper().createObjectNode().put("agent", "boss").put("message", "job-" + session)
              .put("task", true).toString();
          ids.put(session, postUntilAcknowledged("/v1/sessions", body, "start-" + session).get("id").asString());
          return null;
        }));
      }
      for (Future<?> f : wave) {
        f.get(2, TimeUnit.MINUTES);
      }
      Thread.sleep(50 + random.nextInt(300));
      // whether delegations were under way just before the kill: started parents not yet completed
      if ((k + 1) * perWave - count("boss", "completed") > 0) {
        killsAmidDelegation++;
      }
      server.kill();
      server.start();
    }
    clients.shutdownNow();

    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
    while (true) {
      JsonNode bosses = server.get("/v1/sessions?agent=boss&limit=1000").get("sessions");
      long done = 0;
      for (JsonNode b : bosses) {
        if (b.get("status").asString().equals("completed")) {
          done++;
        }
      }
      if (done == SESSIONS) {
        break;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not every delegating session completed: " + bosses);
      }
      Thread.sleep(200);
    }

    Map<String, List<JsonNode>> childrenByParent = new HashMap<>();
    for (JsonNode w : server.get("/v1/sessions?agent=worker&limit=1000").get("sessions")) {
      childrenByParent.computeIfAbsent(w.get("parent_id").asString(), x -> new ArrayList<>()).add(w);
    }
    int spawnsSeen = 0;
    for (int s = 0; s < SESSIONS; s++) {
      String id = ids.get(s);
      List<JsonNode> children = childrenByParent.getOrDefault(id, List.of());
      assertThat(children).as("children of %s", id).hasSize(1);
      JsonNode child = children.getFirst();
      assertThat(child.get("status").asString()).isEqualTo("completed");
      assertThat(child.get("root_id").asString()).isEqualTo(id);

      List<String> types = new ArrayList<>();
      String childInSpawn = "";
      String answer = "";
      JsonNode events = server.get("/v1/sessions/" + id + "/events?limit=10000").get("events");
      for (int i = 0; i < events.size(); i++) {
        JsonNode e = events.get(i);
        assertThat(e.get("seq").asLong()).as("session %s event %d", id, i).isEqualTo(i + 1);
        types.add(e.get("type").asString());
        switch (e.get("type").asString()) {
          case "SubagentSpawned" -> childInSpawn = e.get("data").get("childSessionId").asString();
          case "SessionCompleted" -> answer = e.get("data").get("answer").asString();
          default -> {}
        }
      }
      assertThat(types.stream().filter(t -> t.equals("SubagentSpawned")).count()).as("spawns of %s", id).isEqualTo(1);
      assertThat(types.stream().filter(t -> t.equals("SubagentCompleted")).count()).as("results of %s", id).isEqualTo(1);
      assertThat(types).as("events of %s", id).doesNotContain("InputRejected");
      assertThat(childInSpawn).isEqualTo(child.get("id").asString());
      assertThat(answer).isEqualTo("boss: worker did job-" + s);
      spawnsSeen++;

      List<String> childTypes = new ArrayList<>();
      for (JsonNode e : server.get("/v1/sessions/" + childInSpawn + "/events?limit=10000").get("events")) {
        childTypes.add(e.get("type").asString());
      }
      assertThat(childTypes.stream().filter(t -> t.equals("InputReceived")).count()).as("tasks of %s", childInSpawn).isEqualTo(1);
      assertThat(childTypes.stream().filter(t -> t.equals("SessionCompleted")).count()).isEqualTo(1);
    }
    assertThat(spawnsSeen).isEqualTo(SESSIONS);
    assertThat(killsAmidDelegation).as("kills that landed while delegating sessions had work").isGreaterThanOrEqualTo(CRASHES - 1);
    System.out.printf("sub-agent crash test: %d kills (%d amid delegation), %d delegating sessions, each with one child and one result%n",
        CRASHES, killsAmidDelegation, SESSIONS);
  }

  /** How many sessions of an agent have a status. */
  private int count(String agent, String status) throws Exception {
    return server.get("/v1/sessions?agent=" + agent + "&status=" + status + "&limit=1000").get("sessions").size();
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
        // killed or restarting: try again with the same key
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      sleepQuietly(100);
    }
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
