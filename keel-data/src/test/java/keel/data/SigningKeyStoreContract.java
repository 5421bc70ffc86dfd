package keel.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The contract of {@link SigningKeyStore}, run against every store implementation: one active key
 * at a time, agreed on by racing callers; old keys published until they expire, then purged; and
 * keys that survive a restart.
 */
public abstract class SigningKeyStoreContract {

  protected static final Instant START = Instant.parse("2025-03-01T10:00:00Z");
  protected final MutableClock clock = new MutableClock(START);
  protected Store store;

  /** Opens a new, empty store. */
  protected abstract Store openStore(Clock clock);

  /** Opens again the store {@link #openStore} opened last, after it was closed. */
  protected abstract Store reopenStore(Clock clock);

  @BeforeEach
  final void open() {
    store = openStore(clock);
  }

  @AfterEach
  final void close() {
    if (store != null) {
      store.close();
    }
  }

  /** A key made now that signs for a day and is published for ten minutes more. */
  protected static SigningKeyStore.SigningKey key(String kid, Instant at) {
    return new SigningKeyStore.SigningKey(
        kid, "ES256", "{\"kty\":\"EC\",\"kid\":\"" + kid + "\"}", "{\"kty\":\"EC\",\"d\":\"secret-" + kid + "\"}",
        at, at.plus(Duration.ofDays(1)), at.plus(Duration.ofDays(1)).plus(Duration.ofMinutes(10)));
  }

  @Test
  void activeOrInsert_onAnEmptyStore_storesTheCandidate() {
    SigningKeyStore.SigningKey k = key("k1", clock.instant());
    assertThat(store.signingKeys().activeOrInsert(k, clock.instant())).isEqualTo(k);
    assertThat(store.signingKeys().key("k1")).contains(k);
  }

  @Test
  void activeOrInsert_whileAKeyIsActive_returnsItAndStoresNothing() {
    SigningKeyStore.SigningKey first = store.signingKeys().activeOrInsert(key("k1", clock.instant()), clock.instant());
    clock.advance(Duration.ofHours(23));
    SigningKeyStore.SigningKey again = store.signingKeys().activeOrInsert(key("k2", clock.instant()), clock.instant());
    assertThat(again).isEqualTo(first);
    assertThat(store.signingKeys().key("k2")).isEmpty();
  }

  @Test
  void activeOrInsert_afterTheActiveKeyRetires_storesTheNewOne_andBothArePublished() {
    store.signingKeys().activeOrInsert(key("k1", clock.instant()), clock.instant());
    clock.advance(Duration.ofDays(1));
    SigningKeyStore.SigningKey second = store.signingKeys().activeOrInsert(key("k2", clock.instant()), clock.instant());
    assertThat(second.kid()).isEqualTo("k2");
    assertThat(store.signingKeys().published(clock.instant()))
        .extracting(SigningKeyStore.SigningKey::kid)
        .containsExactly("k2", "k1");
  }

  @Test
  void aRetiredKey_isPublishedUntilItExpires_thenPurged() {
    store.signingKeys().activeOrInsert(key("k1", clock.instant()), clock.instant());
    clock.advance(Duration.ofDays(1));
    store.signingKeys().activeOrInsert(key("k2", clock.instant()), clock.instant());
    clock.advance(Duration.ofMinutes(9));
    assertThat(store.signingKeys().purgeExpired(clock.instant())).isZero();
    assertThat(store.signingKeys().published(clock.instant())).extracting(SigningKeyStore.SigningKey::kid).contains("k1");
    clock.advance(Duration.ofMinutes(1));
    assertThat(store.signingKeys().published(clock.instant())).extracting(SigningKeyStore.SigningKey::kid).containsExactly("k2");
    assertThat(store.signingKeys().purgeExpired(clock.instant())).isEqualTo(1);
    assertThat(store.signingKeys().key("k1")).isEmpty();
    assertThat(store.signingKeys().key("k2")).isPresent();
  }

  @Test
  void keys_surviveARestart() {
    SigningKeyStore.SigningKey k = store.signingKeys().activeOrInsert(key("k1", clock.instant()), clock.instant());
    store.close();
    store = reopenStore(clock);
    assertThat(store.signingKeys().key("k1")).contains(k);
    assertThat(store.signingKeys().activeOrInsert(key("k9", clock.instant()), clock.instant())).isEqualTo(k);
  }

  @Test
  void racingRotations_agreeOnOneActiveKey() throws Exception {
    int threads = 16;
    CyclicBarrier barrier = new CyclicBarrier(threads);
    List<Future<SigningKeyStore.SigningKey>> results = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
      for (int i = 0; i < threads; i++) {
        String kid = "k" + i;
        results.add(pool.submit(() -> {
          barrier.await();
          return store.signingKeys().activeOrInsert(key(kid, clock.instant()), clock.instant());
        }));
      }
      List<String> winners = new ArrayList<>();
      for (Future<SigningKeyStore.SigningKey> f : results) {
        winners.add(f.get().kid());
      }
      assertThat(winners).containsOnly(winners.getFirst());
    }
    assertThat(store.signingKeys().published(clock.instant())).hasSize(1);
  }

  @Test
  void toString_neverShowsThePrivateKey() {
    SigningKeyStore.SigningKey k = key("k1", clock.instant());
    assertThat(k.toString()).doesNotContain("secret").contains("k1");
  }
}
