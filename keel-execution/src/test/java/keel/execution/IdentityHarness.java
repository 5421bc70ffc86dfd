package keel.execution;

import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;

/**
 * Test fixture: a real execution plane over a real SQLite store, whose sessions act with tokens of
 * a real {@link Identity} on a clock the test moves. It records the tools each model call was
 * offered (a scripted model that keeps its requests), offers a tool that blocks until the test
 * opens a gate, and lets a test replace what is presented to the identity check.
 */
final class IdentityHarness implements AutoCloseable {

  final Store store;
  final MutableTestClock identityClock = new MutableTestClock(Instant.now());
  final Identity identity;
  final SessionService sessions;
  /** Session id → the tool names offered to each of its model calls, in order. */
  final Map<String, List<List<String>>> offered = new ConcurrentHashMap<>();
  final CountDownLatch gate = new CountDownLatch(1);
  final List<String> gateCalls = new CopyOnWriteArrayList<>();
  volatile TokenPresenter presenter = TokenPresenter.HELD;

  IdentityHarness(Path dir, IdentitySettings settings) {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), true);
    identity = new Identity(store.signingKeys(), identityClock, settings);
    ScriptedModelProvider scripted = new ScriptedModelProvider();
    ModelProviders models = ModelProviders.create(Map.of()).register(new ModelProvider() {
      @Override
      public String name() {
        return ScriptedModelProvider.NAME;
      }

      @Override
      public ModelResponse complete(ModelRequest request, ModelStream stream) {
        offered.computeIfAbsent(request.sessionId(), k -> new CopyOnWriteArrayList<>())
            .add(request.tools().stream().map(ToolSpec::name).toList());
        return scripted.complete(request, stream);
      }
    });
    List<Tool> tools = new ArrayList<>(new InternalTools().tools(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of())));
    tools.add(new Tool() {
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
        gateCalls.add(context.sessionId());
        try {
          gate.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return ToolOutput.ok("opened for " + context.principal());
      }
    });
    sessions = SessionService.create(
        store, models, ToolRegistry.of(tools), Clock.systemUTC(), ExecutionSettings.defaults("node-test"),
        PriceTable.builtIn(), identity, (use, held) -> presenter.present(use, held));
  }

  IdentityHarness(Path dir) {
    this(dir, IdentitySettings.defaults());
  }

  /** An agent with a scripted model; {@code tools} is the inside of {@code spec.tools: [...]}. */
  static String agent(String name, String script, String tools) {
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
          memory: {type: persistent}
          max_steps: 10
        """.formatted(name, script.indent(6).stripTrailing(), tools);
  }

  void apply(String... yamls) {
    for (String y : yamls) {
      Agents.apply(store, y);
    }
  }

  SessionRecord start(String agent, String message, boolean task) {
    return sessions.start(new SessionService.Start(agent, message, "operator:ann", task, Optional.empty(), Optional.empty()));
  }

  List<SessionEvent> events(String id) {
    return sessions.events(id, 0, 10_000).stream().map(StoredEvent::event).toList();
  }

  List<String> types(String id) {
    return events(id).stream().map(SessionEvent::type).toList();
  }

  <T extends SessionEvent> List<T> events(String id, Class<T> type) {
    return events(id).stream().filter(type::isInstance).map(type::cast).toList();
  }

  SessionStatus status(String id) {
    return sessions.record(id).effectiveStatus();
  }

  void awaitStatus(String id, SessionStatus status) {
    await().atMost(Duration.ofSeconds(20)).until(() -> status(id) == status);
  }

  /** The sessions whose parent is {@code parentId}. */
  List<SessionRecord> children(String parentId) {
    return store.events().sessions(new keel.data.SessionQuery(Optional.empty(), Optional.empty(), 1000, Optional.empty()))
        .stream().filter(r -> r.parentId().equals(Optional.of(parentId))).toList();
  }

  @Override
  public void close() {
    gate.countDown();
    sessions.close();
    store.close();
  }
}
