package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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

/** The model gateway inside the step executor, on a real store, against the real OpenAI client. */
class ModelGatewayTest {

  @TempDir Path dir;
  Store store;
  SessionService sessions;
  FakeOpenAi fake;
  final PriceTable prices = PriceTable.builtIn();

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), false);
    ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of()));
    sessions = SessionService.create(store, ModelProviders.create(Map.of()), tools, Clock.systemUTC(), ExecutionSettings.defaults("n"), prices);
    fake = FakeOpenAi.start();
  }

  @AfterEach
  void close() {
    fake.close();
    sessions.close();
    store.close();
  }

  SessionRecord start(String agent, String message) {
    return sessions.start(new SessionService.Start(agent, message, "operator:test", false, Optional.empty(), Optional.empty()));
  }

  List<SessionEvent> events(String id) {
    return sessions.events(id, 0, 1000).stream().map(StoredEvent::event).toList();
  }

  <T extends SessionEvent> List<T> of(String id, Class<T> type) {
    return events(id).stream().filter(type::isInstance).map(type::cast).toList();
  }

  void awaitStatus(String id, SessionStatus status) {
    await().atMost(Duration.ofSeconds(15)).until(() -> sessions.record(id).effectiveStatus() == status);
  }

  /** An OpenAI agent against the fake; {@code modelLines} are added under {@code spec.model}. */
  String openAiAgent(String name, String... modelLines) {
    StringBuilder y = new StringBuilder()
        .append("apiVersion: agent.os/v1\nkind: Agent\n")
        .append("metadata: {name: ").append(name).append(", owner: team-a}\n")
        .append("spec:\n  instructions: Answer.\n  model:\n    provider: openai\n    name: gpt-4o\n")
        .append("    base_url: \"").append(fake.baseUrl()).append("\"\n");
    for (String line : modelLines) {
      y.append("    ").append(line).append("\n");
    }
    return y.append("  tools: [internal://time]\n").toString();
  }

  @Test
  void everyResponse_recordsItsProviderModelAndExactCost() {
    fake.script(FakeOpenAi.Script.text("hello"));
    Agents.apply(store, openAiAgent("priced"));
    SessionRecord r = start("priced", "hi");
    awaitStatus(r.id(), SessionStatus.IDLE);
    SessionEvent.ModelResponded resp = of(r.id(), SessionEvent.ModelResponded.class).getFirst();
    assertThat(resp.provider()).isEqualTo("openai");
    assertThat(resp.model()).isEqualTo("gpt-4o");
    assertThat(resp.costUsd()).isPositive();
    assertThat(resp.costUsd()).isEqualByComparingTo(prices.cost("openai", "gpt-4o", resp.usage()));
    assertThat(sessions.view(r.id()).usage()).isEqualTo(resp.usage());
  }

  @Test
  void routing_smallModelEmptyAnswer_escalatesToTheMainModel_andRecordsWhatTheSmallCallCost() {
    fake.script(request -> request.model().equals("gpt-4o-mini") ? FakeOpenAi.Reply.text("") : FakeOpenAi.Reply.text("from the main model"));
    Agents.apply(store, openAiAgent("routed",
        "routing:", "  small: {provider: openai, name: gpt-4o-mini}", "  escalate_on: [empty_answer, model_error, escalated_step]"));
    SessionRecord r = start("routed", "hard question");
    awaitStatus(r.id(), SessionStatus.IDLE);
    SessionEvent.ModelEscalated esc = of(r.id(), SessionEvent.ModelEscalated.class).getFirst();
    assertThat(esc.fromModel()).isEqualTo("gpt-4o-mini");
    assertThat(esc.toModel()).isEqualTo("gpt-4o");
    assertThat(esc.reason()).startsWith("empty_answer");
    assertThat(esc.costUsd()).isPositive();
    SessionEvent.ModelResponded resp = of(r.id(), SessionEvent.ModelResponded.class).getFirst();
    assertThat(resp.text()).isEqualTo("from the main model");
    assertThat(resp.model()).isEqualTo("gpt-4o");
    assertThat(sessions.view(r.id()).record().id()).isEqualTo(r.id());
    assertThat(SessionLoaderCost.of(store, r.id())).isEqualByComparingTo(esc.costUsd().add(resp.costUsd()));
  }

  @Test
  void routing_smallModelThatAnswers_isUsed_andCostsLess() {
    fake.script(request -> FakeOpenAi.Reply.text("answered by " + request.model()));
    Agents.apply(store, openAiAgent("cheap",
        "routing:", "  small: {provider: openai, name: gpt-4o-mini}", "  escalate_on: [empty_answer]"));
    SessionRecord r = start("cheap", "easy question");
    awaitStatus(r.id(), SessionStatus.IDLE);
    assertThat(of(r.id(), SessionEvent.ModelEscalated.class)).isEmpty();
    SessionEvent.ModelResponded resp = of(r.id(), SessionEvent.ModelResponded.class).getFirst();
    assertThat(resp.text()).isEqualTo("answered by gpt-4o-mini");
    assertThat(resp.costUsd()).isLessThan(prices.cost("openai", "gpt-4o", resp.usage()));
  }

  @Test
  void drift_warn_isRecordedAndTheAnswerUsed() {
    fake.script(FakeOpenAi.Script.text("ok")).reportModel("gpt-4o-2099-01-01");
    Agents.apply(store, openAiAgent("warned", "pinned_revision: \"2024-08-06\""));
    SessionRecord r = start("warned", "hi");
    awaitStatus(r.id(), SessionStatus.IDLE);
    SessionEvent.ModelDrifted d = of(r.id(), SessionEvent.ModelDrifted.class).getFirst();
    assertThat(d.pinned()).isEqualTo("gpt-4o-2024-08-06");
    assertThat(d.reported()).isEqualTo("gpt-4o-2099-01-01");
    assertThat(d.action()).isEqualTo("warn");
    assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("ok");
    assertThat(fake.lastRequest().orElseThrow().model()).isEqualTo("gpt-4o-2024-08-06");
  }

  @Test
  void drift_fail_failsTheSession() {
    fake.script(FakeOpenAi.Script.text("ok")).reportModel("gpt-4o-2099-01-01");
    Agents.apply(store, openAiAgent("strict", "pinned_revision: \"2024-08-06\"", "on_drift: fail"));
    SessionRecord r = start("strict", "hi");
    awaitStatus(r.id(), SessionStatus.FAILED);
    assertThat(sessions.view(r.id()).failure()).startsWith("model_drift").contains("gpt-4o-2099-01-01");
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).isEmpty();
  }

  @Test
  void drift_suspend_waitsForAHuman_whoResumesAcceptingTheVersion() {
    fake.script(FakeOpenAi.Script.text("ok")).reportModel("gpt-4o-2099-01-01");
    Agents.apply(store, openAiAgent("careful", "pinned_revision: \"2024-08-06\"", "on_drift: suspend"));
    SessionRecord r = start("careful", "hi");
    awaitStatus(r.id(), SessionStatus.AWAITING_APPROVAL);
    assertThat(of(r.id(), SessionEvent.ModelResponded.class)).isEmpty();
    sessions.resume(r.id(), "operator:human");
    awaitStatus(r.id(), SessionStatus.IDLE);
    assertThat(of(r.id(), SessionEvent.SessionResumed.class).getFirst().acceptedVersion()).isEqualTo("gpt-4o-2099-01-01");
    assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("ok");
    // accepted for this session: the next turn does not suspend again
    sessions.send(r.id(), "again", "operator:test", Optional.empty());
    await().atMost(Duration.ofSeconds(15)).until(() -> of(r.id(), SessionEvent.ModelResponded.class).size() == 2);
    assertThat(of(r.id(), SessionEvent.ModelDrifted.class)).hasSize(1);
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> sessions.resume(r.id(), "operator:human"))
        .isInstanceOf(KeelException.Conflict.class);
  }

  @Test
  void invalidToolArguments_goBackToTheModelAsAnError_andNothingRuns() {
    String yaml = """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: sloppy, owner: team-a}
        spec:
          instructions: Save notes.
          model:
            provider: scripted
            name: s
            script:
              - turns:
                  - call: [{tool: memory_put, args: {key: k}}]
                  - say: "told: {{result}}"
          memory: {type: persistent}
          tools: [internal://memory]
        """;
    Agents.apply(store, yaml);
    SessionRecord r = start("sloppy", "go");
    awaitStatus(r.id(), SessionStatus.IDLE);
    SessionEvent.ToolCallDenied denied = of(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).startsWith("invalid arguments for memory_put").contains("value");
    assertThat(of(r.id(), SessionEvent.ToolCallStarted.class)).isEmpty();
    assertThat(store.memory().get("sloppy", "", "k")).isEmpty();
  }

  @Test
  void replay_answersFromARecordedSession_deterministically() {
    String original = """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: original, owner: team-a}
        spec:
          instructions: Tell the time.
          model:
            provider: scripted
            name: s
            script:
              - turns:
                  - call: [{tool: time_now}]
                  - say: "it is {{result}}"
          tools: [internal://time]
        """;
    Agents.apply(store, original);
    SessionRecord recorded = start("original", "what time is it?");
    awaitStatus(recorded.id(), SessionStatus.IDLE);
    Agents.apply(store, """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: replayed, owner: team-a}
        spec:
          instructions: Tell the time.
          model: {provider: replay, name: "%s"}
          tools: [internal://time]
        """.formatted(recorded.id()));
    SessionRecord again = start("replayed", "what time is it?");
    awaitStatus(again.id(), SessionStatus.IDLE);
    List<SessionEvent.ModelResponded> a = of(recorded.id(), SessionEvent.ModelResponded.class);
    List<SessionEvent.ModelResponded> b = of(again.id(), SessionEvent.ModelResponded.class);
    assertThat(b).hasSameSizeAs(a);
    for (int i = 0; i < a.size(); i++) {
      assertThat(b.get(i).text()).isEqualTo(a.get(i).text());
      assertThat(b.get(i).toolCalls()).isEqualTo(a.get(i).toolCalls());
      assertThat(b.get(i).modelVersion()).isEqualTo(a.get(i).modelVersion());
    }
    // a replay that runs out of recorded answers fails clearly
    sessions.send(again.id(), "and now?", "operator:test", Optional.empty());
    awaitStatus(again.id(), SessionStatus.FAILED);
    assertThat(sessions.view(again.id()).failure()).contains("recorded 2 model responses");
  }

  @Test
  void identicalConcurrentRequests_areSentOnce() throws Exception {
    fake.script(FakeOpenAi.Script.text("shared")).latency(Duration.ofMillis(500));
    Agents.apply(store, openAiAgent("popular"));
    List<SessionRecord> started = new java.util.ArrayList<>();
    for (int i = 0; i < 5; i++) {
      started.add(start("popular", "the same question"));
    }
    for (SessionRecord r : started) {
      awaitStatus(r.id(), SessionStatus.IDLE);
    }
    assertThat(fake.requestCount()).isLessThan(5);
  }

  @Test
  void responseCache_answersARepeatedInsensitiveCall_butNeverOneWithAWriteTool() {
    fake.script(FakeOpenAi.Script.text("cached answer"));
    Agents.apply(store, openAiAgent("insensitive", "temperature: 0", "response_cache_ttl: 10m"));
    for (int i = 0; i < 3; i++) {
      SessionRecord r = start("insensitive", "what is the capital of France?");
      awaitStatus(r.id(), SessionStatus.IDLE);
      assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("cached answer");
    }
    assertThat(fake.requestCount()).isEqualTo(1);

    String writer = openAiAgent("writer", "temperature: 0", "response_cache_ttl: 10m")
        .replace("tools: [internal://time]", "tools: [internal://time, internal://memory]\n  memory: {type: persistent}");
    Agents.apply(store, writer);
    for (int i = 0; i < 2; i++) {
      SessionRecord r = start("writer", "what is the capital of France?");
      awaitStatus(r.id(), SessionStatus.IDLE);
    }
    assertThat(fake.requestCount()).isEqualTo(3);
  }

  @Test
  void responseCacheTtl_withoutTemperatureZero_isRefusedAtApply() {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Agents.apply(store, openAiAgent("nope", "response_cache_ttl: 10m")))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("spec.model.response_cache_ttl: expected response_cache_ttl only with temperature: 0");
  }

  @Test
  void fallbacks_whenTheMainModelKeepsFailing_answerFromTheNextModel() {
    fake.script(request -> {
      if (request.model().equals("gpt-4o")) {
        throw new IllegalStateException("the main model is down");
      }
      return FakeOpenAi.Reply.text("from " + request.model());
    });
    Agents.apply(store, openAiAgent("resilient", "fallbacks: [{provider: openai, name: gpt-4o-mini}]"));
    SessionRecord r = start("resilient", "hi");
    awaitStatus(r.id(), SessionStatus.IDLE);
    assertThat(sessions.view(r.id()).lastAnswer()).isEqualTo("from gpt-4o-mini");
    SessionEvent.ModelEscalated step = of(r.id(), SessionEvent.ModelEscalated.class).getFirst();
    assertThat(step.fromModel()).isEqualTo("gpt-4o");
    assertThat(step.toModel()).isEqualTo("gpt-4o-mini");
    assertThat(step.reason()).startsWith("fallback:");
    assertThat(of(r.id(), SessionEvent.ModelResponded.class).getFirst().model()).isEqualTo("gpt-4o-mini");
  }

  /** The cost of a session from its folded state. */
  static final class SessionLoaderCost {
    static BigDecimal of(Store store, String id) {
      return SessionLoader.load(store.events(), id).costUsd();
    }
  }
}
