package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import keel.core.KeelException;
import org.junit.jupiter.api.Test;

class SchedulerTest {

  static final SessionRunner.Outcome DONE = new SessionRunner.Outcome.Suspended();

  @Test
  void wakes_hammeredFromManyThreads_neverRunOneSessionTwiceAtOnce_andNoWakeIsLost() throws Exception {
    Map<String, AtomicInteger> inRun = new ConcurrentHashMap<>();
    Map<String, AtomicInteger> pendingWork = new ConcurrentHashMap<>();
    AtomicInteger overlaps = new AtomicInteger();
    Scheduler.Runner runner = (id, signals) -> {
      if (inRun.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet() > 1) {
        overlaps.incrementAndGet();
      }
      signals.takeInboxChanged();
      // consume all work visible now, like a run draining its inbox
      pendingWork.get(id).set(0);
      Thread.yield();
      inRun.get(id).decrementAndGet();
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 64, 100_000, id -> new Scheduler.AgentLimit("a", 0))) {
      int sessions = 50;
      for (int i = 0; i < sessions; i++) {
        pendingWork.put("s" + i, new AtomicInteger());
      }
      try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
        for (int t = 0; t < 8; t++) {
          pool.submit(() -> {
            for (int n = 0; n < 2_000; n++) {
              String id = "s" + (n % sessions);
              pendingWork.get(id).incrementAndGet();
              s.wake(id);
            }
          });
        }
      }
      await().atMost(Duration.ofSeconds(20)).until(() -> pendingWork.values().stream().allMatch(w -> w.get() == 0)
          && s.runningSessions() == 0 && s.waitingSessions() == 0);
      assertThat(overlaps.get()).isZero();
      for (int i = 0; i < sessions; i++) {
        assertThat(s.busy("s" + i)).isFalse();
      }
    }
  }

  @Test
  void runs_areBoundedPerNodeAndPerAgent() throws Exception {
    AtomicInteger concurrent = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    Map<String, AtomicInteger> perAgent = new ConcurrentHashMap<>();
    AtomicInteger maxAgentA = new AtomicInteger();
    CountDownLatch finished = new CountDownLatch(40);
    Scheduler.Runner runner = (id, signals) -> {
      String agent = id.startsWith("a") ? "a" : "b";
      int now = concurrent.incrementAndGet();
      maxSeen.accumulateAndGet(now, Math::max);
      int a = perAgent.computeIfAbsent(agent, k -> new AtomicInteger()).incrementAndGet();
      if (agent.equals("a")) {
        maxAgentA.accumulateAndGet(a, Math::max);
      }
      sleep(20);
      perAgent.get(agent).decrementAndGet();
      concurrent.decrementAndGet();
      finished.countDown();
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 5, 1000, id -> new Scheduler.AgentLimit(id.substring(0, 1), id.startsWith("a") ? 2 : 0))) {
      for (int i = 0; i < 20; i++) {
        s.wake("a" + i);
        s.wake("b" + i);
      }
      assertThat(finished.await(20, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(maxSeen.get()).isLessThanOrEqualTo(5);
    assertThat(maxAgentA.get()).isLessThanOrEqualTo(2);
  }

  @Test
  void sessionsOfOnePartition_runOneAtATime_whileOtherPartitionsRunInParallel() throws Exception {
    Map<String, AtomicInteger> inPartition = new ConcurrentHashMap<>();
    Map<String, AtomicInteger> maxInPartition = new ConcurrentHashMap<>();
    AtomicInteger concurrent = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    CountDownLatch finished = new CountDownLatch(30);
    Scheduler.Runner runner = (id, signals) -> {
      String p = id.substring(0, 1);
      int now = inPartition.computeIfAbsent(p, k -> new AtomicInteger()).incrementAndGet();
      maxInPartition.computeIfAbsent(p, k -> new AtomicInteger()).accumulateAndGet(now, Math::max);
      maxSeen.accumulateAndGet(concurrent.incrementAndGet(), Math::max);
      sleep(15);
      concurrent.decrementAndGet();
      inPartition.get(p).decrementAndGet();
      finished.countDown();
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 8, 1000,
        id -> new Scheduler.AgentLimit("ledger", 0, java.util.Optional.of(id.substring(0, 1))))) {
      for (int i = 0; i < 10; i++) {
        s.wake("x" + i);
        s.wake("y" + i);
        s.wake("z" + i);
      }
      assertThat(finished.await(20, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(maxInPartition.values()).hasSize(3).allSatisfy(m -> assertThat(m.get()).isEqualTo(1));
    assertThat(maxSeen.get()).as("partitions in parallel").isGreaterThan(1);
  }

  @Test
  void aStoreFailureTellingTheSessionsAgent_isRetried_notDropped() throws Exception {
    AtomicInteger asked = new AtomicInteger();
    CountDownLatch ran = new CountDownLatch(1);
    Scheduler.Runner runner = (id, signals) -> {
      ran.countDown();
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 4, 10, id -> {
      if (asked.incrementAndGet() == 1) {
        throw new KeelException.Unavailable("the pool is exhausted", null);
      }
      return new Scheduler.AgentLimit("a", 0);
    })) {
      s.wake("s1");
      assertThat(ran.await(10, TimeUnit.SECONDS)).as("ran after the failure").isTrue();
      assertThat(asked.get()).isEqualTo(2);
    }
  }

  @Test
  void admit_whenTooManySessionsWait_refusesWithRetryAfter() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    Scheduler.Runner runner = (id, signals) -> {
      try {
        release.await(20, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 1, 3, id -> new Scheduler.AgentLimit("a", 0))) {
      for (int i = 0; i < 4; i++) {
        s.wake("s" + i);
      }
      await().atMost(Duration.ofSeconds(5)).until(() -> s.waitingSessions() == 3);
      assertThatThrownBy(s::admit)
          .isInstanceOfSatisfying(KeelException.Overloaded.class, e -> assertThat(e.retryAfterSeconds()).isPositive())
          .hasMessageContaining("capacity 3");
      release.countDown();
      await().atMost(Duration.ofSeconds(5)).until(() -> s.waitingSessions() == 0 && s.runningSessions() == 0);
      s.admit();
    }
  }

  @Test
  void retryAfter_runsTheSessionAgainLater_andASweepDoesNotRushIt() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    Scheduler.Runner runner = (id, signals) ->
        runs.incrementAndGet() == 1 ? new SessionRunner.Outcome.RetryAfter(Duration.ofMillis(300), "provider down") : DONE;
    try (Scheduler s = new Scheduler(runner, 4, 10, id -> new Scheduler.AgentLimit("a", 0))) {
      s.wake("x");
      await().atMost(Duration.ofSeconds(2)).until(() -> runs.get() == 1 && !s.busy("x"));
      assertThat(s.sweep(java.util.List.of("x"))).isZero();
      await().atMost(Duration.ofSeconds(5)).until(() -> runs.get() == 2);
    }
  }

  @Test
  void aRunnerThatThrows_isContained_andTheSessionIsRetried() {
    AtomicInteger runs = new AtomicInteger();
    Scheduler.Runner runner = (id, signals) -> {
      if (runs.incrementAndGet() == 1) {
        throw new IllegalStateException("boom");
      }
      return DONE;
    };
    try (Scheduler s = new Scheduler(runner, 4, 10, id -> new Scheduler.AgentLimit("a", 0))) {
      s.wake("x");
      await().atMost(Duration.ofSeconds(2)).until(() -> runs.get() == 1 && !s.busy("x"));
      s.wake("other");
      assertThat(s.busy("x")).isFalse();
    }
  }

  @Test
  void standalone_runsEveryWokenSessionOnce_withinTheAgentLimit_andAdmitRefusesAQueueBeyondCapacity() throws Exception {
    Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
    AtomicInteger inRun = new AtomicInteger();
    AtomicInteger mostAtOnce = new AtomicInteger();
    CountDownLatch release = new CountDownLatch(1);
    try (Scheduler s = Scheduler.standalone(id -> {
      mostAtOnce.accumulateAndGet(inRun.incrementAndGet(), Math::max);
      try {
        release.await(20, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      runs.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet();
      inRun.decrementAndGet();
    }, 8, 5, 2)) {
      for (int i = 0; i < 7; i++) {
        s.admit();
        s.wake("s" + i);
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> s.runningSessions() == 2 && s.waitingSessions() == 5);
      assertThatThrownBy(s::admit).isInstanceOf(KeelException.Overloaded.class).hasMessageContaining("capacity 5");
      release.countDown();
      await().atMost(Duration.ofSeconds(10)).until(() -> runs.size() == 7 && s.runningSessions() == 0 && s.waitingSessions() == 0);
      assertThat(runs.values()).allMatch(n -> n.get() == 1);
      assertThat(mostAtOnce.get()).isEqualTo(2);
      s.admit();
    }
    assertThatThrownBy(() -> Scheduler.standalone(id -> {}, 0, 5, 0))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxConcurrentSteps");
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
