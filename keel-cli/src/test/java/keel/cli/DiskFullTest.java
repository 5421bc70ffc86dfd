package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import keel.core.EventCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * A full disk: a real {@code keel serve} runs under a file-size limit ({@code prlimit --fsize}, so
 * its writes fail with EFBIG past the limit, as on a full disk) until the store can take no more.
 * The failing request gets a clear 503 problem; every request acknowledged before it is intact and
 * finishes once the server restarts with room.
 */
class DiskFullTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: filler, owner: test}
      spec:
        instructions: Keep what you are told.
        model:
          provider: scripted
          name: fill
          script:
            - turns:
                - call: [{tool: memory_put, args: {key: "last", value: "{{input}}"}}]
                - say: "kept"
        memory: {type: persistent}
        tools: [internal://memory]
      """;

  @TempDir Path dir;

  @Test
  @Timeout(value = 3, unit = TimeUnit.MINUTES)
  void fullDisk_refusesWithAClearError_andLosesNothingAcknowledged() throws Exception {
    assertThat(Path.of("/usr/bin/prlimit")).as("prlimit (util-linux) is needed to limit the server's file size").exists();
    Path data = dir.resolve("data");
    try (ServerProcess server = new ServerProcess(data, dir.resolve("server.log"), Map.of(), List.of("/usr/bin/prlimit", "--fsize=1500000"))) {
      server.start();
      HttpResponse<String> applied = server.post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", AGENT).toString(), null);
      assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);

      String big = "x".repeat(60_000);
      List<String> acknowledged = new ArrayList<>();
      HttpResponse<String> refused = null;
      for (int i = 0; i < 100 && refused == null; i++) {
        String body = EventCodec.mapper().createObjectNode().put("agent", "filler").put("message", i + " " + big).toString();
        HttpResponse<String> r = server.post("/v1/sessions", body, null);
        if (r.statusCode() == 201) {
          acknowledged.add(EventCodec.mapper().readTree(r.body()).get("id").asString());
        } else {
          refused = r;
        }
      }
      assertThat(refused).as("the store filled up").isNotNull();
      assertThat(refused.statusCode()).isEqualTo(503);
      assertThat(refused.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
      assertThat(EventCodec.mapper().readTree(refused.body()).get("detail").asString())
          .contains("to sqlite:", "nothing of this write was stored", "check that the disk holding the data directory has free space");
      assertThat(acknowledged).isNotEmpty();

      // Room again: a restart without the limit finds every acknowledged session and finishes it.
      server.kill();
      server.start(List.of());
      await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100)).until(() -> {
        for (String id : acknowledged) {
          if (!server.get("/v1/sessions/" + id).get("status").asString().equals("idle")) {
            return false;
          }
        }
        return true;
      });
      for (int i = 0; i < acknowledged.size(); i++) {
        JsonNode view = server.get("/v1/sessions/" + acknowledged.get(i));
        assertThat(view.get("conversation").get(0).get("text").asString()).isEqualTo(i + " " + big);
        assertThat(view.get("last_answer").asString()).isEqualTo("kept");
      }
      assertThat(Files.size(data.resolve("keel.db"))).isPositive();
    }
  }
}
