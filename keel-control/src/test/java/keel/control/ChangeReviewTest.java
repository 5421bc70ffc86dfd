package keel.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.data.InventoryStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The classifier, field by field: one named row per kind of change, with its exact reasons. */
class ChangeReviewTest {

  static final String BASE =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: payer, owner: finance, labels: {tier: one}}
      spec:
        instructions: Pay invoices.
        model: {provider: openai, name: gpt-5, pinned_revision: "2026-01-01", on_drift: fail, temperature: 0}
        memory: {type: session}
        tools: [internal://memory, mcp://gateway/invoices/list]
        budgets: {calls_per_hour: 100, usd_per_day: 40, tokens_per_day: 100000, tool_calls_per_hour: 50}
        approval:
          on_action_value_usd_gt: 1000
          rules: [{when: 'tool == "pay"', reason: payments}]
          approvers: [finance-leads]
          expires_after: 24h
        concurrency: {max_active_sessions: 5}
        mode: supervised
        max_steps: 20
      """;

  /** One row: the change from BASE made by replacing {@code old} with {@code now}, or its reverse. */
  record Case(String name, String from, String to, List<String> widening, List<String> narrowing) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Case change(String name, String old, String now, List<String> widening, List<String> narrowing) {
    if (!BASE.contains(old)) {
      throw new IllegalArgumentException(name + ": BASE has no \"" + old + "\"");
    }
    return new Case(name, BASE, BASE.replace(old, now), widening, narrowing);
  }

  /** The change from BASE-with-{@code now} back to BASE. */
  static Case back(String name, String old, String now, List<String> widening, List<String> narrowing) {
    Case c = change(name, old, now, widening, narrowing);
    return new Case(name, c.to(), c.from(), widening, narrowing);
  }

  static final String TOOLS = "tools: [internal://memory, mcp://gateway/invoices/list]";

  static Stream<Case> cases() {
    List<Case> cs = new ArrayList<>();
    cs.add(new Case("nothing changed", BASE, BASE, List.of(), List.of()));
    // tools
    cs.add(change("adding a tool widens", TOOLS, "tools: [internal://memory, mcp://gateway/invoices/list, mcp://gateway/payments]",
        List.of("spec.tools: adds mcp://gateway/payments"), List.of()));
    cs.add(change("adding a sub-agent widens", TOOLS, "tools: [internal://memory, mcp://gateway/invoices/list, agent://helper]",
        List.of("spec.tools: adds agent://helper"), List.of()));
    cs.add(change("removing a tool narrows", TOOLS, "tools: [mcp://gateway/invoices/list]",
        List.of(), List.of("spec.tools: removes internal://memory")));
    cs.add(change("a whole server instead of one of its tools widens", TOOLS, "tools: [internal://memory, mcp://gateway/invoices]",
        List.of("spec.tools: adds mcp://gateway/invoices"),
        List.of("spec.tools: replaces mcp://gateway/invoices/list by a server-level grant that covers it")));
    cs.add(back("one tool instead of its whole server narrows", TOOLS, "tools: [internal://memory, mcp://gateway/invoices]",
        List.of(), List.of("spec.tools: removes mcp://gateway/invoices")));
    String whole = BASE.replace(TOOLS, "tools: [internal://memory, mcp://gateway/invoices]");
    cs.add(new Case("a tool of a server already granted whole adds nothing", whole,
        whole.replace("mcp://gateway/invoices]", "mcp://gateway/invoices, mcp://gateway/invoices/pay]"), List.of(), List.of()));
    cs.add(change("reordering tools changes nothing", TOOLS, "tools: [mcp://gateway/invoices/list, internal://memory]",
        List.of(), List.of()));
    // budgets
    cs.add(change("raising usd_per_day widens", "usd_per_day: 40", "usd_per_day: 80.50",
        List.of("spec.budgets.usd_per_day: raised from 40 to 80.5"), List.of()));
    cs.add(change("lowering usd_per_day narrows", "usd_per_day: 40", "usd_per_day: 39.99",
        List.of(), List.of("spec.budgets.usd_per_day: lowered from 40 to 39.99")));
    cs.add(change("raising calls_per_hour widens", "calls_per_hour: 100", "calls_per_hour: 101",
        List.of("spec.budgets.calls_per_hour: raised from 100 to 101"), List.of()));
    cs.add(change("raising tokens_per_day widens", "tokens_per_day: 100000", "tokens_per_day: 200000",
        List.of("spec.budgets.tokens_per_day: raised from 100000 to 200000"), List.of()));
    cs.add(change("raising tool_calls_per_hour widens", "tool_calls_per_hour: 50", "tool_calls_per_hour: 60",
        List.of("spec.budgets.tool_calls_per_hour: raised from 50 to 60"), List.of()));
    cs.add(change("removing a budget widens: no limit", "calls_per_hour: 100, ", "",
        List.of("spec.budgets.calls_per_hour: removed (was 100): no limit"), List.of()));
    cs.add(back("setting a budget narrows", "calls_per_hour: 100, ", "",
        List.of(), List.of("spec.budgets.calls_per_hour: set to 100 (was no limit)")));
    cs.add(change("removing every budget widens four times",
        "  budgets: {calls_per_hour: 100, usd_per_day: 40, tokens_per_day: 100000, tool_calls_per_hour: 50}\n", "",
        List.of(
            "spec.budgets.calls_per_hour: removed (was 100): no limit",
            "spec.budgets.usd_per_day: removed (was 40): no limit",
            "spec.budgets.tokens_per_day: removed (was 100000): no limit",
            "spec.budgets.tool_calls_per_hour: removed (was 50): no limit"),
        List.of()));
    // approval
    cs.add(change("raising the approval threshold widens", "on_action_value_usd_gt: 1000", "on_action_value_usd_gt: 5000",
        List.of("spec.approval.on_action_value_usd_gt: raised from 1000 to 5000"), List.of()));
    cs.add(change("lowering the approval threshold narrows", "on_action_value_usd_gt: 1000", "on_action_value_usd_gt: 10",
        List.of(), List.of("spec.approval.on_action_value_usd_gt: lowered from 1000 to 10")));
    cs.add(change("removing the approval threshold widens", "    on_action_value_usd_gt: 1000\n", "",
        List.of("spec.approval.on_action_value_usd_gt: removed (was 1000): no action waits for approval because of its value"),
        List.of()));
    cs.add(change("removing an approval rule widens", "    rules: [{when: 'tool == \"pay\"', reason: payments}]\n", "",
        List.of("spec.approval.rules: removes the rule \"tool == \"pay\"\" (payments)"), List.of()));
    cs.add(back("adding an approval rule narrows", "    rules: [{when: 'tool == \"pay\"', reason: payments}]\n", "",
        List.of(), List.of("spec.approval.rules: adds the rule \"tool == \"pay\"\"")));
    cs.add(change("loosening a rule's condition widens", "when: 'tool == \"pay\"'", "when: 'tool == \"pay\" && args.amount > 100'",
        List.of("spec.approval.rules: removes the rule \"tool == \"pay\"\" (payments)"),
        List.of("spec.approval.rules: adds the rule \"tool == \"pay\" && args.amount > 100\"")));
    cs.add(change("rewording a rule's reason changes nothing it grants", "reason: payments", "reason: every payment",
        List.of(), List.of("spec.approval.rules: rewords the reason of \"tool == \"pay\"\"")));
    cs.add(change("changing the approvers widens", "approvers: [finance-leads]", "approvers: [finance-leads, interns]",
        List.of("spec.approval.approvers: changed from [finance-leads] to [finance-leads, interns]: other people decide"), List.of()));
    cs.add(change("changing how long an approval waits is neutral", "expires_after: 24h", "expires_after: 48h",
        List.of(), List.of("spec.approval.expires_after: changed from PT24H to PT48H")));
    cs.add(change("removing the whole approval section widens",
        "  approval:\n    on_action_value_usd_gt: 1000\n    rules: [{when: 'tool == \"pay\"', reason: payments}]\n"
            + "    approvers: [finance-leads]\n    expires_after: 24h\n", "",
        List.of(
            "spec.approval.on_action_value_usd_gt: removed (was 1000): no action waits for approval because of its value",
            "spec.approval.rules: removes the rule \"tool == \"pay\"\" (payments)",
            "spec.approval.approvers: changed from [finance-leads] to []: other people decide"),
        List.of("spec.approval.expires_after: changed from PT24H to none")));
    // mode
    cs.add(change("supervised to autonomous widens", "mode: supervised", "mode: autonomous",
        List.of("spec.mode: changed from supervised to autonomous: external actions need less approval"), List.of()));
    cs.add(change("supervised to shadow narrows", "mode: supervised", "mode: shadow",
        List.of(), List.of("spec.mode: changed from supervised to shadow")));
    cs.add(back("shadow to supervised widens: actions run", "mode: supervised", "mode: shadow",
        List.of("spec.mode: changed from shadow to supervised: external actions need less approval"), List.of()));
    // model
    cs.add(change("changing the model's name widens", "name: gpt-5,", "name: gpt-5-mini,",
        List.of("spec.model.name: changed from \"gpt-5\" to \"gpt-5-mini\""), List.of()));
    cs.add(change("changing the provider widens", "provider: openai, name: gpt-5,", "provider: anthropic, name: gpt-5,",
        List.of("spec.model.provider: changed from \"openai\" to \"anthropic\""), List.of()));
    cs.add(change("changing the pin widens", "pinned_revision: \"2026-01-01\"", "pinned_revision: \"2026-02-01\"",
        List.of("spec.model.pinned_revision: changed from \"2026-01-01\" to \"2026-02-01\""), List.of()));
    cs.add(change("unpinning widens", "pinned_revision: \"2026-01-01\", ", "",
        List.of("spec.model.pinned_revision: changed from \"2026-01-01\" to \"none\""), List.of()));
    cs.add(change("another base URL widens", "on_drift: fail,", "on_drift: fail, base_url: \"http://127.0.0.1:9/v1\",",
        List.of("spec.model.base_url: changed from \"the provider's default\" to \"http://127.0.0.1:9/v1\""), List.of()));
    cs.add(change("adding routing widens", "on_drift: fail,", "on_drift: fail, routing: {small: {provider: openai, name: gpt-5-nano}, escalate_on: [model_error]},",
        List.of("spec.model.routing: changed: other models may answer"), List.of()));
    cs.add(change("adding a fallback widens", "on_drift: fail,", "on_drift: fail, fallbacks: [{provider: anthropic, name: claude}],",
        List.of("spec.model.fallbacks: changed from none to [anthropic/claude]"), List.of()));
    cs.add(change("loosening on_drift to warn widens", "on_drift: fail", "on_drift: warn",
        List.of("spec.model.on_drift: changed from fail to warn: a model that drifted from its pin keeps answering"), List.of()));
    cs.add(change("fail to suspend is neutral", "on_drift: fail", "on_drift: suspend",
        List.of(), List.of("spec.model.on_drift: changed from fail to suspend")));
    cs.add(change("the temperature is neutral", "temperature: 0", "temperature: 0.5",
        List.of(), List.of("spec.model.temperature: changed from 0.0 to 0.5")));
    cs.add(change("a response cache widens", "temperature: 0}", "temperature: 0, response_cache_ttl: 10m}",
        List.of("spec.model.response_cache_ttl: set to PT10M: answers are reused across sessions for longer"), List.of()));
    // memory, steps, concurrency
    cs.add(change("session to persistent memory widens", "memory: {type: session}", "memory: {type: persistent}",
        List.of("spec.memory.type: changed from session to persistent: keeps more"), List.of()));
    cs.add(change("session to no memory narrows", "memory: {type: session}", "memory: {type: none}",
        List.of(), List.of("spec.memory.type: changed from session to none")));
    String kept30 = BASE.replace("memory: {type: session}", "memory: {type: persistent, retention_days: 30}");
    cs.add(new Case("removing the retention widens", kept30, BASE.replace("memory: {type: session}", "memory: {type: persistent}"),
        List.of("spec.memory.retention_days: removed (was 30): notes are kept forever"), List.of()));
    cs.add(new Case("keeping notes longer widens", kept30, kept30.replace("retention_days: 30", "retention_days: 31"),
        List.of("spec.memory.retention_days: raised from 30 to 31"), List.of()));
    cs.add(change("raising max_steps widens", "max_steps: 20", "max_steps: 21",
        List.of("spec.max_steps: raised from 20 to 21"), List.of()));
    cs.add(change("lowering max_steps narrows", "max_steps: 20", "max_steps: 5",
        List.of(), List.of("spec.max_steps: lowered from 20 to 5")));
    cs.add(change("raising max_active_sessions widens", "max_active_sessions: 5", "max_active_sessions: 50",
        List.of("spec.concurrency.max_active_sessions: raised from 5 to 50"), List.of()));
    cs.add(change("on_busy is neutral", "max_active_sessions: 5}", "max_active_sessions: 5, on_busy: reject}",
        List.of(), List.of("spec.concurrency.on_busy: changed from enqueue to reject")));
    // metadata and text
    cs.add(change("another owner widens", "owner: finance", "owner: sales",
        List.of("metadata.owner: changed from \"finance\" to \"sales\": the new owner's operators gain the agent"), List.of()));
    cs.add(change("labels are neutral", "labels: {tier: one}", "labels: {tier: two}",
        List.of(), List.of("metadata.labels: changed")));
    cs.add(change("instructions are neutral", "instructions: Pay invoices.", "instructions: Pay every invoice twice.",
        List.of(), List.of("spec.instructions: changed")));
    cs.add(change("a mixed change widens, and lists both sides", "mode: supervised\n  max_steps: 20", "mode: autonomous\n  max_steps: 5",
        List.of("spec.mode: changed from supervised to autonomous: external actions need less approval"),
        List.of("spec.max_steps: lowered from 20 to 5")));
    return cs.stream();
  }

  static AgentDescriptor agent(String yaml) {
    return (AgentDescriptor) Descriptors.parse(yaml, "test.yaml").getFirst();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void classifies(Case c) {
    ChangeReview r = ChangeReview.between(agent(c.from()), agent(c.to()));
    assertThat(r.widening()).as("widening").containsExactlyElementsOf(c.widening());
    assertThat(r.narrowing()).as("narrowing").containsExactlyElementsOf(c.narrowing());
    assertThat(r.widens()).isEqualTo(!c.widening().isEmpty());
  }

  @Test
  void theStoreReviewer_reviewsAgents_andLetsOtherKindsThrough() {
    InventoryStore.Reviewer reviewer = ChangeReview.reviewer();
    String before = Descriptors.canonicalJson(agent(BASE));
    String after = Descriptors.canonicalJson(agent(BASE.replace("mode: supervised", "mode: autonomous")));
    InventoryStore.Revision active = revision("Agent", before);
    InventoryStore.Review review = reviewer.review(active, new InventoryStore.Change("Agent", "payer", "finance", after));
    assertThat(review.widens()).isTrue();
    assertThat(review.widening()).singleElement().asString().startsWith("spec.mode:");
    InventoryStore.Revision policy = revision("Policy", "{}");
    assertThat(reviewer.review(policy, new InventoryStore.Change("Policy", "payer", "finance", "{\"x\":1}")))
        .isEqualTo(InventoryStore.Review.NONE);
  }

  static InventoryStore.Revision revision(String kind, String spec) {
    return new InventoryStore.Revision(kind, "payer", 1, "finance", spec, "op:a", java.time.Instant.EPOCH,
        InventoryStore.Status.ACTIVE, InventoryStore.Review.NONE, java.util.Optional.empty(),
        java.util.Optional.of(java.time.Instant.EPOCH), java.util.Optional.empty());
  }
}
