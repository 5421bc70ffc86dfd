package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import keel.core.BudgetKind;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link BudgetStore} passes, whatever database is underneath: reservations are
 * all-or-nothing and never let used + reserved exceed a limit, settlements replace holds with what
 * was spent, holds expire, windows roll over, and many threads reserving at once cannot overspend.
 * A subclass says how to open a fresh store and the same one again after a restart.
 */
public abstract class BudgetStoreContract {

  protected static final Instant START = Instant.parse("2026-03-02T10:15:00Z");
  protected static final Duration TTL = Duration.ofMinutes(10);

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  protected BudgetStore budgets;
  private final AtomicInteger ids = new AtomicInteger();

  /** Opens a new, empty store reading time from {@code clock}. */
  protected abstract Store openStore(Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed. */
  protected abstract Store reopenStore(Clock clock);

  @BeforeEach
  final void openTheStore() {
    store = openStore(clock);
    budgets = store.budgets();
  }

  @AfterEach
  final void closeTheStore() {
    if (store != null) {
      store.close();
    }
  }

  // ---- helpers

  protected static BigDecimal usd(String s) {
    return new BigDecimal(s);
  }

  protected static BudgetStore.Claim claim(BudgetKind kind, String limit, String amount) {
    return new BudgetStore.Claim(kind, new BigDecimal(limit), new BigDecimal(amount));
  }

  protected BudgetStore.Outcome reserve(String agent, BudgetStore.Claim... claims) {
    return budgets.reserve(
        new BudgetStore.Request("r" + ids.incrementAndGet(), agent, "s1", clock.instant(), TTL, List.of(claims)));
  }

  protected BudgetStore.Outcome.Granted granted(String agent, BudgetStore.Claim... claims) {
    BudgetStore.Outcome o = reserve(agent, claims);
    assertThat(o).isInstanceOf(BudgetStore.Outcome.Granted.class);
    return (BudgetStore.Outcome.Granted) o;
  }

  protected BudgetStore.Level level(String agent, BudgetKind kind) {
    return budgets.levels(agent, clock.instant()).stream().filter(l -> l.kind() == kind).findFirst().orElseThrow();
  }

  protected static BudgetStore.Settlement settlement(BudgetStore.Outcome.Granted g, String agent, Map<BudgetKind, BigDecimal> spent) {
    return new BudgetStore.Settlement(g.id(), agent, g.at(), spent);
  }

  // ---- reserving

  @Test
  void reserve_withinTheLimit_isGrantedAndCountsAsReserved() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1.00", "0.25"));

    assertThat(g.levels()).singleElement().satisfies(l -> {
      assertThat(l.kind()).isEqualTo(BudgetKind.USD_PER_DAY);
      assertThat(l.used()).isEqualByComparingTo("0");
      assertThat(l.reserved()).isEqualByComparingTo("0.25");
      assertThat(l.windowStart()).isEqualTo(Instant.parse("2026-03-02T00:00:00Z"));
      assertThat(l.windowEnd()).isEqualTo(Instant.parse("2026-03-03T00:00:00Z"));
    });
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0.25");
  }

  @Test
  void reserve_upToExactlyTheLimit_isGranted_andOneUnitMoreIsRefused() {
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "3", "1"));
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "3", "1"));
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "3", "1"));

    BudgetStore.Outcome o = reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "3", "1"));

    assertThat(o).isInstanceOfSatisfying(BudgetStore.Outcome.Refused.class, r -> {
      assertThat(r.claim().kind()).isEqualTo(BudgetKind.CALLS_PER_HOUR);
      assertThat(r.level().used()).isEqualByComparingTo("0");
      assertThat(r.level().reserved()).isEqualByComparingTo("3");
      assertThat(r.level().windowEnd()).isEqualTo(Instant.parse("2026-03-02T11:00:00Z"));
    });
  }

  @Test
  void reserve_whenOneClaimWouldExceed_holdsNothingForTheOthers() {
    granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.90"));

    BudgetStore.Outcome o =
        reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "100", "1"), claim(BudgetKind.USD_PER_DAY, "1", "0.20"),
            claim(BudgetKind.TOKENS_PER_DAY, "1000000", "500"));

    assertThat(o).isInstanceOfSatisfying(BudgetStore.Outcome.Refused.class,
        r -> assertThat(r.claim().kind()).isEqualTo(BudgetKind.USD_PER_DAY));
    assertThat(level("a", BudgetKind.CALLS_PER_HOUR).reserved()).isEqualByComparingTo("0");
    assertThat(level("a", BudgetKind.TOKENS_PER_DAY).reserved()).isEqualByComparingTo("0");
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0.90");
  }

  @Test
  void reserve_countsOnlyTheSameAgent() {
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"));

    assertThat(reserve("b", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"))).isInstanceOf(BudgetStore.Outcome.Granted.class);
    assertThat(reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"))).isInstanceOf(BudgetStore.Outcome.Refused.class);
  }

  @Test
  void reserve_withAnIdAlreadyHeld_isAConflict() {
    budgets.reserve(new BudgetStore.Request("same", "a", "s1", clock.instant(), TTL, List.of(claim(BudgetKind.CALLS_PER_HOUR, "5", "1"))));

    assertThatThrownBy(() -> budgets.reserve(
        new BudgetStore.Request("same", "a", "s1", clock.instant(), TTL, List.of(claim(BudgetKind.CALLS_PER_HOUR, "5", "1")))))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("same");
    assertThat(level("a", BudgetKind.CALLS_PER_HOUR).reserved()).isEqualByComparingTo("1");
  }

  @Test
  void amounts_keepTenDecimalPlacesExactly_andReservationsRoundUp() {
    granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.0000000001"));
    granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.00000000001")); // rounds up to 1e-10
    granted("a", claim(BudgetKind.TOKENS_PER_DAY, "100", "2.5")); // rounds up to 3 tokens

    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualTo(usd("0.0000000002"));
    assertThat(level("a", BudgetKind.TOKENS_PER_DAY).reserved()).isEqualByComparingTo("3");
  }

  @Test
  void aLimitAlreadyOverspent_refusesEvenAFreeCall_butAFullOneAdmitsAFreeCall() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "1"));
    assertThat(reserve("a", claim(BudgetKind.USD_PER_DAY, "1", "0"))).isInstanceOf(BudgetStore.Outcome.Granted.class);

    budgets.settle(settlement(g, "a", Map.of(BudgetKind.USD_PER_DAY, usd("1.5"))));

    assertThat(reserve("a", claim(BudgetKind.USD_PER_DAY, "1", "0"))).isInstanceOf(BudgetStore.Outcome.Refused.class);
  }

  // ---- settling and releasing

  @Test
  void settle_replacesTheHoldWithWhatWasSpent_lessOrMore() {
    BudgetStore.Outcome.Granted g1 = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.30"));
    BudgetStore.Outcome.Granted g2 = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.30"));

    budgets.settle(settlement(g1, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.1234567891"))));
    budgets.settle(settlement(g2, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.5"))));

    BudgetStore.Level l = level("a", BudgetKind.USD_PER_DAY);
    assertThat(l.used()).isEqualTo(usd("0.6234567891"));
    assertThat(l.reserved()).isEqualByComparingTo("0");
  }

  @Test
  void settle_countsKindsThatWereNotReserved_soALimitSetLaterSeesThem() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.CALLS_PER_HOUR, "10", "1"));

    budgets.settle(settlement(g, "a", Map.of(BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE, BudgetKind.TOKENS_PER_DAY,
        BigDecimal.valueOf(1200), BudgetKind.USD_PER_DAY, usd("0.002"))));

    assertThat(level("a", BudgetKind.TOKENS_PER_DAY).used()).isEqualByComparingTo("1200");
    assertThat(reserve("a", claim(BudgetKind.TOKENS_PER_DAY, "1500", "301"))).isInstanceOf(BudgetStore.Outcome.Refused.class);
    assertThat(reserve("a", claim(BudgetKind.TOKENS_PER_DAY, "1500", "300"))).isInstanceOf(BudgetStore.Outcome.Granted.class);
  }

  @Test
  void settle_withoutAReservation_chargesTheWindowOfItsInstant() {
    budgets.settle(new BudgetStore.Settlement("", "a", clock.instant(), Map.of(BudgetKind.TOOL_CALLS_PER_HOUR, BigDecimal.ONE)));

    assertThat(level("a", BudgetKind.TOOL_CALLS_PER_HOUR).used()).isEqualByComparingTo("1");
  }

  @Test
  void release_freesTheHold_andChargesNothing() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"));

    budgets.release(g.id());

    assertThat(level("a", BudgetKind.CALLS_PER_HOUR).committed()).isEqualByComparingTo("0");
    assertThat(reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"))).isInstanceOf(BudgetStore.Outcome.Granted.class);
  }

  @Test
  void aCallReservedBeforeTheWindowEnded_isChargedToTheWindowItWasReservedIn() {
    clock.advance(Duration.ofMinutes(44)); // 10:59
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.CALLS_PER_HOUR, "5", "1"));
    clock.advance(Duration.ofMinutes(2)); // 11:01

    budgets.settle(settlement(g, "a", Map.of(BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE)));

    assertThat(level("a", BudgetKind.CALLS_PER_HOUR).used()).isEqualByComparingTo("0");
    assertThat(budgets.levels("a", Instant.parse("2026-03-02T10:30:00Z")).getFirst().used()).isEqualByComparingTo("1");
  }

  // ---- expiry and windows

  @Test
  void anExpiredHold_stopsCounting_butSettlingItLaterStillChargesWhatWasSpent() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "1"));
    assertThat(reserve("a", claim(BudgetKind.USD_PER_DAY, "1", "0.01"))).isInstanceOf(BudgetStore.Outcome.Refused.class);

    clock.advance(TTL);

    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0");
    BudgetStore.Outcome.Granted later = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.5"));
    budgets.settle(settlement(g, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.7"))));
    assertThat(level("a", BudgetKind.USD_PER_DAY).used()).isEqualByComparingTo("0.7");
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0.5");
    assertThat(later.levels().getFirst().reserved()).isEqualByComparingTo("0.5");
  }

  @Test
  void windows_rollOverOnTheHourAndAtMidnightUtc() {
    BudgetStore.Outcome.Granted calls = granted("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"));
    budgets.settle(settlement(calls, "a", Map.of(BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE, BudgetKind.USD_PER_DAY, usd("2"))));
    assertThat(reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"))).isInstanceOf(BudgetStore.Outcome.Refused.class);

    clock.advance(Duration.ofMinutes(45)); // 11:00: a new hour, the same day
    assertThat(reserve("a", claim(BudgetKind.CALLS_PER_HOUR, "1", "1"))).isInstanceOf(BudgetStore.Outcome.Granted.class);
    assertThat(reserve("a", claim(BudgetKind.USD_PER_DAY, "2", "0.01"))).isInstanceOf(BudgetStore.Outcome.Refused.class);

    clock.advance(Duration.ofHours(13)); // 00:00 the next day
    assertThat(reserve("a", claim(BudgetKind.USD_PER_DAY, "2", "2"))).isInstanceOf(BudgetStore.Outcome.Granted.class);
  }

  @Test
  void purge_deletesOldWindowsAndExpiredHolds_only() {
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "9", "1")); // expires at 10:25
    budgets.settle(new BudgetStore.Settlement("", "a", clock.instant(), Map.of(BudgetKind.USD_PER_DAY, usd("1"))));
    clock.advance(Duration.ofDays(3));
    granted("a", claim(BudgetKind.CALLS_PER_HOUR, "9", "1"));

    int purged = budgets.purge(clock.instant().minus(Duration.ofDays(2)));

    assertThat(purged).isGreaterThanOrEqualTo(2);
    assertThat(budgets.levels("a", START).stream().map(BudgetStore.Level::committed))
        .allSatisfy(v -> assertThat(v).isEqualByComparingTo("0"));
    assertThat(level("a", BudgetKind.CALLS_PER_HOUR).reserved()).isEqualByComparingTo("1");
  }

  @Test
  void budgets_surviveARestart() {
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.4"));
    budgets.settle(settlement(g, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.3"))));
    granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.2"));

    store.close();
    store = reopenStore(clock);
    budgets = store.budgets();

    assertThat(level("a", BudgetKind.USD_PER_DAY).used()).isEqualByComparingTo("0.3");
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0.2");
  }

  // ---- settling with the events that record the call

  private void createSession(String id) {
    store.events().create(new NewSession(id, "a", 1, "team-a", "4bf92f3577b34da6a3ce929d0e0e4736", Optional.empty(), id,
        List.of(new PendingEvent(new SessionEvent.SessionStarted("a", 1, "team-a", "user:ann", false), "00f067aa0ba902b7")),
        SessionStatus.IDLE, Optional.empty()));
  }

  private static Append appendWith(String session, long expectedSeq, BudgetStore.Settlement s, Cost cost) {
    return new Append(session, expectedSeq,
        List.of(new PendingEvent(new SessionEvent.InputReceived("in1", "hi", "user:ann"), "00f067aa0ba902b7")),
        SessionStatus.RUNNABLE, List.of(), Optional.empty(), List.of(), List.of(cost), List.of(s));
  }

  @Test
  void settlementInAnAppend_commitsWithItsEvents() {
    createSession("s1");
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.5"));

    store.events().append(appendWith("s1", 1, settlement(g, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.25"))),
        new Cost(2, CostKind.MODEL_INPUT, 100, usd("0.25"), "openai/gpt-4o")));

    assertThat(level("a", BudgetKind.USD_PER_DAY).used()).isEqualByComparingTo("0.25");
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0");
    assertThat(store.ledger().entries("s1")).singleElement().satisfies(e -> assertThat(e.usd()).isEqualByComparingTo("0.25"));
  }

  @Test
  void settlementInARefusedAppend_isNotApplied_andTheHoldStays() {
    createSession("s1");
    BudgetStore.Outcome.Granted g = granted("a", claim(BudgetKind.USD_PER_DAY, "1", "0.5"));

    assertThatThrownBy(() -> store.events().append(appendWith("s1", 7,
        settlement(g, "a", Map.of(BudgetKind.USD_PER_DAY, usd("0.25"))),
        new Cost(8, CostKind.MODEL_INPUT, 100, usd("0.25"), "openai/gpt-4o"))))
        .isInstanceOf(KeelException.Conflict.class);

    assertThat(level("a", BudgetKind.USD_PER_DAY).used()).isEqualByComparingTo("0");
    assertThat(level("a", BudgetKind.USD_PER_DAY).reserved()).isEqualByComparingTo("0.5");
    assertThat(store.ledger().entries("s1")).isEmpty();
  }

  // ---- contention

  /**
   * Many threads reserve, spend and settle against one small limit at once. Each call reserves an
   * estimate and spends either exactly it, less, or (for one call in four) more: the store must
   * never let used + reserved pass the limit at a grant, and the final spending can exceed the
   * limit only by what calls spent beyond their estimates.
   */
  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void manyThreads_cannotOverspendBeyondTheCallsInFlight() throws Exception {
    int threads = 16;
    int callsEach = 60;
    BigDecimal limit = usd("3.0000000000");
    BigDecimal estimate = usd("0.0100000000");
    CyclicBarrier start = new CyclicBarrier(threads);
    AtomicReference<BigDecimal> excess = new AtomicReference<>(BigDecimal.ZERO);
    ConcurrentLinkedQueue<BigDecimal> committedAtGrant = new ConcurrentLinkedQueue<>();
    AtomicInteger grantedCalls = new AtomicInteger();
    AtomicInteger refusedCalls = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        futures.add(pool.submit(() -> {
          start.await();
          ThreadLocalRandom random = ThreadLocalRandom.current();
          for (int i = 0; i < callsEach; i++) {
            BudgetStore.Outcome o = reserve("hot", new BudgetStore.Claim(BudgetKind.USD_PER_DAY, limit, estimate),
                claim(BudgetKind.CALLS_PER_HOUR, "1000000", "1"));
            switch (o) {
              case BudgetStore.Outcome.Refused r -> refusedCalls.incrementAndGet();
              case BudgetStore.Outcome.Granted g -> {
                grantedCalls.incrementAndGet();
                BudgetStore.Level usdLevel = g.levels().stream().filter(l -> l.kind() == BudgetKind.USD_PER_DAY).findFirst().orElseThrow();
                committedAtGrant.add(usdLevel.committed());
                int roll = random.nextInt(4);
                BigDecimal spent = switch (roll) {
                  case 0 -> estimate.multiply(BigDecimal.valueOf(2)); // more than estimated
                  case 1 -> estimate.divide(BigDecimal.valueOf(4));
                  default -> estimate;
                };
                if (roll == 0) {
                  excess.accumulateAndGet(spent.subtract(estimate), BigDecimal::add);
                }
                if (random.nextInt(10) == 0) {
                  budgets.release(g.id()); // the call was not made
                  if (roll == 0) {
                    excess.accumulateAndGet(spent.subtract(estimate), BigDecimal::subtract);
                  }
                } else {
                  budgets.settle(settlement(g, "hot", Map.of(BudgetKind.USD_PER_DAY, spent, BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE)));
                }
              }
            }
          }
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }

    BudgetStore.Level end = level("hot", BudgetKind.USD_PER_DAY);
    assertThat(end.reserved()).isEqualByComparingTo("0");
    assertThat(committedAtGrant).allSatisfy(c -> assertThat(c).isLessThanOrEqualTo(limit));
    assertThat(end.used()).isLessThanOrEqualTo(limit.add(excess.get()));
    assertThat(refusedCalls.get()).as("the limit was reached").isPositive();
    assertThat(grantedCalls.get() + refusedCalls.get()).isEqualTo(threads * callsEach);
  }

  /** When every call spends exactly its estimate, the limit is used to the last unit and not one more. */
  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void manyThreads_spendingTheirEstimates_useTheLimitExactly() throws Exception {
    int threads = 12;
    BigDecimal limit = usd("1.2345678901");
    BigDecimal estimate = usd("0.0123456789");
    int fit = limit.divideToIntegralValue(estimate).intValueExact(); // 100
    CyclicBarrier start = new CyclicBarrier(threads);
    AtomicInteger grantedCalls = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        futures.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < 20; i++) {
            if (reserve("exact", new BudgetStore.Claim(BudgetKind.USD_PER_DAY, limit, estimate))
                instanceof BudgetStore.Outcome.Granted g) {
              grantedCalls.incrementAndGet();
              budgets.settle(settlement(g, "exact", Map.of(BudgetKind.USD_PER_DAY, estimate)));
            }
          }
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }

    assertThat(grantedCalls.get()).isEqualTo(fit);
    assertThat(level("exact", BudgetKind.USD_PER_DAY).used()).isEqualTo(estimate.multiply(BigDecimal.valueOf(fit)));
  }
}
