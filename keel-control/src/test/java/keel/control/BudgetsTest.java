package keel.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.AgentDescriptor;
import keel.core.BudgetKind;
import keel.data.MutableClock;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The budget decisions the step executor asks for, on a real SQLite store. */
class BudgetsTest {

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(Instant.parse("2026-05-04T09:30:00Z"));
  final Map<String, AgentDescriptor.Budgets> limits = new ConcurrentHashMap<>();
  final AtomicInteger ids = new AtomicInteger();
  Store store;
  Budgets budgets;

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "n", clock, false);
    budgets = new Budgets(store.budgets(), a -> Optional.ofNullable(limits.get(a)), clock, () -> "r" + ids.incrementAndGet(),
        Budgets.DEFAULT_RESERVATION_TTL);
  }

  @AfterEach
  void close() {
    store.close();
  }

  static AgentDescriptor.Budgets limits(Integer calls, String usd, Long tokens, Integer toolCalls) {
    return new AgentDescriptor.Budgets(Optional.ofNullable(calls), Optional.ofNullable(usd).map(BigDecimal::new),
        Optional.ofNullable(tokens), Optional.ofNullable(toolCalls));
  }

  @Test
  void anAgentWithoutBudgets_isAllowed_withoutAReservation() {
    Budgets.Decision d = budgets.beforeModelCall("free", "s1", new BigDecimal("5"), 1000);

    assertThat(d).isInstanceOfSatisfying(Budgets.Decision.Allowed.class, a -> {
      assertThat(a.reservation().id()).isEmpty();
      assertThat(a.warnings()).isEmpty();
    });
    assertThat(budgets.status("free")).isEmpty();
  }

  @Test
  void modelCalls_areRefusedOnceCallsPerHourIsReached_untilTheHourEnds() {
    limits.put("a", limits(2, null, null, null));
    budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 10);
    budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 10);

    Budgets.Decision d = budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 10);

    assertThat(d).isInstanceOfSatisfying(Budgets.Decision.Blocked.class, b -> {
      assertThat(b.kind()).isEqualTo(BudgetKind.CALLS_PER_HOUR);
      assertThat(b.limit()).isEqualByComparingTo("2");
      assertThat(b.reserved()).isEqualByComparingTo("2");
      assertThat(b.requested()).isEqualByComparingTo("1");
      assertThat(b.windowEnd()).isEqualTo(Instant.parse("2026-05-04T10:00:00Z"));
      // two calls hold reservations that may settle lower: look again soon
      assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
          .isEqualTo(new Budgets.Recheck.Wait(Instant.parse("2026-05-04T10:00:00Z"), true));
      clock.advance(Duration.ofMinutes(30));
      assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
          .isInstanceOfSatisfying(Budgets.Recheck.GoOn.class, g -> assertThat(g.reason()).startsWith("window_ended"));
    });
    assertThat(budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 10)).isInstanceOf(Budgets.Decision.Allowed.class);
  }

  @Test
  void settlement_chargesWhatWasSpent_andStatusShowsIt() {
    limits.put("a", limits(null, "1.00", 100_000L, null));
    Budgets.Decision.Allowed a = (Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", new BigDecimal("0.10"), 4000);
    assertThat(budgets.status("a")).extracting(s -> s.kind().wireName() + " " + s.reserved().toPlainString())
        .containsExactly("usd_per_day 0.1000000000", "tokens_per_day 4000");

    budgets.settle(a.reservation(), Map.of(BudgetKind.USD_PER_DAY, new BigDecimal("0.0375"), BudgetKind.TOKENS_PER_DAY,
        BigDecimal.valueOf(2500), BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE));

    assertThat(budgets.status("a")).extracting(s -> s.kind().wireName() + " " + s.used().stripTrailingZeros().toPlainString()
            + "/" + s.limit().toPlainString() + " " + s.percent().toPlainString() + "% until " + s.windowEnd())
        .containsExactly("usd_per_day 0.0375/1.00 3.75% until 2026-05-05T00:00:00Z",
            "tokens_per_day 2500/100000 2.50% until 2026-05-05T00:00:00Z");
  }

  @Test
  void aReservationAt80PercentOrMore_warns() {
    limits.put("a", limits(10, null, null, null));
    for (int i = 0; i < 7; i++) {
      assertThat(((Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 1)).warnings()).isEmpty();
    }

    Budgets.Decision.Allowed eighth = (Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 1);

    assertThat(eighth.warnings()).singleElement().satisfies(w -> {
      assertThat(w.kind()).isEqualTo(BudgetKind.CALLS_PER_HOUR);
      assertThat(w.used()).isEqualByComparingTo("8");
      assertThat(w.limit()).isEqualByComparingTo("10");
    });
  }

  @Test
  void toolCalls_countAgainstToolCallsPerHour_andTheirPriceAgainstUsdPerDay() {
    limits.put("a", limits(null, "0.10", null, 5));

    assertThat(budgets.beforeToolCall("a", "s1", BigDecimal.ZERO)).isInstanceOf(Budgets.Decision.Allowed.class);
    assertThat(budgets.beforeToolCall("a", "s1", new BigDecimal("0.06"))).isInstanceOf(Budgets.Decision.Allowed.class);
    Budgets.Decision priced = budgets.beforeToolCall("a", "s1", new BigDecimal("0.06"));

    assertThat(priced).isInstanceOfSatisfying(Budgets.Decision.Blocked.class, b -> assertThat(b.kind()).isEqualTo(BudgetKind.USD_PER_DAY));
    assertThat(budgets.beforeToolCall("a", "s1", BigDecimal.ZERO)).isInstanceOf(Budgets.Decision.Allowed.class);
  }

  @Test
  void aRaisedLimit_appliesAtTheNextCall_andUnblocksOnlyWhenTheCallFits() {
    limits.put("a", limits(null, "1", null, null));
    Budgets.Decision.Allowed spent = (Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", new BigDecimal("0.9"), 1);
    budgets.settle(spent.reservation(), Map.of(BudgetKind.USD_PER_DAY, new BigDecimal("0.9")));
    Budgets.Decision.Blocked b = (Budgets.Decision.Blocked) budgets.beforeModelCall("a", "s1", new BigDecimal("0.5"), 1);
    assertThat(b.used()).isEqualByComparingTo("0.9");

    limits.put("a", limits(null, "1.2", null, null));
    // nothing is in flight, so nothing can free room: wait for the day to end
    assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
        .isEqualTo(new Budgets.Recheck.Wait(Instant.parse("2026-05-05T00:00:00Z"), false));

    limits.put("a", limits(null, "1.4", null, null));
    assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
        .isEqualTo(new Budgets.Recheck.GoOn("limit_raised: usd_per_day is now 1.4 (was 1)"));
    assertThat(budgets.beforeModelCall("a", "s1", new BigDecimal("0.5"), 1)).isInstanceOf(Budgets.Decision.Allowed.class);

    limits.put("a", limits(7, null, null, null));
    assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
        .isInstanceOfSatisfying(Budgets.Recheck.GoOn.class, g -> assertThat(g.reason()).startsWith("limit_removed"));
  }

  @Test
  void aCallRefusedBecauseOfReservations_goesOnWhenTheyEndBelowTheirEstimates() {
    limits.put("a", limits(null, "1", null, null));
    Budgets.Decision.Allowed inFlight = (Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", new BigDecimal("0.8"), 1);
    Budgets.Decision.Blocked b = (Budgets.Decision.Blocked) budgets.beforeModelCall("a", "s2", new BigDecimal("0.3"), 1);
    assertThat(b.reserved()).isEqualByComparingTo("0.8");

    budgets.settle(inFlight.reservation(), Map.of(BudgetKind.USD_PER_DAY, new BigDecimal("0.1")));

    assertThat(budgets.recheck("a", b.kind(), b.limit(), b.requested(), b.windowEnd()))
        .isEqualTo(new Budgets.Recheck.GoOn("room_freed: calls in flight settled below their reservations; usd_per_day has 0.9000000000 of 1 left"));
  }

  @Test
  void aModelCallIsEstimated_onlyWhenTheAgentLimitsDollarsOrTokens() {
    limits.put("calls", limits(5, null, null, null));
    limits.put("dollars", limits(null, "1", null, null));
    AtomicInteger estimates = new AtomicInteger();
    java.util.function.Supplier<Budgets.Estimate> estimate = () -> {
      estimates.incrementAndGet();
      return new Budgets.Estimate(new BigDecimal("0.01"), 100);
    };

    budgets.beforeModelCall("free", "s1", estimate);
    budgets.beforeModelCall("calls", "s1", estimate);
    assertThat(estimates.get()).isZero();

    budgets.beforeModelCall("dollars", "s1", estimate);
    assertThat(estimates.get()).isEqualTo(1);
    assertThat(budgets.status("dollars").getFirst().reserved()).isEqualByComparingTo("0.01");
  }

  @Test
  void release_returnsTheReservation() {
    limits.put("a", limits(1, null, null, null));
    Budgets.Decision.Allowed a = (Budgets.Decision.Allowed) budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 1);
    assertThat(budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 1)).isInstanceOf(Budgets.Decision.Blocked.class);

    budgets.release(a.reservation());

    assertThat(budgets.beforeModelCall("a", "s1", BigDecimal.ZERO, 1)).isInstanceOf(Budgets.Decision.Allowed.class);
  }
}
