package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The contract of the cost ledger on every store: entries are attributed from the session's row and
 * stamped with the append's time, and totals group and filter exactly (sums of decimals, no
 * rounding). A subclass says how to open a fresh store.
 */
public abstract class CostLedgerContract {

  protected static final Instant START = Instant.parse("2026-03-02T23:59:00Z");
  protected static final String SPAN = "00f067aa0ba902b7";

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;

  protected abstract Store openStore(Clock clock);

  @BeforeEach
  final void openTheStore() {
    store = openStore(clock);
  }

  @AfterEach
  final void closeTheStore() {
    store.close();
  }

  private final java.util.Map<String, Long> seqs = new java.util.HashMap<>();

  /** Creates a session of {@code agent} owned by {@code owner}, under root {@code root}. */
  protected void session(String id, String agent, String owner, String root) {
    store.events().create(new NewSession(id, agent, 1, owner, "4bf92f3577b34da6a3ce929d0e0e4736",
        root.equals(id) ? Optional.empty() : Optional.of(root), root,
        List.of(new PendingEvent(new SessionEvent.SessionStarted(agent, 1, owner, "user:ann", false), SPAN)),
        SessionStatus.IDLE, Optional.empty()));
    seqs.put(id, 1L);
  }

  /** Appends one event to a session with the given costs, all naming that event. */
  protected void spend(String session, Cost... costs) {
    long seq = seqs.get(session);
    List<Cost> named = java.util.Arrays.stream(costs)
        .map(c -> new Cost(seq + 1, c.kind(), c.quantity(), c.usd(), c.detail())).toList();
    store.events().append(new Append(session, seq,
        List.of(new PendingEvent(new SessionEvent.InputRejected("in" + seq, "test"), SPAN)),
        SessionStatus.IDLE, List.of(), Optional.empty(), List.of(), named, List.of()));
    seqs.put(session, seq + 1);
  }

  protected static Cost cost(CostKind kind, long quantity, String usd) {
    return new Cost(0, kind, quantity, new BigDecimal(usd), "detail");
  }

  protected CostLedger.Query all(Set<CostLedger.Dimension> by) {
    return new CostLedger.Query(Instant.EPOCH, Instant.parse("2100-01-01T00:00:00Z"), by, Optional.empty(), Optional.empty());
  }

  @Test
  void entries_areAttributedFromTheSession_andStampedWithTheAppendsTime() {
    session("root", "planner", "team-a", "root");
    session("child", "worker", "team-b", "root");
    clock.advance(Duration.ofSeconds(5));

    spend("child", cost(CostKind.MODEL_OUTPUT, 120, "0.0012"), cost(CostKind.COMPUTE_STEP, 7, "0.00000007"));

    List<CostLedger.Entry> entries = store.ledger().entries("child");
    assertThat(entries).hasSize(2);
    CostLedger.Entry e = entries.getFirst();
    assertThat(e.agent()).isEqualTo("worker");
    assertThat(e.owner()).isEqualTo("team-b");
    assertThat(e.rootSessionId()).isEqualTo("root");
    assertThat(e.seq()).isEqualTo(2);
    assertThat(e.at()).isEqualTo(START.plusSeconds(5));
    assertThat(e.kind()).isEqualTo(CostKind.MODEL_OUTPUT);
    assertThat(e.quantity()).isEqualTo(120);
    assertThat(e.usd()).isEqualByComparingTo("0.0012");
    assertThat(store.events().events("child", 0, 10).getLast().at()).isEqualTo(e.at());
  }

  @Test
  void aCostNamingAnEventOutsideItsAppend_isRefusedBeforeAnythingIsWritten() {
    session("s", "a", "o", "s");

    assertThatThrownBy(() -> new Append("s", 1,
        List.of(new PendingEvent(new SessionEvent.InputRejected("x", "t"), SPAN)), SessionStatus.IDLE, List.of(),
        Optional.empty(), List.of(), List.of(new Cost(3, CostKind.MODEL_INPUT, 1, BigDecimal.ONE, "")), List.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("event 3");
    assertThatThrownBy(() -> new Cost(2, CostKind.MODEL_INPUT, 1, new BigDecimal("0.00000000001"), ""))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("10 decimal places");
  }

  @Test
  void totals_groupByEveryDimension_andSumExactly() {
    session("s1", "a", "team-a", "s1");
    session("s2", "b", "team-b", "s2");
    spend("s1", cost(CostKind.MODEL_INPUT, 1000, "0.0025000000"), cost(CostKind.MODEL_OUTPUT, 10, "0.0001000000"));
    spend("s2", cost(CostKind.MODEL_INPUT, 3, "0.0000000003"));
    clock.advance(Duration.ofMinutes(2)); // the next UTC day
    spend("s1", cost(CostKind.EXTERNAL_ACTION, 1, "0.05"), cost(CostKind.MODEL_INPUT, 1, "0.0000000001"));

    List<CostLedger.Row> total = store.ledger().totals(all(Set.of()), o -> true);
    assertThat(total).singleElement().satisfies(r -> {
      assertThat(r.usd()).isEqualTo(new BigDecimal("0.0526000004"));
      assertThat(r.entries()).isEqualTo(5);
      assertThat(r.group()).isEmpty();
    });

    List<CostLedger.Row> byAgentKind = store.ledger().totals(all(EnumSet.of(CostLedger.Dimension.AGENT, CostLedger.Dimension.KIND)), o -> true);
    assertThat(byAgentKind).extracting(r -> r.group().get(CostLedger.Dimension.AGENT) + "/" + r.group().get(CostLedger.Dimension.KIND)
            + "=" + r.quantity() + ":" + r.usd().toPlainString())
        .containsExactly("a/external_action=1:0.0500000000", "a/model_input=1001:0.0025000001",
            "a/model_output=10:0.0001000000", "b/model_input=3:0.0000000003");

    List<CostLedger.Row> byDay = store.ledger().totals(all(EnumSet.of(CostLedger.Dimension.DAY)), o -> true);
    assertThat(byDay).extracting(r -> r.group().get(CostLedger.Dimension.DAY) + "=" + r.usd().toPlainString())
        .containsExactly("2026-03-02=0.0026000003", "2026-03-03=0.0500000001");
  }

  @Test
  void totals_filterByRangeAgentOwner_andTheCallersVisibleOwners() {
    session("s1", "a", "team-a", "s1");
    session("s2", "b", "team-b", "s2");
    spend("s1", cost(CostKind.MODEL_INPUT, 1, "1"));
    spend("s2", cost(CostKind.MODEL_INPUT, 1, "2"));
    clock.advance(Duration.ofHours(1));
    spend("s1", cost(CostKind.MODEL_INPUT, 1, "4"));

    CostLedger ledger = store.ledger();
    assertThat(ledger.totals(new CostLedger.Query(START, START.plusSeconds(60), Set.of(), Optional.empty(), Optional.empty()), o -> true))
        .singleElement().satisfies(r -> assertThat(r.usd()).isEqualByComparingTo("3"));
    assertThat(ledger.totals(new CostLedger.Query(Instant.EPOCH, START.plus(Duration.ofDays(1)), Set.of(), Optional.of("a"), Optional.empty()), o -> true))
        .singleElement().satisfies(r -> assertThat(r.usd()).isEqualByComparingTo("5"));
    assertThat(ledger.totals(new CostLedger.Query(Instant.EPOCH, START.plus(Duration.ofDays(1)), Set.of(), Optional.empty(), Optional.of("team-b")), o -> true))
        .singleElement().satisfies(r -> assertThat(r.usd()).isEqualByComparingTo("2"));
    assertThat(ledger.totals(all(Set.of(CostLedger.Dimension.OWNER)), o -> o.equals("team-a")))
        .singleElement().satisfies(r -> {
          assertThat(r.group()).isEqualTo(Map.of(CostLedger.Dimension.OWNER, "team-a"));
          assertThat(r.usd()).isEqualByComparingTo("5");
        });
    assertThat(ledger.totals(all(Set.of()), o -> false)).isEmpty();
  }
}
