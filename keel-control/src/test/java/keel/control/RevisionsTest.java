package keel.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import keel.core.Descriptor;
import keel.core.Descriptors;
import keel.core.KeelException;
import keel.data.InventoryStore;
import keel.data.InventoryStore.Status;
import keel.data.MutableClock;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The approval rules over a real SQLite store, with callers of different principals and roles. */
class RevisionsTest {

  static final Caller ANN = new Caller("operator:ann", List.of(new Caller.Binding(Role.ADMIN, Optional.empty())));
  static final Caller BOB = new Caller("operator:bob", List.of(new Caller.Binding(Role.APPROVER, Optional.of("finance"))));
  static final Caller CY = new Caller("operator:cy", List.of(new Caller.Binding(Role.APPROVER, Optional.of("sales"))));
  static final Caller DEE = new Caller("operator:dee", List.of(new Caller.Binding(Role.ADMIN, Optional.of("finance"))));
  static final Caller VIC = new Caller("operator:vic", List.of(new Caller.Binding(Role.VIEWER, Optional.empty())));

  static final String BASE = ChangeReviewTest.BASE;

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(Instant.parse("2026-03-01T09:00:00Z"));
  Store store;
  Revisions revisions;
  final List<String> activations = new CopyOnWriteArrayList<>();

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-a", clock, true);
    revisions = new Revisions(store.inventory(), activations::add);
  }

  @AfterEach
  void close() {
    store.close();
  }

  List<InventoryStore.Applied> apply(String yaml, Caller by) {
    List<InventoryStore.Change> changes = Descriptors.parse(yaml, "test.yaml").stream()
        .map(d -> new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d)))
        .toList();
    return revisions.apply(changes, by.principal());
  }

  int active() {
    return store.inventory().latest("Agent", "payer").orElseThrow().number();
  }

  @Test
  void aFirstApply_isActiveAtOnce_andAnnounced() {
    InventoryStore.Applied a = apply(BASE, ANN).getFirst();
    assertThat(a.revision().status()).isEqualTo(Status.ACTIVE);
    assertThat(activations).containsExactly("payer");
  }

  @Test
  void aWideningChange_waits_thenAnotherApproverActivatesIt() {
    apply(BASE, ANN);
    activations.clear();
    InventoryStore.Applied pending = apply(BASE.replace("usd_per_day: 40", "usd_per_day: 400"), ANN).getFirst();
    assertThat(pending.revision().status()).isEqualTo(Status.PENDING);
    assertThat(pending.revision().review().widening()).containsExactly("spec.budgets.usd_per_day: raised from 40 to 400");
    assertThat(activations).as("a pending revision activates nothing").isEmpty();
    assertThat(active()).isEqualTo(1);

    clock.advance(Duration.ofMinutes(3));
    InventoryStore.Revision approved = revisions.approve("payer", 2, BOB);
    assertThat(approved.status()).isEqualTo(Status.ACTIVE);
    assertThat(approved.decision().orElseThrow().by()).isEqualTo("operator:bob");
    assertThat(approved.decision().orElseThrow().at()).isEqualTo(clock.instant());
    assertThat(active()).isEqualTo(2);
    assertThat(activations).containsExactly("payer");
  }

  @Test
  void selfApproval_isForbidden_withAMessageSayingWhoMay() {
    apply(BASE, ANN);
    apply(BASE.replace("mode: supervised", "mode: autonomous"), ANN);
    assertThatThrownBy(() -> revisions.approve("payer", 2, ANN))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("operator:ann applied revision 2 of agent \"payer\", so it may not approve it")
        .hasMessageContaining("an approver for owner \"finance\", other than operator:ann");
    assertThat(store.inventory().revision("Agent", "payer", 2).orElseThrow().status()).isEqualTo(Status.PENDING);
    // even an admin everywhere: the rule is about people, not roles
    apply(BASE.replace("mode: supervised", "mode: autonomous").replace("max_steps: 20", "max_steps: 30"), DEE);
    assertThatThrownBy(() -> revisions.approve("payer", 3, DEE)).isInstanceOf(KeelException.Forbidden.class);
    assertThat(revisions.approve("payer", 3, ANN).status()).isEqualTo(Status.ACTIVE);
  }

  @Test
  void anApproverOfAnotherOwner_orAViewer_mayNotDecide() {
    apply(BASE, ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    assertThatThrownBy(() -> revisions.approve("payer", 2, CY))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("needs the role approver for owner \"finance\"");
    assertThatThrownBy(() -> revisions.reject("payer", 2, VIC, "no")).isInstanceOf(KeelException.Forbidden.class);
    assertThat(store.inventory().pending("Agent", "payer")).isPresent();
  }

  @Test
  void movingAnAgentToAnotherOwner_needsAnApproverOfTheNewOwnerToo() {
    apply(BASE, ANN);
    apply(BASE.replace("owner: finance", "owner: sales"), ANN);
    assertThatThrownBy(() -> revisions.approve("payer", 2, BOB))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("owner \"sales\"");
    assertThatThrownBy(() -> revisions.approve("payer", 2, CY))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("owner \"finance\"");
    Caller both = new Caller("operator:both", List.of(
        new Caller.Binding(Role.APPROVER, Optional.of("sales")), new Caller.Binding(Role.APPROVER, Optional.of("finance"))));
    assertThat(revisions.approve("payer", 2, both).owner()).isEqualTo("sales");
  }

  @Test
  void reject_needsAReason_keepsTheActiveRevision_andTheApplierMayWithdrawTheirOwn() {
    apply(BASE, ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    assertThatThrownBy(() -> revisions.reject("payer", 2, BOB, "  "))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("reason: required");
    InventoryStore.Revision r = revisions.reject("payer", 2, BOB, "why so many steps?");
    assertThat(r.status()).isEqualTo(Status.REJECTED);
    assertThat(r.decision().orElseThrow().reason()).isEqualTo("why so many steps?");
    assertThat(active()).isEqualTo(1);

    apply(BASE.replace("max_steps: 20", "max_steps: 98"), ANN);
    assertThat(revisions.reject("payer", 3, ANN, "my mistake").decision().orElseThrow().by()).isEqualTo("operator:ann");
    assertThat(activations).containsExactly("payer");
  }

  @Test
  void deciding_aRevisionThatIsNoLongerPending_isAConflict() {
    apply(BASE, ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 98"), ANN);
    assertThatThrownBy(() -> revisions.approve("payer", 2, BOB))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("superseded by revision 3");
    assertThatThrownBy(() -> revisions.approve("payer", 9, BOB)).isInstanceOf(KeelException.NotFound.class);
  }

  @Test
  void aNarrowingChange_isActiveAtOnce_evenWhileAnotherIsPending() {
    apply(BASE, ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    InventoryStore.Applied narrow = apply(BASE.replace("max_steps: 20", "max_steps: 10"), ANN).getFirst();
    assertThat(narrow.activated()).isTrue();
    assertThat(narrow.superseded()).map(InventoryStore.Revision::number).contains(2);
    assertThat(active()).isEqualTo(3);
  }

  @Test
  void undo_returnsToThePreviouslyActiveRevision_andNarrowingIsActiveAtOnce() {
    apply(BASE, ANN);
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    revisions.approve("payer", 2, BOB);
    activations.clear();
    InventoryStore.Applied undo = revisions.rollback("payer", Optional.empty(), DEE);
    assertThat(undo.revision().number()).isEqualTo(3);
    assertThat(undo.revision().rollbackOf()).contains(1);
    assertThat(undo.activated()).isTrue();
    assertThat(undo.revision().appliedBy()).isEqualTo("operator:dee");
    assertThat(activations).containsExactly("payer");
    assertThat(store.inventory().latest("Agent", "payer").orElseThrow().spec())
        .isEqualTo(store.inventory().revision("Agent", "payer", 1).orElseThrow().spec());
  }

  @Test
  void rollingBackToAWiderRevision_needsApproval_bySomeoneElse() {
    apply(BASE.replace("max_steps: 20", "max_steps: 99"), ANN);
    apply(BASE, ANN); // narrowing: active at once
    InventoryStore.Applied back = revisions.rollback("payer", Optional.of(1), DEE);
    assertThat(back.revision().status()).isEqualTo(Status.PENDING);
    assertThat(back.revision().review().widening()).containsExactly("spec.max_steps: raised from 20 to 99");
    assertThatThrownBy(() -> revisions.approve("payer", 3, DEE)).isInstanceOf(KeelException.Forbidden.class);
    assertThat(revisions.approve("payer", 3, BOB).status()).isEqualTo(Status.ACTIVE);
  }

  @Test
  void rollback_needsAdmin_andSomewhereToGo() {
    apply(BASE, ANN);
    assertThatThrownBy(() -> revisions.rollback("payer", Optional.empty(), ANN))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("nothing to undo");
    apply(BASE.replace("max_steps: 20", "max_steps: 10"), ANN);
    assertThatThrownBy(() -> revisions.rollback("payer", Optional.of(1), BOB))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("needs the role admin for owner \"finance\"");
    assertThatThrownBy(() -> revisions.rollback("payer", Optional.of(7), ANN)).isInstanceOf(KeelException.NotFound.class);
    assertThatThrownBy(() -> revisions.rollback("ghost", Optional.empty(), ANN)).isInstanceOf(KeelException.NotFound.class);
  }

  @Test
  void preview_saysWhatAnApplyWouldDo_andStoresNothing() {
    apply(BASE, ANN);
    List<Descriptor> ds = Descriptors.parse(BASE.replace("mode: supervised", "mode: autonomous"), "t.yaml");
    InventoryStore.Change c = new InventoryStore.Change("Agent", "payer", "finance", Descriptors.canonicalJson(ds.getFirst()));
    Revisions.Preview p = revisions.preview(List.of(c)).getFirst();
    assertThat(p.created()).isTrue();
    assertThat(p.revision()).isEqualTo(2);
    assertThat(p.status()).isEqualTo(Status.PENDING);
    assertThat(p.review().widening()).singleElement().asString().startsWith("spec.mode:");
    assertThat(store.inventory().history("Agent", "payer")).hasSize(1);
  }

  @Test
  void aListenerThatFails_doesNotUndoTheActivation() {
    Revisions failing = new Revisions(store.inventory(), name -> {
      throw new IllegalStateException("boom");
    });
    InventoryStore.Change c = new InventoryStore.Change("Agent", "payer", "finance",
        Descriptors.canonicalJson(Descriptors.parse(BASE, "t.yaml").getFirst()));
    assertThat(failing.apply(List.of(c), "operator:ann").getFirst().activated()).isTrue();
    assertThat(store.inventory().latest("Agent", "payer")).isPresent();
  }

  @Test
  void diff_isAUnifiedDiffOfTheCanonicalYaml_withTheReview() {
    apply(BASE, ANN);
    apply(BASE.replace("usd_per_day: 40", "usd_per_day: 400").replace("instructions: Pay invoices.", "instructions: Pay all invoices."), ANN);
    RevisionDiff d = revisions.diff("payer", 1, 2);
    assertThat(d.unified().subList(0, 2)).containsExactly("--- agent/payer revision 1", "+++ agent/payer revision 2");
    assertThat(d.unified()).contains("-    usd_per_day: 40", "+    usd_per_day: 400", "-  instructions: Pay invoices.",
        "+  instructions: Pay all invoices.");
    assertThat(d.unified()).filteredOn(l -> l.startsWith("@@")).isNotEmpty();
    assertThat(d.review().widening()).containsExactly("spec.budgets.usd_per_day: raised from 40 to 400");
    assertThat(d.review().narrowing()).containsExactly("spec.instructions: changed");
    // the other way round narrows
    assertThat(revisions.diff("payer", 2, 1).review().widens()).isFalse();
    assertThat(revisions.diff("payer", 1, 1).unified()).isEmpty();
    assertThatThrownBy(() -> revisions.diff("payer", 1, 3)).isInstanceOf(KeelException.NotFound.class)
        .hasMessageContaining("agent \"payer\" has no revision 3");
  }

  @Test
  void canonicalYaml_keepsMultiLineTextReadable() {
    String json = Descriptors.canonicalJson(Descriptors.parse(
        BASE.replace("instructions: Pay invoices.", "instructions: |\n    Pay invoices.\n    Never twice."), "t.yaml").getFirst());
    assertThat(RevisionDiff.canonicalYaml(json)).contains("  instructions: |", "    Pay invoices.", "    Never twice.");
  }
}
