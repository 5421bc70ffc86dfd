package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keel.control.ChangeReview;
import keel.core.Descriptors;
import keel.core.EventCodec;
import keel.data.InventoryStore;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code keel apply}, {@code keel rollout …} and {@code keel diff} against a real server over HTTP.
 * The server has one principal ({@code operator:admin}); a second person's change is applied
 * through the server's store as {@code operator:alice}.
 */
class RolloutCliTest {

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: greeter, owner: team-b}
      spec:
        instructions: Greet.
        model: {provider: scripted, name: g, script: [{turns: [{say: "Hi there."}]}]}
        budgets: {usd_per_day: 5}
        max_steps: 10
      """;
  static final String WIDER = AGENT.replace("usd_per_day: 5", "usd_per_day: 50");
  static final String NARROWER = AGENT.replace("max_steps: 10", "max_steps: 5");

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", Files.readString(server.adminTokenFile()).strip());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  Result cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  Result apply(String yaml) throws Exception {
    Path f = Files.writeString(dir.resolve("greeter.yaml"), yaml);
    Result r = cli("apply", "-f", f.toString());
    assertThat(r.code()).as(r.err()).isZero();
    return r;
  }

  void applyAsAlice(String yaml) {
    var d = Descriptors.parse(yaml, "alice.yaml").getFirst();
    server.store().inventory().apply(
        List.of(new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d))),
        "operator:alice", ChangeReview.reviewer());
  }

  @Test
  void apply_showsAPendingRevision_withWhyAndHowToDecideIt() throws Exception {
    assertThat(apply(AGENT).out()).contains("agent/greeter created (revision 1)");
    Result r = apply(WIDER);
    assertThat(r.out().lines()).containsExactly(
        "agent/greeter pending approval (revision 2)",
        "  widens: spec.budgets.usd_per_day: raised from 5 to 50",
        "  it becomes active once someone other than operator:admin approves it: keel rollout approve greeter 2"
            + " (or: keel rollout reject greeter 2 --reason ...)");
    assertThat(apply(WIDER).out()).contains("agent/greeter unchanged (revision 2, pending approval)");
    Result narrowed = apply(NARROWER);
    assertThat(narrowed.out().lines()).containsExactly(
        "agent/greeter changed (revision 3)",
        "  pending revision 2 was superseded and will not be decided");

    Path f = Files.writeString(dir.resolve("dry.yaml"), WIDER);
    Result dry = cli("apply", "-f", f.toString(), "--dry-run");
    assertThat(dry.out()).contains("agent/greeter pending approval (revision 4) (dry run)", "  widens: spec.budgets.usd_per_day: raised from 5 to 50");

    apply(WIDER);
    assertThat(cli("get", "agents").out()).contains("3 (4 pending)");
    assertThat(cli("describe", "agent", "greeter").out())
        .contains("Pending: revision 4 widens what the agent may do:", "  widens: spec.budgets.usd_per_day: raised from 5 to 50");
  }

  @Test
  void approve_yourOwnChange_isRefused_withTheReason() throws Exception {
    apply(AGENT);
    apply(WIDER);
    Result r = cli("rollout", "approve", "greeter", "2");
    assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(r.err()).contains("operator:admin applied revision 2 of agent \"greeter\", so it may not approve it");
  }

  @Test
  void approve_someoneElsesChange_activatesIt() throws Exception {
    apply(AGENT);
    applyAsAlice(WIDER);
    Result r = cli("rollout", "approve", "greeter", "2");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).isEqualTo("agent/greeter revision 2 approved by operator:admin; it is now active\n");
    Result again = cli("rollout", "approve", "greeter", "2");
    assertThat(again.code()).isEqualTo(ExitCodes.CONFLICT);
    assertThat(again.err()).contains("already active");
  }

  @Test
  void reject_needsAReason_andHistoryShowsTheDecision() throws Exception {
    apply(AGENT);
    applyAsAlice(WIDER);
    assertThat(cli("rollout", "reject", "greeter", "2").code()).isEqualTo(ExitCodes.USAGE);
    Result r = cli("rollout", "reject", "greeter", "2", "--reason", "ten times the budget");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("agent/greeter revision 2 rejected by operator:admin; the active revision stays in force");

    Result h = cli("rollout", "history", "greeter");
    assertThat(h.code()).as(h.err()).isZero();
    List<String> lines = h.out().lines().toList();
    assertThat(lines.getFirst()).startsWith("REVISION").contains("STATUS", "APPLIED BY", "APPLIED AT", "DECIDED BY", "NOTE");
    assertThat(lines.get(1)).startsWith("1 ").contains("active", "operator:admin");
    assertThat(lines.get(2)).startsWith("2 ").contains("rejected", "operator:alice", "operator:admin", "rejected: ten times the budget; widened");
    assertThat(h.out()).contains("Revision 2 widens what the agent may do:", "  widens: spec.budgets.usd_per_day: raised from 5 to 50");

    Result json = cli("rollout", "history", "greeter", "-o", "json");
    assertThat(EventCodec.mapper().readTree(json.out()).get("revisions").get(1).get("reason").asString()).isEqualTo("ten times the budget");
    assertThat(cli("rollout", "history", "nobody").code()).isEqualTo(ExitCodes.NOT_FOUND);
  }

  @Test
  void undo_rollsBack_narrowingAtOnce_wideningPending() throws Exception {
    apply(AGENT);
    apply(NARROWER);
    Result undo = cli("rollout", "undo", "greeter");
    assertThat(undo.code()).as(undo.err()).isZero();
    assertThat(undo.out()).startsWith("agent/greeter rollback to revision 1 is revision 3, pending approval\n")
        .contains("  widens: spec.max_steps: raised from 5 to 10");
    Result toTwo = cli("rollout", "undo", "greeter", "--to-revision", "2");
    assertThat(toTwo.out()).contains("agent/greeter unchanged: revision 2 (active) already has that descriptor")
        .contains("pending revision 3 was superseded");
    applyAsAlice(WIDER);
    assertThat(cli("rollout", "approve", "greeter", "4").code()).isZero();
    Result back = cli("rollout", "undo", "greeter", "--to-revision", "2");
    assertThat(back.out()).contains("agent/greeter rolled back to revision 2 as revision 5 (active)");
    assertThat(cli("rollout", "undo", "greeter", "--to-revision", "3").code()).isEqualTo(ExitCodes.CONFLICT);
  }

  @Test
  void diff_isPlainWhenNotATerminal_andColouredOnRequest() throws Exception {
    apply(AGENT);
    apply(WIDER);
    Result d = cli("diff", "greeter", "1", "2");
    assertThat(d.code()).as(d.err()).isZero();
    assertThat(d.out()).doesNotContain("\u001B[");
    assertThat(d.out().lines()).containsSubsequence(
        "agent/greeter revision 1 (active) → revision 2 (pending): widens what the agent may do",
        "  widens: spec.budgets.usd_per_day: raised from 5 to 50",
        "",
        "--- agent/greeter revision 1",
        "+++ agent/greeter revision 2",
        "-    usd_per_day: 5",
        "+    usd_per_day: 50");
    Result back = cli("diff", "greeter", "2", "1");
    assertThat(back.out()).contains("does not widen", "  other:  spec.budgets.usd_per_day: lowered from 50 to 5");

    Result coloured = cli("diff", "greeter", "1", "2", "--color", "always");
    assertThat(coloured.out()).contains("\u001B[31m-    usd_per_day: 5\u001B[0m", "\u001B[32m+    usd_per_day: 50\u001B[0m");
    assertThat(cli("diff", "greeter", "1", "1").out()).contains("The two revisions have the same descriptor.");
    assertThat(cli("diff", "greeter", "1", "9").code()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(EventCodec.mapper().readTree(cli("diff", "greeter", "1", "2", "-o", "json").out()).get("widens").asBoolean()).isTrue();
  }

  @Test
  void rolloutWithoutASubcommand_printsItsUsage() {
    Result r = cli("rollout");
    assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).contains("history", "approve", "reject", "undo");
  }
}
