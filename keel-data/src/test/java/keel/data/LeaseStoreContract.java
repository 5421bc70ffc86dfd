package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import keel.core.KeelException;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every {@link LeaseStore} passes, whatever database is underneath: a session's lease
 * has one holder at a time however many threads and stores claim it, it lapses and is taken over
 * under a new epoch, the heartbeat extends a node's leases, a release frees the session, and an
 * append fenced by a lease that is no longer current is refused with nothing of it stored. A
 * subclass says how to open a fresh store and a second store on the same database (another node).
 */
public abstract class LeaseStoreContract {

  protected static final Instant START = Instant.parse("2026-04-01T08:00:00Z");
  protected static final Duration TTL = Duration.ofSeconds(10);
  private static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  private static final String SPAN = "00f067aa0ba902b7";

  protected final MutableClock clock = new MutableClock(START);
  protected Store store;
  protected LeaseStore leases;
  private final List<Store> peers = new ArrayList<>();

  /** Opens a new, empty store, stamping {@code node} on its events and reading time from clock. */
  protected abstract Store openStore(String node, Clock clock);

  /** Opens a second store on the database {@link #openStore} opened last, as another node does. */
  protected abstract Store openPeer(String node, Clock clock);

  @BeforeEach
  final void openTheStore() {
    store = openStore("node-a", clock);
    leases = store.leases();
  }

  @AfterEach
  final void closeTheStores() {
    for (Store p : peers) {
      p.close();
    }
    if (store != null) {
      store.close();
    }
  }

  private Store peer(String node) {
    Store p = openPeer(node, clock);
    peers.add(p);
    return p;
  }

  // ---- helpers

  private static PendingEvent pe(SessionEvent e) {
    return new PendingEvent(e, SPAN);
  }

  private void create(String id) {
    create(id, Optional.empty());
  }

  /** Creates a session; with an input it has work (it is runnable). */
  protected void create(String id, Optional<String> input) {
    clock.advance(Duration.ofMillis(1));
    store.events().create(new NewSession(
        id, "helper", 1, "team-a", TRACE, Optional.empty(), id,
        List.of(pe(new SessionEvent.SessionStarted("helper", 1, "team-a", "user:ann", false))), SessionStatus.IDLE,
        input.map(in -> new Input(id, in, "message", "hello", "user:ann", clock.instant()))));
  }

  private static SessionEvent received(String inputId) {
    return new SessionEvent.InputReceived(inputId, "hello", "user:ann");
  }

  private static Append append(String id, long after, SessionEvent... es) {
    return new Append(
        id, after, java.util.Arrays.stream(es).map(LeaseStoreContract::pe).toList(), SessionStatus.RUNNABLE,
        List.of(), Optional.empty());
  }

  private LeaseStore.Lease claim(String id, String node) {
    return leases.claim(id, node, TTL).orElseThrow(() -> new AssertionError(node + " could not claim " + id));
  }

  // ---- claiming

  @Test
  void claim_ofAFreeSession_grantsTheFirstEpoch_untilTheTtl() {
    create("s1");
    LeaseStore.Lease lease = claim("s1", "node-a");
    assertThat(lease).isEqualTo(new LeaseStore.Lease("s1", "node-a", 1, clock.instant().plus(TTL)));
    assertThat(leases.lease("s1")).contains(lease);
  }

  @Test
  void claim_ofASessionAnotherNodeHolds_isRefused_untilTheLeaseExpires_thenTakenOverWithANewEpoch() {
    create("s1");
    LeaseStore.Lease first = claim("s1", "node-a");
    clock.advance(TTL.minusMillis(1));
    assertThat(leases.claim("s1", "node-b", TTL)).isEmpty();
    assertThat(leases.lease("s1")).contains(first);

    clock.advance(Duration.ofMillis(1));
    LeaseStore.Lease taken = claim("s1", "node-b");
    assertThat(taken.node()).isEqualTo("node-b");
    assertThat(taken.epoch()).isEqualTo(2);
    assertThat(taken.expiresAt()).isEqualTo(clock.instant().plus(TTL));
    assertThat(leases.claim("s1", "node-a", TTL)).isEmpty();
  }

  @Test
  void claim_byTheHolder_renewsIt_withTheSameEpoch_butAfterExpiry_itIsANewOwnership() {
    create("s1");
    claim("s1", "node-a");
    clock.advance(Duration.ofSeconds(5));
    LeaseStore.Lease again = claim("s1", "node-a");
    assertThat(again.epoch()).isEqualTo(1);
    assertThat(again.expiresAt()).isEqualTo(clock.instant().plus(TTL));
    clock.advance(TTL);
    // it lapsed: anyone could have taken it meanwhile, so the holder's next claim is a new epoch
    assertThat(claim("s1", "node-a").epoch()).isEqualTo(2);
  }

  @Test
  void claim_ofAMissingSession_isNotFound() {
    assertThatThrownBy(() -> leases.claim("nope", "node-a", TTL))
        .isInstanceOf(KeelException.NotFound.class)
        .hasMessageContaining("session nope");
  }

  @Test
  void badArguments_areRefused_sayingWhatWasWrong() {
    create("s1");
    assertThatThrownBy(() -> leases.claim("s1", "node-a", Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("time to live")
        .hasMessageContaining("PT0S");
    assertThatThrownBy(() -> leases.claim("s1", " ", TTL))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("node name");
    assertThatThrownBy(() -> leases.claimRunnable("node-a", 0, TTL))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("got 0");
    assertThat(leases.lease("s1")).isEmpty();
  }

  @Test
  @Timeout(120)
  void claims_fromManyThreadsOnTwoStores_grantEachSessionToExactlyOneNode() throws Exception {
    int sessions = 20;
    int threads = 12;
    for (int i = 0; i < sessions; i++) {
      create("s" + i);
    }
    Store other = peer("node-x");
    CyclicBarrier start = new CyclicBarrier(threads);
    Map<String, Set<String>> winners = new ConcurrentHashMap<>();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        String node = "node-" + t;
        LeaseStore via = (t % 2 == 0 ? store : other).leases();
        done.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < sessions; i++) {
            String id = "s" + i;
            via.claim(id, node, TTL)
                .ifPresent(l -> winners.computeIfAbsent(id, k -> ConcurrentHashMap.newKeySet()).add(l.node()));
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get(100, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(winners).hasSize(sessions);
    for (int i = 0; i < sessions; i++) {
      String id = "s" + i;
      assertThat(winners.get(id)).as("the nodes granted %s", id).hasSize(1);
      LeaseStore.Lease held = leases.lease(id).orElseThrow();
      assertThat(held.node()).isEqualTo(winners.get(id).iterator().next());
      assertThat(held.epoch()).isEqualTo(1);
    }
  }

  // ---- claiming runnable sessions

  @Test
  void claimRunnable_takesOnlySessionsWithWork_thatNobodyHolds_upToTheLimit() {
    create("idle");
    create("w1", Optional.of("in-1"));
    create("w2", Optional.of("in-1"));
    create("w3", Optional.of("in-1"));
    create("held", Optional.of("in-1"));
    claim("held", "node-b");
    clock.advance(Duration.ofSeconds(1));

    List<LeaseStore.Lease> got = leases.claimRunnable("node-a", 2, TTL);
    assertThat(got).extracting(LeaseStore.Lease::sessionId).containsExactlyInAnyOrder("w1", "w2");
    assertThat(got).allSatisfy(l -> {
      assertThat(l.node()).isEqualTo("node-a");
      assertThat(l.epoch()).isEqualTo(1);
      assertThat(l.expiresAt()).isEqualTo(clock.instant().plus(TTL));
    });
    assertThat(leases.claimRunnable("node-a", 10, TTL)).extracting(LeaseStore.Lease::sessionId).containsExactly("w3");
    assertThat(leases.claimRunnable("node-c", 10, TTL)).isEmpty();
    assertThat(leases.lease("idle")).isEmpty();

    // node-b died: once its lease lapses, its session is taken over, and node-a's are not
    clock.advance(TTL.minusSeconds(1));
    List<LeaseStore.Lease> orphans = leases.claimRunnable("node-c", 10, TTL);
    assertThat(orphans).extracting(LeaseStore.Lease::sessionId).containsExactly("held");
    assertThat(orphans.getFirst().epoch()).isEqualTo(2);
  }

  @Test
  void claimRunnable_skipsEndedSessions_evenWithInputLeft() {
    create("s1", Optional.of("in-1"));
    store.events().append(new Append(
        "s1", 1, List.of(pe(new SessionEvent.SessionCancelled("op:ann", "stop"))), SessionStatus.CANCELLED,
        List.of(), Optional.empty()));
    assertThat(leases.claimRunnable("node-a", 10, TTL)).isEmpty();
  }

  @Test
  @Timeout(120)
  void claimRunnable_onTwoNodesAtOnce_givesThemDisjointSessions() throws Exception {
    int sessions = 60;
    for (int i = 0; i < sessions; i++) {
      create("w" + i, Optional.of("in-1"));
    }
    Store other = peer("node-b");
    CyclicBarrier start = new CyclicBarrier(2);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    List<Future<List<LeaseStore.Lease>>> results = new ArrayList<>();
    try {
      for (var node : List.of(Map.entry("node-a", leases), Map.entry("node-b", other.leases()))) {
        results.add(pool.submit(() -> {
          start.await();
          List<LeaseStore.Lease> mine = new ArrayList<>();
          for (int round = 0; round < sessions; round++) {
            mine.addAll(node.getValue().claimRunnable(node.getKey(), 3, TTL));
          }
          return mine;
        }));
      }
      List<String> all = new ArrayList<>();
      for (Future<List<LeaseStore.Lease>> f : results) {
        f.get(100, TimeUnit.SECONDS).forEach(l -> all.add(l.sessionId()));
      }
      assertThat(all).doesNotHaveDuplicates().hasSize(sessions);
    } finally {
      pool.shutdownNow();
    }
  }

  // ---- heartbeat and release

  @Test
  void renew_extendsEveryUnexpiredLeaseOfTheNode_andNoOtherNodes() {
    create("a1");
    create("a2");
    create("b1");
    claim("a1", "node-a");
    clock.advance(Duration.ofSeconds(4));
    claim("a2", "node-a");
    claim("b1", "node-b");
    clock.advance(Duration.ofSeconds(5));

    assertThat(leases.renew("node-a", TTL)).isEqualTo(2);
    Instant until = clock.instant().plus(TTL);
    assertThat(leases.lease("a1").orElseThrow().expiresAt()).isEqualTo(until);
    assertThat(leases.lease("a2").orElseThrow().expiresAt()).isEqualTo(until);
    assertThat(leases.lease("a1").orElseThrow().epoch()).isEqualTo(1);
    assertThat(leases.lease("b1").orElseThrow().expiresAt()).isEqualTo(START.plusMillis(3).plusSeconds(4).plus(TTL));

    // past b1's expiry but within a1's renewed lease: a1 stays, b1 can be taken over
    clock.advance(Duration.ofSeconds(6));
    assertThat(leases.claim("a1", "node-b", TTL)).isEmpty();
    assertThat(leases.renew("node-b", TTL)).as("an expired lease is not renewed").isZero();
    assertThat(claim("b1", "node-c").epoch()).isEqualTo(2);
  }

  @Test
  void release_freesTheSession_andTheNextOwnerGetsANewEpoch_whileAStaleReleaseChangesNothing() {
    create("s1");
    LeaseStore.Lease first = claim("s1", "node-a");
    assertThat(leases.release(first)).isTrue();
    assertThat(leases.lease("s1")).isEmpty();
    assertThat(leases.release(first)).as("released already").isFalse();

    LeaseStore.Lease second = claim("s1", "node-b");
    assertThat(second.epoch()).isEqualTo(2);
    assertThat(leases.release(first)).as("a stale lease").isFalse();
    assertThat(leases.lease("s1")).contains(second);
  }

  @Test
  void leases_surviveARestart() {
    create("s1");
    LeaseStore.Lease lease = claim("s1", "node-a");
    store.close();
    store = openPeer("node-a", clock);
    leases = store.leases();
    assertThat(leases.lease("s1")).contains(lease);
    assertThat(leases.claim("s1", "node-b", TTL)).isEmpty();
  }

  // ---- fencing

  @Test
  void append_underTheCurrentLease_isStored_withItsEpochOnEachEvent() {
    create("s1", Optional.of("in-1"));
    LeaseStore.Lease lease = claim("s1", "node-a");
    long last = store.events().append(append("s1", 1, received("in-1"), received("in-2")).withLease(lease));
    assertThat(last).isEqualTo(3);
    assertThat(leases.writers("s1")).containsExactly(
        new LeaseStore.Stint("node-a", 0, 1, 1), new LeaseStore.Stint("node-a", 1, 2, 3));
  }

  @Test
  void append_underALeaseTakenOver_isRefused_andNothingOfItIsStored() {
    create("s1", Optional.of("in-1"));
    LeaseStore.Lease stale = claim("s1", "node-a");
    store.events().append(append("s1", 1, received("x")).withLease(stale));
    clock.advance(TTL);
    Store nodeB = peer("node-b");
    LeaseStore.Lease current = nodeB.leases().claim("s1", "node-b", TTL).orElseThrow();
    SessionState before = SessionState.fold(store.events().eventsAfter("s1", 0));

    // the stale writer names the right sequence number, consumes an input, snapshots: all refused
    SessionState after = SessionState.fold(store.events().eventsAfter("s1", 0));
    after.apply(new StoredEvent("s1", 3, clock.instant(), "node-a", TRACE, SPAN, received("in-1")));
    Append late = new Append(
        "s1", 2, List.of(pe(received("in-1"))), SessionStatus.RUNNABLE, List.of("in-1"),
        Optional.of(after.snapshot())).withLease(stale);
    assertThatThrownBy(() -> store.events().append(late))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("session s1")
        .hasMessageContaining("node-a")
        .hasMessageContaining("epoch 1")
        .hasMessageContaining("node-b holds it now at epoch 2");

    assertThat(store.events().session("s1").orElseThrow().lastSeq()).isEqualTo(2);
    assertThat(store.events().eventsAfter("s1", 0)).hasSize(2);
    assertThat(store.events().pendingInputs("s1")).extracting(Input::inputId).containsExactly("in-1");
    assertThat(store.events().snapshot("s1")).isEmpty();
    assertThat(SessionState.fold(store.events().eventsAfter("s1", 0)).lastSeq()).isEqualTo(before.lastSeq());

    // the new owner writes on
    nodeB.events().append(new Append(
        "s1", 2, List.of(pe(received("in-1"))), SessionStatus.RUNNABLE, List.of("in-1"), Optional.empty())
        .withLease(current));
    assertThat(leases.writers("s1")).containsExactly(
        new LeaseStore.Stint("node-a", 0, 1, 1),
        new LeaseStore.Stint("node-a", 1, 2, 2),
        new LeaseStore.Stint("node-b", 2, 3, 3));
  }

  @Test
  void append_afterItsLeaseWasReleased_isRefused() {
    create("s1");
    LeaseStore.Lease lease = claim("s1", "node-a");
    leases.release(lease);
    assertThatThrownBy(() -> store.events().append(append("s1", 1, received("x")).withLease(lease)))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("nobody holds it now");
    assertThat(store.events().session("s1").orElseThrow().lastSeq()).isEqualTo(1);
  }

  @Test
  void append_underAnExpiredLeaseNobodyTookOver_isStillStored() {
    // the epoch fences, not the clock: while no other node owns the session, nobody else writes
    create("s1");
    LeaseStore.Lease lease = claim("s1", "node-a");
    clock.advance(TTL.multipliedBy(3));
    assertThat(store.events().append(append("s1", 1, received("x")).withLease(lease))).isEqualTo(2);
  }

  @Test
  void append_withAStaleSequence_underTheCurrentLease_isStillASequenceConflict() {
    create("s1");
    LeaseStore.Lease lease = claim("s1", "node-a");
    store.events().append(append("s1", 1, received("x")).withLease(lease));
    assertThatThrownBy(() -> store.events().append(append("s1", 1, received("y")).withLease(lease)))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("another writer appended first");
  }

  @Test
  @Timeout(120)
  void racingWriters_withOldAndNewLeases_neverInterleave_afterTheTakeover() throws Exception {
    create("s1");
    LeaseStore.Lease old = claim("s1", "node-a");
    int rounds = 40;
    long takenAt;
    ExecutorService pool = Executors.newFixedThreadPool(1);
    try {
      // the deposed writer keeps appending, with fresh sequence numbers, while the takeover happens
      Future<?> deposed = pool.submit(() -> {
        for (int i = 0; i < rounds * 4; i++) {
          long last = store.events().session("s1").orElseThrow().lastSeq();
          try {
            store.events().append(append("s1", last, received("a" + i)).withLease(old));
          } catch (KeelException.Conflict refused) {
            // lost the lease
          }
        }
        return null;
      });
      clock.advance(TTL);
      LeaseStore.Lease taken = leases.claim("s1", "node-b", TTL).orElseThrow();
      takenAt = store.events().session("s1").orElseThrow().lastSeq();
      for (int i = 0; i < rounds; i++) {
        long last = store.events().session("s1").orElseThrow().lastSeq();
        try {
          store.events().append(append("s1", last, received("b" + i)).withLease(taken));
        } catch (KeelException.Conflict refused) {
          throw new AssertionError("the lease holder's append was refused", refused);
        }
      }
      deposed.get(100, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
    // the creation, the deposed writer's run (if it got any in), then only the new owner's run
    List<LeaseStore.Stint> stints = leases.writers("s1");
    LeaseStore.Stint lastStint = stints.getLast();
    assertThat(lastStint.epoch()).isEqualTo(2);
    assertThat(lastStint.firstSeq()).isEqualTo(takenAt + 1);
    assertThat(lastStint.lastSeq()).isEqualTo(takenAt + rounds);
    assertThat(stints.subList(0, stints.size() - 1)).allSatisfy(s -> assertThat(s.epoch()).isLessThan(2));
    assertThat(stints.size()).isLessThanOrEqualTo(3);
  }

  // ---- limits: partitions and active sessions per agent, cluster-wide

  private static LeaseStore.Limits partition(String p) {
    return new LeaseStore.Limits(Optional.of(p), 0);
  }

  @Test
  void claim_inAPartition_isRefusedWhileAnotherSessionOfItIsActive_andGrantedOnceThatOneIsReleasedOrExpired() {
    create("a1", Optional.of("in-1"));
    create("a2", Optional.of("in-1"));
    create("b1", Optional.of("in-1"));
    LeaseStore.Lease first = leases.claim("a1", "node-a", TTL, partition("supplier-7")).orElseThrow();
    assertThat(leases.claim("a2", "node-b", TTL, partition("supplier-7"))).as("same partition, another node").isEmpty();
    assertThat(leases.claim("a2", "node-a", TTL, partition("supplier-7"))).as("same partition, same node").isEmpty();
    assertThat(leases.claim("b1", "node-b", TTL, partition("supplier-8"))).as("another partition").isPresent();
    // the holder renews its own
    assertThat(leases.claim("a1", "node-a", TTL, partition("supplier-7"))).map(LeaseStore.Lease::epoch).contains(first.epoch());

    assertThat(leases.release(first)).isTrue();
    LeaseStore.Lease second = leases.claim("a2", "node-b", TTL, partition("supplier-7")).orElseThrow();
    assertThat(leases.claim("a1", "node-a", TTL, partition("supplier-7"))).isEmpty();

    // node-b dies: once its lease lapses the partition is free again
    clock.advance(TTL);
    assertThat(leases.claim("a1", "node-a", TTL, partition("supplier-7"))).isPresent();
    assertThat(leases.lease("a2")).map(LeaseStore.Lease::epoch).contains(second.epoch());
  }

  @Test
  void claim_withMaxActive_grantsAtMostThatManyActiveSessionsOfTheAgent() {
    LeaseStore.Limits two = new LeaseStore.Limits(Optional.empty(), 2);
    for (int i = 0; i < 4; i++) {
      create("s" + i, Optional.of("in-1"));
    }
    assertThat(leases.claim("s0", "node-a", TTL, two)).isPresent();
    assertThat(leases.claim("s1", "node-b", TTL, two)).isPresent();
    assertThat(leases.claim("s2", "node-a", TTL, two)).isEmpty();
    assertThat(leases.claim("s3", "node-c", TTL, two)).isEmpty();
    // a holder renewing is not a new active session
    assertThat(leases.claim("s1", "node-b", TTL, two)).isPresent();
    leases.release(leases.lease("s0").orElseThrow());
    assertThat(leases.claim("s3", "node-c", TTL, two)).isPresent();
    assertThat(leases.claim("s2", "node-a", TTL, two)).isEmpty();
    // a bare claim (no limits) still counts as active for the limited ones
    assertThat(leases.claim("s2", "node-a", TTL)).isPresent();
  }

  @Test
  void claimRunnable_skipsSessionsWhoseRecordedLimitsRefuseThemNow_andTakesThemWhenFree() {
    create("a1", Optional.of("in-1"));
    create("a2", Optional.of("in-1"));
    create("free", Optional.of("in-1"));
    LeaseStore.Lease held = leases.claim("a1", "node-a", TTL, partition("p")).orElseThrow();
    assertThat(leases.claim("a2", "node-b", TTL, partition("p"))).isEmpty(); // records a2's partition
    assertThat(leases.claimRunnable("node-c", 10, TTL)).extracting(LeaseStore.Lease::sessionId).containsExactly("free");
    leases.release(held);
    assertThat(leases.claimRunnable("node-c", 10, TTL)).extracting(LeaseStore.Lease::sessionId)
        .contains("a2");
  }

  @Test
  void claim_refusedByTheLimits_releasesTheLeaseTheNodeHeldAlready() {
    create("a1", Optional.of("in-1"));
    create("a2", Optional.of("in-1"));
    leases.claim("a1", "node-a", TTL, partition("p")).orElseThrow();
    // a sweep (no limits known yet) gave a2 to node-b; its run's claim with the limits refuses it
    leases.claim("a2", "node-b", TTL).orElseThrow();
    assertThat(leases.claim("a2", "node-b", TTL, partition("p"))).isEmpty();
    assertThat(leases.lease("a2")).isEmpty();
  }

  @Test
  @Timeout(120)
  void limitedClaims_fromManyThreadsOnTwoStores_neverExceedThePartitionOrTheAgentLimit() throws Exception {
    int sessions = 12;
    for (int i = 0; i < sessions; i++) {
      create("s" + i, Optional.of("in-1"));
    }
    Store other = peer("node-x");
    int threads = 8;
    CyclicBarrier start = new CyclicBarrier(threads);
    Set<String> granted = ConcurrentHashMap.newKeySet();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        String node = "node-" + t;
        LeaseStore via = (t % 2 == 0 ? store : other).leases();
        done.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < sessions; i++) {
            // sessions 0-5 share one partition; 6-11 are limited to three active
            LeaseStore.Limits limits = i < 6 ? partition("p") : new LeaseStore.Limits(Optional.empty(), 9);
            String id = "s" + i;
            via.claim(id, node, TTL, limits).ifPresent(l -> granted.add(id));
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get(100, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    long inPartition = granted.stream().filter(id -> Integer.parseInt(id.substring(1)) < 6).count();
    assertThat(inPartition).as("sessions of one partition active at once").isEqualTo(1);
    long active = java.util.stream.IntStream.range(0, sessions).filter(i -> leases.lease("s" + i).isPresent()).count();
    // the partition's one, and the limited ones up to 9 active sessions of the agent in all
    assertThat(active).isEqualTo(7);
  }

  @Test
  void queued_countsSessionsWithWorkThatNoNodeHolds_includingExpiredOnes() {
    assertThat(leases.queued()).isZero();
    create("idle");
    create("w1", Optional.of("in-1"));
    create("w2", Optional.of("in-1"));
    create("w3", Optional.of("in-1"));
    assertThat(leases.queued()).isEqualTo(3);
    claim("w1", "node-a");
    assertThat(leases.queued()).isEqualTo(2);
    claim("idle", "node-b");
    assertThat(leases.queued()).as("an idle session held is not queued either way").isEqualTo(2);
    clock.advance(TTL);
    assertThat(leases.queued()).as("a lapsed lease's session waits for a node again").isEqualTo(3);
  }
}
