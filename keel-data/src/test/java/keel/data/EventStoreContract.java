package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import keel.core.Content;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.core.ToolCall;
import keel.core.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link Store} implementation passes. A subclass says how to open a fresh,
 * empty store and how to open the same one again after a restart; nothing here knows which
 * database is underneath, so the PostgreSQL store runs this suite unchanged.
 */
public abstract class EventStoreContract {

  protected static final String NODE = "node-a";
  protected static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  protected static final String SPAN = "00f067aa0ba902b7";
  protected static final Instant START = Instant.parse("2025-03-01T10:00:00Z");

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  protected EventStore events;

  /** Opens a new, empty store, stamping {@code node} on its events and reading time from clock. */
  protected abstract Store openStore(String node, Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed (a restart). */
  protected abstract Store reopenStore(String node, Clock clock);

  @BeforeEach
  final void openTheStore() {
    store = openStore(NODE, clock);
    events = store.events();
  }

  @AfterEach
  final void closeTheStore() {
    if (store != null) {
      store.close();
    }
  }

  /** Closes the store and opens it again, as a node restart does. */
  protected final void restart() {
    store.close();
    store = reopenStore(NODE, clock);
    events = store.events();
  }

  // ---- helpers ---------------------------------------------------------------------------------

  protected static PendingEvent pe(SessionEvent e) {
    return new PendingEvent(e, SPAN);
  }

  protected static SessionEvent.SessionStarted started(String agent) {
    return new SessionEvent.SessionStarted(agent, 1, "team-a", "user:ann", false);
  }

  protected NewSession newSession(String id, String agent, Optional<Input> firstInput) {
    return new NewSession(
        id, agent, 1, "team-a", TRACE, Optional.empty(), id, List.of(pe(started(agent))), SessionStatus.IDLE,
        firstInput);
  }

  /** Creates an idle session one second after the previous one, so creation order is strict. */
  protected void create(String id, String agent) {
    clock.advance(Duration.ofSeconds(1));
    events.create(newSession(id, agent, Optional.empty()));
  }

  protected Input input(String sessionId, String inputId, String text) {
    return new Input(sessionId, inputId, "message", text, "user:ann", clock.instant());
  }

  protected static SessionEvent.InputReceived received(String inputId, String text) {
    return new SessionEvent.InputReceived(inputId, text, "user:ann");
  }

  protected static SessionEvent.ModelCalled modelCalled(int step) {
    return new SessionEvent.ModelCalled(step, "openai", "gpt-test");
  }

  protected static SessionEvent.ModelResponded answer(int step, String text) {
    return new SessionEvent.ModelResponded(step, text, List.of(), new Usage(10, 5, 0, 0), "v1", 50);
  }

  protected static Append append(String sessionId, long expectedSeq, SessionStatus status, SessionEvent... es) {
    return new Append(
        sessionId, expectedSeq, Arrays.stream(es).map(EventStoreContract::pe).toList(), status, List.of(),
        Optional.empty());
  }

  protected static Append consuming(
      String sessionId, long expectedSeq, SessionStatus status, List<String> inputs, SessionEvent... es) {
    return new Append(
        sessionId, expectedSeq, Arrays.stream(es).map(EventStoreContract::pe).toList(), status, inputs,
        Optional.empty());
  }

  protected static Append withSnapshot(
      String sessionId, long expectedSeq, SessionStatus status, SessionState.Snapshot snap, SessionEvent... es) {
    return new Append(
        sessionId, expectedSeq, Arrays.stream(es).map(EventStoreContract::pe).toList(), status, List.of(),
        Optional.of(snap));
  }

  protected List<StoredEvent> all(String sessionId) {
    return events.events(sessionId, 0, 10_000);
  }

  protected SessionRecord record(String sessionId) {
    return events.session(sessionId).orElseThrow();
  }

  /** A session with a user message folded in and a model call in flight: status running. */
  protected void createRunning(String id, String agent) {
    create(id, agent);
    events.append(append(id, 1, SessionStatus.RUNNING, received("in-1", "hi"), modelCalled(1)));
  }

  // ---- sessions and their logs -----------------------------------------------------------------

  @Nested
  class Logs {

    @Test
    void create_thenEvents_readBackWithSequenceNodeSpanAndTrace() {
      clock.advance(Duration.ofSeconds(5));
      Instant at = clock.instant();
      events.create(
          new NewSession(
              "s1", "helper", 4, "team-a", TRACE, Optional.of("parent-1"), "root-1",
              List.of(pe(started("helper")), new PendingEvent(received("in-1", "hello"), "1111111111111111")),
              SessionStatus.RUNNABLE, Optional.empty()));

      List<StoredEvent> log = all("s1");
      assertThat(log).extracting(StoredEvent::seq).containsExactly(1L, 2L);
      assertThat(log).allSatisfy(e -> {
        assertThat(e.sessionId()).isEqualTo("s1");
        assertThat(e.node()).isEqualTo(NODE);
        assertThat(e.traceId()).isEqualTo(TRACE);
        assertThat(e.at()).isEqualTo(at);
      });
      assertThat(log).extracting(StoredEvent::spanId).containsExactly(SPAN, "1111111111111111");
      assertThat(log).extracting(StoredEvent::event).containsExactly(started("helper"), received("in-1", "hello"));

      SessionRecord r = record("s1");
      assertThat(r.agent()).isEqualTo("helper");
      assertThat(r.revision()).isEqualTo(4);
      assertThat(r.owner()).isEqualTo("team-a");
      assertThat(r.status()).isEqualTo(SessionStatus.RUNNABLE);
      assertThat(r.lastSeq()).isEqualTo(2);
      assertThat(r.traceId()).isEqualTo(TRACE);
      assertThat(r.parentId()).contains("parent-1");
      assertThat(r.rootId()).isEqualTo("root-1");
      assertThat(r.createdAt()).isEqualTo(at);
      assertThat(r.updatedAt()).isEqualTo(at);
      assertThat(r.pendingInputs()).isZero();
    }

    @Test
    void create_twice_isConflict_andKeepsTheFirst() {
      create("s1", "helper");
      NewSession again =
          new NewSession(
              "s1", "other", 9, "team-b", TRACE, Optional.empty(), "s1", List.of(pe(started("other"))),
              SessionStatus.IDLE, Optional.of(input("s1", "in-x", "sneaky")));
      assertThatThrownBy(() -> events.create(again))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("s1");
      assertThat(record("s1").agent()).isEqualTo("helper");
      assertThat(all("s1")).hasSize(1);
      assertThat(events.pendingInputs("s1")).isEmpty();
    }

    @Test
    void unknownSession_hasNoRecordAndNoEvents() {
      assertThat(events.session("nope")).isEmpty();
      assertThat(events.events("nope", 0, 10)).isEmpty();
      assertThat(events.snapshot("nope")).isEmpty();
      assertThat(events.pendingInputs("nope")).isEmpty();
      assertThat(events.eventBytes("nope")).isZero();
    }

    @Test
    void append_withTheExpectedSequence_continuesTheLog() {
      create("s1", "helper");
      clock.advance(Duration.ofMinutes(1));
      long last = events.append(append("s1", 1, SessionStatus.RUNNING, received("in-1", "hi"), modelCalled(1)));
      assertThat(last).isEqualTo(3);
      last = events.append(append("s1", 3, SessionStatus.IDLE, answer(1, "hello")));
      assertThat(last).isEqualTo(4);

      assertThat(all("s1")).extracting(StoredEvent::seq).containsExactly(1L, 2L, 3L, 4L);
      assertThat(all("s1").getLast().event()).isEqualTo(answer(1, "hello"));
      SessionRecord r = record("s1");
      assertThat(r.lastSeq()).isEqualTo(4);
      assertThat(r.status()).isEqualTo(SessionStatus.IDLE);
      assertThat(r.updatedAt()).isEqualTo(clock.instant());
      assertThat(r.createdAt()).isBefore(r.updatedAt());
    }

    @Test
    void append_withStaleSequence_isRejected() {
      create("s1", "helper");
      events.append(append("s1", 1, SessionStatus.RUNNABLE, received("in-1", "hi")));
      assertThatThrownBy(() -> events.append(append("s1", 1, SessionStatus.RUNNING, modelCalled(1))))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("s1");
      assertThat(all("s1")).hasSize(2);
      assertThat(record("s1").status()).isEqualTo(SessionStatus.RUNNABLE);
    }

    @Test
    void append_aheadOfTheLog_isRejected() {
      create("s1", "helper");
      assertThatThrownBy(() -> events.append(append("s1", 5, SessionStatus.RUNNABLE, received("in-1", "hi"))))
          .isInstanceOf(KeelException.Conflict.class);
      assertThat(all("s1")).hasSize(1);
      assertThat(record("s1").lastSeq()).isEqualTo(1);
    }

    @Test
    void append_toUnknownSession_isNotFound() {
      assertThatThrownBy(() -> events.append(append("nope", 0, SessionStatus.IDLE, started("x"))))
          .isInstanceOf(KeelException.NotFound.class)
          .hasMessageContaining("nope");
      assertThat(events.session("nope")).isEmpty();
    }

    @Test
    void events_areReadAfterASequence_uptoALimit() {
      create("s1", "helper");
      for (int i = 1; i <= 9; i++) {
        events.append(append("s1", i, SessionStatus.RUNNABLE, received("in-" + i, "m" + i)));
      }
      assertThat(events.events("s1", 3, 4)).extracting(StoredEvent::seq).containsExactly(4L, 5L, 6L, 7L);
      assertThat(events.events("s1", 8, 100)).extracting(StoredEvent::seq).containsExactly(9L, 10L);
      assertThat(events.events("s1", 10, 100)).isEmpty();
    }

    @Test
    void eventBytes_growLinearlyWithTheLog() {
      create("s1", "helper");
      long base = events.eventBytes("s1");
      assertThat(base).isPositive();
      List<Long> sizes = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        events.append(append("s1", 1 + i, SessionStatus.RUNNABLE, received("in-x", "the same text")));
        sizes.add(events.eventBytes("s1"));
      }
      long perEvent = sizes.get(0) - base;
      assertThat(perEvent).isPositive();
      for (int i = 0; i < sizes.size(); i++) {
        assertThat(sizes.get(i)).isEqualTo(base + (i + 1) * perEvent);
      }
    }

    @Test
    void largeToolResults_goToBlobs_soEventsStaySmall() {
      createRunning("s1", "helper");
      ToolCall call = new ToolCall("c1", "read", "{}");
      events.append(
          append(
              "s1", 3, SessionStatus.RUNNING,
              new SessionEvent.ModelResponded(1, "", List.of(call), Usage.ZERO, "v1", 1),
              new SessionEvent.ToolCallAuthorized("c1", "mcp://files", true),
              new SessionEvent.ToolCallStarted("c1", 1, "k1")));
      long before = events.eventBytes("s1");
      String big = "x".repeat(200_000);
      Content result = store.blobs().store(big);
      events.append(append("s1", 6, SessionStatus.RUNNABLE, new SessionEvent.ToolCallCompleted("c1", result, false, 3)));
      assertThat(events.eventBytes("s1") - before).isLessThan(2_000);
      SessionEvent.ToolCallCompleted stored = (SessionEvent.ToolCallCompleted) all("s1").getLast().event();
      assertThat(store.blobs().text(stored.result())).isEqualTo(big);
    }
  }

  // ---- inbox ------------------------------------------------------------------------------------

  @Nested
  class Inbox {

    @Test
    void enqueue_persistsTheInput_andPendingInputsKeepTheirOrder() {
      create("s1", "helper");
      Input sent = input("s1", "in-a", "first");
      Input a = events.enqueue(sent);
      clock.advance(Duration.ofSeconds(1));
      events.enqueue(input("s1", "in-c", "second"));
      clock.advance(Duration.ofSeconds(1));
      events.enqueue(input("s1", "in-b", "third"));

      assertThat(a).isEqualTo(sent);
      assertThat(events.pendingInputs("s1")).extracting(Input::inputId).containsExactly("in-a", "in-c", "in-b");
      assertThat(events.pendingInputs("s1")).extracting(Input::body).containsExactly("first", "second", "third");
      assertThat(events.pendingInputs("s1").getFirst()).isEqualTo(a);
      SessionRecord r = record("s1");
      assertThat(r.pendingInputs()).isEqualTo(3);
      assertThat(r.status()).isEqualTo(SessionStatus.IDLE);
      assertThat(r.effectiveStatus()).isEqualTo(SessionStatus.RUNNABLE);
    }

    @Test
    void enqueue_sameInputIdTwice_isStoredOnce_andReturnsTheFirst() {
      create("s1", "helper");
      Input first = events.enqueue(input("s1", "key-1", "pay 10"));
      clock.advance(Duration.ofSeconds(3));
      Input again = events.enqueue(new Input("s1", "key-1", "message", "pay 20", "user:bob", clock.instant()));
      assertThat(again).isEqualTo(first);
      assertThat(events.pendingInputs("s1")).containsExactly(first);
      assertThat(record("s1").pendingInputs()).isEqualTo(1);
    }

    @Test
    void sameInputId_inAnotherSession_isAnotherInput() {
      create("s1", "helper");
      create("s2", "helper");
      events.enqueue(input("s1", "key-1", "one"));
      events.enqueue(input("s2", "key-1", "two"));
      assertThat(events.pendingInputs("s1")).extracting(Input::body).containsExactly("one");
      assertThat(events.pendingInputs("s2")).extracting(Input::body).containsExactly("two");
    }

    @Test
    void enqueue_toUnknownSession_isNotFound() {
      assertThatThrownBy(() -> events.enqueue(input("nope", "in-1", "hi")))
          .isInstanceOf(KeelException.NotFound.class)
          .hasMessageContaining("nope");
      assertThat(events.pendingInputs("nope")).isEmpty();
    }

    @Test
    void enqueue_toAnEndedSession_isRejected() {
      // regression: the input was accepted, never consumed, and the session had "work" forever
      create("s1", "helper");
      events.append(append("s1", 1, SessionStatus.CANCELLED, new SessionEvent.SessionCancelled("op:bob", "done")));
      assertThatThrownBy(() -> events.enqueue(input("s1", "in-1", "hello?")))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("s1")
          .hasMessageContaining("cancelled");
      assertThat(events.pendingInputs("s1")).isEmpty();
      assertThat(events.sessionsWithWork(10)).isEmpty();
    }

    @Test
    void sessionThatEndedWithInputsLeft_hasNoWork() {
      // an input accepted while the last step ran, which then completed the task
      createRunning("s1", "helper");
      events.enqueue(input("s1", "in-2", "one more thing"));
      events.append(append("s1", 3, SessionStatus.COMPLETED, answer(1, "done"), new SessionEvent.SessionCompleted("done")));
      assertThat(events.sessionsWithWork(10)).isEmpty();
    }

    @Test
    void firstInput_forAnotherSession_isRejected() {
      assertThatThrownBy(() -> newSession("s1", "helper", Optional.of(input("s2", "in-1", "hi"))))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("s2");
    }

    @Test
    void create_withAFirstInput_putsItInTheInbox() {
      clock.advance(Duration.ofSeconds(1));
      events.create(newSession("s1", "helper", Optional.of(input("s1", "in-1", "hello"))));
      assertThat(events.pendingInputs("s1")).extracting(Input::body).containsExactly("hello");
      assertThat(record("s1").pendingInputs()).isEqualTo(1);
      assertThat(record("s1").effectiveStatus()).isEqualTo(SessionStatus.RUNNABLE);
    }

    @Test
    void append_consumingInputs_takesThemOutOfTheInbox_withTheEvents() {
      create("s1", "helper");
      events.enqueue(input("s1", "in-1", "one"));
      events.enqueue(input("s1", "in-2", "two"));
      events.enqueue(input("s1", "in-3", "three"));

      events.append(
          consuming(
              "s1", 1, SessionStatus.RUNNABLE, List.of("in-1", "in-2"), received("in-1", "one"),
              received("in-2", "two")));

      assertThat(events.pendingInputs("s1")).extracting(Input::inputId).containsExactly("in-3");
      SessionRecord r = record("s1");
      assertThat(r.pendingInputs()).isEqualTo(1);
      assertThat(r.lastSeq()).isEqualTo(3);

      events.append(consuming("s1", 3, SessionStatus.RUNNABLE, List.of("in-3"), received("in-3", "three")));
      assertThat(events.pendingInputs("s1")).isEmpty();
      assertThat(record("s1").pendingInputs()).isZero();
    }

    @Test
    void append_consumingAnInputThatIsNotPending_failsAsAWhole_andWritesNoEvents() {
      create("s1", "helper");
      events.enqueue(input("s1", "in-1", "one"));
      assertThatThrownBy(
              () ->
                  events.append(
                      consuming(
                          "s1", 1, SessionStatus.RUNNABLE, List.of("in-1", "in-ghost"), received("in-1", "one"))))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("in-ghost");
      assertThat(all("s1")).hasSize(1);
      assertThat(events.pendingInputs("s1")).extracting(Input::inputId).containsExactly("in-1");
      SessionRecord r = record("s1");
      assertThat(r.lastSeq()).isEqualTo(1);
      assertThat(r.pendingInputs()).isEqualTo(1);
      assertThat(r.status()).isEqualTo(SessionStatus.IDLE);
      // and the session is still writable at the same place
      assertThat(events.append(consuming("s1", 1, SessionStatus.RUNNABLE, List.of("in-1"), received("in-1", "one"))))
          .isEqualTo(2);
    }

    @Test
    void append_consumingAnInputTwice_isRejected() {
      create("s1", "helper");
      events.enqueue(input("s1", "in-1", "one"));
      events.append(consuming("s1", 1, SessionStatus.RUNNABLE, List.of("in-1"), received("in-1", "one")));
      assertThatThrownBy(
              () -> events.append(consuming("s1", 2, SessionStatus.RUNNABLE, List.of("in-1"), received("in-1", "one"))))
          .isInstanceOf(KeelException.Conflict.class);
      assertThat(all("s1")).hasSize(2);
      assertThat(record("s1").pendingInputs()).isZero();
    }

    @Test
    void enqueue_ofAnInputAlreadyConsumed_isRecognised_andNotPendingAgain() {
      create("s1", "helper");
      events.enqueue(input("s1", "key-1", "pay 10"));
      events.append(consuming("s1", 1, SessionStatus.RUNNABLE, List.of("key-1"), received("key-1", "pay 10")));
      Input again = events.enqueue(input("s1", "key-1", "pay 10"));
      assertThat(again.inputId()).isEqualTo("key-1");
      assertThat(events.pendingInputs("s1")).isEmpty();
      assertThat(record("s1").pendingInputs()).isZero();
    }
  }

  // ---- snapshots --------------------------------------------------------------------------------

  @Nested
  class Snapshots {

    private SessionState fold(String sessionId) {
      return SessionState.fold(all(sessionId));
    }

    @Test
    void snapshot_isStoredWithItsAppend_andTheLatestReplacesTheOlder() {
      create("s1", "helper");
      SessionState state = fold("s1");
      state.apply(new StoredEvent("s1", 2, clock.instant(), NODE, TRACE, SPAN, received("in-1", "hi")));
      SessionState.Snapshot first = state.snapshot();
      events.append(withSnapshot("s1", 1, SessionStatus.RUNNABLE, first, received("in-1", "hi")));
      assertThat(events.snapshot("s1")).contains(first);

      state.apply(new StoredEvent("s1", 3, clock.instant(), NODE, TRACE, SPAN, modelCalled(1)));
      state.apply(new StoredEvent("s1", 4, clock.instant(), NODE, TRACE, SPAN, answer(1, "hello")));
      SessionState.Snapshot second = state.snapshot();
      events.append(withSnapshot("s1", 2, SessionStatus.IDLE, second, modelCalled(1), answer(1, "hello")));
      assertThat(events.snapshot("s1")).contains(second);

      // rehydrating from the snapshot and the (empty) tail is the fold of the whole log
      SessionState restored = SessionState.restore(events.snapshot("s1").orElseThrow());
      events.events("s1", restored.lastSeq(), 1000).forEach(restored::apply);
      assertThat(restored).isEqualTo(fold("s1"));
    }

    @Test
    void appendWithoutSnapshot_keepsThePreviousSnapshot() {
      create("s1", "helper");
      SessionState state = fold("s1");
      state.apply(new StoredEvent("s1", 2, clock.instant(), NODE, TRACE, SPAN, received("in-1", "hi")));
      events.append(withSnapshot("s1", 1, SessionStatus.RUNNABLE, state.snapshot(), received("in-1", "hi")));
      events.append(append("s1", 2, SessionStatus.RUNNING, modelCalled(1)));
      assertThat(events.snapshot("s1")).map(SessionState.Snapshot::lastSeq).contains(2L);

      SessionState restored = SessionState.restore(events.snapshot("s1").orElseThrow());
      events.events("s1", restored.lastSeq(), 1000).forEach(restored::apply);
      assertThat(restored).isEqualTo(fold("s1"));
    }

    @Test
    void snapshotThatDoesNotEndWithTheAppend_isRejected_andNothingIsWritten() {
      create("s1", "helper");
      SessionState.Snapshot atOne = fold("s1").snapshot();
      assertThatThrownBy(() -> events.append(withSnapshot("s1", 1, SessionStatus.RUNNABLE, atOne, received("in-1", "hi"))))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("snapshot")
          .hasMessageContaining("s1");
      assertThat(all("s1")).hasSize(1);
      assertThat(events.snapshot("s1")).isEmpty();
      assertThat(record("s1").status()).isEqualTo(SessionStatus.IDLE);
    }
  }

  // ---- listings ---------------------------------------------------------------------------------

  @Nested
  class Listings {

    /** a1 idle, a2 idle with an input, a3 running, b1 completed, b2 runnable (stored), a4 awaiting. */
    private void population() {
      create("a1", "alpha");
      create("a2", "alpha");
      events.enqueue(input("a2", "in-1", "hi"));
      createRunning("a3", "alpha");
      create("b1", "beta");
      events.append(append("b1", 1, SessionStatus.COMPLETED, new SessionEvent.SessionCompleted("done")));
      create("b2", "beta");
      events.append(append("b2", 1, SessionStatus.RUNNABLE, received("in-1", "go")));
      create("a4", "alpha");
      events.append(append("a4", 1, SessionStatus.AWAITING_APPROVAL, received("in-1", "pay")));
    }

    private List<String> ids(SessionQuery q) {
      return events.sessions(q).stream().map(SessionRecord::id).toList();
    }

    private SessionQuery query(String agent, SessionStatus status, int limit, String before) {
      return new SessionQuery(
          Optional.ofNullable(agent), Optional.ofNullable(status), limit, Optional.ofNullable(before));
    }

    @Test
    void sessions_areNewestFirst() {
      population();
      assertThat(ids(SessionQuery.all(100))).containsExactly("a4", "b2", "b1", "a3", "a2", "a1");
    }

    @Test
    void sessions_filterByAgent() {
      population();
      assertThat(ids(query("beta", null, 100, null))).containsExactly("b2", "b1");
      assertThat(ids(query("gamma", null, 100, null))).isEmpty();
    }

    @Test
    void sessions_filterByStatus() {
      population();
      assertThat(ids(query(null, SessionStatus.COMPLETED, 100, null))).containsExactly("b1");
      assertThat(ids(query(null, SessionStatus.RUNNING, 100, null))).containsExactly("a3");
      assertThat(ids(query(null, SessionStatus.AWAITING_APPROVAL, 100, null))).containsExactly("a4");
      assertThat(ids(query("alpha", SessionStatus.COMPLETED, 100, null))).isEmpty();
    }

    @Test
    void runnable_includesIdleSessionsWithInputs_andIdleExcludesThem() {
      population();
      assertThat(ids(query(null, SessionStatus.RUNNABLE, 100, null))).containsExactly("b2", "a2");
      assertThat(ids(query(null, SessionStatus.IDLE, 100, null))).containsExactly("a1");
      assertThat(ids(query("alpha", SessionStatus.RUNNABLE, 100, null))).containsExactly("a2");
    }

    @Test
    void sessions_pageWithBefore() {
      population();
      assertThat(ids(query(null, null, 2, null))).containsExactly("a4", "b2");
      assertThat(ids(query(null, null, 2, "b2"))).containsExactly("b1", "a3");
      assertThat(ids(query(null, null, 2, "a3"))).containsExactly("a2", "a1");
      assertThat(ids(query(null, null, 2, "a1"))).isEmpty();
      assertThat(ids(query("alpha", null, 2, "a4"))).containsExactly("a3", "a2");
    }

    @Test
    void sessions_filterByOwners_andPageWithinThem() {
      for (String[] s : new String[][] {{"f1", "finance"}, {"h1", "hr"}, {"f2", "finance"}, {"o1", "ops"}, {"f3", "finance"}}) {
        clock.advance(Duration.ofSeconds(1));
        events.create(new NewSession(
            s[0], "agent-" + s[1], 1, s[1], TRACE, Optional.empty(), s[0],
            List.of(pe(new SessionEvent.SessionStarted("agent-" + s[1], 1, s[1], "user:ann", false))),
            SessionStatus.IDLE, Optional.empty()));
      }
      SessionQuery all = SessionQuery.all(100);
      assertThat(ids(all.withOwners(java.util.Set.of("finance")))).containsExactly("f3", "f2", "f1");
      assertThat(ids(all.withOwners(java.util.Set.of("finance", "ops")))).containsExactly("f3", "o1", "f2", "f1");
      assertThat(ids(all.withOwners(java.util.Set.of()))).as("no owner covers nothing").isEmpty();
      assertThat(ids(all.withOwners(java.util.Set.of("nobody")))).isEmpty();
      assertThat(ids(all)).hasSize(5);
      SessionQuery page = new SessionQuery(Optional.empty(), Optional.empty(), 2, Optional.of("f3"), Optional.of(java.util.Set.of("finance", "hr")));
      assertThat(ids(page)).as("a full page of the owners asked for, whatever lies between").containsExactly("f2", "h1");
      assertThat(events.session("h1").orElseThrow().owner()).isEqualTo("hr");
    }

    @Test
    void sessionsCreatedInTheSameMillisecond_pageWithoutLosingAny() {
      for (int i = 0; i < 7; i++) {
        events.create(newSession("same-" + i, "alpha", Optional.empty()));
      }
      List<String> seen = new ArrayList<>();
      String before = null;
      while (true) {
        List<String> page = ids(query(null, null, 3, before));
        if (page.isEmpty()) {
          break;
        }
        seen.addAll(page);
        before = page.getLast();
      }
      assertThat(seen).hasSize(7).doesNotHaveDuplicates();
    }

    @Test
    void countByStatus_countsIdleWithInputsAsRunnable() {
      population();
      assertThat(events.countByStatus(""))
          .containsOnly(
              Map.entry(SessionStatus.IDLE, 1L),
              Map.entry(SessionStatus.RUNNABLE, 2L),
              Map.entry(SessionStatus.RUNNING, 1L),
              Map.entry(SessionStatus.COMPLETED, 1L),
              Map.entry(SessionStatus.AWAITING_APPROVAL, 1L));
      assertThat(events.countByStatus("beta"))
          .containsOnly(Map.entry(SessionStatus.RUNNABLE, 1L), Map.entry(SessionStatus.COMPLETED, 1L));
      assertThat(events.countByStatus("gamma")).isEmpty();
    }

    @Test
    void sessionsWithWork_findsRunnableRunningAndThoseWithInputs() {
      population();
      assertThat(events.sessionsWithWork(100)).containsExactlyInAnyOrder("a2", "a3", "b2");
      assertThat(events.sessionsWithWork(2)).hasSize(2).isSubsetOf("a2", "a3", "b2");
    }
  }

  // ---- blobs ------------------------------------------------------------------------------------

  @Nested
  class Blobs {

    @Test
    void smallText_staysInline() {
      String text = "é".repeat(Content.INLINE_LIMIT_BYTES / 2);
      assertThat(store.blobs().store(text)).isEqualTo(Content.inline(text));
    }

    @Test
    void largeText_isStoredOnce_andAddressedBySha256() throws Exception {
      String text = "é".repeat(Content.INLINE_LIMIT_BYTES / 2 + 1);
      byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
      String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));

      Content first = store.blobs().store(text);
      Content second = store.blobs().store(text);

      assertThat(first).isInstanceOfSatisfying(Content.Blob.class, b -> {
        assertThat(b.sha256()).isEqualTo(sha);
        assertThat(b.bytes()).isEqualTo(bytes.length);
        assertThat(text).startsWith(b.preview());
        assertThat(b.preview()).isNotEmpty().hasSizeLessThan(text.length());
      });
      assertThat(second).isEqualTo(first);
      assertThat(store.blobs().load(sha)).contains(text);
      assertThat(store.blobs().text(first)).isEqualTo(text);
      assertThat(store.blobs().text(Content.inline("small"))).isEqualTo("small");
    }

    @Test
    void unknownBlob_isEmpty_andResolvingItIsAClearError() {
      String sha = "0".repeat(64);
      assertThat(store.blobs().load(sha)).isEmpty();
      assertThatThrownBy(() -> store.blobs().text(new Content.Blob(sha, 9000, "x")))
          .isInstanceOf(KeelException.Unavailable.class)
          .hasMessageContaining(sha);
    }
  }

  // ---- memory -----------------------------------------------------------------------------------

  @Nested
  class Memory {

    @Test
    void put_thenGet_andOverwrite() {
      MemoryStore m = store.memory();
      m.put("helper", "", "city", "Paris");
      assertThat(m.get("helper", "", "city")).contains(new MemoryStore.Note("city", "Paris", clock.instant()));
      clock.advance(Duration.ofMinutes(5));
      m.put("helper", "", "city", "Lyon");
      assertThat(m.get("helper", "", "city")).contains(new MemoryStore.Note("city", "Lyon", clock.instant()));
      assertThat(m.get("helper", "", "country")).isEmpty();
    }

    @Test
    void notes_areIsolatedByAgentAndScope() {
      MemoryStore m = store.memory();
      m.put("helper", "", "k", "persistent");
      m.put("helper", "s1", "k", "session");
      m.put("other", "", "k", "other agent");
      assertThat(m.get("helper", "", "k")).map(MemoryStore.Note::value).contains("persistent");
      assertThat(m.get("helper", "s1", "k")).map(MemoryStore.Note::value).contains("session");
      assertThat(m.get("other", "", "k")).map(MemoryStore.Note::value).contains("other agent");
      assertThat(m.get("helper", "s2", "k")).isEmpty();
      assertThat(m.search("helper", "", "persistent session other", 10))
          .extracting(MemoryStore.Note::value)
          .containsExactly("persistent");
    }

    @Test
    void search_ranksByWordsMatched_thenMostRecent() {
      MemoryStore m = store.memory();
      m.put("helper", "", "old-coffee", "coffee beans");
      clock.advance(Duration.ofSeconds(1));
      m.put("helper", "", "both", "Coffee in PARIS");
      clock.advance(Duration.ofSeconds(1));
      m.put("helper", "", "new-coffee", "more coffee");
      clock.advance(Duration.ofSeconds(1));
      m.put("helper", "", "paris", "a city");
      m.put("helper", "", "tea", "green tea");

      assertThat(m.search("helper", "", "coffee paris", 10))
          .extracting(MemoryStore.Note::key)
          .containsExactly("both", "paris", "new-coffee", "old-coffee");
      assertThat(m.search("helper", "", "coffee paris", 2)).extracting(MemoryStore.Note::key).containsExactly("both", "paris");
      assertThat(m.search("helper", "", "zebra", 10)).isEmpty();
      assertThat(m.search("helper", "", "  ", 10)).isEmpty();
    }

    @Test
    void search_treatsLikeWildcardsAsText() {
      MemoryStore m = store.memory();
      m.put("helper", "", "a", "100% sure");
      m.put("helper", "", "b", "1000 things");
      m.put("helper", "", "c", "snake_case");
      m.put("helper", "", "d", "snakeXcase");
      assertThat(m.search("helper", "", "snake_case", 10)).extracting(MemoryStore.Note::key).containsExactly("c");
    }

    @Test
    void deleteScope_removesOnlyThatScope() {
      MemoryStore m = store.memory();
      m.put("helper", "s1", "a", "1");
      m.put("helper", "s1", "b", "2");
      m.put("helper", "", "a", "keep");
      m.put("other", "s1", "a", "keep");
      assertThat(m.deleteScope("helper", "s1")).isEqualTo(2);
      assertThat(m.get("helper", "s1", "a")).isEmpty();
      assertThat(m.get("helper", "", "a")).isPresent();
      assertThat(m.get("other", "s1", "a")).isPresent();
      assertThat(m.deleteScope("helper", "s1")).isZero();
    }

    @Test
    void purge_deletesNotesNotUpdatedSince() {
      MemoryStore m = store.memory();
      m.put("helper", "", "old", "1");
      m.put("helper", "", "touched", "1");
      clock.advance(Duration.ofDays(10));
      Instant cutoff = clock.instant();
      m.put("helper", "", "touched", "2");
      m.put("helper", "", "new", "3");
      m.put("other", "", "old", "keep");
      assertThat(m.purge("helper", "", cutoff)).isEqualTo(1);
      assertThat(m.get("helper", "", "old")).isEmpty();
      assertThat(m.get("helper", "", "touched")).isPresent();
      assertThat(m.get("helper", "", "new")).isPresent();
      assertThat(m.get("other", "", "old")).isPresent();
    }
  }

  // ---- inventory --------------------------------------------------------------------------------

  @Nested
  class Inventory {

    private final InventoryStore.Change v1 = new InventoryStore.Change("Agent", "helper", "team-a", "{\"v\":1}");
    private final InventoryStore.Change v2 = new InventoryStore.Change("Agent", "helper", "team-a", "{\"v\":2}");
    private final InventoryStore.Change v3 = new InventoryStore.Change("Agent", "helper", "team-a", "{\"v\":3}");

    /** Widens whenever the new spec's number is higher, so tests control which changes wait. */
    private final InventoryStore.Reviewer byNumber =
        (active, change) ->
            change.spec().compareTo(active.spec()) > 0
                ? new InventoryStore.Review(List.of("v: raised"), List.of())
                : new InventoryStore.Review(List.of(), List.of("v: lowered"));

    private InventoryStore inv() {
      return store.inventory();
    }

    private InventoryStore.Status status(int number) {
      return inv().revision("Agent", "helper", number).orElseThrow().status();
    }

    @Test
    void apply_createsRevisionOne_activeAtOnce() {
      List<InventoryStore.Applied> out = inv().apply(List.of(v1), "op:ann", byNumber);
      InventoryStore.Revision r =
          new InventoryStore.Revision(
              "Agent", "helper", 1, "team-a", "{\"v\":1}", "op:ann", clock.instant(), InventoryStore.Status.ACTIVE,
              InventoryStore.Review.NONE, Optional.empty(), Optional.of(clock.instant()), Optional.empty());
      assertThat(out).containsExactly(new InventoryStore.Applied(r, true, Optional.empty()));
      assertThat(out.getFirst().activated()).isTrue();
      assertThat(inv().latest("Agent", "helper")).contains(r);
      assertThat(inv().revision("Agent", "helper", 1)).contains(r);
      assertThat(inv().pending("Agent", "helper")).isEmpty();
    }

    @Test
    void apply_unchanged_createsNothing() {
      InventoryStore.Revision r1 = inv().apply(List.of(v1), "op:ann").getFirst().revision();
      clock.advance(Duration.ofHours(1));
      assertThat(inv().apply(List.of(v1), "op:bob"))
          .containsExactly(new InventoryStore.Applied(r1, false, Optional.empty()));
      assertThat(inv().history("Agent", "helper")).containsExactly(r1);
    }

    @Test
    void apply_changed_createsTheNextRevision_supersedesTheActiveOne_andKeepsHistory() {
      InventoryStore.Revision r1 = inv().apply(List.of(v1), "op:ann").getFirst().revision();
      clock.advance(Duration.ofHours(1));
      InventoryStore.Applied a2 = inv().apply(List.of(v2), "op:bob").getFirst();
      assertThat(a2.created()).isTrue();
      assertThat(a2.activated()).isTrue();
      assertThat(a2.revision().number()).isEqualTo(2);
      assertThat(a2.revision().appliedBy()).isEqualTo("op:bob");
      InventoryStore.Applied a3 =
          inv().apply(List.of(new InventoryStore.Change("Agent", "helper", "team-b", "{\"v\":2}")), "op:bob").getFirst();
      assertThat(a3.created()).as("a new owner is a change").isTrue();
      assertThat(inv().history("Agent", "helper"))
          .extracting(r -> r.number() + ":" + r.status().wireName())
          .containsExactly("1:superseded", "2:superseded", "3:active");
      InventoryStore.Revision first = inv().history("Agent", "helper").getFirst();
      assertThat(first.spec()).isEqualTo(r1.spec());
      assertThat(first.appliedAt()).isEqualTo(r1.appliedAt());
      assertThat(first.wasActive()).isTrue();
      assertThat(inv().latest("Agent", "helper")).contains(a3.revision());
      assertThat(inv().revision("Agent", "helper", 9)).isEmpty();
    }

    @Test
    void apply_widening_isPending_andTheActiveRevisionStaysInForce() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      clock.advance(Duration.ofMinutes(1));
      InventoryStore.Applied a2 = inv().apply(List.of(v2), "op:ann", byNumber).getFirst();
      assertThat(a2.created()).isTrue();
      assertThat(a2.activated()).isFalse();
      assertThat(a2.revision().status()).isEqualTo(InventoryStore.Status.PENDING);
      assertThat(a2.revision().review().widening()).containsExactly("v: raised");
      assertThat(a2.revision().activatedAt()).isEmpty();
      assertThat(inv().latest("Agent", "helper").orElseThrow().number()).isEqualTo(1);
      assertThat(inv().pending("Agent", "helper")).contains(a2.revision());
      assertThat(inv().pendingOfKind("Agent")).containsExactly(a2.revision());
      assertThat(inv().latestOfKind("Agent")).extracting(InventoryStore.Revision::number).containsExactly(1);
      // applying the same change again creates nothing
      assertThat(inv().apply(List.of(v2), "op:bob", byNumber))
          .containsExactly(new InventoryStore.Applied(a2.revision(), false, Optional.empty()));
    }

    @Test
    void apply_narrowing_isActiveAtOnce_withItsReasons() {
      inv().apply(List.of(v2), "op:ann", byNumber);
      InventoryStore.Applied a2 = inv().apply(List.of(v1), "op:ann", byNumber).getFirst();
      assertThat(a2.activated()).isTrue();
      assertThat(a2.revision().review().narrowing()).containsExactly("v: lowered");
      assertThat(inv().latest("Agent", "helper")).contains(a2.revision());
    }

    @Test
    void approve_activatesThePendingRevision_andSupersedesTheActiveOne() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      clock.advance(Duration.ofMinutes(5));
      InventoryStore.Revision approved = inv().approve("Agent", "helper", 2, "op:bob");
      assertThat(approved.status()).isEqualTo(InventoryStore.Status.ACTIVE);
      assertThat(approved.decision()).contains(new InventoryStore.Decision("op:bob", clock.instant(), ""));
      assertThat(approved.activatedAt()).contains(clock.instant());
      assertThat(inv().latest("Agent", "helper")).contains(approved);
      assertThat(inv().pending("Agent", "helper")).isEmpty();
      assertThat(status(1)).isEqualTo(InventoryStore.Status.SUPERSEDED);
    }

    @Test
    void reject_keepsTheActiveRevision_andRecordsWhoAndWhy() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      InventoryStore.Revision rejected = inv().reject("Agent", "helper", 2, "op:bob", "too expensive");
      assertThat(rejected.status()).isEqualTo(InventoryStore.Status.REJECTED);
      assertThat(rejected.decision()).contains(new InventoryStore.Decision("op:bob", clock.instant(), "too expensive"));
      assertThat(inv().revision("Agent", "helper", 2)).contains(rejected);
      assertThat(inv().latest("Agent", "helper").orElseThrow().number()).isEqualTo(1);
      assertThat(inv().pending("Agent", "helper")).isEmpty();
    }

    @Test
    void decidingARevisionThatIsNotPending_isAConflict_thatNamesWhy() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      inv().reject("Agent", "helper", 2, "op:bob", "no");
      assertThatThrownBy(() -> inv().approve("Agent", "helper", 2, "op:bob"))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("revision 2")
          .hasMessageContaining("rejected by op:bob");
      assertThatThrownBy(() -> inv().approve("Agent", "helper", 1, "op:bob"))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("already active");
      assertThatThrownBy(() -> inv().reject("Agent", "helper", 7, "op:bob", "no"))
          .isInstanceOf(KeelException.NotFound.class)
          .hasMessageContaining("no revision 7");
      assertThat(inv().latest("Agent", "helper").orElseThrow().number()).isEqualTo(1);
    }

    @Test
    void anApplyWhilePending_supersedesThePendingRevision_andIsReviewedAgainstTheActiveOne() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v3), "op:ann", byNumber);
      // v2 is higher than the active v1, so it widens too, and replaces pending v3
      InventoryStore.Applied a3 = inv().apply(List.of(v2), "op:cy", byNumber).getFirst();
      assertThat(a3.revision().number()).isEqualTo(3);
      assertThat(a3.revision().status()).isEqualTo(InventoryStore.Status.PENDING);
      assertThat(a3.superseded()).hasValueSatisfying(s -> {
        assertThat(s.number()).isEqualTo(2);
        assertThat(s.status()).isEqualTo(InventoryStore.Status.SUPERSEDED);
        assertThat(s.decision().orElseThrow().by()).isEqualTo("op:cy");
        assertThat(s.decision().orElseThrow().reason()).contains("superseded by revision 3");
      });
      assertThat(status(2)).isEqualTo(InventoryStore.Status.SUPERSEDED);
      assertThatThrownBy(() -> inv().approve("Agent", "helper", 2, "op:bob")).isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("superseded by revision 3");
      // a narrowing apply while pending: active at once, and the pending one is superseded
      InventoryStore.Applied a4 = inv().apply(List.of(new InventoryStore.Change("Agent", "helper", "team-a", "{\"v\":0}")), "op:cy", byNumber).getFirst();
      assertThat(a4.activated()).isTrue();
      assertThat(a4.superseded()).map(InventoryStore.Revision::number).contains(3);
      assertThat(inv().history("Agent", "helper"))
          .extracting(r -> r.number() + ":" + r.status().wireName())
          .containsExactly("1:superseded", "2:superseded", "3:superseded", "4:active");
    }

    @Test
    void applyingTheActiveDescriptorAgainWhilePending_withdrawsThePendingRevision() {
      InventoryStore.Revision r1 = inv().apply(List.of(v1), "op:ann", byNumber).getFirst().revision();
      inv().apply(List.of(v2), "op:ann", byNumber);
      InventoryStore.Applied again = inv().apply(List.of(v1), "op:ann", byNumber).getFirst();
      assertThat(again.created()).isFalse();
      assertThat(again.revision()).isEqualTo(r1);
      assertThat(again.superseded()).hasValueSatisfying(s -> assertThat(s.decision().orElseThrow().reason()).contains("withdrawn"));
      assertThat(inv().pending("Agent", "helper")).isEmpty();
      assertThat(inv().history("Agent", "helper")).hasSize(2);
    }

    @Test
    void rollback_createsANewRevisionWithTheEarlierDescriptor_reviewedLikeAnApply() {
      inv().apply(List.of(v2), "op:ann", byNumber);
      inv().apply(List.of(v1), "op:ann", byNumber); // narrowing: active at once
      // back to v2 widens: pending
      InventoryStore.Applied back = inv().rollback("Agent", "helper", 1, "op:bob", byNumber);
      assertThat(back.created()).isTrue();
      assertThat(back.revision().number()).isEqualTo(3);
      assertThat(back.revision().spec()).isEqualTo(v2.spec());
      assertThat(back.revision().rollbackOf()).contains(1);
      assertThat(back.revision().status()).isEqualTo(InventoryStore.Status.PENDING);
      assertThat(back.revision().appliedBy()).isEqualTo("op:bob");
      inv().approve("Agent", "helper", 3, "op:ann");
      // back to v1 narrows: active at once
      InventoryStore.Applied down = inv().rollback("Agent", "helper", 2, "op:bob", byNumber);
      assertThat(down.activated()).isTrue();
      assertThat(down.revision().rollbackOf()).contains(2);
      assertThat(inv().latest("Agent", "helper").orElseThrow().spec()).isEqualTo(v1.spec());
      // to the active descriptor: nothing to do
      assertThat(inv().rollback("Agent", "helper", 2, "op:bob", byNumber).created()).isFalse();
    }

    @Test
    void rollback_toARevisionThatWasNeverActive_orDoesNotExist_isRefused() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      inv().reject("Agent", "helper", 2, "op:bob", "no");
      assertThatThrownBy(() -> inv().rollback("Agent", "helper", 2, "op:ann", byNumber))
          .isInstanceOf(KeelException.Conflict.class)
          .hasMessageContaining("was never active");
      assertThatThrownBy(() -> inv().rollback("Agent", "helper", 5, "op:ann", byNumber))
          .isInstanceOf(KeelException.NotFound.class);
      assertThat(inv().history("Agent", "helper")).hasSize(2);
    }

    @Test
    void aFailingReview_storesNothing() {
      inv().apply(List.of(v1), "op:ann");
      InventoryStore.Change other = new InventoryStore.Change("Policy", "p", "t", "{}");
      assertThatThrownBy(() -> inv().apply(List.of(other, v2), "op:ann", (a, c) -> {
        throw new KeelException.Invalid("cannot review");
      })).isInstanceOf(KeelException.Invalid.class);
      assertThat(inv().latest("Policy", "p")).isEmpty();
      assertThat(inv().history("Agent", "helper")).hasSize(1);
    }

    @Test
    void concurrentDecisions_onlyOneWins() throws Exception {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      ExecutorService pool = Executors.newFixedThreadPool(8);
      try {
        CyclicBarrier start = new CyclicBarrier(8);
        List<Future<Boolean>> tries = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
          int n = i;
          tries.add(pool.submit(() -> {
            start.await();
            try {
              if (n % 2 == 0) {
                inv().approve("Agent", "helper", 2, "op:x" + n);
              } else {
                inv().reject("Agent", "helper", 2, "op:x" + n, "no");
              }
              return true;
            } catch (KeelException.Conflict c) {
              return false;
            }
          }));
        }
        int won = 0;
        for (Future<Boolean> f : tries) {
          won += f.get(30, TimeUnit.SECONDS) ? 1 : 0;
        }
        assertThat(won).isEqualTo(1);
      } finally {
        pool.shutdownNow();
      }
      assertThat(inv().history("Agent", "helper"))
          .filteredOn(r -> r.status() == InventoryStore.Status.ACTIVE)
          .hasSize(1);
    }

    @Test
    void latestOfKind_givesEachNamesActiveRevision_byName() {
      inv()
          .apply(
              List.of(
                  new InventoryStore.Change("Agent", "zeta", "t", "{}"),
                  v1,
                  new InventoryStore.Change("Policy", "helper", "t", "{}")),
              "op:ann");
      inv().apply(List.of(v2), "op:ann");
      inv().apply(List.of(v3), "op:ann", byNumber);
      assertThat(inv().latestOfKind("Agent"))
          .extracting(r -> r.name() + "@" + r.number())
          .containsExactly("helper@2", "zeta@1");
      assertThat(inv().pendingOfKind("Agent"))
          .extracting(r -> r.name() + "@" + r.number())
          .containsExactly("helper@3");
      assertThat(inv().latestOfKind("McpServer")).isEmpty();
    }

    @Test
    void apply_ofManyChanges_givesOneResultEach_inOrder() {
      inv().apply(List.of(v1), "op:ann");
      InventoryStore.Change other = new InventoryStore.Change("Policy", "p", "t", "{}");
      List<InventoryStore.Applied> out = inv().apply(List.of(v1, other, v2), "op:ann");
      assertThat(out).extracting(a -> a.revision().kind() + "/" + a.revision().name() + "@" + a.revision().number() + ":" + a.created())
          .containsExactly("Agent/helper@1:false", "Policy/p@1:true", "Agent/helper@2:true");
    }

    @Test
    void apply_isAllOrNothing() {
      InventoryStore.Change other = new InventoryStore.Change("Policy", "p", "t", "{}");
      assertThatThrownBy(() -> inv().apply(Arrays.asList(v1, other, null), "op:ann"))
          .isInstanceOf(NullPointerException.class);
      assertThat(inv().latest("Agent", "helper")).isEmpty();
      assertThat(inv().latest("Policy", "p")).isEmpty();
    }

    @Test
    void statuses_andDecisions_surviveARestart() {
      inv().apply(List.of(v1), "op:ann", byNumber);
      inv().apply(List.of(v2), "op:ann", byNumber);
      inv().reject("Agent", "helper", 2, "op:bob", "not now");
      inv().apply(List.of(v3), "op:ann", byNumber);
      List<InventoryStore.Revision> before = inv().history("Agent", "helper");
      restart();
      assertThat(inv().history("Agent", "helper")).isEqualTo(before);
      assertThat(inv().pending("Agent", "helper")).map(InventoryStore.Revision::number).contains(3);
    }
  }

  // ---- deliveries to other sessions' inboxes ----------------------------------------------------

  @Nested
  class Deliveries {

    private Append delivering(String sessionId, long expectedSeq, SessionStatus status, List<Input> deliveries, SessionEvent... es) {
      return new Append(
          sessionId, expectedSeq, Arrays.stream(es).map(EventStoreContract::pe).toList(), status, List.of(),
          Optional.empty(), deliveries, List.of(), List.of());
    }

    @Test
    void append_withADelivery_putsTheInputInTheOtherInbox_inTheSameTransaction() {
      createRunning("child", "helper");
      create("parent", "planner");
      Input result = new Input("parent", "sub-child", "subagent_result", "{\"ok\":true}", "agent:helper", clock.instant());
      events.append(delivering("child", 3, SessionStatus.COMPLETED, List.of(result),
          answer(1, "done"), new SessionEvent.SessionCompleted("done")));
      assertThat(events.pendingInputs("parent")).containsExactly(result);
      assertThat(record("parent").pendingInputs()).isEqualTo(1);
      assertThat(events.sessionsWithWork(100)).contains("parent");
    }

    @Test
    void aDeliveryWhoseAppendFails_isNotDelivered() {
      createRunning("child", "helper");
      create("parent", "planner");
      Input result = new Input("parent", "sub-child", "subagent_result", "{}", "agent:helper", clock.instant());
      assertThatThrownBy(() -> events.append(delivering("child", 1, SessionStatus.COMPLETED, List.of(result),
          new SessionEvent.SessionCompleted("done"))))
          .isInstanceOf(KeelException.Conflict.class);
      assertThat(events.pendingInputs("parent")).isEmpty();
    }

    @Test
    void theSameDeliveryTwice_isStoredOnce() {
      createRunning("child", "helper");
      create("parent", "planner");
      Input result = new Input("parent", "sub-child", "subagent_result", "{}", "agent:helper", clock.instant());
      events.append(delivering("child", 3, SessionStatus.RUNNING, List.of(result), answer(1, "x")));
      events.append(delivering("child", 4, SessionStatus.RUNNING, List.of(result), answer(1, "y")));
      assertThat(events.pendingInputs("parent")).hasSize(1);
      assertThat(record("parent").pendingInputs()).isEqualTo(1);
    }

    @Test
    void aDeliveryToAnEndedOrUnknownSession_isDropped_andTheAppendSucceeds() {
      createRunning("child", "helper");
      create("parent", "planner");
      events.append(append("parent", 1, SessionStatus.CANCELLED, new SessionEvent.SessionCancelled("op:bob", "enough")));
      Input toEnded = new Input("parent", "sub-child", "subagent_result", "{}", "agent:helper", clock.instant());
      Input toNobody = new Input("ghost", "sub-child", "subagent_result", "{}", "agent:helper", clock.instant());
      assertThat(events.append(delivering("child", 3, SessionStatus.COMPLETED, List.of(toEnded, toNobody),
          new SessionEvent.SessionFailed("boom", "it broke", false)))).isEqualTo(4);
      assertThat(events.pendingInputs("parent")).isEmpty();
      assertThat(events.session("ghost")).isEmpty();
    }

    @Test
    void aDeliveryToTheAppendingSessionItself_isRefused() {
      Input self = new Input("s1", "x", "message", "hi", "user:ann", clock.instant());
      assertThatThrownBy(() -> delivering("s1", 1, SessionStatus.IDLE, List.of(self), received("x", "hi")))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("for the session itself");
    }
  }

  // ---- durability -------------------------------------------------------------------------------

  @Nested
  class Durability {

    @Test
    void everything_survivesARestart() {
      createRunning("s1", "helper");
      events.enqueue(input("s1", "in-2", "later"));
      SessionState state = SessionState.fold(all("s1"));
      state.apply(new StoredEvent("s1", 4, clock.instant(), NODE, TRACE, SPAN, answer(1, "hello")));
      events.append(withSnapshot("s1", 3, SessionStatus.IDLE, state.snapshot(), answer(1, "hello")));
      String big = "y".repeat(50_000);
      Content blob = store.blobs().store(big);
      store.memory().put("helper", "", "k", "v");
      store.inventory().apply(List.of(new InventoryStore.Change("Agent", "helper", "t", "{}")), "op:ann");
      List<StoredEvent> log = all("s1");
      SessionRecord rec = record("s1");

      restart();

      assertThat(all("s1")).isEqualTo(log);
      assertThat(record("s1")).isEqualTo(rec);
      assertThat(events.snapshot("s1")).contains(state.snapshot());
      assertThat(events.pendingInputs("s1")).extracting(Input::inputId).containsExactly("in-2");
      assertThat(store.blobs().text(blob)).isEqualTo(big);
      assertThat(store.memory().get("helper", "", "k")).map(MemoryStore.Note::value).contains("v");
      assertThat(store.inventory().latest("Agent", "helper")).isPresent();
      assertThat(events.sessionsWithWork(10)).containsExactly("s1");

      // the log goes on where it stopped, and a stale writer is still fenced
      assertThat(events.append(consuming("s1", 4, SessionStatus.RUNNABLE, List.of("in-2"), received("in-2", "later"))))
          .isEqualTo(5);
      assertThatThrownBy(() -> events.append(append("s1", 4, SessionStatus.RUNNING, modelCalled(2))))
          .isInstanceOf(KeelException.Conflict.class);
    }

    @Test
    void closedStore_refusesWrites_clearly_andLosesNothing() {
      create("s1", "helper");
      store.close();
      assertThatThrownBy(() -> events.append(append("s1", 1, SessionStatus.RUNNABLE, received("in-1", "hi"))))
          .isInstanceOf(KeelException.Unavailable.class)
          .hasMessageContaining("closed");
      assertThatThrownBy(() -> events.enqueue(input("s1", "in-1", "hi")))
          .isInstanceOf(KeelException.Unavailable.class);
      assertThatThrownBy(() -> events.session("s1")).isInstanceOf(KeelException.Unavailable.class);
      assertThat(store.healthy()).isFalse();

      store = reopenStore(NODE, clock);
      events = store.events();
      assertThat(store.healthy()).isTrue();
      assertThat(all("s1")).hasSize(1);
      assertThat(events.pendingInputs("s1")).isEmpty();
    }
  }

  // ---- concurrency ------------------------------------------------------------------------------

  @Nested
  class Concurrency {

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void manyThreads_appendingToManySessions_allSucceed_withGaplessLogs() throws Exception {
      int threads = 32;
      int sessionsPerThread = 8;
      int appendsPerSession = 40;
      CyclicBarrier start = new CyclicBarrier(threads);
      try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          int thread = t;
          futures.add(
              pool.submit(
                  () -> {
                    start.await();
                    List<String> mine =
                        IntStream.range(0, sessionsPerThread).mapToObj(i -> "t" + thread + "-s" + i).toList();
                    for (String id : mine) {
                      events.create(newSession(id, "agent-" + (thread % 3), Optional.empty()));
                    }
                    for (int n = 0; n < appendsPerSession; n++) {
                      for (String id : mine) {
                        long last =
                            events.append(
                                append(id, 1 + 2L * n, SessionStatus.RUNNABLE, received("in-" + n, "m"), modelCalled(n)));
                        assertThat(last).isEqualTo(3 + 2L * n);
                      }
                    }
                    return null;
                  }));
        }
        for (Future<?> f : futures) {
          f.get();
        }
      }
      long expectedLast = 1 + 2L * appendsPerSession;
      for (int t = 0; t < threads; t++) {
        for (int i = 0; i < sessionsPerThread; i++) {
          String id = "t" + t + "-s" + i;
          assertThat(all(id)).extracting(StoredEvent::seq)
              .containsExactlyElementsOf(IntStream.rangeClosed(1, (int) expectedLast).mapToObj(Long::valueOf).toList());
          assertThat(record(id).lastSeq()).isEqualTo(expectedLast);
        }
      }
      assertThat(events.countByStatus("").values().stream().mapToLong(Long::longValue).sum())
          .isEqualTo((long) threads * sessionsPerThread);
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void racingWriters_onOneSession_exactlyOneWinsEachRound() throws Exception {
      int writers = 16;
      int rounds = 40;
      create("s1", "helper");
      try (ExecutorService pool = Executors.newFixedThreadPool(writers)) {
        for (int round = 0; round < rounds; round++) {
          long expected = 1 + round;
          CyclicBarrier go = new CyclicBarrier(writers);
          List<Future<String>> attempts = new ArrayList<>();
          for (int w = 0; w < writers; w++) {
            String writer = "w" + w;
            attempts.add(
                pool.submit(
                    () -> {
                      go.await();
                      try {
                        events.append(append("s1", expected, SessionStatus.RUNNABLE, received(writer, writer)));
                        return "won";
                      } catch (KeelException.Conflict e) {
                        return "conflict";
                      }
                    }));
          }
          List<String> outcomes = new ArrayList<>();
          for (Future<String> f : attempts) {
            outcomes.add(f.get());
          }
          assertThat(outcomes).as("round %d", round).containsOnlyOnce("won");
          assertThat(outcomes).filteredOn("conflict"::equals).hasSize(writers - 1);
        }
      }
      List<StoredEvent> log = all("s1");
      assertThat(log).extracting(StoredEvent::seq)
          .containsExactlyElementsOf(IntStream.rangeClosed(1, rounds + 1).mapToObj(Long::valueOf).toList());
      assertThat(record("s1").lastSeq()).isEqualTo(rounds + 1);
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void concurrentEnqueues_ofTheSameInput_storeItOnce() throws Exception {
      create("s1", "helper");
      int threads = 16;
      CyclicBarrier go = new CyclicBarrier(threads);
      try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
        List<Future<Input>> results = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          int n = t;
          results.add(
              pool.submit(
                  () -> {
                    go.await();
                    events.enqueue(input("s1", "mine-" + n, "own"));
                    return events.enqueue(new Input("s1", "shared", "message", "from " + n, "user:" + n, clock.instant()));
                  }));
        }
        List<Input> answers = new ArrayList<>();
        for (Future<Input> f : results) {
          answers.add(f.get());
        }
        assertThat(answers).allSatisfy(a -> assertThat(a).isEqualTo(answers.getFirst()));
      }
      assertThat(events.pendingInputs("s1")).filteredOn(i -> i.inputId().equals("shared")).hasSize(1);
      assertThat(events.pendingInputs("s1")).hasSize(threads + 1);
      assertThat(record("s1").pendingInputs()).isEqualTo(threads + 1);
    }
  }
}
