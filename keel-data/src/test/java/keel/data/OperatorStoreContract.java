package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.KeelException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What every {@link OperatorStore} must do, whatever database is underneath: names are never
 * reused, a token works only while it and its operator are live, a new token replaces the old one
 * atomically, and a raw token is never accepted where a hash belongs.
 */
public abstract class OperatorStoreContract {

  protected static final Instant START = Instant.parse("2025-03-01T10:00:00Z");

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  protected OperatorStore operators;

  /** Opens a new, empty store reading time from clock. */
  protected abstract Store openStore(Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed (a restart). */
  protected abstract Store reopenStore(Clock clock);

  @BeforeEach
  final void openTheStore() {
    store = openStore(clock);
    operators = store.operators();
  }

  @AfterEach
  final void closeTheStore() {
    if (store != null) {
      store.close();
    }
  }

  protected static String sha256(String token) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static final List<OperatorStore.Grant> ALICE_GRANTS =
      List.of(new OperatorStore.Grant("approver", "finance"), new OperatorStore.Grant("viewer", ""));

  @Test
  void create_thenFind_andTheTokenFindsIt() {
    OperatorStore.Operator created = operators.create("alice", ALICE_GRANTS, sha256("t-alice"), "operator:admin");
    OperatorStore.Operator expected = new OperatorStore.Operator(
        "alice", ALICE_GRANTS, "operator:admin", START, Optional.empty(), Optional.empty(), Optional.of(START));
    assertThat(created).isEqualTo(expected);
    assertThat(operators.find("alice")).contains(expected);
    assertThat(operators.byToken(sha256("t-alice"))).contains(expected);
    assertThat(operators.byToken(sha256("t-someone-else"))).isEmpty();
    assertThat(operators.find("bob")).isEmpty();
  }

  @Test
  void grants_keepTheirOrder_andAnOperatorMayHaveNone() {
    List<OperatorStore.Grant> many = List.of(
        new OperatorStore.Grant("viewer", "zeta"), new OperatorStore.Grant("admin", "alpha"), new OperatorStore.Grant("operator", ""));
    operators.create("many", many, sha256("t1"), "operator:admin");
    operators.create("none", List.of(), sha256("t2"), "operator:admin");
    assertThat(operators.find("many").orElseThrow().grants()).isEqualTo(many);
    assertThat(operators.byToken(sha256("t2")).orElseThrow().grants()).isEmpty();
  }

  @Test
  void create_sameName_isConflict_andKeepsTheFirst() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    assertThatThrownBy(() -> operators.create("alice", List.of(), sha256("t2"), "operator:bob"))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("\"alice\" already exists");
    assertThat(operators.find("alice").orElseThrow().grants()).isEqualTo(ALICE_GRANTS);
    assertThat(operators.byToken(sha256("t2"))).as("the refused operator's token was not stored").isEmpty();
  }

  @Test
  void revoke_stopsTheToken_recordsWhoAndWhen_andIsIdempotent() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    clock.advance(Duration.ofMinutes(5));
    OperatorStore.Operator revoked = operators.revoke("alice", "operator:root");
    assertThat(revoked.revoked()).isTrue();
    assertThat(revoked.revokedAt()).contains(START.plus(Duration.ofMinutes(5)));
    assertThat(revoked.revokedBy()).contains("operator:root");
    assertThat(revoked.tokenIssuedAt()).isEmpty();
    assertThat(operators.byToken(sha256("t1"))).isEmpty();

    clock.advance(Duration.ofMinutes(5));
    assertThat(operators.revoke("alice", "operator:other")).as("revoking again changes nothing").isEqualTo(revoked);
  }

  @Test
  void revokedNames_areNotReused() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    operators.revoke("alice", "operator:admin");
    assertThatThrownBy(() -> operators.create("alice", ALICE_GRANTS, sha256("t2"), "operator:admin"))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("was revoked")
        .hasMessageContaining("choose another name");
    assertThat(operators.byToken(sha256("t2"))).isEmpty();
  }

  @Test
  void unknownOperators_areNotFound() {
    assertThatThrownBy(() -> operators.revoke("ghost", "operator:admin"))
        .isInstanceOf(KeelException.NotFound.class)
        .hasMessageContaining("no operator named \"ghost\"");
    assertThatThrownBy(() -> operators.replaceToken("ghost", sha256("t"), "operator:admin"))
        .isInstanceOf(KeelException.NotFound.class);
    assertThat(operators.byToken(sha256("t"))).isEmpty();
  }

  @Test
  void replaceToken_revokesTheOldOne_andTheNewOneWorks() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    clock.advance(Duration.ofHours(1));
    OperatorStore.Operator after = operators.replaceToken("alice", sha256("t2"), "operator:admin");
    assertThat(after.tokenIssuedAt()).contains(START.plus(Duration.ofHours(1)));
    assertThat(operators.byToken(sha256("t1"))).isEmpty();
    assertThat(operators.byToken(sha256("t2"))).contains(after);
    assertThat(after.createdAt()).isEqualTo(START);
  }

  @Test
  void aRevokedOperator_getsNoNewToken() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    operators.revoke("alice", "operator:admin");
    assertThatThrownBy(() -> operators.replaceToken("alice", sha256("t2"), "operator:admin"))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("revoked");
    assertThat(operators.byToken(sha256("t2"))).isEmpty();
    assertThat(operators.byToken(sha256("t1"))).isEmpty();
  }

  @Test
  void aRawToken_isRefusedWhereAHashBelongs_andNothingIsStored() {
    String raw = "keel_not-a-hash-but-a-token";
    assertThatThrownBy(() -> operators.create("alice", ALICE_GRANTS, raw, "operator:admin"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageNotContaining(raw);
    assertThatThrownBy(() -> operators.byToken(raw)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> operators.byToken(sha256("x").toUpperCase(java.util.Locale.ROOT)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(operators.find("alice")).isEmpty();
  }

  @Test
  void list_isByName_andIncludesRevokedOnes() {
    operators.create("carol", List.of(new OperatorStore.Grant("viewer", "")), sha256("c"), "operator:admin");
    operators.create("alice", ALICE_GRANTS, sha256("a"), "operator:admin");
    operators.create("bob", List.of(), sha256("b"), "operator:admin");
    operators.revoke("bob", "operator:admin");
    assertThat(operators.list()).extracting(o -> o.name() + ":" + o.grants().size() + ":" + o.revoked())
        .containsExactly("alice:2:false", "bob:0:true", "carol:1:false");
  }

  @Test
  void everything_survivesARestart() {
    operators.create("alice", ALICE_GRANTS, sha256("t1"), "operator:admin");
    operators.create("bob", List.of(), sha256("t2"), "operator:admin");
    operators.revoke("bob", "operator:admin");
    List<OperatorStore.Operator> before = operators.list();
    store.close();
    store = reopenStore(clock);
    operators = store.operators();
    assertThat(operators.list()).isEqualTo(before);
    assertThat(operators.byToken(sha256("t1"))).isPresent();
    assertThat(operators.byToken(sha256("t2"))).isEmpty();
  }

  @Test
  @Timeout(60)
  void concurrentCreates_ofOneName_makeExactlyOneOperator() throws Exception {
    int threads = 8;
    CyclicBarrier start = new CyclicBarrier(threads);
    List<Future<Boolean>> results = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
      for (int i = 0; i < threads; i++) {
        String token = "t" + i;
        results.add(pool.submit(() -> {
          start.await();
          try {
            operators.create("alice", ALICE_GRANTS, sha256(token), "operator:admin");
            return true;
          } catch (KeelException.Conflict lost) {
            return false;
          }
        }));
      }
    }
    int won = 0;
    for (Future<Boolean> f : results) {
      won += f.get() ? 1 : 0;
    }
    assertThat(won).isEqualTo(1);
    long working = java.util.stream.IntStream.range(0, threads).filter(i -> operators.byToken(sha256("t" + i)).isPresent()).count();
    assertThat(working).as("only the winner's token works").isEqualTo(1);
  }
}
