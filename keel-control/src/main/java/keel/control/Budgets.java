package keel.control;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Supplier;
import keel.core.AgentDescriptor;
import keel.core.BudgetKind;
import keel.data.BudgetStore;

/**
 * Agents' hard limits, as the step executor asks about them: before every model call and every tool
 * call it {@linkplain #beforeModelCall reserves} what the call is expected to spend, and obeys the
 * answer — go on, or suspend the session until the budget allows it. After the call it settles
 * what was actually spent (see {@link #settlement}).
 *
 * <p>The limits are always the agent's current ones (its active revision's {@code spec.budgets}),
 * read at each call, so a raised or lowered limit applies to sessions already running. An agent
 * without budgets costs no reservation at all.
 *
 * <p>Thread-safe: it keeps no state of its own; the store makes each reservation atomic.
 */
public final class Budgets {

  /** How long a reservation holds when the call is never settled (its node died): ten minutes. */
  public static final Duration DEFAULT_RESERVATION_TTL = Duration.ofMinutes(10);

  /** The share of a limit at which a budget warns: 80 %. */
  public static final BigDecimal WARNING_SHARE = new BigDecimal("0.8");

  private final BudgetStore store;
  private final Function<String, Optional<AgentDescriptor.Budgets>> limits;
  private final Clock clock;
  private final Supplier<String> ids;
  private final Duration reservationTtl;

  /**
   * @param store where budgets are counted
   * @param limits an agent's current budgets, by name (empty: no limits)
   * @param clock now, which decides the windows
   * @param ids new reservation ids, unique across nodes
   * @param reservationTtl how long an unsettled reservation holds
   */
  public Budgets(
      BudgetStore store,
      Function<String, Optional<AgentDescriptor.Budgets>> limits,
      Clock clock,
      Supplier<String> ids,
      Duration reservationTtl) {
    this.store = Objects.requireNonNull(store, "store");
    this.limits = Objects.requireNonNull(limits, "limits");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.ids = Objects.requireNonNull(ids, "ids");
    this.reservationTtl = Objects.requireNonNull(reservationTtl, "reservationTtl");
    if (reservationTtl.isNegative() || reservationTtl.isZero()) {
      throw new IllegalArgumentException("reservationTtl must be positive, got " + reservationTtl);
    }
  }

  /**
   * What a call holds until it is settled or released.
   *
   * @param id the store's reservation id; empty when the agent had no limit to reserve against
   * @param agent the agent
   * @param at when it was reserved: what is spent is charged to the windows holding this instant
   */
  public record Reservation(String id, String agent, Instant at) {
    public Reservation {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(at, "at");
    }
  }

  /** A budget at 80 % or more of its limit with this call's reservation. */
  public record Warning(BudgetKind kind, BigDecimal limit, BigDecimal used, Instant windowEnd) {}

  /** The answer to a call. */
  public sealed interface Decision {
    /** The call may go ahead; settle or release its reservation afterwards. */
    record Allowed(Reservation reservation, List<Warning> warnings) implements Decision {
      public Allowed {
        warnings = List.copyOf(warnings);
      }
    }

    /**
     * The call would exceed a limit; nothing was reserved.
     *
     * @param used what was spent in the window
     * @param reserved what calls in flight hold in it
     * @param requested what this call asked for
     */
    record Blocked(
        BudgetKind kind, BigDecimal limit, BigDecimal used, BigDecimal reserved, BigDecimal requested, Instant windowEnd)
        implements Decision {}
  }

  /**
   * Asks before a model call: one call against {@code calls_per_hour}, the estimated cost against
   * {@code usd_per_day} and the estimated tokens against {@code tokens_per_day}.
   */
  public Decision beforeModelCall(String agent, String sessionId, BigDecimal estimatedUsd, long estimatedTokens) {
    return beforeModelCall(agent, sessionId, () -> new Estimate(estimatedUsd, estimatedTokens));
  }

  /** What a model call is expected to spend. */
  public record Estimate(BigDecimal usd, long tokens) {}

  /**
   * Asks before a model call, estimating it only when the agent limits dollars or tokens (an
   * estimate reads the whole prompt).
   */
  public Decision beforeModelCall(String agent, String sessionId, Supplier<Estimate> estimate) {
    Instant now = clock.instant();
    Optional<AgentDescriptor.Budgets> current = limits.apply(agent);
    Map<BudgetKind, BigDecimal> amounts = new EnumMap<>(BudgetKind.class);
    amounts.put(BudgetKind.CALLS_PER_HOUR, BigDecimal.ONE);
    if (current.isPresent() && (current.get().usdPerDay().isPresent() || current.get().tokensPerDay().isPresent())) {
      Estimate e = estimate.get();
      amounts.put(BudgetKind.USD_PER_DAY, e.usd());
      amounts.put(BudgetKind.TOKENS_PER_DAY, BigDecimal.valueOf(e.tokens()));
    }
    return reserve(agent, sessionId, amounts, current, now);
  }

  /**
   * Asks before a tool call: one call against {@code tool_calls_per_hour} and, for a capability
   * with a price per call (an external action), that price against {@code usd_per_day}.
   */
  public Decision beforeToolCall(String agent, String sessionId, BigDecimal priceUsd) {
    Map<BudgetKind, BigDecimal> amounts = new EnumMap<>(BudgetKind.class);
    amounts.put(BudgetKind.TOOL_CALLS_PER_HOUR, BigDecimal.ONE);
    if (priceUsd.signum() > 0) {
      amounts.put(BudgetKind.USD_PER_DAY, priceUsd);
    }
    return reserve(agent, sessionId, amounts);
  }

  /** Reserves {@code amounts} against the agent's budgets that have a limit; the others are not asked. */
  public Decision reserve(String agent, String sessionId, Map<BudgetKind, BigDecimal> amounts) {
    return reserve(agent, sessionId, amounts, limits.apply(agent), clock.instant());
  }

  private Decision reserve(
      String agent, String sessionId, Map<BudgetKind, BigDecimal> amounts, Optional<AgentDescriptor.Budgets> current, Instant now) {
    List<BudgetStore.Claim> claims = new ArrayList<>();
    if (current.isPresent()) {
      for (Map.Entry<BudgetKind, BigDecimal> e : amounts.entrySet()) {
        e.getKey().limit(current.get()).ifPresent(limit -> claims.add(new BudgetStore.Claim(e.getKey(), limit, e.getValue())));
      }
    }
    if (claims.isEmpty()) {
      return new Decision.Allowed(new Reservation("", agent, now), List.of());
    }
    BudgetStore.Outcome outcome =
        store.reserve(new BudgetStore.Request(ids.get(), agent, sessionId, now, reservationTtl, claims));
    return switch (outcome) {
      case BudgetStore.Outcome.Refused r ->
          new Decision.Blocked(
              r.claim().kind(), r.claim().limit(), r.level().used(), r.level().reserved(), r.claim().amount(),
              r.level().windowEnd());
      case BudgetStore.Outcome.Granted g -> {
        List<Warning> warnings = new ArrayList<>();
        for (BudgetStore.Level level : g.levels()) {
          BigDecimal limit = level.kind().limit(current.get()).orElseThrow();
          if (level.committed().compareTo(limit.multiply(WARNING_SHARE)) >= 0) {
            warnings.add(new Warning(level.kind(), limit, level.committed(), level.windowEnd()));
          }
        }
        yield new Decision.Allowed(new Reservation(g.id(), agent, now), warnings);
      }
    };
  }

  /**
   * The settlement of a reservation with what the call spent, to append with the events that record
   * the call. Every kind spent is counted, limited or not.
   */
  public BudgetStore.Settlement settlement(Reservation reservation, Map<BudgetKind, BigDecimal> spent) {
    return new BudgetStore.Settlement(reservation.id(), reservation.agent(), reservation.at(), spent);
  }

  /** Releases a reservation whose call was not made. */
  public void release(Reservation reservation) {
    if (!reservation.id().isEmpty()) {
      store.release(reservation.id());
    }
  }

  /** Settles a reservation on its own, when no event records the call. */
  public void settle(Reservation reservation, Map<BudgetKind, BigDecimal> spent) {
    store.settle(settlement(reservation, spent));
  }

  /** What a budget-blocked session should do now. */
  public sealed interface Recheck {
    /** Try the call again, for this reason (it may still be refused: another session may be quicker). */
    record GoOn(String reason) implements Recheck {}

    /**
     * Stay blocked until the window ends at {@code windowEnd}, or a raised limit; when {@code
     * roomMayFree}, calls in flight hold reservations that may settle below their estimates and
     * leave room before that, so it is worth looking again sooner.
     */
    record Wait(Instant windowEnd, boolean roomMayFree) implements Recheck {}
  }

  /**
   * Whether a call refused as {@code blocked} describes may now be tried: its window has ended, the
   * agent's limit was removed, or the call now fits beside what is spent and reserved (the limit was
   * raised, or calls in flight settled below their estimates).
   */
  public Recheck recheck(String agent, BudgetKind kind, BigDecimal blockedLimit, BigDecimal requested, Instant windowEnd) {
    Instant now = clock.instant();
    if (!now.isBefore(windowEnd)) {
      return new Recheck.GoOn("window_ended: the " + kind.wireName() + " window ended at " + windowEnd);
    }
    Optional<BigDecimal> limit = limits.apply(agent).flatMap(kind::limit);
    if (limit.isEmpty()) {
      return new Recheck.GoOn("limit_removed: agent \"" + agent + "\" no longer sets " + kind.wireName());
    }
    BudgetStore.Level level = level(agent, kind, now);
    if (level.committed().add(requested).compareTo(limit.get()) <= 0) {
      return new Recheck.GoOn(limit.get().compareTo(blockedLimit) > 0
          ? "limit_raised: " + kind.wireName() + " is now " + limit.get().toPlainString() + " (was " + blockedLimit.toPlainString() + ")"
          : "room_freed: calls in flight settled below their reservations; " + kind.wireName() + " has "
              + limit.get().subtract(level.committed()).toPlainString() + " of " + limit.get().toPlainString() + " left");
    }
    return new Recheck.Wait(windowEnd, level.reserved().signum() > 0);
  }

  /**
   * One budget as it stands now.
   *
   * @param percent used and reserved as a share of the limit, in percent, two decimals
   */
  public record Status(
      BudgetKind kind, BigDecimal limit, BigDecimal used, BigDecimal reserved, Instant windowStart, Instant windowEnd,
      BigDecimal percent) {}

  /** Every budget the agent's current revision sets, in {@link BudgetKind} order. */
  public List<Status> status(String agent) {
    Optional<AgentDescriptor.Budgets> current = limits.apply(agent);
    if (current.isEmpty()) {
      return List.of();
    }
    List<Status> out = new ArrayList<>();
    for (BudgetStore.Level level : store.levels(agent, clock.instant())) {
      Optional<BigDecimal> limit = level.kind().limit(current.get());
      if (limit.isEmpty()) {
        continue;
      }
      BigDecimal percent = limit.get().signum() == 0
          ? BigDecimal.valueOf(100)
          : level.committed().multiply(BigDecimal.valueOf(100)).divide(limit.get(), 2, RoundingMode.HALF_UP);
      out.add(new Status(level.kind(), limit.get(), level.used(), level.reserved(), level.windowStart(), level.windowEnd(), percent));
    }
    return out;
  }

  private BudgetStore.Level level(String agent, BudgetKind kind, Instant now) {
    return store.levels(agent, now).stream().filter(l -> l.kind() == kind).findFirst().orElseThrow();
  }
}
