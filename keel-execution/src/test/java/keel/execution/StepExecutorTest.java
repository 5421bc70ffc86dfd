package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The reasoning loop and the scheduler's policies, on a real SQLite store. */
class StepExecutorTest {

  @TempDir Path dir;
  Store store;
  SessionService sessions;
  final CountDownLatch gate = new CountDownLatch(1);
  final List<String> blockingCalls = new ArrayList<>();

  /** A tool that waits for the test to open a gate, so a session can be held mid-step. */
  final Tool gateTool =
      new Tool() {
        @Override
        public ToolSpec spec() {
          return new ToolSpec("wait_gate", "Waits for the test.", "{\"type\":\"object\"}");
        }

        @Override
        public String capability() {
          return "internal://gate";
        }

        @Override
        public boolean idempotent() {
          return true;
        }

        @Override
        public ToolOutput call(ToolContext context, String arguments) {
          synchronized (blockingCalls) {
            blockingCalls.add(context.sessionId());
          }
          try {
            gate.await(20, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          return ToolOutput.ok("opened");
        }
      };

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), true);
    List<Tool> tools = new ArrayList<>(new InternalTools().tools(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of())));
    tools.add(gateTool);
    sessions = SessionService.create(
        store, ModelProviders.create(Map.of()), ToolRegistry.of(tools), Clock.systemUTC(), ExecutionSettings.defaults("node-test"));
  }

  @AfterEach
  void close() {
    gate.countDown();
    sessions.close();
    store.close();
  }

  static String agent(String name, String onBusy, String script, String tools, int maxSteps) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: team-a}
        spec:
          instructions: Test agent.
          model:
            provider: scripted
            name: s
            script:
        %s
          tools: [%s]
          concurrency: {on_busy: %s}
          max_steps: %d
        """.formatted(name, script.indent(6).stripTrailing(), tools, onBusy, maxSteps);
  }

  static final String GATED = """
      - when: "^hold"
        turns:
          - call: [{tool: wait_gate}]
          - say: "held {{input}}"
      - turns:
          - say: "echo {{input}}"
      """;

  SessionRecord start(String agent, String message) {
    return sessions.start(new SessionService.Start(agent, message, "operator:test", false, Optional.empty(), Optional.empty()));
  }

  List<String> types(String id) {
    return sessions.events(id, 0, 1000).stream().map(e -> e.event().type()).toList();
  }

  List<String> answers(String id) {
    List<String> out = new ArrayList<>();
    for (StoredEvent e : sessions.events(id, 0, 1000)) {
      if (e.event() instanceof SessionEvent.ModelResponded r && r.toolCalls().isEmpty()) {
        out.add(r.text());
      }
    }
    return out;
  }

  void awaitIdle(String id) {
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(id).effectiveStatus() == SessionStatus.IDLE);
  }

  @Test
  void onBusyEnqueue_messagesWhileRunning_areAnsweredInOrderAfterTheStep() {
    Agents.apply(store, agent("q", "enqueue", GATED, "internal://gate", 10));
    SessionRecord r = start("q", "hold first");
    await().until(() -> !blockingCalls.isEmpty());
    sessions.send(r.id(), "second", "operator:test", Optional.empty());
    sessions.send(r.id(), "third", "operator:test", Optional.empty());
    gate.countDown();
    await().atMost(Duration.ofSeconds(15)).until(() -> answers(r.id()).size() == 3);
    assertThat(answers(r.id())).containsExactly("held hold first", "echo second", "echo third");
  }

  @Test
  void onBusyReject_messageWhileRunning_isRefusedWithReason() {
    Agents.apply(store, agent("r", "reject", GATED, "internal://gate", 10));
    SessionRecord r = start("r", "hold on");
    await().until(() -> !blockingCalls.isEmpty());
    assertThatThrownBy(() -> sessions.send(r.id(), "now", "operator:test", Optional.empty()))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("on_busy: reject");
    gate.countDown();
    awaitIdle(r.id());
    sessions.send(r.id(), "later", "operator:test", Optional.empty());
    await().atMost(Duration.ofSeconds(15)).until(() -> answers(r.id()).size() == 2);
    assertThat(answers(r.id())).containsExactly("held hold on", "echo later");
  }

  @Test
  void onBusyInterrupt_newMessage_stopsTheStepAtItsNextSafePointAndIsHandled() {
    String script = """
        - when: "^hold"
          turns:
            - call: [{tool: wait_gate}]
            - call: [{tool: time_now}]
            - say: "finished {{input}}"
        - turns:
            - say: "echo {{input}}"
        """;
    Agents.apply(store, agent("i", "interrupt", script, "internal://gate, internal://time", 10));
    SessionRecord r = start("i", "hold please");
    await().until(() -> !blockingCalls.isEmpty());
    sessions.send(r.id(), "stop that", "operator:test", Optional.empty());
    gate.countDown();
    await().atMost(Duration.ofSeconds(15)).until(() -> answers(r.id()).contains("echo stop that"));
    awaitIdle(r.id());
    assertThat(answers(r.id())).containsExactly("echo stop that");
    assertThat(types(r.id())).contains("StepInterrupted").doesNotContain("SessionFailed");
    assertThat(types(r.id()).stream().filter(t -> t.equals("ToolCallStarted")).count()).isEqualTo(1);
  }

  @Test
  void stepLimit_modelThatNeverAnswers_failsTheSessionWithAClearReason() {
    String script = """
        - turns:
            - call: [{tool: time_now}]
            - call: [{tool: time_now}]
            - call: [{tool: time_now}]
            - call: [{tool: time_now}]
        """;
    Agents.apply(store, agent("loop", "enqueue", script, "internal://time", 3));
    SessionRecord r = start("loop", "go");
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(r.id()).status() == SessionStatus.FAILED);
    assertThat(sessions.view(r.id()).failure()).contains("step_limit").contains("spec.max_steps is 3");
  }

  @Test
  void ungrantedTool_isDeniedAndTheModelIsToldWhy_thenTheSessionGoesOn() {
    String script = """
        - turns:
            - call: [{tool: memory_put, args: {key: k, value: v}}, {tool: no_such_tool}]
            - say: "told: {{result}}"
        """;
    Agents.apply(store, agent("nogrant", "enqueue", script, "internal://time", 5));
    SessionRecord r = start("nogrant", "try it");
    awaitIdle(r.id());
    assertThat(types(r.id())).containsSubsequence("ToolCallDenied", "ToolCallDenied").doesNotContain("ToolCallStarted");
    assertThat(answers(r.id()).getFirst()).contains("there is no tool named \"no_such_tool\"");
    assertThat(sessions.view(r.id()).conversation().toString()).contains("is not granted internal://memory");
    assertThat(store.memory().get("nogrant", "", "k")).isEmpty();
  }

  @Test
  void cancel_whileRunning_cancelsAtTheNextSafePoint() {
    Agents.apply(store, agent("c", "enqueue", GATED, "internal://gate", 10));
    SessionRecord r = start("c", "hold it");
    await().until(() -> !blockingCalls.isEmpty());
    sessions.cancel(r.id(), "operator:test", "no longer needed");
    gate.countDown();
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(r.id()).status() == SessionStatus.CANCELLED);
    assertThat(sessions.view(r.id()).failure()).contains("no longer needed");
    assertThatThrownBy(() -> sessions.send(r.id(), "more", "operator:test", Optional.empty()))
        .isInstanceOf(KeelException.Conflict.class).hasMessageContaining("cancelled");
  }

  @Test
  void task_completesAfterItsFirstAnswer() {
    Agents.apply(store, agent("t", "enqueue", GATED, "internal://gate", 10));
    SessionRecord r = sessions.start(new SessionService.Start("t", "quick", "operator:test", true, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(r.id()).status() == SessionStatus.COMPLETED);
    assertThat(types(r.id()).getLast()).isEqualTo("SessionCompleted");
  }

  @Test
  void sessionMemory_isDeletedWhenTheSessionEnds_persistentMemoryStays() {
    String script = """
        - turns:
            - call: [{tool: memory_put, args: {key: k, value: "{{input}}"}}]
            - say: "kept"
        """;
    Agents.apply(store, agent("mem-s", "enqueue", script, "internal://memory", 5).replace("  max_steps: 5", "  max_steps: 5\n  memory: {type: session}"));
    Agents.apply(store, agent("mem-p", "enqueue", script, "internal://memory", 5).replace("  max_steps: 5", "  max_steps: 5\n  memory: {type: persistent}"));
    SessionRecord s1 = sessions.start(new SessionService.Start("mem-s", "short-lived", "operator:test", true, Optional.empty(), Optional.empty()));
    SessionRecord p1 = sessions.start(new SessionService.Start("mem-p", "long-lived", "operator:test", true, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(s1.id()).status() == SessionStatus.COMPLETED
        && sessions.record(p1.id()).status() == SessionStatus.COMPLETED);
    // the note was written during the session (the tool said so), and is gone now it has ended
    assertThat(sessions.view(s1.id()).conversation().toString()).contains("text=saved \"k\"], error=false");
    assertThat(store.memory().get("mem-s", s1.id(), "k")).isEmpty();
    assertThat(store.memory().get("mem-p", "", "k")).hasValueSatisfying(n -> assertThat(n.value()).isEqualTo("long-lived"));
  }

  @Test
  void startWithIdempotencyKey_twice_returnsTheSameSession() {
    Agents.apply(store, agent("k", "enqueue", GATED, "internal://gate", 10));
    SessionRecord a = sessions.start(new SessionService.Start("k", "x", "operator:test", false, Optional.of("key-1"), Optional.empty()));
    SessionRecord b = sessions.start(new SessionService.Start("k", "x", "operator:test", false, Optional.of("key-1"), Optional.empty()));
    assertThat(b.id()).isEqualTo(a.id());
    awaitIdle(a.id());
    sessions.send(a.id(), "again", "operator:test", Optional.of("m-1"));
    sessions.send(a.id(), "again", "operator:test", Optional.of("m-1"));
    await().atMost(Duration.ofSeconds(15)).until(() -> answers(a.id()).size() == 2);
    awaitIdle(a.id());
    assertThat(answers(a.id())).containsExactly("echo x", "echo again");
  }

  @Test
  void openAiModel_transientFailures_areRetried_andAPermanentOneFailsTheSession() throws Exception {
    try (FakeOpenAi fake = FakeOpenAi.start()) {
      String yaml = """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: oa, owner: team-a}
          spec:
            instructions: Use the time.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
            tools: [internal://time]
          """.formatted(fake.baseUrl());
      Agents.apply(store, yaml);
      fake.failNext(2, 503);
      SessionRecord r = start("oa", "steps=2");
      awaitIdle(r.id());
      assertThat(answers(r.id())).containsExactly("done after 2 steps");
      assertThat(types(r.id()).stream().filter(t -> t.equals("ToolCallCompleted")).count()).isEqualTo(2);

      fake.failNext(1, 400);
      sessions.send(r.id(), "steps=0", "operator:test", Optional.empty());
      await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(r.id()).status() == SessionStatus.FAILED);
      assertThat(sessions.view(r.id()).failure()).startsWith("model_error");
    }
  }

  /** Writes what a node that died while running a tool call leaves in the store. */
  String crashedMidToolCall(String agentName, String tool, boolean idempotent) {
    String id = "s_crashed_" + agentName;
    String span = "0000000000000001";
    var events = List.of(
        new keel.data.PendingEvent(new SessionEvent.SessionStarted(agentName, 1, "team-a", "operator:test", false), span),
        new keel.data.PendingEvent(new SessionEvent.InputReceived("in_1", "go", "operator:test"), span),
        new keel.data.PendingEvent(new SessionEvent.ModelCalled(0, "scripted", "s"), span),
        new keel.data.PendingEvent(new SessionEvent.ModelResponded(0, "", List.of(new keel.core.ToolCall("call_0_0", tool, "{}")), keel.core.Usage.ZERO, "scripted/s", 1), span),
        new keel.data.PendingEvent(new SessionEvent.ToolCallAuthorized("call_0_0", "internal://x", idempotent), span),
        new keel.data.PendingEvent(new SessionEvent.ToolCallStarted("call_0_0", 1, id + "/call_0_0"), span));
    store.events().create(new keel.data.NewSession(id, agentName, 1, "team-a", "0".repeat(31) + "1", Optional.empty(), id, events, SessionStatus.RUNNING, Optional.empty()));
    return id;
  }

  static final String AFTER_CRASH = """
      - turns:
          - call: [{tool: time_now}]
          - say: "answered after {{result}}"
      """;

  @Test
  void recovery_idempotentCallStartedAndNeverCompleted_runsAgainWithTheSameKey() {
    Agents.apply(store, agent("idem", "enqueue", AFTER_CRASH, "internal://time", 10));
    String id = crashedMidToolCall("idem", "time_now", true);
    assertThat(sessions.recover()).isEqualTo(1);
    awaitIdle(id);
    List<SessionEvent> events = sessions.events(id, 0, 100).stream().map(StoredEvent::event).toList();
    assertThat(events).contains(new SessionEvent.ToolCallStarted("call_0_0", 2, id + "/call_0_0"));
    assertThat(answers(id)).singleElement().asString().startsWith("answered after {");
    assertThat(types(id)).doesNotContain("ToolOutcomeUnknown");
  }

  @Test
  void recovery_nonIdempotentCallStartedAndNeverCompleted_waitsForAHumanAndIsNeverRunAgain() {
    Agents.apply(store, agent("pay", "enqueue", AFTER_CRASH, "internal://time", 10));
    String id = crashedMidToolCall("pay", "time_now", false);
    sessions.recover();
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(id).status() == SessionStatus.AWAITING_APPROVAL);
    assertThat(types(id)).endsWith("ToolOutcomeUnknown").doesNotContainSequence("ToolCallStarted", "ToolCallStarted");
    assertThatThrownBy(() -> sessions.resolve(id, "call_9", "succeeded", "", "operator:test"))
        .isInstanceOf(KeelException.Conflict.class);
    sessions.resolve(id, "call_0_0", "succeeded", "the payment went through", "operator:human");
    awaitIdle(id);
    assertThat(types(id).stream().filter(t -> t.equals("ToolCallStarted")).count()).isEqualTo(1);
    assertThat(sessions.view(id).conversation().toString()).contains("the payment went through");
    assertThat(answers(id)).singleElement().asString().contains("the payment went through");
  }
}
