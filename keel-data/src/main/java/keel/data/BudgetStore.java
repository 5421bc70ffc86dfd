package keel.data;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import keel.core.BudgetKind;

/**
 * Agents' budgets as they are spent: per agent, budget kind and window (the clock hour or the UTC
 * day, see {@link BudgetKind#windowStart}), what was spent ({@code used}) and what calls in flight
 * hold ({@code reserved}).
 *
 * <p>A call first {@link #reserve reserves} its estimated amounts. The store grants the reservation
 * only if, for every budget it claims, {@code used + reserved + amount <= limit} — checked and
 * written atomically, all claims or none — so concurrent callers on any number of nodes can never
 * together hold more than the limit. After the call, its {@link Settlement} replaces the hold with
 * what was actually spent, ideally in the same transaction as the events that record the call (see
 * {@link Append#settlements()}). The agent can therefore overspend a limit only by what calls in
 * flight spend beyond their estimates.
 *
 * <p>A hold expires at its {@code expiresAt}: a node that dies between reserving and settling leaks
 * its reservation only until then. An expired hold no longer counts; settling it later still
 * charges what was spent.
 *
 * <p>How an implementation keeps the check atomic: the embedded store runs each reservation as one
 * operation of its single writer; a shared database must lock the window rows first ({@code INSERT
 * … ON CONFLICT DO NOTHING}, then {@code SELECT … FOR UPDATE}, in {@link BudgetKind} order, so that
 * two reservations never wait on each other) and check and insert in the same transaction.
 *
 * <p>Amounts: dollars at most {@value Money#SCALE} decimal places; calls and tokens whole. Limits
 * are rounded down to that precision, reservations up. Implementations are thread-safe; {@code
 * BudgetStoreContract} runs against each.
 */
public interface BudgetStore {

  /**
   * One budget a reservation counts against.
   *
   * @param kind the budget
   * @param limit the agent's current limit for it
   * @param amount what the call is expected to spend; not negative
   */
  record Claim(BudgetKind kind, BigDecimal limit, BigDecimal amount) {
    public Claim {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(limit, "limit");
      Objects.requireNonNull(amount, "amount");
      if (amount.signum() < 0) {
        throw new IllegalArgumentException(kind.wireName() + ": a reservation cannot be negative, got " + amount.toPlainString());
      }
    }
  }

  /**
   * A reservation to take: every claim, or none.
   *
   * @param id a new, unique id (a retried request with the same id is refused as a duplicate)
   * @param agent the agent whose budgets are claimed
   * @param sessionId the session making the call, for diagnosis
   * @param at now: it decides the windows and which holds have expired
   * @param ttl how long the hold lasts if it is never settled
   * @param claims at most one per kind
   */
  record Request(String id, String agent, String sessionId, Instant at, Duration ttl, List<Claim> claims) {
    public Request {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(sessionId, "sessionId");
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(ttl, "ttl");
      claims = claims.stream().sorted(java.util.Comparator.comparing(Claim::kind)).toList();
      if (claims.stream().map(Claim::kind).distinct().count() != claims.size()) {
        throw new IllegalArgumentException("a reservation claims each budget kind at most once: " + claims);
      }
      if (ttl.isNegative() || ttl.isZero()) {
        throw new IllegalArgumentException("a reservation's ttl must be positive, got " + ttl);
      }
    }
  }

  /**
   * A budget's window as it stands.
   *
   * @param used what settled calls spent in the window
   * @param reserved what unexpired holds of calls in flight reserve in it
   */
  record Level(BudgetKind kind, Instant windowStart, Instant windowEnd, BigDecimal used, BigDecimal reserved) {
    public Level {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(windowStart, "windowStart");
      Objects.requireNonNull(windowEnd, "windowEnd");
      Objects.requireNonNull(used, "used");
      Objects.requireNonNull(reserved, "reserved");
    }

    /** Used and reserved together: what the next reservation must fit beside. */
    public BigDecimal committed() {
      return used.add(reserved);
    }
  }

  /** What {@link #reserve} decided. */
  sealed interface Outcome {
    /**
     * Every claim is held.
     *
     * @param levels each claimed budget after the reservation, in {@link BudgetKind} order
     */
    record Granted(String id, Instant at, List<Level> levels) implements Outcome {
      public Granted {
        levels = List.copyOf(levels);
      }
    }

    /**
     * Nothing is held: this claim would exceed its limit.
     *
     * @param level the budget's window before the reservation
     */
    record Refused(Claim claim, Level level) implements Outcome {}
  }

  /**
   * What a reserved call (or an unreserved one, with an empty id) actually spent.
   *
   * @param reservationId the reservation whose holds this replaces; empty when nothing was reserved
   * @param agent the agent that spent it
   * @param at when the call was reserved: each amount is charged to the window holding this instant
   * @param spent what was spent, per kind; kinds without a limit are counted as well, so a limit set
   *     later in the window counts what was spent before it
   */
  record Settlement(String reservationId, String agent, Instant at, Map<BudgetKind, BigDecimal> spent) {
    public Settlement {
      Objects.requireNonNull(reservationId, "reservationId");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(at, "at");
      spent = Map.copyOf(spent);
      for (Map.Entry<BudgetKind, BigDecimal> e : spent.entrySet()) {
        if (e.getValue().signum() < 0) {
          throw new IllegalArgumentException(
              e.getKey().wireName() + ": spent cannot be negative, got " + e.getValue().toPlainString());
        }
      }
    }
  }

  /** Reserves every claim atomically, or none when one would exceed its limit. */
  Outcome reserve(Request request);

  /**
   * Releases a reservation's holds and charges what was spent, atomically. Settle each
   * reservation once; to settle with the events that record the call, put the settlement in the
   * {@link Append} instead.
   */
  void settle(Settlement settlement);

  /** Releases a reservation's holds without charging anything (the call was not made). */
  void release(String reservationId);

  /** Every kind's window holding {@code at} for an agent, in {@link BudgetKind} order. */
  List<Level> levels(String agent, Instant at);

  /**
   * Deletes windows that started before {@code before} and holds that expired before it.
   *
   * @return how many rows were deleted
   */
  int purge(Instant before);
}
