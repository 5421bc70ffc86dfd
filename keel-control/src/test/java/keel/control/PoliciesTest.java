package keel.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.core.KeelException;
import keel.core.PolicyDescriptor;
import keel.core.PolicyReason;
import org.junit.jupiter.api.Test;

class PoliciesTest {

  private static final Instant WEDNESDAY = Instant.parse("2026-03-04T10:00:00Z");
  private static final Instant SUNDAY = Instant.parse("2026-03-08T10:00:00Z");
  private final Policies policies = new Policies();

  private static AgentDescriptor agent(String mode, String approval) {
    return (AgentDescriptor) Descriptors.parse("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: payer, owner: finance, labels: {tier: gold}}
        spec:
          instructions: pay
          model: {provider: openai, name: gpt-4o}
          mode: %s
        %s
        """.formatted(mode, approval), "test.yaml").getFirst();
  }

  private static PolicyDescriptor policy(String spec) {
    return (PolicyDescriptor) Descriptors.parse("""
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: p1}
        spec:
        %s
        """.formatted(spec), "p.yaml").getFirst();
  }

  private static Policies.Call call(AgentDescriptor a, String tool, boolean readOnly, String args, Instant now, PolicyDescriptor... ps) {
    return new Policies.Call(a, tool, readOnly, args, Optional.of("args.amount"),
        new Policies.SessionInfo("s1", "s1", "", "operator:ann", 1), now, List.of(ps));
  }

  private static final String THRESHOLD = """
          approval:
            on_action_value_usd_gt: 1000
            rules:
              - when: 'args.to.endsWith("@evil.com")'
                reason: mail outside the allow list
        """;

  @Test
  void belowThreshold_isAllowed_withItsValue() {
    Policies.Decision d = policies.decide(call(agent("autonomous", THRESHOLD), "bank/pay", false, "{\"amount\": 999.5, \"to\": \"a@ok.com\"}", WEDNESDAY));
    assertThat(d).isEqualTo(new Policies.Decision.Allow(new BigDecimal("999.5")));
  }

  @Test
  void aboveThreshold_andRule_needApproval_namingEachRule() {
    Policies.Decision d = policies.decide(call(agent("autonomous", THRESHOLD), "bank/pay", false, "{\"amount\": 1500, \"to\": \"x@evil.com\"}", WEDNESDAY));
    assertThat(d).isInstanceOf(Policies.Decision.RequireApproval.class);
    assertThat(((Policies.Decision.RequireApproval) d).reasons()).extracting(PolicyReason::rule)
        .containsExactly("spec.approval.on_action_value_usd_gt", "spec.approval.rules[0]");
    assertThat(d.valueUsd()).isEqualByComparingTo("1500");
  }

  @Test
  void ruleOnAMissingField_failsClosed_withTheReason() {
    Policies.Decision d = policies.decide(call(agent("autonomous", THRESHOLD), "bank/pay", false, "{\"amount\": 5}", WEDNESDAY));
    assertThat(d).isInstanceOf(Policies.Decision.Deny.class);
    PolicyReason r = ((Policies.Decision.Deny) d).reason();
    assertThat(r.rule()).isEqualTo("spec.approval.rules[0]");
    assertThat(r.reason()).contains("the rule failed, so the call is denied").contains("to");
  }

  @Test
  void policyDeny_onWeekends_usesNow_andAppliesOnlyToItsTools() {
    PolicyDescriptor weekdays = policy("""
          applies_to: {tools: ["bank/pay"]}
          deny_when: 'now.getDayOfWeek() in [0, 6]'
          reason: payments only on weekdays
        """);
    AgentDescriptor a = agent("autonomous", "");
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 1}", SUNDAY, weekdays)))
        .isEqualTo(new Policies.Decision.Deny(new PolicyReason("policy/p1", "payments only on weekdays"), BigDecimal.ONE));
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 1}", WEDNESDAY, weekdays)))
        .isInstanceOf(Policies.Decision.Allow.class);
    assertThat(policies.decide(call(a, "bank/balance", true, "{\"amount\": 1}", SUNDAY, weekdays)))
        .isInstanceOf(Policies.Decision.Allow.class);
  }

  @Test
  void policyOverAgentAndSession_requiresApproval_andRecheckIgnoresIt() {
    PolicyDescriptor gold = policy("""
          require_approval_when: 'agent.labels.tier == "gold" && session.principal == "operator:ann" && value_usd > 10.0'
          reason: gold agents ask first
        """);
    AgentDescriptor a = agent("autonomous", "");
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 11}", WEDNESDAY, gold)))
        .isEqualTo(new Policies.Decision.RequireApproval(List.of(new PolicyReason("policy/p1", "gold agents ask first")), BigDecimal.valueOf(11)));
    assertThat(policies.recheck(call(a, "bank/pay", false, "{\"amount\": 11}", WEDNESDAY, gold)))
        .isInstanceOf(Policies.Decision.Allow.class);
  }

  @Test
  void supervised_approvesEveryChangingCall_butNotReadOnlyOnes() {
    AgentDescriptor a = agent("supervised", "");
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 1}", WEDNESDAY)))
        .isInstanceOf(Policies.Decision.RequireApproval.class);
    assertThat(policies.decide(call(a, "bank/balance", true, "{\"amount\": 1}", WEDNESDAY)))
        .isInstanceOf(Policies.Decision.Allow.class);
  }

  @Test
  void shadow_proposesChangingCalls_butDenyStillWins() {
    AgentDescriptor a = agent("shadow", "");
    PolicyDescriptor never = policy("""
          deny_when: 'args.amount > 100'
          reason: too big
        """);
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 1}", WEDNESDAY, never))).isInstanceOf(Policies.Decision.Propose.class);
    assertThat(policies.decide(call(a, "bank/pay", false, "{\"amount\": 101}", WEDNESDAY, never))).isInstanceOf(Policies.Decision.Deny.class);
    assertThat(policies.decide(call(a, "bank/balance", true, "{\"amount\": 1}", WEDNESDAY, never))).isInstanceOf(Policies.Decision.Allow.class);
  }

  @Test
  void invalidCel_isReported_withItsPosition() {
    assertThat(Policies.validateRule("args.amount >")).singleElement().asString().startsWith("line 1, column");
    assertThat(Policies.validateRule("args.amount + 1")).isNotEmpty();
    assertThat(Policies.validateRule("args.amount > 5 && tool == \"a/b\"")).isEmpty();
    assertThatThrownBy(() -> Policies.requireValidRule("spec.deny_when", "1 +"))
        .isInstanceOf(KeelException.Invalid.class).hasMessageContaining("spec.deny_when: invalid CEL");
  }

  @Test
  void valueExpressionThatFails_deniesTheCall() {
    Policies.Decision d = policies.decide(call(agent("autonomous", THRESHOLD), "bank/pay", false, "{\"to\": \"a@ok.com\"}", WEDNESDAY));
    assertThat(d).isInstanceOf(Policies.Decision.Deny.class);
    assertThat(((Policies.Decision.Deny) d).reason().rule()).isEqualTo("value_usd of bank/pay");
  }
}
