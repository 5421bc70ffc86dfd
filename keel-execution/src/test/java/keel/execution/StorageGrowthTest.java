package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import keel.core.Content;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Storage grows linearly with a session's length: each event holds only what is new, a large tool
 * result is stored once and referenced, and the only snapshot kept is the latest.
 */
class StorageGrowthTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: reader, owner: team-a}
      spec:
        instructions: Read the big note every turn.
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - call: [{tool: memory_get, args: {key: big}}]
                - say: "read it for {{input}}"
        memory: {type: persistent}
        tools: [internal://memory]
      """;

  @TempDir Path dir;

  @Test
  void thousandsOfEvents_bytesPerTurnStayFlat_andALargeResultIsStoredOnce() {
    try (Store store = Store.sqlite(dir, "n", Clock.systemUTC(), false)) {
      ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
      try (SessionService s = SessionService.create(store, ModelProviders.create(Map.of()), tools, Clock.systemUTC(), ExecutionSettings.defaults("n"))) {
        Agents.apply(store, AGENT);
        store.memory().put("reader", "", "big", "x".repeat(20_000));
        SessionRecord r = s.start(new SessionService.Start("reader", "turn 0", "operator:test", false, Optional.empty(), Optional.empty()));
        long[] bytesAt = new long[4];
        int turns = 300;
        for (int t = 1; t <= turns; t++) {
          await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(2)).until(() -> s.record(r.id()).effectiveStatus() == SessionStatus.IDLE);
          if (t % 100 == 0) {
            bytesAt[t / 100] = store.events().eventBytes(r.id());
          }
          if (t < turns) {
            s.send(r.id(), "turn " + t, "operator:test", Optional.empty());
          }
        }
        long first = bytesAt[1];
        long second = bytesAt[2] - bytesAt[1];
        long third = bytesAt[3] - bytesAt[2];
        System.out.printf("bytes per turn: first 100 %d, second 100 %d, third 100 %d%n", first / 100, second / 100, third / 100);
        assertThat(third).isLessThanOrEqualTo((long) (first * 1.15));
        assertThat(second).isLessThanOrEqualTo((long) (first * 1.15));
        // each turn's events are far smaller than the 20 kB result they reference
        assertThat(third / 100).isLessThan(4_000);
        int blobs = 0;
        for (StoredEvent e : s.events(r.id(), 0, 10_000)) {
          if (e.event() instanceof SessionEvent.ToolCallCompleted c && c.result() instanceof Content.Blob b) {
            blobs++;
            assertThat(b.bytes()).isEqualTo(20_000);
          }
        }
        assertThat(blobs).isEqualTo(turns);
        assertThat(store.blobs().load(((Content.Blob) store.blobs().store("x".repeat(20_000))).sha256())).hasValueSatisfying(v -> assertThat(v).hasSize(20_000));
        assertThat(store.events().snapshot(r.id())).isPresent();
      }
    }
  }
}
