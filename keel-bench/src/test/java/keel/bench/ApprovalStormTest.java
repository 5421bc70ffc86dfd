package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the approval storm with a few sessions against a real server, model fake and ledger: every
 * approved call is executed exactly once on the ledger's side and every session completes.
 */
class ApprovalStormTest {

  @TempDir Path work;

  @Test
  void approvalStorm_withFewSessions_executesEveryApprovedCallOnce_andCompletesEverySession() throws Exception {
    Map<String, Object> r = new ApprovalStorm(new ApprovalStorm.Options(6, 5, 8, work), new Progress(true)).run();

    // ApprovalStorm itself throws when a call is lost or repeated; the figures must say the same
    assertThat(r.get("approvals")).isEqualTo(30);
    assertThat(r.get("executed_calls")).isEqualTo(30);
    assertThat(r.get("distinct_idempotency_keys")).isEqualTo(30);
    assertThat(r.get("sessions_completed")).isEqualTo(6L);
    assertThat(((Number) r.get("approvals_per_second")).doubleValue()).isPositive();
    assertThat(((Number) r.get("all_completed_seconds")).doubleValue())
        .isGreaterThanOrEqualTo(((Number) r.get("approvals_acknowledged_seconds")).doubleValue());
    // each session: the turn that asks, then the answer after its five results
    assertThat(((Number) r.get("model_requests")).intValue()).isEqualTo(12);
    assertThat(Bench.markdown(new java.util.LinkedHashMap<>(Map.of("machine", Bench.machine(), "approval_storm", r))))
        .contains("### Approval storm", "approvals acknowledged per second", "30 (30) of 30");
  }

  @Test
  void settings_quick_runTheStormSmall() {
    Bench.Settings s = Bench.Settings.parse(new String[] {"approval-storm", "mcp-gateway", "--quick"});
    assertThat(s.runs("approval-storm")).isTrue();
    assertThat(s.runs("mcp-gateway")).isTrue();
    assertThat(s.runs("durable-steps")).isFalse();
    assertThat(s.stormSessions()).isEqualTo(50);
    assertThat(Bench.Settings.parse(new String[] {"approval-storm"}).stormSessions()).isEqualTo(1_000);
  }
}
