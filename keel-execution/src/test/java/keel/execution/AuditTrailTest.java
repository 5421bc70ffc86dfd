package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.AuditEntry;
import keel.data.AuditQuery;
import keel.data.AuditStore;
import keel.data.SessionRecord;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real session over a real SQLite store calls an external test tool ({@code mcp://gateway/ledger/post}),
 * an internal tool and an external tool it is not granted: the external call's authorization, start
 * and result, and the denial, are in the audit log, chained, with the session's agent, owner and
 * tool; the internal call is not.
 */
class AuditTrailTest {

  @TempDir Path dir;
  Store store;
  SessionService sessions;
  final AtomicInteger ledgerCalls = new AtomicInteger();

  static Tool external(String name, String server, String tool, AtomicInteger calls, boolean fail) {
    return new Tool() {
      @Override
      public ToolSpec spec() {
        return new ToolSpec(name, "A test MCP tool.", "{\"type\":\"object\"}");
      }

      @Override
      public String capability() {
        return "mcp://gateway/" + server + "/" + tool;
      }

      @Override
      public boolean idempotent() {
        return false;
      }

      @Override
      public boolean external() {
        return true;
      }

      @Override
      public String catalogName() {
        return server + "/" + tool;
      }

      @Override
      public ToolOutput call(ToolContext context, String arguments) {
        calls.incrementAndGet();
        return fail ? ToolOutput.error("ledger closed") : ToolOutput.ok("posted " + arguments);
      }
    };
  }

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-test", Clock.systemUTC(), true);
    Identity identity = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
    List<Tool> tools = new ArrayList<>(new InternalTools().tools(new ToolEnvironment(store, Clock.systemUTC(), dir, Map.of())));
    tools.add(external("ledger_post", "ledger", "post", ledgerCalls, false));
    tools.add(external("ledger_close", "ledger", "close", new AtomicInteger(), true));
    tools.add(external("mail_send", "mail", "send", new AtomicInteger(), false));
    sessions = SessionService.create(
        store, ModelProviders.create(Map.of()), ToolRegistry.of(tools), Clock.systemUTC(),
        ExecutionSettings.defaults("node-test"), PriceTable.builtIn(), identity, TokenPresenter.HELD);
  }

  @AfterEach
  void close() {
    sessions.close();
    store.close();
  }

  @Test
  void aSessionsExternalCalls_andDenials_areAudited_inTheSameChain() {
    Agents.apply(store, IdentityHarness.agent("clerk", """
        - turns:
            - call: [{tool: ledger_post, args: {amount: 12, memo: rent}}, {tool: time_now, args: {}}, {tool: mail_send, args: {to: x}}, {tool: wire_money, args: {}}]
            - call: [{tool: ledger_close, args: {}}]
            - say: done
        """, "mcp://gateway/ledger, internal://time"));
    SessionRecord r = sessions.start(new SessionService.Start("clerk", "go", "operator:ann", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(20)).until(() -> sessions.record(r.id()).effectiveStatus() == SessionStatus.IDLE);

    List<AuditEntry> entries = store.audit().query(AuditQuery.all(100).withSession(r.id()));
    assertThat(entries).extracting(e -> e.record().kind() + " " + e.record().tool()).containsExactly(
        "policy_decision ledger/post",
        "tool_call ledger/post",
        "tool_result ledger/post",
        "policy_decision mail/send",
        "policy_decision wire_money",
        "policy_decision ledger/close",
        "tool_call ledger/close",
        "tool_result ledger/close");
    assertThat(ledgerCalls.get()).isEqualTo(1);
    assertThat(entries).allSatisfy(e -> {
      assertThat(e.record().agent()).isEqualTo("clerk");
      assertThat(e.record().owner()).isEqualTo("team-a");
      assertThat(e.record().actor()).isEqualTo("agent:clerk");
    });
    String callId = events(r.id(), SessionEvent.ToolCallStarted.class).getFirst().callId();
    assertThat(entries.get(0).record().detail())
        .contains("\"decision\":\"allow\"").contains("\"capability\":\"mcp://gateway/ledger/post\"")
        .contains("\"call_id\":\"" + callId + "\"");
    assertThat(entries.get(1).record().detail())
        .contains("\"arguments\":{\"amount\":12,\"memo\":\"rent\"}").contains("\"attempt\":1")
        .contains("\"idempotency_key\":\"" + events(r.id(), SessionEvent.ToolCallStarted.class).getFirst().idempotencyKey() + "\"");
    assertThat(entries.get(2).record().detail()).contains("\"error\":false").contains("\"result_sha256\":\"");
    assertThat(entries.get(3).record().detail()).contains("\"decision\":\"deny\"").contains("not granted");
    assertThat(entries.get(4).record().detail()).contains("\"unknown_tool\":true");
    assertThat(entries.get(7).record().detail()).contains("\"error\":true").contains("\"error_message\":\"ledger closed\"");
    assertThat(store.audit().verify(Optional.empty())).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
        ok -> assertThat(ok.checked()).isEqualTo(8));
  }

  @Test
  void aSessionWithOnlyInternalTools_writesNoAuditRecord() {
    Agents.apply(store, IdentityHarness.agent("timer", """
        - turns:
            - call: [{tool: time_now, args: {}}]
            - say: done
        """, "internal://time"));
    SessionRecord r = sessions.start(new SessionService.Start("timer", "go", "operator:ann", false, Optional.empty(), Optional.empty()));
    await().atMost(Duration.ofSeconds(20)).until(() -> sessions.record(r.id()).effectiveStatus() == SessionStatus.IDLE);

    assertThat(events(r.id(), SessionEvent.ToolCallCompleted.class)).hasSize(1);
    assertThat(store.audit().head().seq()).isZero();
  }

  private <T extends SessionEvent> List<T> events(String id, Class<T> type) {
    return sessions.events(id, 0, 10_000).stream().map(StoredEvent::event).filter(type::isInstance).map(type::cast).toList();
  }
}
