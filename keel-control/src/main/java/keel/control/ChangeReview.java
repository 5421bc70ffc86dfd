package keel.control;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import keel.core.AgentDescriptor;
import keel.core.AgentDescriptor.ApprovalRule;
import keel.core.AgentDescriptor.ApprovalSpec;
import keel.core.AgentDescriptor.Budgets;
import keel.core.Descriptors;
import keel.data.InventoryStore;

/**
 * What a change of an agent does to what it may do: each field that changed, as a reason that
 * either <em>widens</em> (grants more: the change waits for an approver) or does not (it narrows,
 * or changes something that grants nothing; it applies at once).
 *
 * <p>Widening, field by field (docs/agents.md has the table):
 *
 * <ul>
 *   <li>{@code spec.tools}: a capability URI the agent did not have, unless a server-level URI it
 *       had already covers it ({@code mcp://gateway/x} covers {@code mcp://gateway/x/tool});
 *   <li>limits, where absent means unlimited: a budget, {@code approval.on_action_value_usd_gt},
 *       {@code memory.retention_days}, {@code concurrency.max_active_sessions} raised or removed;
 *       {@code max_steps} raised;
 *   <li>{@code mode} towards autonomy (shadow &lt; supervised &lt; autonomous); {@code memory.type}
 *       towards keeping more (none &lt; session &lt; persistent);
 *   <li>an approval rule removed or its condition changed; the approvers changed;
 *   <li>the model: provider, name, pinned revision, base URL, routing, fallbacks or script changed;
 *       {@code on_drift} loosened to {@code warn}; a response cache added or lengthened;
 *   <li>{@code metadata.owner} changed: other operators gain the agent.
 * </ul>
 *
 * <p>Everything else (instructions, labels, temperature, concurrency mode and {@code on_busy},
 * approval expiry) is reported among the non-widening changes. The classification is monotone:
 * a sequence of non-widening changes never adds up to a widening one (a property test checks it),
 * so widening cannot be smuggled in a step at a time.
 *
 * <p>Immutable and thread-safe.
 *
 * @param widening the reasons the change grants more, one per field, in field order
 * @param narrowing every other field that changed, with how
 */
public record ChangeReview(List<String> widening, List<String> narrowing) {

  public ChangeReview {
    widening = List.copyOf(widening);
    narrowing = List.copyOf(narrowing);
  }

  /** Whether the change grants more and so waits for approval. */
  public boolean widens() {
    return !widening.isEmpty();
  }

  /** The review as the inventory stores it. */
  public InventoryStore.Review toStore() {
    return new InventoryStore.Review(widening, narrowing);
  }

  /**
   * The reviewer {@code apply} and rollback use: agents are reviewed with {@link #between}; other
   * kinds (MCP servers, policies) are applied by admins and take effect at once.
   */
  public static InventoryStore.Reviewer reviewer() {
    return (active, change) -> {
      if (!active.kind().equals("Agent") || !change.kind().equals("Agent")) {
        return InventoryStore.Review.NONE;
      }
      AgentDescriptor before = (AgentDescriptor) Descriptors.fromCanonicalJson("Agent", active.spec());
      AgentDescriptor after = (AgentDescriptor) Descriptors.fromCanonicalJson("Agent", change.spec());
      return between(before, after).toStore();
    };
  }

  /** Reviews the change from {@code before} (the active revision) to {@code after}. */
  public static ChangeReview between(AgentDescriptor before, AgentDescriptor after) {
    Objects.requireNonNull(before, "before");
    Objects.requireNonNull(after, "after");
    Collector c = new Collector();
    AgentDescriptor.Spec b = before.spec();
    AgentDescriptor.Spec a = after.spec();

    // metadata
    if (!before.metadata().owner().equals(after.metadata().owner())) {
      c.widens("metadata.owner", "changed from " + quote(before.metadata().owner()) + " to " + quote(after.metadata().owner())
          + ": the new owner's operators gain the agent");
    }
    if (!before.metadata().labels().equals(after.metadata().labels())) {
      c.neutral("metadata.labels", "changed");
    }
    if (!b.instructions().equals(a.instructions())) {
      c.neutral("spec.instructions", "changed");
    }

    model(c, b.model(), a.model());

    // memory
    ordered(c, "spec.memory.type", b.memory().type().ordinal(), a.memory().type().ordinal(),
        word(b.memory().type()), word(a.memory().type()), "keeps more");
    limit(c, "spec.memory.retention_days", b.memory().retentionDays(), a.memory().retentionDays(), "notes are kept forever");

    tools(c, b.tools(), a.tools());

    // budgets
    Budgets nb = new Budgets(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
    Budgets bb = b.budgets().orElse(nb);
    Budgets ab = a.budgets().orElse(nb);
    limit(c, "spec.budgets.calls_per_hour", bb.callsPerHour(), ab.callsPerHour(), "no limit");
    limit(c, "spec.budgets.usd_per_day", bb.usdPerDay(), ab.usdPerDay(), "no limit");
    limit(c, "spec.budgets.tokens_per_day", bb.tokensPerDay(), ab.tokensPerDay(), "no limit");
    limit(c, "spec.budgets.tool_calls_per_hour", bb.toolCallsPerHour(), ab.toolCallsPerHour(), "no limit");

    approval(c, b.approval(), a.approval());

    // concurrency
    if (b.concurrency().mode() != a.concurrency().mode() || !b.concurrency().partitionKey().equals(a.concurrency().partitionKey())) {
      c.neutral("spec.concurrency.mode", "changed from " + describe(b.concurrency()) + " to " + describe(a.concurrency()));
    }
    limit(c, "spec.concurrency.max_active_sessions", b.concurrency().maxActiveSessions(), a.concurrency().maxActiveSessions(),
        "no limit of its own");
    if (b.concurrency().onBusy() != a.concurrency().onBusy()) {
      c.neutral("spec.concurrency.on_busy", "changed from " + word(b.concurrency().onBusy()) + " to " + word(a.concurrency().onBusy()));
    }

    ordered(c, "spec.mode", modeLevel(b.mode()), modeLevel(a.mode()), word(b.mode()), word(a.mode()),
        "external actions need less approval");
    limit(c, "spec.max_steps", Optional.of(b.maxSteps()), Optional.of(a.maxSteps()), "no limit");
    return new ChangeReview(c.widening, c.narrowing);
  }

  private static void model(Collector c, AgentDescriptor.ModelSpec b, AgentDescriptor.ModelSpec a) {
    changed(c, "spec.model.provider", b.provider(), a.provider());
    changed(c, "spec.model.name", b.name(), a.name());
    changed(c, "spec.model.pinned_revision", b.pinnedRevision().orElse("none"), a.pinnedRevision().orElse("none"));
    changed(c, "spec.model.base_url", b.baseUrl().orElse("the provider's default"), a.baseUrl().orElse("the provider's default"));
    if (!b.routing().equals(a.routing())) {
      c.widens("spec.model.routing", "changed: other models may answer");
    }
    if (!b.fallbacks().equals(a.fallbacks())) {
      c.widens("spec.model.fallbacks", "changed from " + refs(b.fallbacks()) + " to " + refs(a.fallbacks()));
    }
    if (!b.script().equals(a.script())) {
      c.widens("spec.model.script", "changed: the scripted model answers differently");
    }
    ordered(c, "spec.model.on_drift", driftLevel(b.onDrift()), driftLevel(a.onDrift()), word(b.onDrift()), word(a.onDrift()),
        "a model that drifted from its pin keeps answering");
    if (!b.temperature().equals(a.temperature())) {
      c.neutral("spec.model.temperature", "changed from " + b.temperature().map(String::valueOf).orElse("the provider's default")
          + " to " + a.temperature().map(String::valueOf).orElse("the provider's default"));
    }
    // a response cache declares calls insensitive: answers are reused, so longer grants more
    long bt = b.responseCacheTtl().map(Duration::toMillis).orElse(0L);
    long at = a.responseCacheTtl().map(Duration::toMillis).orElse(0L);
    if (at > bt) {
      c.widens("spec.model.response_cache_ttl", (bt == 0 ? "set to " : "raised from " + b.responseCacheTtl().get() + " to ")
          + a.responseCacheTtl().get() + ": answers are reused across sessions for longer");
    } else if (at < bt) {
      c.neutral("spec.model.response_cache_ttl", at == 0 ? "removed" : "lowered from " + b.responseCacheTtl().get() + " to " + a.responseCacheTtl().get());
    }
  }

  private static void tools(Collector c, List<String> before, List<String> after) {
    for (String t : new LinkedHashSet<>(after)) {
      if (!covered(t, before)) {
        c.widens("spec.tools", "adds " + t);
      }
    }
    for (String t : new LinkedHashSet<>(before)) {
      if (!after.contains(t)) {
        c.neutral("spec.tools", covered(t, after) ? "replaces " + t + " by a server-level grant that covers it" : "removes " + t);
      }
    }
  }

  /**
   * Whether a capability is granted by a set: listed itself, or an MCP tool of a server listed
   * whole ({@code mcp://gateway/x} covers {@code mcp://gateway/x/tool}), or a version of a tool
   * listed unpinned ({@code mcp://gateway/x/tool} covers {@code mcp://gateway/x/tool@2}).
   */
  static boolean covered(String capability, List<String> grants) {
    return Grants.allows(grants, capability);
  }

  private static void approval(Collector c, Optional<ApprovalSpec> before, Optional<ApprovalSpec> after) {
    ApprovalSpec none = new ApprovalSpec(Optional.empty(), List.of(), List.of(), Optional.empty());
    ApprovalSpec b = before.orElse(none);
    ApprovalSpec a = after.orElse(none);
    limit(c, "spec.approval.on_action_value_usd_gt", b.onActionValueUsdGt(), a.onActionValueUsdGt(),
        "no action waits for approval because of its value");
    Set<String> afterConditions = new LinkedHashSet<>(a.rules().stream().map(ApprovalRule::when).toList());
    Set<String> beforeConditions = new LinkedHashSet<>(b.rules().stream().map(ApprovalRule::when).toList());
    for (ApprovalRule r : b.rules()) {
      if (!afterConditions.contains(r.when())) {
        c.widens("spec.approval.rules", "removes the rule " + quote(r.when()) + " (" + r.reason() + ")");
      }
    }
    for (ApprovalRule r : a.rules()) {
      if (!beforeConditions.contains(r.when())) {
        c.neutral("spec.approval.rules", "adds the rule " + quote(r.when()));
      }
    }
    for (ApprovalRule r : a.rules()) {
      b.rules().stream()
          .filter(x -> x.when().equals(r.when()) && !x.reason().equals(r.reason()))
          .findFirst()
          .ifPresent(x -> c.neutral("spec.approval.rules", "rewords the reason of " + quote(r.when())));
    }
    if (!new LinkedHashSet<>(b.approvers()).equals(new LinkedHashSet<>(a.approvers()))) {
      c.widens("spec.approval.approvers", "changed from " + b.approvers() + " to " + a.approvers() + ": other people decide");
    }
    if (!b.expiresAfter().equals(a.expiresAfter())) {
      c.neutral("spec.approval.expires_after", "changed from " + b.expiresAfter().map(Duration::toString).orElse("none")
          + " to " + a.expiresAfter().map(Duration::toString).orElse("none"));
    }
  }

  /** A limit where absent means unlimited: raising or removing it widens. */
  private static <T extends Comparable<T>> void limit(
      Collector c, String field, Optional<T> before, Optional<T> after, String unlimited) {
    Function<T, String> text = v -> v instanceof BigDecimal d ? d.stripTrailingZeros().toPlainString() : String.valueOf(v);
    if (before.isPresent() && after.isEmpty()) {
      c.widens(field, "removed (was " + text.apply(before.get()) + "): " + unlimited);
    } else if (before.isEmpty() && after.isPresent()) {
      c.neutral(field, "set to " + text.apply(after.get()) + " (was " + unlimited + ")");
    } else if (before.isPresent()) {
      int cmp = after.get().compareTo(before.get());
      if (cmp > 0) {
        c.widens(field, "raised from " + text.apply(before.get()) + " to " + text.apply(after.get()));
      } else if (cmp < 0) {
        c.neutral(field, "lowered from " + text.apply(before.get()) + " to " + text.apply(after.get()));
      }
    }
  }

  /** A setting with levels: moving up widens. Equal levels with different values are neutral. */
  private static void ordered(Collector c, String field, int before, int after, String b, String a, String why) {
    if (after > before) {
      c.widens(field, "changed from " + b + " to " + a + ": " + why);
    } else if (!a.equals(b)) {
      c.neutral(field, "changed from " + b + " to " + a);
    }
  }

  private static void changed(Collector c, String field, String before, String after) {
    if (!before.equals(after)) {
      c.widens(field, "changed from " + quote(before) + " to " + quote(after));
    }
  }

  private static int modeLevel(AgentDescriptor.Mode m) {
    return switch (m) {
      case SHADOW -> 0;
      case SUPERVISED -> 1;
      case AUTONOMOUS -> 2;
    };
  }

  private static int driftLevel(AgentDescriptor.OnDrift d) {
    return switch (d) {
      case FAIL, SUSPEND -> 0;
      case WARN -> 1;
    };
  }

  private static String describe(AgentDescriptor.ConcurrencySpec s) {
    return word(s.mode()) + s.partitionKey().map(k -> " by " + k).orElse("");
  }

  private static String refs(List<AgentDescriptor.ModelRef> refs) {
    return refs.isEmpty() ? "none" : refs.stream().map(r -> r.provider() + "/" + r.name()).toList().toString();
  }

  private static String word(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  private static String quote(String s) {
    return "\"" + s + "\"";
  }

  /** Reasons in field order. Not thread-safe; lives for one review. */
  private static final class Collector {
    final List<String> widening = new ArrayList<>();
    final List<String> narrowing = new ArrayList<>();

    void widens(String field, String why) {
      widening.add(field + ": " + why);
    }

    void neutral(String field, String what) {
      narrowing.add(field + ": " + what);
    }
  }
}
