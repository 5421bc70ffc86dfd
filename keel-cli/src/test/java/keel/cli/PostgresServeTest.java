package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.data.PostgresConfig;
import keel.data.TestPostgres;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * {@code keel serve --store postgresql://…}: the server on a real PostgreSQL, driven by the real
 * CLI, in this process and as a process killed with SIGKILL; and the errors a person gets for a
 * store URL that is wrong or a server that is not there.
 */
class PostgresServeTest {

  @TempDir Path dir;

  record Result(int code, String out, String err) {}

  static Result cli(Map<String, String> env, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            args, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  @Timeout(120)
  void serve_withStore_runsASessionThroughTheCli_andPrintsTheStore() throws Exception {
    PostgresConfig db = TestPostgres.newDatabase("serve");
    Path data = dir.resolve("data");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int[] code = {-1};
    Thread serving = Thread.ofVirtual().start(() -> code[0] = Main.run(
        new String[] {"serve", "--port", "0", "--data-dir", data.toString(), "--store", TestPostgres.url(db)},
        new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), Map.of()));
    try {
      await().atMost(Duration.ofSeconds(60)).until(() -> out.toString(StandardCharsets.UTF_8).contains("Stop it with Ctrl+C"));
      String printed = out.toString(StandardCharsets.UTF_8);
      assertThat(printed).contains("store:          " + db.describe());
      String url = printed.lines().filter(l -> l.startsWith("Keel is listening on ")).findFirst().orElseThrow().substring(21);
      Map<String, String> env = new HashMap<>();
      env.put("KEEL_SERVER", url);
      env.put("KEEL_DATA_DIR", data.toString());

      Path agent = Files.writeString(dir.resolve("notes.yaml"), CliTest.NOTES);
      Result applied = cli(env, "apply", "-f", agent.toString());
      assertThat(applied.code()).as(applied.err()).isZero();
      assertThat(applied.out()).contains("agent/notes created (revision 1)");

      Result run = cli(env, "run", "notes", "remember the milk", "--follow");
      assertThat(run.code()).as(run.err()).isZero();
      assertThat(run.out()).contains("memory_put", "Saved:");
      String id = run.out().lines().filter(l -> l.startsWith("session ")).findFirst().orElseThrow().split(" ")[1];
      await().atMost(Duration.ofSeconds(20)).until(() -> cli(env, "get", "sessions", "-o", "json").out().contains("\"idle\""));

      Result recall = cli(env, "send", id, "recall it", "--follow");
      assertThat(recall.code()).as(recall.err()).isZero();
      assertThat(recall.out()).contains("You said: remember the milk");
      assertThat(cli(env, "trace", id).out()).contains("memory_put", "memory_get");
    } finally {
      serving.interrupt();
      serving.join(20_000);
    }
    assertThat(code[0]).isZero();
  }

  @Test
  @Timeout(60)
  void serve_whenPostgresIsUnreachable_failsAtOnce_sayingWhereAndWhatToCheck_withoutThePassword() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Result r = cli(Map.of(), "serve", "--port", "0", "--data-dir", dir.resolve("d").toString(),
        "--store", "postgresql://keel:hunter2@127.0.0.1:" + port + "/keel");
    assertThat(r.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(r.err())
        .contains("cannot connect to the PostgreSQL store postgresql://keel@127.0.0.1:" + port + "/keel")
        .contains("Check that the PostgreSQL server is running and reachable.")
        .doesNotContain("hunter2");

    // the same from the environment
    Result fromEnv = cli(Map.of("KEEL_STORE", "postgresql://keel@127.0.0.1:" + port + "/keel"),
        "serve", "--port", "0", "--data-dir", dir.resolve("d").toString());
    assertThat(fromEnv.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(fromEnv.err()).contains("127.0.0.1:" + port);
  }

  @Test
  void serve_withAStoreUrlThatIsWrong_isAUsageError_sayingWhat() {
    Result scheme = cli(Map.of(), "serve", "--store", "mysql://db/keel", "--data-dir", dir.toString());
    assertThat(scheme.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(scheme.err()).contains("--store: expected a PostgreSQL URL", "postgresql://USER:PASSWORD@HOST:PORT/DATABASE", "sqlite");

    Result param = cli(Map.of(), "serve", "--store", "postgresql://db/keel?pool_sise=4", "--data-dir", dir.toString());
    assertThat(param.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(param.err()).contains("--store: unknown parameter \"pool_sise\"");

    Result port = cli(Map.of("KEEL_STORE", "postgresql://keel:pw@db:99999/keel"), "serve", "--data-dir", dir.toString());
    assertThat(port.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(port.err()).contains("invalid port \"99999\"").doesNotContain(":pw");

    assertThat(cli(Map.of(), "serve", "--help").out()).contains("--store", "KEEL_STORE_PASSWORD", "pool_size");
  }

  @Test
  @Timeout(180)
  void killNine_ofAServerOnPostgres_midModelCalls_losesNoAcknowledgedInput_andEveryTurnEnds() throws Exception {
    PostgresConfig db = TestPostgres.newDatabase("serve_kill");
    Path data = dir.resolve("data");
    try (FakeOpenAi model = FakeOpenAi.start();
        ServerProcess server =
            new ServerProcess(data, dir.resolve("server.log"), Map.of("KEEL_STORE", TestPostgres.url(db)), List.of()).start()) {
      model.latency(Duration.ofSeconds(3)).script(FakeOpenAi.Script.text("Hi there."));
      assertThat(server.get("/readyz").get("store").asString()).isEqualTo(db.describe());
      String yaml =
          """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: slow, owner: team-a}
          spec:
            instructions: Answer.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
          """.formatted(model.baseUrl());
      var applied = server.post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).toString(), null);
      assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);
      int sessions = 20;
      String[] ids = new String[sessions];
      for (int i = 0; i < sessions; i++) {
        String body = EventCodec.mapper().createObjectNode().put("agent", "slow").put("message", "hello " + i).toString();
        var r = server.post("/v1/sessions", body, "start-" + i);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        ids[i] = EventCodec.mapper().readTree(r.body()).get("id").asString();
      }
      // every input above was acknowledged; SIGKILL while model calls are in flight (a step records
      // its model call with the answer, so those sessions still hold their input, unconsumed)
      await().atMost(Duration.ofSeconds(30)).until(() -> model.requestCount() >= 5);
      server.kill();
      assertThat(data.resolve("keel.db")).doesNotExist();

      server.start();
      await().atMost(Duration.ofSeconds(90)).until(() -> {
        for (String id : ids) {
          JsonNode s = server.get("/v1/sessions/" + id);
          if (!s.get("status").asString().equals("idle") || s.get("pending_inputs").asInt() > 0) {
            return false;
          }
        }
        return true;
      });
      for (String id : ids) {
        JsonNode events = server.get("/v1/sessions/" + id + "/events").get("events");
        int inputs = 0;
        int answers = 0;
        for (int e = 0; e < events.size(); e++) {
          assertThat(events.get(e).get("seq").asLong()).as("session %s event %d", id, e).isEqualTo(e + 1);
          switch (events.get(e).get("type").asString()) {
            case "InputReceived" -> inputs++;
            case "ModelResponded" -> answers++;
            default -> {}
          }
        }
        assertThat(inputs).as("inputs of %s", id).isEqualTo(1);
        assertThat(answers).as("answers of %s", id).isEqualTo(1);
        assertThat(server.get("/v1/sessions/" + id).get("last_answer").asString()).isEqualTo("Hi there.");
      }
      assertThat(model.requestCount()).as("model calls cut by the kill, made again after the restart")
          .isGreaterThan(sessions);
    }
  }
}
