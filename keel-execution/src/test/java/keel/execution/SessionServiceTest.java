package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SessionServiceTest {

  static final String NOTES_AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: notes, owner: team-a}
      spec:
        instructions: Keep notes.
        model:
          provider: scripted
          name: notes-script
          script:
            - when: "remember"
              turns:
                - say: "Saving it."
                  call:
                    - tool: memory_put
                      args: {key: "note", value: "{{input}}"}
                - call:
                    - tool: time_now
                - say: "Saved at {{result}}."
            - turns:
                - say: "Hello."
        memory: {type: persistent}
        tools: [internal://memory, internal://time]
      """;

  @TempDir Path dir;
  Store store;
  SessionService sessions;

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), true);
    ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
    sessions =
        SessionService.create(store, ModelProviders.create(Map.of()), tools, Clock.systemUTC(), ExecutionSettings.defaults("node-test"));
  }

  @AfterEach
  void close() {
    sessions.close();
    store.close();
  }

  @Test
  void start_runsToolStepsAndAnswers_thenIdles() {
    Agents.apply(store, NOTES_AGENT);
    SessionRecord r =
        sessions.start(new SessionService.Start("notes", "remember the milk", "operator:test", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(10)).until(() -> sessions.record(r.id()).effectiveStatus() == SessionStatus.IDLE);
    List<StoredEvent> events = sessions.events(r.id(), 0, 100);
    assertThat(events).extracting(e -> e.event().type())
        .containsExactly(
            "SessionStarted", "InputReceived", "ModelCalled", "ModelResponded", "ToolCallAuthorized", "ToolCallStarted",
            "ToolCallCompleted", "ModelCalled", "ModelResponded", "ToolCallAuthorized", "ToolCallStarted",
            "ToolCallCompleted", "ModelCalled", "ModelResponded");
    assertThat(sessions.view(r.id()).lastAnswer()).startsWith("Saved at {");
    assertThat(store.memory().get("notes", "", "note").orElseThrow().value()).isEqualTo("remember the milk");

    sessions.send(r.id(), "hi", "operator:test", Optional.empty());
    await().atMost(Duration.ofSeconds(10)).until(() -> sessions.view(r.id()).lastAnswer().equals("Hello."));
    assertThat(((SessionEvent.InputReceived) sessions.events(r.id(), 14, 1).getFirst().event()).text()).isEqualTo("hi");
  }
}
