package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import keel.control.IdentitySettings;
import keel.core.Content;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.ToolCall;
import keel.core.Usage;
import keel.data.Input;
import keel.data.NewSession;
import keel.data.PendingEvent;
import keel.data.SessionRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sub-agents on a real store: a granted {@code agent://<name>} is a tool; calling it spawns a child
 * session whose answer becomes the call's result; children nest, share the root and the trace, are
 * bounded in depth and may not form cycles; failures and cancellations travel both ways; and a
 * step redone after a crash never spawns a second child.
 */
class SubagentTest {

  @TempDir Path dir;
  IdentityHarness h;

  @AfterEach
  void close() {
    if (h != null) {
      h.close();
    }
  }

  IdentityHarness harness() {
    h = new IdentityHarness(dir);
    return h;
  }

  static String delegating(String name, String child, String tools) {
    return IdentityHarness.agent(name, """
        - turns:
            - call: [{tool: agent_%s, args: {task: "%s: {{input}}"}}]
            - say: "%s got: {{result}}"
        """.formatted(child, name, name), tools);
  }

  static String answering(String name, String tools) {
    return IdentityHarness.agent(name, """
        - turns:
            - say: "%s did {{input}}"
        """.formatted(name), tools);
  }

  @Test
  void aGrantedSubagent_isATool_spawnsAChild_andTheChildsAnswerIsTheCallsResult() {
    harness().apply(
        delegating("planner", "researcher", "agent://researcher, internal://gate"),
        IdentityHarness.agent("researcher", """
            - turns:
                - call: [{tool: wait_gate}]
                - say: "researched {{input}}"
            """, "internal://gate"));
    SessionRecord parent = h.start("planner", "invoices", false);
    await().atMost(Duration.ofSeconds(20)).until(() -> !h.gateCalls.isEmpty());

    assertThat(h.offered.get(parent.id()).getFirst()).containsExactly("wait_gate", "agent_researcher");
    assertThat(h.status(parent.id())).isEqualTo(SessionStatus.AWAITING_SUBAGENT);
    SessionEvent.SubagentSpawned spawned = h.events(parent.id(), SessionEvent.SubagentSpawned.class).getFirst();
    String childId = Subagents.childSessionId(parent.id(), parent.id() + "/1/call_0_0");
    assertThat(spawned).isEqualTo(new SessionEvent.SubagentSpawned(
        "call_0_0", "agent://researcher", childId, "researcher", 1, "agent:planner",
        h.events(parent.id(), SessionEvent.ModelCalled.class).getFirst().tokenId()));
    SessionRecord child = h.sessions.record(childId);
    assertThat(child.parentId()).contains(parent.id());
    assertThat(child.rootId()).isEqualTo(parent.id());
    assertThat(child.traceId()).isEqualTo(parent.traceId());
    assertThat(h.gateCalls).containsExactly(childId);

    h.gate.countDown();
    h.awaitStatus(parent.id(), SessionStatus.IDLE);
    assertThat(h.status(childId)).isEqualTo(SessionStatus.COMPLETED);
    SessionEvent.SessionStarted started = h.events(childId, SessionEvent.SessionStarted.class).getFirst();
    assertThat(started.principal()).isEqualTo("agent:planner");
    assertThat(started.task()).isTrue();
    assertThat(started.parentSessionId()).isEqualTo(parent.id());
    assertThat(h.events(childId, SessionEvent.InputReceived.class).getFirst())
        .satisfies(in -> {
          assertThat(in.text()).isEqualTo("planner: invoices");
          assertThat(in.sender()).isEqualTo("agent:planner");
        });
    assertThat(h.events(parent.id(), SessionEvent.SubagentCompleted.class)).singleElement().satisfies(c -> {
      assertThat(c.callId()).isEqualTo("call_0_0");
      assertThat(c.childSessionId()).isEqualTo(childId);
      assertThat(c.outcome()).isEqualTo("completed");
      assertThat(c.error()).isFalse();
      assertThat(c.result()).isEqualTo(Content.inline("researched planner: invoices"));
    });
    assertThat(h.sessions.view(parent.id()).lastAnswer()).isEqualTo("planner got: researched planner: invoices");
    assertThat(h.types(parent.id())).containsSubsequence(
        "ModelResponded", "SubagentSpawned", "SubagentCompleted", "ModelCalled", "ModelResponded");
    assertThat(h.children(parent.id())).hasSize(1);
  }

  @Test
  void nestedSubagents_shareTheRootSessionAndTheTrace_andTheirChainsGrow() {
    harness().apply(
        delegating("a", "b", "agent://b, agent://c, internal://time"),
        delegating("b", "c", "agent://c, internal://time"),
        answering("c", "internal://time"));
    SessionRecord a = h.start("a", "go", true);
    h.awaitStatus(a.id(), SessionStatus.COMPLETED);

    SessionRecord b = h.children(a.id()).getFirst();
    SessionRecord c = h.children(b.id()).getFirst();
    assertThat(List.of(b.rootId(), c.rootId())).containsOnly(a.id());
    assertThat(List.of(b.traceId(), c.traceId())).containsOnly(a.traceId());
    assertThat(h.events(c.id(), SessionEvent.SessionStarted.class).getFirst().chain())
        .containsExactly("operator:ann", "agent:a", "agent:b");
    assertThat(h.sessions.view(c.id()).grants()).containsExactly("internal://time");
    assertThat(h.sessions.view(a.id()).lastAnswer()).isEqualTo("a got: b got: c did b: a: go");

    // one trace for the tree: each child's session span hangs under the call that spawned it
    Trace.Span trace = Trace.of(a.id(), h.store.events().eventsAfter(a.id(), 0), new java.util.function.Function<>() {
      @Override
      public Optional<Trace.Span> apply(String id) {
        return Optional.of(Trace.of(id, h.store.events().eventsAfter(id, 0), this));
      }
    });
    Trace.Span spawnOfB = find(trace, s -> b.id().equals(s.attributes().get("keel.subagent.session.id")));
    assertThat(spawnOfB.attributes()).containsEntry("keel.principal", "agent:a").containsEntry("keel.subagent.outcome", "completed");
    Trace.Span sessionB = find(spawnOfB, s -> s.kind().equals("session"));
    assertThat(sessionB.attributes()).containsEntry("keel.parent.session.id", a.id())
        .containsEntry("keel.delegation.chain", "operator:ann → agent:a");
    assertThat(find(sessionB, s -> c.id().equals(s.attributes().get("keel.session.id")))).isNotNull();
  }

  private static Trace.Span find(Trace.Span root, java.util.function.Predicate<Trace.Span> p) {
    if (p.test(root)) {
      return root;
    }
    for (Trace.Span c : root.children()) {
      Trace.Span f = findOrNull(c, p);
      if (f != null) {
        return f;
      }
    }
    throw new AssertionError("no such span under " + root.name());
  }

  private static Trace.Span findOrNull(Trace.Span s, java.util.function.Predicate<Trace.Span> p) {
    if (p.test(s)) {
      return s;
    }
    for (Trace.Span c : s.children()) {
      Trace.Span f = findOrNull(c, p);
      if (f != null) {
        return f;
      }
    }
    return null;
  }

  @Test
  void delegationDeeperThanTheLimit_isDenied_andTheDeepestAgentAnswersWithoutIt() {
    h = new IdentityHarness(dir, IdentitySettings.defaults().withMaxDelegationDepth(1));
    h.apply(delegating("a", "b", "agent://b, agent://c"), delegating("b", "c", "agent://c"), answering("c", ""));
    SessionRecord a = h.start("a", "go", true);
    h.awaitStatus(a.id(), SessionStatus.COMPLETED);
    SessionRecord b = h.children(a.id()).getFirst();
    assertThat(h.children(b.id())).isEmpty();
    SessionEvent.ToolCallDenied denied = h.events(b.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).isEqualTo("delegating to c would start a sub-agent at depth 2 (the root session is depth 0);"
        + " the deepest allowed is 1 (delegation chain: operator:ann → agent:a → agent:b)");
    assertThat(denied.principal()).isEqualTo("agent:b");
    assertThat(h.sessions.view(a.id()).lastAnswer()).startsWith("a got: b got: delegating to c would start");
  }

  @Test
  void delegationsBeyondTheFanOutBound_areDenied_andTheParentGoesOn() {
    h = new IdentityHarness(dir, IdentitySettings.defaults().withMaxSubagentsPerSession(2));
    h.apply(IdentityHarness.agent("fan", """
        - turns:
            - call: [{tool: agent_leaf, args: {task: "one"}}]
            - call: [{tool: agent_leaf, args: {task: "two"}}]
            - call: [{tool: agent_leaf, args: {task: "three"}}]
            - say: "fan got: {{result}}"
        """, "agent://leaf"), answering("leaf", ""));
    SessionRecord fan = h.start("fan", "go", true);
    h.awaitStatus(fan.id(), SessionStatus.COMPLETED);

    assertThat(h.children(fan.id())).hasSize(2);
    assertThat(h.events(fan.id(), SessionEvent.ToolCallDenied.class)).singleElement()
        .satisfies(d -> assertThat(d.reason()).startsWith(
            "this session has already made 2 sub-agent calls; the most one session may make is 2 (the fan-out bound)"));
    assertThat(h.sessions.view(fan.id()).lastAnswer()).startsWith("fan got: this session has already made 2");
  }

  @Test
  void anAgentDelegatingToItself_orBackUpItsChain_isDeniedAsACycle() {
    harness().apply(delegating("selfish", "selfish", "agent://selfish"), delegating("a", "b", "agent://b, agent://a"),
        delegating("b", "a", "agent://a"));
    SessionRecord selfish = h.start("selfish", "go", true);
    SessionRecord a = h.start("a", "go", true);
    h.awaitStatus(selfish.id(), SessionStatus.COMPLETED);
    h.awaitStatus(a.id(), SessionStatus.COMPLETED);
    assertThat(h.children(selfish.id())).isEmpty();
    assertThat(h.events(selfish.id(), SessionEvent.ToolCallDenied.class).getFirst().reason())
        .startsWith("selfish is already in the delegation chain (operator:ann → agent:selfish)");
    SessionRecord b = h.children(a.id()).getFirst();
    assertThat(h.children(b.id())).isEmpty();
    assertThat(h.events(b.id(), SessionEvent.ToolCallDenied.class).getFirst().reason())
        .startsWith("a is already in the delegation chain (operator:ann → agent:a → agent:b)");
  }

  @Test
  void delegatingToAnAgentOfAnotherOwner_isDenied_soOwnerScopedRolesHold() {
    harness().apply(delegating("planner", "payroll", "agent://payroll"),
        answering("payroll", "").replace("owner: team-a", "owner: team-b"));
    SessionRecord a = h.start("planner", "go", false);
    h.awaitStatus(a.id(), SessionStatus.IDLE);

    assertThat(h.events(a.id(), SessionEvent.ToolCallDenied.class)).singleElement()
        .satisfies(d -> assertThat(d.reason()).isEqualTo(
            "agent \"payroll\" belongs to owner \"team-b\", not \"team-a\"; an agent delegates only to agents of its own owner"));
    assertThat(h.children(a.id())).isEmpty();
  }

  @Test
  void aCallOfAnUnknownAgent_orWithoutATask_isDeniedWithWhatWasWrong() {
    harness().apply(
        IdentityHarness.agent("a", """
            - turns:
                - call: [{tool: agent_ghost, args: {task: x}}, {tool: agent_b, args: {job: x}}, {tool: agent_c, args: {task: x}}]
                - say: "done"
            """, "agent://ghost, agent://b"),
        answering("b", ""), answering("c", ""));
    SessionRecord a = h.start("a", "go", false);
    h.awaitStatus(a.id(), SessionStatus.IDLE);
    // an agent that does not exist is not offered
    assertThat(h.offered.get(a.id()).getFirst()).containsExactly("agent_b");
    List<String> reasons = h.events(a.id(), SessionEvent.ToolCallDenied.class).stream().map(SessionEvent.ToolCallDenied::reason).toList();
    assertThat(reasons).hasSize(3);
    assertThat(reasons.get(0)).isEqualTo("there is no agent named \"ghost\" to delegate to");
    assertThat(reasons.get(1)).startsWith("invalid arguments for agent_b: ").contains("task");
    assertThat(reasons.get(2)).isEqualTo("agent:a is not granted agent://c (its token grants agent://ghost, agent://b)");
    assertThat(h.children(a.id())).isEmpty();
  }

  @Test
  void aChildThatFails_givesItsParentAnErrorResult_andTheParentGoesOn() {
    harness().apply(
        delegating("planner", "broken", "agent://broken, internal://time"),
        IdentityHarness.agent("broken", """
            - turns:
                - call: [{tool: time_now}]
            """, "internal://time"));
    SessionRecord parent = h.start("planner", "go", false);
    h.awaitStatus(parent.id(), SessionStatus.IDLE);
    SessionRecord child = h.children(parent.id()).getFirst();
    assertThat(h.status(child.id())).isEqualTo(SessionStatus.FAILED);
    SessionEvent.SubagentCompleted done = h.events(parent.id(), SessionEvent.SubagentCompleted.class).getFirst();
    assertThat(done.outcome()).isEqualTo("failed");
    assertThat(done.error()).isTrue();
    assertThat(((Content.Inline) done.result()).text()).startsWith("the agent \"broken\" failed: model_error: ");
    assertThat(h.sessions.view(parent.id()).lastAnswer()).startsWith("planner got: the agent \"broken\" failed");
  }

  @Test
  void cancellingAParent_cancelsTheChildItWaitsFor() {
    harness().apply(
        delegating("planner", "slow", "agent://slow, internal://gate"),
        IdentityHarness.agent("slow", """
            - turns:
                - call: [{tool: wait_gate}]
                - say: "finished"
            """, "internal://gate"));
    SessionRecord parent = h.start("planner", "go", false);
    await().atMost(Duration.ofSeconds(20)).until(() -> !h.gateCalls.isEmpty());
    String childId = h.gateCalls.getFirst();
    h.sessions.cancel(parent.id(), "operator:ann", "not needed");
    h.awaitStatus(parent.id(), SessionStatus.CANCELLED);
    h.gate.countDown();
    h.awaitStatus(childId, SessionStatus.CANCELLED);
    SessionEvent.SessionCancelled cancelled = h.events(childId, SessionEvent.SessionCancelled.class).getFirst();
    assertThat(cancelled.by()).isEqualTo("agent:planner");
    assertThat(cancelled.reason()).isEqualTo("its parent session " + parent.id() + " is cancelled");
    assertThat(h.types(childId)).doesNotContain("SessionCompleted");
    // the child's result had nobody to go to
    assertThat(h.store.events().pendingInputs(parent.id())).isEmpty();
    assertThat(h.types(parent.id()).getLast()).isEqualTo("SessionCancelled");
  }

  @Test
  void cancellingAChild_givesItsParentACancelledResult() {
    harness().apply(
        delegating("planner", "slow", "agent://slow, internal://gate"),
        IdentityHarness.agent("slow", """
            - turns:
                - call: [{tool: wait_gate}]
                - say: "finished"
            """, "internal://gate"));
    SessionRecord parent = h.start("planner", "go", false);
    await().atMost(Duration.ofSeconds(20)).until(() -> !h.gateCalls.isEmpty());
    String childId = h.gateCalls.getFirst();
    h.sessions.cancel(childId, "operator:ann", "taking too long");
    h.gate.countDown();
    h.awaitStatus(parent.id(), SessionStatus.IDLE);
    SessionEvent.SubagentCompleted done = h.events(parent.id(), SessionEvent.SubagentCompleted.class).getFirst();
    assertThat(done.outcome()).isEqualTo("cancelled");
    assertThat(((Content.Inline) done.result()).text())
        .isEqualTo("the agent \"slow\" was cancelled by operator:ann: taking too long");
  }

  // ---- crashes -------------------------------------------------------------------------------------

  /**
   * What a node leaves when it dies in a spawn step after the child session was created and before
   * the parent recorded SubagentSpawned: the parent's call is durable (it is flushed before the
   * child is made), the child exists under the id derived from the call.
   */
  private String[] crashedMidSpawn(boolean childFinishedAndDelivered) {
    String parentId = "s_crashed_parent";
    String span = "0000000000000001";
    ToolCall call = new ToolCall("call_0_0", "agent_researcher", "{\"task\":\"planner: go\"}");
    h.store.events().create(new NewSession(parentId, "planner", 1, "team-a", "0".repeat(31) + "1", Optional.empty(), parentId,
        List.of(
            new PendingEvent(new SessionEvent.SessionStarted("planner", 1, "team-a", "operator:ann", false,
                List.of("agent://researcher"), List.of("operator:ann"), ""), span),
            new PendingEvent(new SessionEvent.InputReceived("in_1", "go", "operator:ann"), span),
            new PendingEvent(new SessionEvent.ModelCalled(0, "scripted", "s", "agent:planner", "t_old"), span),
            new PendingEvent(new SessionEvent.ModelResponded(0, "", List.of(call), Usage.ZERO, "scripted/s", 1), span)),
        SessionStatus.RUNNING, Optional.empty()));
    String childId = Subagents.childSessionId(parentId, parentId + "/1/call_0_0");
    List<PendingEvent> childEvents = new java.util.ArrayList<>(List.of(
        new PendingEvent(new SessionEvent.SessionStarted("researcher", 1, "team-a", "agent:planner", true,
            List.of(), List.of("operator:ann", "agent:planner"), parentId), span)));
    SessionStatus childStatus = SessionStatus.IDLE;
    Optional<Input> task = Optional.of(new Input(childId, Subagents.taskInputId(childId), "message", "planner: go",
        "agent:planner", java.time.Instant.now()));
    if (childFinishedAndDelivered) {
      childEvents.add(new PendingEvent(new SessionEvent.InputReceived("in_task", "planner: go", "agent:planner"), span));
      childEvents.add(new PendingEvent(new SessionEvent.ModelCalled(0, "scripted", "s"), span));
      childEvents.add(new PendingEvent(new SessionEvent.ModelResponded(0, "researcher did it before the crash", List.of(), Usage.ZERO, "scripted/s", 1), span));
      childEvents.add(new PendingEvent(new SessionEvent.SessionCompleted("researcher did it before the crash"), span));
      childStatus = SessionStatus.COMPLETED;
      task = Optional.empty();
    }
    h.store.events().create(new NewSession(childId, "researcher", 1, "team-a", "0".repeat(31) + "1", Optional.of(parentId),
        parentId, childEvents, childStatus, task));
    if (childFinishedAndDelivered) {
      h.store.events().enqueue(new Input(parentId, Subagents.resultInputId(childId), Subagents.RESULT_KIND,
          "{\"child_session_id\":\"" + childId + "\",\"agent\":\"researcher\",\"outcome\":\"completed\","
              + "\"result\":\"researcher did it before the crash\"}", "agent:researcher", java.time.Instant.now()));
    }
    return new String[] {parentId, childId};
  }

  @Test
  void aSpawnRedoneAfterACrash_findsTheChildItCreated_andNeverMakesASecond() {
    harness().apply(delegating("planner", "researcher", "agent://researcher"), answering("researcher", ""));
    String[] ids = crashedMidSpawn(false);
    assertThat(h.sessions.recover()).isEqualTo(2);
    h.awaitStatus(ids[0], SessionStatus.IDLE);
    assertThat(h.children(ids[0])).extracting(SessionRecord::id).containsExactly(ids[1]);
    assertThat(h.events(ids[0], SessionEvent.SubagentSpawned.class)).singleElement()
        .satisfies(s -> assertThat(s.childSessionId()).isEqualTo(ids[1]));
    assertThat(h.sessions.view(ids[0]).lastAnswer()).isEqualTo("planner got: researcher did planner: go");
  }

  @Test
  void aChildThatFinishedBeforeItsParentRecordedTheSpawn_isAdopted_andItsDeliveredResultUsedOnce() {
    harness().apply(delegating("planner", "researcher", "agent://researcher"), answering("researcher", ""));
    String[] ids = crashedMidSpawn(true);
    long childEvents = h.events(ids[1]).size();
    assertThat(h.sessions.recover()).isEqualTo(1);
    h.awaitStatus(ids[0], SessionStatus.IDLE);
    assertThat(h.children(ids[0])).hasSize(1);
    assertThat(h.events(ids[1])).hasSize((int) childEvents);
    assertThat(h.types(ids[0])).containsSubsequence("SubagentSpawned", "SubagentCompleted").doesNotContain("InputRejected");
    assertThat(h.sessions.view(ids[0]).lastAnswer()).isEqualTo("planner got: researcher did it before the crash");
  }
}
