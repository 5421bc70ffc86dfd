package keel.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import keel.core.AgentDescriptor;
import keel.core.AgentDescriptor.ApprovalRule;
import keel.core.AgentDescriptor.ApprovalSpec;
import keel.core.AgentDescriptor.Budgets;
import keel.core.AgentDescriptor.ConcurrencySpec;
import keel.core.AgentDescriptor.MemorySpec;
import keel.core.AgentDescriptor.ModelSpec;
import keel.core.Metadata;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Properties of the classifier over generated agents. The one that matters most for security: a
 * widening change cannot be split into steps that each look harmless.
 */
class ChangeReviewPropertiesTest {

  static final List<String> TOOL_POOL =
      List.of(
          "internal://memory", "internal://time", "mcp://gateway/inv", "mcp://gateway/inv/get", "mcp://gateway/inv/pay",
          "mcp://gateway/mail/draft", "agent://helper");
  static final List<ApprovalRule> RULE_POOL =
      List.of(new ApprovalRule("tool == \"pay\"", "payments"), new ApprovalRule("args.amount > 10", "amounts"));

  /** An agent made of independent choices, one per dimension, so any two can be mixed. */
  record Choices(
      String owner,
      String instructions,
      int model,
      Optional<String> pin,
      AgentDescriptor.OnDrift onDrift,
      Optional<Duration> cacheTtl,
      AgentDescriptor.MemoryType memory,
      Optional<Integer> retention,
      Set<String> tools,
      Optional<Integer> callsPerHour,
      Optional<BigDecimal> usdPerDay,
      Optional<Long> tokensPerDay,
      Optional<Integer> toolCallsPerHour,
      Optional<BigDecimal> threshold,
      Set<ApprovalRule> rules,
      Optional<Integer> maxActive,
      AgentDescriptor.Mode mode,
      int maxSteps) {

    AgentDescriptor agent() {
      List<String[]> models = List.of(new String[] {"openai", "gpt"}, new String[] {"openai", "gpt-mini"}, new String[] {"anthropic", "claude"});
      String[] m = models.get(model);
      Budgets b = new Budgets(callsPerHour, usdPerDay, tokensPerDay, toolCallsPerHour);
      boolean anyBudget = callsPerHour.isPresent() || usdPerDay.isPresent() || tokensPerDay.isPresent() || toolCallsPerHour.isPresent();
      Optional<ApprovalSpec> approval =
          threshold.isEmpty() && rules.isEmpty()
              ? Optional.empty()
              : Optional.of(new ApprovalSpec(threshold, sorted(rules), List.of(), Optional.empty()));
      return new AgentDescriptor(
          new Metadata("a", owner, Map.of()),
          new AgentDescriptor.Spec(
              instructions,
              new ModelSpec(m[0], m[1], pin, Optional.empty(), Optional.empty(), onDrift, Optional.empty(), List.of(), cacheTtl, List.of()),
              new MemorySpec(memory, retention),
              tools.stream().sorted().toList(),
              anyBudget ? Optional.of(b) : Optional.empty(),
              approval,
              new ConcurrencySpec(AgentDescriptor.ConcurrencyMode.PER_SESSION, Optional.empty(), maxActive, AgentDescriptor.OnBusy.ENQUEUE),
              mode,
              maxSteps));
    }

    private static List<ApprovalRule> sorted(Set<ApprovalRule> rules) {
      return rules.stream().sorted((x, y) -> x.when().compareTo(y.when())).toList();
    }

    /** Each dimension from this or from {@code other}, as {@code mask}'s bits say. */
    Choices mix(Choices o, long mask) {
      return new Choices(
          bit(mask, 0) ? o.owner : owner,
          bit(mask, 1) ? o.instructions : instructions,
          bit(mask, 2) ? o.model : model,
          bit(mask, 3) ? o.pin : pin,
          bit(mask, 4) ? o.onDrift : onDrift,
          bit(mask, 5) ? o.cacheTtl : cacheTtl,
          bit(mask, 6) ? o.memory : memory,
          bit(mask, 7) ? o.retention : retention,
          bit(mask, 8) ? o.tools : tools,
          bit(mask, 9) ? o.callsPerHour : callsPerHour,
          bit(mask, 10) ? o.usdPerDay : usdPerDay,
          bit(mask, 11) ? o.tokensPerDay : tokensPerDay,
          bit(mask, 12) ? o.toolCallsPerHour : toolCallsPerHour,
          bit(mask, 13) ? o.threshold : threshold,
          bit(mask, 14) ? o.rules : rules,
          bit(mask, 15) ? o.maxActive : maxActive,
          bit(mask, 16) ? o.mode : mode,
          bit(mask, 17) ? o.maxSteps : maxSteps);
    }

    private static boolean bit(long mask, int i) {
      return (mask & (1L << i)) != 0;
    }
  }

  @Provide
  Arbitrary<Choices> agents() {
    Arbitrary<String> owner = Arbitraries.of("finance", "sales");
    Arbitrary<String> instructions = Arbitraries.of("Pay.", "Pay carefully.");
    Arbitrary<Integer> model = Arbitraries.integers().between(0, 2);
    Arbitrary<Optional<String>> pin = Arbitraries.of("p1", "p2").optional(0.5);
    Arbitrary<AgentDescriptor.OnDrift> drift = Arbitraries.of(AgentDescriptor.OnDrift.class);
    Arbitrary<Optional<Duration>> ttl = Arbitraries.of(Duration.ofMinutes(1), Duration.ofMinutes(5)).optional(0.3);
    Arbitrary<AgentDescriptor.MemoryType> memory = Arbitraries.of(AgentDescriptor.MemoryType.class);
    Arbitrary<Optional<Integer>> retention = Arbitraries.of(7, 30, 90).optional(0.6);
    Arbitrary<Set<String>> tools = Arbitraries.of(TOOL_POOL).set().ofMaxSize(TOOL_POOL.size());
    Arbitrary<Optional<Integer>> small = Arbitraries.of(10, 100, 1000).optional(0.6);
    Arbitrary<Optional<BigDecimal>> usd = Arbitraries.of(new BigDecimal("5"), new BigDecimal("40"), new BigDecimal("40.5")).optional(0.6);
    Arbitrary<Optional<Long>> tokens = Arbitraries.of(1_000L, 100_000L).optional(0.6);
    Arbitrary<Set<ApprovalRule>> rules = Arbitraries.of(RULE_POOL).set().ofMaxSize(RULE_POOL.size());
    Arbitrary<AgentDescriptor.Mode> mode = Arbitraries.of(AgentDescriptor.Mode.class);
    Arbitrary<Integer> steps = Arbitraries.of(5, 20, 50);
    Arbitrary<Object[]> first =
        Combinators.combine(owner, instructions, model, pin, drift, ttl, memory, retention)
            .as((a, b, c, d, e, f, g, h) -> new Object[] {a, b, c, d, e, f, g, h});
    Arbitrary<Object[]> second =
        Combinators.combine(tools, small, usd, tokens, small, usd, rules, small)
            .as((a, b, c, d, e, f, g, h) -> new Object[] {a, b, c, d, e, f, g, h});
    return Combinators.combine(first, second, mode, steps).as(ChangeReviewPropertiesTest::choices);
  }

  @SuppressWarnings("unchecked")
  private static Choices choices(Object[] f, Object[] s, AgentDescriptor.Mode mode, int steps) {
    return new Choices(
        (String) f[0], (String) f[1], (Integer) f[2], (Optional<String>) f[3], (AgentDescriptor.OnDrift) f[4],
        (Optional<Duration>) f[5], (AgentDescriptor.MemoryType) f[6], (Optional<Integer>) f[7],
        (Set<String>) s[0], (Optional<Integer>) s[1], ((Optional<BigDecimal>) s[2]), (Optional<Long>) s[3],
        (Optional<Integer>) s[4], (Optional<BigDecimal>) s[5], (Set<ApprovalRule>) s[6], (Optional<Integer>) s[7], mode, steps);
  }

  static ChangeReview review(Choices a, Choices b) {
    return ChangeReview.between(a.agent(), b.agent());
  }

  @Property
  void noChange_hasNothingToReport(@ForAll("agents") Choices a) {
    ChangeReview r = review(a, a);
    assertThat(r.widening()).isEmpty();
    assertThat(r.narrowing()).isEmpty();
  }

  @Property
  void somethingChanged_isAlwaysReported(@ForAll("agents") Choices a, @ForAll("agents") Choices b) {
    ChangeReview r = review(a, b);
    boolean differs = !a.agent().equals(b.agent());
    assertThat(!r.widening().isEmpty() || !r.narrowing().isEmpty()).isEqualTo(differs);
  }

  /**
   * No smuggling: if going from a to c widens, then going through any b made of some of a's and
   * some of c's settings widens on at least one of the two steps.
   */
  @Property(tries = 2000)
  void aWideningChange_cannotBeSplitIntoHarmlessSteps(
      @ForAll("agents") Choices a, @ForAll("agents") Choices c, @ForAll long mask) {
    Choices b = a.mix(c, mask);
    if (review(a, c).widens()) {
      assertThat(review(a, b).widens() || review(b, c).widens())
          .as("a → b → c where a → c widens: %s", review(a, c).widening())
          .isTrue();
    }
  }

  /** Non-widening is transitive: two steps that each grant nothing grant nothing together. */
  @Property(tries = 2000)
  void narrowingSteps_addUpToANarrowingChange(
      @ForAll("agents") Choices a, @ForAll("agents") Choices other, @ForAll long m1, @ForAll long m2) {
    // walk towards `other` only along dimensions where that does not widen, twice
    Choices b = narrowTowards(a, other, m1);
    Choices c = narrowTowards(b, other, m2);
    assertThat(review(a, b).widens()).as("first step %s", review(a, b).widening()).isFalse();
    assertThat(review(b, c).widens()).as("second step %s", review(b, c).widening()).isFalse();
    assertThat(review(a, c).widens()).as("both steps %s", review(a, c).widening()).isFalse();
  }

  /** Takes each of {@code target}'s settings chosen by the mask when taking it alone widens nothing. */
  private static Choices narrowTowards(Choices from, Choices target, long mask) {
    Choices at = from;
    for (int i = 0; i < 18; i++) {
      if ((mask & (1L << i)) == 0) {
        continue;
      }
      Choices step = at.mix(target, 1L << i);
      if (!review(at, step).widens()) {
        at = step;
      }
    }
    return at;
  }

  /** A limit, a level or a threshold cannot widen in both directions; only sets and "any change" fields can. */
  @Property
  void onlyAnyChangeFields_widenBothWays(@ForAll("agents") Choices a, @ForAll("agents") Choices b) {
    Set<String> both = fields(review(a, b).widening());
    both.retainAll(fields(review(b, a).widening()));
    assertThat(both).isSubsetOf(Set.of("spec.tools", "spec.approval.rules", "spec.model.provider", "spec.model.name", "spec.model.pinned_revision", "metadata.owner"));
  }

  /** Adding any capability the agent lacks widens; removing one never does. */
  @Property
  void tools_addingWidens_removingDoesNot(@ForAll("agents") Choices a) {
    for (String t : TOOL_POOL) {
      Set<String> with = new java.util.TreeSet<>(a.tools());
      with.add(t);
      Choices added = a.mix(new Choices(a.owner(), a.instructions(), a.model(), a.pin(), a.onDrift(), a.cacheTtl(), a.memory(),
          a.retention(), with, a.callsPerHour(), a.usdPerDay(), a.tokensPerDay(), a.toolCallsPerHour(), a.threshold(), a.rules(),
          a.maxActive(), a.mode(), a.maxSteps()), 1L << 8);
      boolean wasCovered = ChangeReview.covered(t, new ArrayList<>(a.tools()));
      assertThat(review(a, added).widens()).as("adding %s to %s", t, a.tools()).isEqualTo(!wasCovered);
      assertThat(review(added, a).widens()).as("removing %s", t).isFalse();
    }
  }

  private static Set<String> fields(List<String> reasons) {
    return reasons.stream().map(r -> r.substring(0, r.indexOf(':'))).collect(Collectors.toCollection(java.util.HashSet::new));
  }
}
