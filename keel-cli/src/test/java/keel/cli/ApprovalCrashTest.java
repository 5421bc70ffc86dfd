package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * Kills real {@code keel serve} processes with SIGKILL while approvers approve external calls,
 * restarts them on the same data directory, and checks that each decision is acted on exactly
 * once: every approved call ran at most once (a crash mid-call makes its outcome unknown instead of
 * running it again), every session records exactly one decision and ends.
 */
class ApprovalCrashTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: payer, owner: test}
      spec:
        instructions: Pay.
        model:
          provider: scripted
          name: pay-script
          script:
            - turns:
                - call: [{tool: effect_pay, args: {note: "{{input}}"}}]
                - say: "paid {{input}}"
        tools: [mcp://gateway/effects]
        mode: supervised
      """;

  static final int SESSIONS = 24;
  static final int CRASHES = 4;

  @TempDir Path dir;
  ServerProcess server;
  final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  @Timeout(value = 6, unit = TimeUnit.MINUTES)
  void killNine_aroundApprovedCalls_actsOnEachDecisionExactlyOnce() throws Exception {
    Random random = new Random(Long.getLong("keel.crash.seed", System.nanoTime()));
    Path effects = dir.resolve("effects.log");
    server = new ServerProcess(dir.resolve("data"), dir.resolve("server.log"), Map.of("KEEL_TEST_EFFECTS_FILE", effects.toString()),
        List.of()).start();
    assertThat(server.post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", AGENT).toString(), null).statusCode()).isEqualTo(200);
    HttpResponse<String> op = server.post("/v1/operators", "{\"name\":\"carol\",\"roles\":[\"approver@test\"]}", null);
    assertThat(op.statusCode()).as(op.body()).isEqualTo(201);
    String approver = EventCodec.mapper().readTree(op.body()).get("token").asString();
    List<String> ids = new ArrayList<>();
    for (int s = 0; s < SESSIONS; s++) {
      HttpResponse<String> r = server.post("/v1/sessions",
          EventCodec.mapper().createObjectNode().put("agent", "payer").put("message", "p" + s).put("task", true).toString(), "start-" + s);
      ids.add(EventCodec.mapper().readTree(r.body()).get("id").asString());
    }
    List<String> approvals = new ArrayList<>();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    while (approvals.size() < SESSIONS) {
      approvals.clear();
      server.get("/v1/approvals?limit=1000").get("approvals").forEach(a -> approvals.add(a.get("id").asString()));
      assertThat(System.nanoTime()).as("every session asks for approval").isLessThan(deadline);
      Thread.sleep(100);
    }

    // approvers decide, retrying through crashes; a 409 on a retry means the first try was stored
    AtomicInteger conflicts = new AtomicInteger();
    ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
    List<Future<?>> work = new ArrayList<>();
    for (String id : approvals) {
      work.add(clients.submit(() -> {
        Thread.sleep(random.nextInt(1500));
        approveUntilStored(id, approver, conflicts);
        return null;
      }));
    }
    for (int k = 0; k < CRASHES; k++) {
      Thread.sleep(200 + random.nextInt(400));
      server.kill();
      server.start();
    }
    for (Future<?> f : work) {
      f.get(2, TimeUnit.MINUTES);
    }
    clients.shutdownNow();

    // a call cut off mid-run has an unknown outcome: a human says what the effects file says
    List<String> ran;
    int unknown = 0;
    deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (true) {
      int done = 0;
      for (String id : ids) {
        JsonNode s = server.get("/v1/sessions/" + id);
        String status = s.get("status").asString();
        if (status.equals("completed")) {
          done++;
        } else if (status.equals("awaiting_approval")) {
          for (JsonNode p : s.path("pending_tool_calls")) {
            if (p.path("state").asString().equals("outcome_unknown")) {
              String callId = p.path("call_id").asString();
              String key = "";
              for (JsonNode e : server.get("/v1/sessions/" + id + "/events?limit=10000").get("events")) {
                if (e.get("type").asString().equals("ToolCallStarted") && e.get("data").get("callId").asString().equals(callId)) {
                  key = e.get("data").get("idempotencyKey").asString();
                }
              }
              String resolution = Files.exists(effects) && Files.readAllLines(effects).contains(key) ? "succeeded" : "failed";
              if (server.post("/v1/sessions/" + id + "/resolve",
                  "{\"call_id\":\"" + callId + "\",\"resolution\":\"" + resolution + "\"}", null).statusCode() == 202) {
                unknown++;
              }
            }
          }
        }
      }
      if (done == SESSIONS) {
        break;
      }
      assertThat(System.nanoTime()).as("every session ends").isLessThan(deadline);
      Thread.sleep(200);
    }

    ran = Files.exists(effects) ? Files.readAllLines(effects) : List.of();
    assertThat(ran).as("no approved call ran twice").doesNotHaveDuplicates();
    assertThat(ran.size()).isLessThanOrEqualTo(SESSIONS);
    for (String id : ids) {
      List<String> types = new ArrayList<>();
      for (JsonNode e : server.get("/v1/sessions/" + id + "/events?limit=10000").get("events")) {
        types.add(e.get("type").asString());
      }
      assertThat(types.stream().filter(t -> t.equals("ApprovalRequested")).count()).as("requests of %s", id).isEqualTo(1);
      assertThat(types.stream().filter(t -> t.equals("ApprovalDecided")).count()).as("decisions of %s", id).isEqualTo(1);
      assertThat(types.stream().filter(t -> t.equals("ToolCallStarted")).count()).as("starts of %s", id).isEqualTo(1);
    }
    assertThat(server.get("/v1/approvals?status=approved&limit=1000").get("approvals").size()).isEqualTo(SESSIONS);
    System.out.printf("approval crash test: %d kills, %d approvals, %d effects ran, %d outcomes unknown, %d retried decisions were conflicts%n",
        CRASHES, SESSIONS, ran.size(), unknown, conflicts.get());
  }

  private void approveUntilStored(String id, String token, AtomicInteger conflicts) throws Exception {
    while (true) {
      try {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(server.base() + "/v1/approvals/" + id + "/approve"))
            .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString("{\"reason\":\"ok\"}")).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200) {
          return;
        }
        if (r.statusCode() == 409) {
          conflicts.incrementAndGet();
          return;
        }
        if (r.statusCode() != 503) {
          throw new AssertionError("approve " + id + " answered " + r.statusCode() + ": " + r.body());
        }
      } catch (IOException serverDown) {
        // killed or restarting: try again
      }
      Thread.sleep(50);
    }
  }
}
