package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link AuditStore} passes, whatever database is underneath: entries chain
 * from the genesis hash with gapless sequence numbers, audit records in a session append commit
 * with its events or not at all, queries filter, verification walks the chain and finds every
 * edit and deletion made with raw SQL on the real database, and many threads appending at once
 * make one unbroken chain. A subclass says how to open the store and how to run raw SQL on it.
 */
public abstract class AuditStoreContract {

  protected static final Instant START = Instant.parse("2026-03-02T10:15:00Z");

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  protected AuditStore audit;

  /** Opens a new, empty store reading time from {@code clock}. */
  protected abstract Store openStore(Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed. */
  protected abstract Store reopenStore(Clock clock);

  /** Runs a statement on the store's database directly, as someone tampering with it would. */
  protected abstract void tamper(String sql) throws SQLException;

  @BeforeEach
  final void openTheStore() {
    store = openStore(clock);
    audit = store.audit();
  }

  @AfterEach
  final void closeTheStore() {
    if (store != null) {
      store.close();
    }
  }

  // ---- helpers

  protected static AuditRecord record(String kind, String agent, String owner, String session, String tool, String detail) {
    return new AuditRecord(kind, "agent:" + agent, owner, agent, session, tool, detail);
  }

  protected static AuditRecord call(int i) {
    return record("tool_call", "invoices", "finance", "s1", "ledger/post", "{\"i\":" + i + "}");
  }

  protected void appendCalls(int n) {
    List<AuditRecord> records = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      records.add(call(i));
    }
    audit.append(records);
  }

  private void createSession(String id) {
    store.events().create(new NewSession(id, "invoices", 1, "finance", "4bf92f3577b34da6a3ce929d0e0e4736",
        Optional.empty(), id,
        List.of(new PendingEvent(new SessionEvent.SessionStarted("invoices", 1, "finance", "user:ann", false),
            "00f067aa0ba902b7")),
        SessionStatus.IDLE, Optional.empty()));
  }

  private static Append sessionAppend(String session, long expectedSeq, AuditRecord... records) {
    return new Append(session, expectedSeq,
        List.of(new PendingEvent(new SessionEvent.InputReceived("in" + expectedSeq, "hi", "user:ann"), "00f067aa0ba902b7")),
        SessionStatus.RUNNABLE, List.of(), Optional.empty()).withAudit(List.of(records));
  }

  private AuditStore.Verification.Broken broken() {
    AuditStore.Verification v = audit.verify(Optional.empty());
    assertThat(v).isInstanceOf(AuditStore.Verification.Broken.class);
    return (AuditStore.Verification.Broken) v;
  }

  // ---- appending

  @Test
  void append_numbersEntriesFromOne_andChainsThemFromGenesis() {
    List<AuditEntry> first = audit.append(List.of(call(1), call(2)));
    clock.advance(Duration.ofSeconds(1));
    List<AuditEntry> second = audit.append(List.of(call(3)));

    assertThat(first).extracting(AuditEntry::seq).containsExactly(1L, 2L);
    assertThat(second).extracting(AuditEntry::seq).containsExactly(3L);
    assertThat(first.get(0).prevHash()).isEqualTo(AuditStore.GENESIS);
    assertThat(first.get(1).prevHash()).isEqualTo(first.get(0).hash());
    assertThat(second.get(0).prevHash()).isEqualTo(first.get(1).hash());
    assertThat(second.get(0).at()).isEqualTo(START.plusSeconds(1));
    assertThat(first.get(0).hash()).isEqualTo(AuditChain.hash(AuditStore.GENESIS, 1, START.toEpochMilli(), call(1)));
    assertThat(audit.head()).isEqualTo(new AuditStore.Head(3, second.get(0).hash()));
    assertThat(audit.query(AuditQuery.all(10))).containsExactlyElementsOf(
        List.of(first.get(0), first.get(1), second.get(0)));
  }

  @Test
  void append_nothing_storesNothing() {
    assertThat(audit.append(List.of())).isEmpty();
    assertThat(audit.head()).isEqualTo(new AuditStore.Head(0, AuditStore.GENESIS));
  }

  @Test
  void append_keepsTheDetailInCanonicalForm() {
    AuditEntry e = audit.append(List.of(record("policy_decision", "a", "o", "", "", " { \"z\": 1, \"a\": {\"y\": 2.50, \"b\": [1, 2]} } "))).get(0);

    assertThat(e.record().detail()).isEqualTo("{\"a\":{\"b\":[1,2],\"y\":2.50},\"z\":1}");
    assertThat(audit.query(AuditQuery.all(1)).get(0).record().detail()).isEqualTo(e.record().detail());
  }

  @Test
  void append_withADetailThatIsNotAJsonObject_isRefused_andStoresNothing() {
    assertThatThrownBy(() -> audit.append(List.of(call(1), record("tool_call", "a", "o", "", "", "[1]"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("tool_call")
        .hasMessageContaining("must be a JSON object");
    assertThatThrownBy(() -> audit.append(List.of(record("tool_call", "a", "o", "", "", "{nope"))))
        .hasMessageContaining("not valid JSON");
    assertThat(audit.head().seq()).isZero();
  }

  @Test
  void record_withABadKindOrNoActor_isRefused() {
    assertThatThrownBy(() -> new AuditRecord("Tool Call", "agent:a", "", "", "", "", "{}"))
        .hasMessageContaining("kind").hasMessageContaining("Tool Call");
    assertThatThrownBy(() -> new AuditRecord("tool_call", " ", "", "", "", "", "{}"))
        .hasMessageContaining("actor");
  }

  @Test
  void theChain_continuesAfterARestart() {
    appendCalls(3);
    store.close();
    store = reopenStore(clock);
    audit = store.audit();
    appendCalls(2);

    assertThat(audit.verify(Optional.empty())).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
        ok -> assertThat(ok.checked()).isEqualTo(5));
  }

  // ---- with a session append

  @Test
  void recordsInASessionAppend_commitWithItsEvents_inTheChain() {
    createSession("s1");
    audit.append(List.of(call(1)));

    store.events().append(sessionAppend("s1", 1, call(2), call(3)));

    assertThat(audit.query(AuditQuery.all(10))).extracting(AuditEntry::seq).containsExactly(1L, 2L, 3L);
    assertThat(audit.query(AuditQuery.all(10).withSession("s1")).get(2).record().detail()).isEqualTo("{\"i\":3}");
    assertThat(audit.verify(Optional.empty())).isInstanceOf(AuditStore.Verification.Intact.class);
  }

  @Test
  void aFailedSessionAppend_writesNoAuditRecord() {
    createSession("s1");
    store.events().append(sessionAppend("s1", 1, call(1)));

    // a stale expected sequence number: the append is refused as a whole
    assertThatThrownBy(() -> store.events().append(sessionAppend("s1", 1, call(2))))
        .isInstanceOf(KeelException.Conflict.class);
    // a session that does not exist
    assertThatThrownBy(() -> store.events().append(sessionAppend("nope", 1, call(3))))
        .isInstanceOf(KeelException.NotFound.class);
    // a record whose detail is not a JSON object: nothing of the append is stored
    assertThatThrownBy(() -> store.events().append(sessionAppend("s1", 2, record("tool_call", "a", "o", "s1", "", "7"))))
        .isInstanceOf(IllegalArgumentException.class);

    assertThat(audit.query(AuditQuery.all(10))).extracting(e -> e.record().detail()).containsExactly("{\"i\":1}");
    assertThat(store.events().session("s1").orElseThrow().lastSeq()).isEqualTo(2);
    assertThat(audit.head().seq()).isEqualTo(1);
    // the chain goes on from the committed head
    store.events().append(sessionAppend("s1", 2, call(4)));
    assertThat(audit.verify(Optional.empty())).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
        ok -> assertThat(ok.checked()).isEqualTo(2));
  }

  // ---- queries

  @Test
  void query_filtersByEveryField_andPages() {
    audit.append(List.of(
        record("tool_call", "invoices", "finance", "s1", "ledger/post", "{}"),
        record("tool_result", "invoices", "finance", "s1", "ledger/post", "{}"),
        record("policy_decision", "mailer", "sales", "s2", "mail/send", "{}")));
    clock.advance(Duration.ofHours(1));
    audit.append(List.of(record("catalog_change", "", "", "", "mail/send", "{}")));

    assertThat(seqs(AuditQuery.all(10).withKind("tool_result"))).containsExactly(2L);
    assertThat(seqs(AuditQuery.all(10).withAgent("mailer"))).containsExactly(3L);
    assertThat(seqs(AuditQuery.all(10).withOwner("finance"))).containsExactly(1L, 2L);
    assertThat(seqs(AuditQuery.all(10).withSession("s2"))).containsExactly(3L);
    assertThat(seqs(AuditQuery.all(10).withTool("mail/send"))).containsExactly(3L, 4L);
    assertThat(seqs(AuditQuery.all(10).withSince(START.plusSeconds(60)))).containsExactly(4L);
    assertThat(seqs(AuditQuery.all(10).withUntil(START.plusSeconds(60)))).containsExactly(1L, 2L, 3L);
    assertThat(seqs(AuditQuery.all(2))).containsExactly(1L, 2L);
    assertThat(seqs(AuditQuery.all(2).withAfter(2))).containsExactly(3L, 4L);
    assertThat(seqs(AuditQuery.all(10).withOwners(Set.of("sales", "hr")))).containsExactly(3L);
    assertThat(seqs(AuditQuery.all(10).withOwners(Set.of()))).isEmpty();
    assertThat(seqs(AuditQuery.all(10).withTool("ledger/post").withKind("tool_call"))).containsExactly(1L);
  }

  private List<Long> seqs(AuditQuery q) {
    return audit.query(q).stream().map(AuditEntry::seq).toList();
  }

  // ---- verification

  @Test
  void verify_anEmptyLog_isIntact() {
    assertThat(audit.verify(Optional.empty()))
        .isEqualTo(new AuditStore.Verification.Intact(0, AuditStore.GENESIS, Optional.empty()));
  }

  @Test
  void verify_walksALogLongerThanAPage() {
    for (int i = 0; i < 5; i++) {
      appendCalls(JdbcAuditStore.PAGE / 2 + 7);
    }
    AuditStore.Head head = audit.head();

    assertThat(audit.verify(Optional.empty())).isEqualTo(
        new AuditStore.Verification.Intact(head.seq(), head.hash(), Optional.empty()));
    assertThat(head.seq()).isGreaterThan(2L * JdbcAuditStore.PAGE);
  }

  @Test
  void verify_withAnEarlierHeadAsAnchor_findsIt() {
    appendCalls(3);
    String anchor = audit.head().hash();
    appendCalls(4);

    assertThat(audit.verify(Optional.of(anchor))).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
        ok -> assertThat(ok.anchorSeq()).contains(3L));
    assertThat(audit.verify(Optional.of(AuditStore.GENESIS))).isInstanceOfSatisfying(
        AuditStore.Verification.Intact.class, ok -> assertThat(ok.anchorSeq()).contains(0L));
  }

  @Test
  void verify_withAnAnchorNotInTheChain_isBroken() {
    appendCalls(3);

    AuditStore.Verification v = audit.verify(Optional.of("ab".repeat(32)));

    assertThat(v).isInstanceOfSatisfying(AuditStore.Verification.Broken.class, b -> {
      assertThat(b.problem()).isEqualTo(AuditStore.Problem.ANCHOR_MISSING);
      assertThat(b.reason()).contains("ab".repeat(32));
    });
  }

  @Test
  void verify_withAMalformedAnchor_saysWhatIsExpected() {
    assertThatThrownBy(() -> audit.verify(Optional.of("xyz")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("64 lowercase hex digits");
  }

  @Test
  void tamper_editedDetail_isAHashMismatchAtThatEntry() throws SQLException {
    appendCalls(5);
    tamper("UPDATE audit_log SET detail = '{\"i\":300}' WHERE seq = 3");

    AuditStore.Verification.Broken b = broken();

    assertThat(b.seq()).isEqualTo(3);
    assertThat(b.problem()).isEqualTo(AuditStore.Problem.HASH_MISMATCH);
    assertThat(b.checked()).isEqualTo(2);
    assertThat(b.reason()).contains("entry 3").contains("edited");
  }

  @Test
  void tamper_whitespaceAddedToADetail_isDetected() throws SQLException {
    appendCalls(2);
    tamper("UPDATE audit_log SET detail = '{ \"i\":1}' WHERE seq = 1");

    assertThat(broken().problem()).isEqualTo(AuditStore.Problem.HASH_MISMATCH);
  }

  @Test
  void tamper_deletedMiddleEntry_isASequenceGap() throws SQLException {
    appendCalls(5);
    tamper("DELETE FROM audit_log WHERE seq = 3");

    AuditStore.Verification.Broken b = broken();

    assertThat(b.seq()).isEqualTo(3);
    assertThat(b.problem()).isEqualTo(AuditStore.Problem.SEQUENCE_GAP);
    assertThat(b.reason()).contains("entry 3 missing").contains("deleted");
  }

  @Test
  void tamper_deletedFirstEntry_isASequenceGap() throws SQLException {
    appendCalls(3);
    tamper("DELETE FROM audit_log WHERE seq = 1");

    assertThat(broken()).satisfies(b -> {
      assertThat(b.seq()).isEqualTo(1);
      assertThat(b.problem()).isEqualTo(AuditStore.Problem.SEQUENCE_GAP);
    });
  }

  @Test
  void tamper_deletedTail_isDetectedAgainstTheHeadRow() throws SQLException {
    appendCalls(5);
    tamper("DELETE FROM audit_log WHERE seq >= 4");

    AuditStore.Verification.Broken b = broken();

    assertThat(b.seq()).isEqualTo(4);
    assertThat(b.problem()).isEqualTo(AuditStore.Problem.TAIL_MISSING);
    assertThat(b.checked()).isEqualTo(3);
    assertThat(b.reason()).contains("entries 4 to 5 are missing");
  }

  @Test
  void tamper_editedAndRehashedMiddleEntry_isDetectedByTheNextLink() throws SQLException {
    appendCalls(5);
    AuditEntry third = audit.query(AuditQuery.all(1).withAfter(2)).get(0);
    AuditRecord forged = record("tool_call", "invoices", "finance", "s1", "ledger/post", "{\"i\":999}");
    String rehash = AuditChain.hash(third.prevHash(), 3, third.at().toEpochMilli(), forged);
    tamper("UPDATE audit_log SET detail = '{\"i\":999}', hash = '" + rehash + "' WHERE seq = 3");

    AuditStore.Verification.Broken b = broken();

    assertThat(b.seq()).isEqualTo(4);
    assertThat(b.problem()).isEqualTo(AuditStore.Problem.LINK_MISMATCH);
    assertThat(b.reason()).contains("entry 4").contains("replaced or re-hashed");
  }

  @Test
  void tamper_editedAndRehashedLastEntry_isDetectedByTheHeadRow() throws SQLException {
    appendCalls(3);
    AuditEntry last = audit.query(AuditQuery.all(1).withAfter(2)).get(0);
    AuditRecord forged = record("tool_call", "invoices", "finance", "s1", "ledger/post", "{\"i\":999}");
    String rehash = AuditChain.hash(last.prevHash(), 3, last.at().toEpochMilli(), forged);
    tamper("UPDATE audit_log SET detail = '{\"i\":999}', hash = '" + rehash + "' WHERE seq = 3");

    AuditStore.Verification.Broken b = broken();

    assertThat(b.seq()).isEqualTo(3);
    assertThat(b.problem()).isEqualTo(AuditStore.Problem.HEAD_MISMATCH);
  }

  @Test
  void tamper_rewrittenTailAndHead_isDetectedOnlyByAnExternalAnchor() throws SQLException {
    appendCalls(3);
    String anchor = audit.head().hash();
    AuditEntry second = audit.query(AuditQuery.all(1).withAfter(1)).get(0);
    tamper("DELETE FROM audit_log WHERE seq = 3");
    tamper("UPDATE audit_head SET seq = 2, hash = '" + second.hash() + "' WHERE id = 1");

    assertThat(audit.verify(Optional.empty())).isInstanceOf(AuditStore.Verification.Intact.class);
    AuditStore.Verification v = audit.verify(Optional.of(anchor));
    assertThat(v).isInstanceOfSatisfying(AuditStore.Verification.Broken.class,
        b -> assertThat(b.problem()).isEqualTo(AuditStore.Problem.ANCHOR_MISSING));
  }

  // ---- concurrency

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void manyThreadsAppending_makeOneUnbrokenChain() throws Exception {
    createSession("s1");
    int threads = 12;
    int each = 25;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        futures.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < each; i++) {
            if (thread == 0) {
              // one thread writes with session appends, the others alone
              long last = store.events().session("s1").orElseThrow().lastSeq();
              store.events().append(sessionAppend("s1", last, call(i), call(i)));
            } else {
              audit.append(List.of(call(thread * 1000 + i)));
            }
          }
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }

    long expected = (threads - 1L) * each + 2L * each;
    assertThat(audit.verify(Optional.empty())).isInstanceOfSatisfying(AuditStore.Verification.Intact.class,
        ok -> assertThat(ok.checked()).isEqualTo(expected));
  }
}
