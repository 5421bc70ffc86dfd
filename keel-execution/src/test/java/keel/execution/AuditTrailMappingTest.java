package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import keel.core.Content;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.StoredEvent;
import keel.core.ToolCall;
import keel.core.Usage;
import keel.data.AuditRecord;
import org.junit.jupiter.api.Test;

/**
 * The pure mapping from events to audit records, for the cases a live session reaches only after a
 * crash: a human's resolution of an external call whose outcome was unknown, and a re-run attempt.
 */
class AuditTrailMappingTest {

  static final Tool LEDGER = AuditTrailTest.external("ledger_post", "ledger", "post", new java.util.concurrent.atomic.AtomicInteger(), false);

  final SessionState state = SessionState.empty();
  long seq;

  void apply(SessionEvent e) {
    state.apply(new StoredEvent("s1", ++seq, Instant.EPOCH, "n", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", e));
  }

  List<AuditRecord> of(SessionEvent e) {
    return AuditTrail.of(state, "s1", e, name -> name.equals("ledger_post") ? Optional.of(LEDGER) : Optional.empty());
  }

  void untilStarted() {
    apply(new SessionEvent.SessionStarted("clerk", 1, "finance", "user:ann", false));
    apply(new SessionEvent.InputReceived("i1", "go", "user:ann"));
    apply(new SessionEvent.ModelCalled(0, "scripted", "s", "agent:clerk", "t_1"));
    apply(new SessionEvent.ModelResponded(0, "", List.of(new ToolCall("c1", "ledger_post", "{\"amount\":5}")), new Usage(1, 1, 0, 0), "v", 1));
    apply(new SessionEvent.ToolCallAuthorized("c1", "mcp://gateway/ledger/post", false, "agent:clerk", "t_1"));
    apply(new SessionEvent.ToolCallStarted("c1", 1, "k1"));
  }

  @Test
  void anOperatorsResolutionOfAnUnknownOutcome_isAuditedWithTheOperatorAsActor() {
    untilStarted();
    apply(new SessionEvent.ToolOutcomeUnknown("c1", "its node stopped"));

    List<AuditRecord> records = of(new SessionEvent.ToolOutcomeResolved("c1", "succeeded", "posted", "operator:alice"));

    assertThat(records).singleElement().satisfies(r -> {
      assertThat(r.kind()).isEqualTo("tool_outcome_resolved");
      assertThat(r.actor()).isEqualTo("operator:alice");
      assertThat(r.tool()).isEqualTo("ledger/post");
      assertThat(r.owner()).isEqualTo("finance");
      assertThat(r.detail()).contains("\"resolution\":\"succeeded\"").contains("\"call_id\":\"c1\"");
    });
  }

  @Test
  void aCompletionWithABlobResult_recordsItsDigest() {
    untilStarted();

    List<AuditRecord> records = of(new SessionEvent.ToolCallCompleted("c1", new Content.Blob("ab".repeat(32), 70_000, "…"), false, 12));

    assertThat(records).singleElement().satisfies(r -> {
      assertThat(r.kind()).isEqualTo("tool_result");
      assertThat(r.detail()).contains("\"result_sha256\":\"" + "ab".repeat(32) + "\"").contains("\"result_bytes\":70000");
    });
  }

  @Test
  void eventsThatAreNotAboutExternalCalls_haveNoRecord() {
    apply(new SessionEvent.SessionStarted("clerk", 1, "finance", "user:ann", false));
    assertThat(of(new SessionEvent.InputReceived("i1", "go", "user:ann"))).isEmpty();
  }

  @Test
  void anApprovalRequestedDecidedAndAProposal_areAuditedWithTheirRulesAndDeciders() {
    apply(new SessionEvent.SessionStarted("clerk", 1, "finance", "user:ann", false));
    apply(new SessionEvent.InputReceived("i1", "go", "user:ann"));
    apply(new SessionEvent.ModelCalled(0, "scripted", "s", "agent:clerk", "t_1"));
    apply(new SessionEvent.ModelResponded(0, "", List.of(new ToolCall("c1", "ledger_post", "{\"amount\":5000}")), new Usage(1, 1, 0, 0), "v", 1));
    SessionEvent.ApprovalRequested requested = new SessionEvent.ApprovalRequested("c1", "apr_1", "ledger/post", "{\"amount\":5000}",
        new java.math.BigDecimal("5000"), List.of(new keel.core.PolicyReason("spec.approval.on_action_value_usd_gt", "worth 5000 USD, more than 1000")),
        Instant.parse("2026-11-22T00:00:00Z"), "agent:clerk", "user:ann");

    assertThat(of(requested)).singleElement().satisfies(r -> {
      assertThat(r.kind()).isEqualTo("approval_requested");
      assertThat(r.actor()).isEqualTo("agent:clerk");
      assertThat(r.tool()).isEqualTo("ledger/post");
      assertThat(r.detail()).contains("\"approval_id\":\"apr_1\"").contains("\"value_usd\":\"5000\"")
          .contains("\"rule\":\"spec.approval.on_action_value_usd_gt\"").contains("\"amount\":5000");
    });
    apply(requested);

    List<AuditRecord> decided = of(new SessionEvent.ApprovalDecided("c1", "apr_1", "approved", "operator:bea", "checked the invoice", "{\"amount\":4000}"));
    assertThat(decided).singleElement().satisfies(r -> {
      assertThat(r.kind()).isEqualTo("approval_decided");
      assertThat(r.actor()).isEqualTo("operator:bea");
      assertThat(r.tool()).isEqualTo("ledger/post");
      assertThat(r.detail()).contains("\"decision\":\"approved\"").contains("\"reason\":\"checked the invoice\"")
          .contains("\"edited_arguments\":{\"amount\":4000}");
    });

    List<AuditRecord> proposed = of(new SessionEvent.ActionProposed("c2", "ledger/post", "{\"amount\":1}", java.math.BigDecimal.ONE, "agent:clerk"));
    assertThat(proposed).singleElement().satisfies(r -> {
      assertThat(r.kind()).isEqualTo("action_proposed");
      assertThat(r.detail()).contains("\"executed\":false");
    });
  }
}
