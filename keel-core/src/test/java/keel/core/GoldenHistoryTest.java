package keel.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import tools.jackson.databind.JsonNode;

/**
 * Golden histories: session event logs recorded by real runs and committed under {@code
 * src/test/resources/golden}. Every build decodes and folds them, so a change to an event's shape
 * or to the fold that would break sessions already stored fails here first. When a change is
 * intended, add a new golden file; never edit an old one.
 */
class GoldenHistoryTest {

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "notes-two-turns.jsonl, idle, Hello., 17, 4",
    "routed-escalation-drift.jsonl, idle, it is late, 13, 2",
    "subagent-parent.jsonl, idle, planner got: researched, 11, 2",
    "subagent-child.jsonl, completed, researched, 11, 2",
    "budget-blocked-raised.jsonl, idle, done, 27, 5",
    "approvals-several-calls.jsonl, completed, 'done: bank/pay done: {\"amount\":5}', 17, 2",
    "shadow-proposed.jsonl, completed, done, 11, 2",
  })
  void goldenHistory_decodesAndFoldsToTheRecordedEnd(
      String file, String status, String lastAnswer, int events, long modelCalls) throws IOException {
    List<StoredEvent> history = load(file);
    assertThat(history).hasSize(events);
    SessionState state = SessionState.fold(history);
    assertThat(state.status()).contains(SessionStatus.fromWire(status));
    assertThat(state.lastAnswer()).isEqualTo(lastAnswer);
    assertThat(state.modelCalls()).isEqualTo(modelCalls);
    assertThat(state.pending()).isEmpty();
    // re-encoding every event gives back the stored JSON: no field was renamed or dropped
    for (StoredEvent e : history) {
      assertThat(EventCodec.decode(e.event().type(), EventCodec.encode(e.event()))).isEqualTo(e.event());
    }
    // and a snapshot taken half way, restored and folded on, ends in the same state
    SessionState half = SessionState.fold(history.subList(0, events / 2));
    SessionState resumed =
        SessionState.restore(EventCodec.decodeSnapshot(EventCodec.encodeSnapshot(half.snapshot())));
    for (StoredEvent e : history.subList(events / 2, events)) {
      resumed.apply(e);
    }
    assertThat(resumed.snapshot()).isEqualTo(state.snapshot());
  }

  @org.junit.jupiter.api.Test
  void subagentGoldenHistories_foldToTheirIdentities() throws IOException {
    SessionState parent = SessionState.fold(load("subagent-parent.jsonl"));
    SessionState child = SessionState.fold(load("subagent-child.jsonl"));
    assertThat(parent.chain()).containsExactly("operator:ann");
    assertThat(parent.parentSessionId()).isEmpty();
    assertThat(child.chain()).containsExactly("operator:ann", "agent:planner");
    assertThat(child.grants()).containsExactly("internal://time");
    assertThat(child.parentSessionId()).isEqualTo(load("subagent-parent.jsonl").getFirst().sessionId());
    // the logs recorded before identities read as started by their principal
    assertThat(SessionState.fold(load("notes-two-turns.jsonl")).chain()).containsExactly("operator:admin");
  }

  static List<StoredEvent> load(String file) throws IOException {
    try (InputStream in = GoldenHistoryTest.class.getResourceAsStream("/golden/" + file)) {
      assertThat(in).as("golden file %s", file).isNotNull();
      List<StoredEvent> out = new ArrayList<>();
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        if (line.isBlank()) {
          continue;
        }
        JsonNode o = EventCodec.mapper().readTree(line);
        out.add(new StoredEvent(
            o.get("session").asString(),
            o.get("seq").asLong(),
            Instant.parse(o.get("at").asString()),
            o.get("node").asString(),
            o.get("trace").asString(),
            o.get("span").asString(),
            EventCodec.decode(o.get("type").asString(), o.get("data").toString())));
      }
      return out;
    }
  }
}
