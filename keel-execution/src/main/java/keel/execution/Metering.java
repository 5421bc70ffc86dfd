package keel.execution;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.control.Budgets;
import keel.core.AgentDescriptor;
import keel.core.BudgetKind;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.StoredEvent;
import keel.core.Usage;
import keel.data.BudgetStore;
import keel.data.Cost;
import keel.data.CostKind;
import keel.data.Money;
import keel.data.SessionRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The step executor's side of budgets and the cost ledger, kept out of {@link SessionRunner} so the
 * reasoning loop reads as it did: before each model call and tool call it asks {@link Budgets} and
 * says whether the call may go on; as events are staged it derives their ledger entries and budget
 * settlements, which the next flush appends with them (one transaction: the ledger can never
 * disagree with the events).
 *
 * <p>Design: the ledger is a function of the staged events (model tokens from {@code ModelResponded}
 * and {@code ModelEscalated}, tool time and external-action prices from {@code ToolCallCompleted})
 * plus the time the run spent in Keel between flushes. What a model call spent settles its
 * reservation; a call that was never made releases it; a call cut off by a crash leaves a hold that
 * expires (see {@link CostSettings#reservationTtl()}).
 *
 * <p>Thread-safe: one instance per node; each {@link Meter} belongs to one run, on one thread.
 */
final class Metering {

  private static final Logger LOG = LoggerFactory.getLogger(Metering.class);
  private static final BigDecimal MILLION = BigDecimal.valueOf(1_000_000);
  private static final BigDecimal THOUSAND = BigDecimal.valueOf(1_000);

  private final Budgets budgets;
  private final PriceTable prices;
  private final CostSettings settings;
  private final BudgetWaits waits;
  private final Clock clock;
  /**
   * What the node last logged, per agent, budget and event ({@code warn}, {@code block}): the window
   * end, so each is logged once per window, not once per session. Bounded by agents × kinds × 2.
   */
  private final java.util.concurrent.ConcurrentMap<String, java.time.Instant> logged = new java.util.concurrent.ConcurrentHashMap<>();

  Metering(Budgets budgets, PriceTable prices, CostSettings settings, BudgetWaits waits, Clock clock) {
    this.budgets = budgets;
    this.prices = prices;
    this.settings = settings;
    this.waits = waits;
    this.clock = clock;
  }

  Budgets budgets() {
    return budgets;
  }

  /** The meter of one run of one session. */
  Meter open(SessionRecord record) {
    return new Meter(record);
  }

  /** What a budget says about the next call. */
  sealed interface Check {
    /** Go on; stage these warnings first (each once per budget, window and session). */
    record Go(List<SessionEvent.BudgetWarning> warnings) implements Check {}

    /** Stop: stage this event, and the session suspends until the budget allows the call. */
    record Stop(SessionEvent.BudgetBlocked blocked) implements Check {}
  }

  /** A tool call reserved and not yet completed. */
  private record ToolHold(String name, BigDecimal price, Budgets.Reservation reservation) {}

  /** One run's metering. Not thread-safe: it belongs to the run's thread. */
  final class Meter {
    private final SessionRecord record;
    private final List<Cost> costs = new ArrayList<>();
    private final List<BudgetStore.Settlement> settlements = new ArrayList<>();
    private final Map<String, ToolHold> tools = new HashMap<>();
    private Budgets.Reservation model;
    private boolean modelSettled;
    /** When the time since the last flush began, and what of it went to models and tools. */
    private long markNanos = System.nanoTime();
    private long modelNanos;
    private long toolMillis;
    private long carryNanos;

    private Meter(SessionRecord record) {
      this.record = record;
    }

    // ---- before calls

    /** Reserves a model call's estimated cost and tokens against the agent's current budgets. */
    Check beforeModelCall(AgentDescriptor agent, SessionState state, List<ToolSpec> toolSpecs) {
      AgentDescriptor.ModelSpec spec = agent.spec().model();
      Budgets.Decision d = budgets.beforeModelCall(agent.name(), record.id(), () -> {
        long promptTokens =
            ModelGateway.estimateTokens(
                new ModelRequest(agent.name(), record.id(), spec, agent.spec().instructions(), state.conversation(), toolSpecs,
                    state.stepsSinceInput()));
        long outputTokens = settings.outputTokenEstimate();
        BigDecimal usd = prices.cost(spec.provider(), OpenAiModelProvider.requestedModel(spec), new Usage(promptTokens, outputTokens, 0, 0));
        return new Budgets.Estimate(usd, promptTokens + outputTokens);
      });
      return switch (d) {
        case Budgets.Decision.Blocked b -> stop(b);
        case Budgets.Decision.Allowed a -> {
          model = a.reservation();
          modelSettled = false;
          yield go(a, state);
        }
      };
    }

    /** Reserves a tool call (and its price, when it has one) against the agent's current budgets. */
    Check beforeToolCall(AgentDescriptor agent, SessionState state, Tool tool, String callId) {
      BigDecimal price = tool.pricePerCallUsd();
      Budgets.Decision d = budgets.beforeToolCall(agent.name(), record.id(), price);
      return switch (d) {
        case Budgets.Decision.Blocked b -> stop(b);
        case Budgets.Decision.Allowed a -> {
          tools.put(callId, new ToolHold(tool.spec().name(), price, a.reservation()));
          yield go(a, state);
        }
      };
    }

    private Check stop(Budgets.Decision.Blocked b) {
      if (firstInWindow("block", b.kind(), b.windowEnd())) {
        LOG.warn("agent {}: {} is exhausted: a call of session {} needs {} beside {} used and {} reserved of the limit {};"
                + " budget-blocked sessions wait until {} or a raised limit (logged once per window; each block is"
                + " a BudgetBlocked event)",
            record.agent(), b.kind().wireName(), record.id(), b.requested().toPlainString(), b.used().toPlainString(),
            b.reserved().toPlainString(), b.limit().toPlainString(), b.windowEnd());
      }
      return new Check.Stop(new SessionEvent.BudgetBlocked(
          b.kind().wireName(), b.limit(), b.used(), b.reserved(), b.requested(), b.windowEnd()));
    }

    private Check go(Budgets.Decision.Allowed a, SessionState state) {
      List<SessionEvent.BudgetWarning> out = new ArrayList<>();
      for (Budgets.Warning w : a.warnings()) {
        if (!state.budgetWarned(w.kind().wireName(), w.windowEnd())) {
          if (firstInWindow("warn", w.kind(), w.windowEnd())) {
            LOG.warn("agent {}: {} is at {} of its limit {} in the window ending {} (session {}; logged once per window)",
                record.agent(), w.kind().wireName(), w.used().toPlainString(), w.limit().toPlainString(), w.windowEnd(),
                record.id());
          }
          out.add(new SessionEvent.BudgetWarning(w.kind().wireName(), w.limit(), w.used(), w.windowEnd()));
        }
      }
      return new Check.Go(out);
    }

    /** Whether this node has not yet logged {@code what} for the agent's budget in this window. */
    private boolean firstInWindow(String what, BudgetKind kind, java.time.Instant windowEnd) {
      java.time.Instant before = logged.put(record.agent() + "/" + kind.wireName() + "/" + what, windowEnd);
      return !windowEnd.equals(before);
    }

    // ---- after calls

    /**
     * The model call was made: its reservation settles with what every provider call of it spent
     * (escalated small-model calls and a response a drift discarded included), with the next flush.
     */
    void modelCallMade(ModelGateway.Call call) {
      long calls = 1;
      long tokens = call.response().usage().totalTokens();
      BigDecimal usd = call.costUsd();
      for (SessionEvent.ModelEscalated e : call.escalations()) {
        if (e.usage().totalTokens() > 0) {
          calls++;
          tokens += e.usage().totalTokens();
          usd = usd.add(e.costUsd());
        }
      }
      Map<BudgetKind, BigDecimal> spent = new EnumMap<>(BudgetKind.class);
      spent.put(BudgetKind.CALLS_PER_HOUR, BigDecimal.valueOf(calls));
      spent.put(BudgetKind.TOKENS_PER_DAY, BigDecimal.valueOf(tokens));
      spent.put(BudgetKind.USD_PER_DAY, usd);
      settlements.add(budgets.settlement(reservation(), spent));
      modelSettled = true;
    }

    /** The model call is over (made, failed or given up): release its reservation unless it settled. */
    void modelCallEnded(long nanos) {
      modelNanos += nanos;
      if (model != null && !modelSettled) {
        budgets.release(model);
      }
      model = null;
      modelSettled = false;
    }

    private Budgets.Reservation reservation() {
      return model != null ? model : new Budgets.Reservation("", record.agent(), clock.instant());
    }

    // ---- staging

    /** Derives the ledger entries and settlements of an event just staged. */
    void staged(StoredEvent stored) {
      switch (stored.event()) {
        case SessionEvent.ModelResponded e ->
            model(stored.seq(), e.provider(), e.model(), e.modelVersion(), e.usage(), e.costUsd());
        case SessionEvent.ModelEscalated e ->
            model(stored.seq(), e.fromProvider(), e.fromModel(), "", e.usage(), e.costUsd());
        case SessionEvent.ToolCallCompleted e -> {
          ToolHold hold = tools.remove(e.callId());
          String name = hold == null ? "tool call " + e.callId() : hold.name();
          BigDecimal price = hold == null ? BigDecimal.ZERO : hold.price();
          toolMillis += e.durationMillis();
          if (e.durationMillis() > 0) {
            costs.add(new Cost(stored.seq(), CostKind.COMPUTE_TOOL, e.durationMillis(), compute(e.durationMillis()), name));
          }
          if (price.signum() > 0) {
            costs.add(new Cost(stored.seq(), CostKind.EXTERNAL_ACTION, 1, price, name));
          }
          Map<BudgetKind, BigDecimal> spent = new EnumMap<>(BudgetKind.class);
          spent.put(BudgetKind.TOOL_CALLS_PER_HOUR, BigDecimal.ONE);
          if (price.signum() > 0) {
            spent.put(BudgetKind.USD_PER_DAY, price);
          }
          Budgets.Reservation r = hold == null ? new Budgets.Reservation("", record.agent(), clock.instant()) : hold.reservation();
          settlements.add(budgets.settlement(r, spent));
        }
        default -> {
          // other events record no cost
        }
      }
    }

    private void model(long seq, String provider, String model, String version, Usage usage, BigDecimal costUsd) {
      String detail = provider.isEmpty() ? "model" : provider + "/" + model;
      long[] tokens = {usage.inputTokens(), usage.outputTokens(), usage.cacheWriteTokens(), usage.cacheReadTokens()};
      CostKind[] kinds = {CostKind.MODEL_INPUT, CostKind.MODEL_OUTPUT, CostKind.MODEL_CACHE_WRITE, CostKind.MODEL_CACHE_READ};
      BigDecimal[] usd = split(provider, model, version, tokens, costUsd);
      for (int i = 0; i < kinds.length; i++) {
        if (tokens[i] > 0 || usd[i].signum() > 0) {
          costs.add(new Cost(seq, kinds[i], tokens[i], usd[i], detail));
        }
      }
    }

    // ---- flushing

    /**
     * The ledger entries to append with the staged events, the last of which is {@code lastSeq}:
     * those the events record, and the time the run spent in Keel since the last flush.
     */
    List<Cost> costs(long lastSeq) {
      long now = System.nanoTime();
      long keel = now - markNanos - modelNanos - toolMillis * 1_000_000 + carryNanos;
      long millis = Math.max(0, keel) / 1_000_000;
      carryNanos = Math.max(0, keel) - millis * 1_000_000;
      markNanos = now;
      modelNanos = 0;
      toolMillis = 0;
      List<Cost> out = new ArrayList<>(costs);
      if (millis > 0) {
        out.add(new Cost(lastSeq, CostKind.COMPUTE_STEP, millis, compute(millis), "step"));
      }
      return out;
    }

    /** The budget settlements to append with the staged events. */
    List<BudgetStore.Settlement> settlements() {
      return List.copyOf(settlements);
    }

    /** The append carrying {@link #costs} and {@link #settlements} committed. */
    void flushed() {
      costs.clear();
      settlements.clear();
    }

    // ---- blocked sessions

    /**
     * Whether the call that blocked the session may be tried now, and why; when not, the session is
     * registered to be woken when its budget should be looked at again.
     */
    Optional<String> unblocked(SessionEvent.BudgetBlocked b) {
      return switch (budgets.recheck(record.agent(), BudgetKind.fromWire(b.kind()), b.limit(), b.requested(), b.windowEnd())) {
        case Budgets.Recheck.GoOn g -> {
          waits.unblocked(record.id());
          yield Optional.of(g.reason());
        }
        case Budgets.Recheck.Wait w -> {
          waits.await(record.id(), w.windowEnd(), w.roomMayFree());
          yield Optional.empty();
        }
      };
    }
  }

  /** What {@code millis} of compute cost at the configured price. */
  BigDecimal compute(long millis) {
    return settings.computeUsdPerSecond()
        .multiply(BigDecimal.valueOf(millis))
        .divide(THOUSAND, Money.SCALE, RoundingMode.HALF_EVEN);
  }

  /**
   * Splits a model call's recorded cost over its four token kinds so that the parts add up to it
   * exactly. The parts are the price table's, for the model the gateway priced the call with (its
   * reported version, else the requested model); the rounding remainder goes to the largest part.
   * When neither prices the call at exactly its recorded cost (prices changed since), the cost is
   * split in proportion to the tokens.
   */
  BigDecimal[] split(String provider, String model, String version, long[] tokens, BigDecimal total) {
    for (String candidate : List.of(version, model)) {
      if (candidate.isEmpty() || provider.isEmpty()) {
        continue;
      }
      Optional<PriceTable.Price> price = prices.price(provider, candidate);
      if (price.isEmpty()) {
        continue;
      }
      PriceTable.Price p = price.get();
      BigDecimal[] exact = {
        p.inputPerMillion().multiply(BigDecimal.valueOf(tokens[0])).divide(MILLION),
        p.outputPerMillion().multiply(BigDecimal.valueOf(tokens[1])).divide(MILLION),
        p.cacheWritePerMillion().multiply(BigDecimal.valueOf(tokens[2])).divide(MILLION),
        p.cacheReadPerMillion().multiply(BigDecimal.valueOf(tokens[3])).divide(MILLION)
      };
      BigDecimal sum = exact[0].add(exact[1]).add(exact[2]).add(exact[3]);
      if (sum.setScale(Money.SCALE, RoundingMode.HALF_EVEN).compareTo(total) == 0) {
        return apportion(exact, total);
      }
    }
    BigDecimal[] weights = new BigDecimal[4];
    for (int i = 0; i < 4; i++) {
      weights[i] = BigDecimal.valueOf(tokens[i]);
    }
    return apportion(weights, total);
  }

  /** Parts proportional to {@code weights}, rounded to the store's scale, adding up to {@code total} exactly. */
  private static BigDecimal[] apportion(BigDecimal[] weights, BigDecimal recorded) {
    // Keel's prices cost at exactly the store's scale; anything finer is rounded once, here
    BigDecimal total = recorded.setScale(Money.SCALE, RoundingMode.HALF_EVEN);
    BigDecimal weightSum = BigDecimal.ZERO;
    int largest = 0;
    for (int i = 0; i < weights.length; i++) {
      weightSum = weightSum.add(weights[i]);
      if (weights[i].compareTo(weights[largest]) > 0) {
        largest = i;
      }
    }
    BigDecimal[] out = new BigDecimal[weights.length];
    BigDecimal assigned = BigDecimal.ZERO;
    for (int i = 0; i < weights.length; i++) {
      out[i] = weightSum.signum() == 0
          ? BigDecimal.ZERO.setScale(Money.SCALE)
          : total.multiply(weights[i]).divide(weightSum, Money.SCALE, RoundingMode.HALF_EVEN);
      assigned = assigned.add(out[i]);
    }
    out[largest] = out[largest].add(total.subtract(assigned)).setScale(Money.SCALE, RoundingMode.UNNECESSARY);
    return out;
  }
}
