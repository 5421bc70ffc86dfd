package keel.bench;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import keel.execution.ExecutionSettings;
import keel.execution.Scheduler;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;

/**
 * JMH micro-benchmarks of the admission queue, run by {@code keel bench jmh} ({@link Micro}): a
 * session is admitted ({@link Scheduler#admit}), woken ({@link Scheduler#wake}: its slot, its
 * virtual thread, the agent and node permits) and run by a runner that only signals that it ran
 * ({@link Scheduler#standalone}), so the queue itself is measured, not a step. Each operation ends
 * when the session's run has happened, so an operation is a whole wake-to-run-to-slot-free round
 * trip. The node has the default limits ({@link ExecutionSettings#defaults}); the burst benchmarks
 * wake 1,000 new sessions at once and report the time per session.
 *
 * <p>JMH owns the threads: each state is used as JMH's scopes say.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class Admission {

  /** Sessions woken at once by the burst benchmarks. */
  static final int BURST = 1_000;

  /** The most calling threads a node serves here (ids carry the caller's index in one character). */
  static final int MAX_CALLERS = 26;

  /** A scheduler with a runner that signals its caller: {@code a…z} per caller, {@code _} a burst. */
  public abstract static class Node {
    Scheduler scheduler;
    final Semaphore[] done = new Semaphore[MAX_CALLERS];
    final AtomicInteger callers = new AtomicInteger();
    volatile CountDownLatch burst;
    long burstSessions;

    void start(int maxActivePerAgent) {
      for (int i = 0; i < MAX_CALLERS; i++) {
        done[i] = new Semaphore(0);
      }
      ExecutionSettings defaults = ExecutionSettings.defaults("jmh");
      scheduler = Scheduler.standalone(this::ran, defaults.maxConcurrentSteps(), defaults.admissionCapacity(), maxActivePerAgent);
    }

    private void ran(String sessionId) {
      char c = sessionId.charAt(0);
      if (c == '_') {
        burst.countDown();
      } else {
        done[c - 'a'].release();
      }
    }

    /** Wakes {@link #BURST} new sessions from this thread and waits until each has run once. */
    void burst() throws InterruptedException {
      CountDownLatch all = new CountDownLatch(BURST);
      burst = all;
      for (int i = 0; i < BURST; i++) {
        scheduler.admit();
        scheduler.wake("_" + burstSessions++);
      }
      if (!all.await(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(all.getCount() + " of " + BURST + " woken sessions did not run in 60 s");
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      scheduler.close();
    }
  }

  /** A node with no per-agent limit: the node-wide permits only. */
  @State(Scope.Benchmark)
  public static class Open extends Node {
    @Setup(Level.Trial)
    public void setUp() {
      start(0);
    }
  }

  /** A node whose one agent may run 16 sessions at once: agent permits, then node permits. */
  @State(Scope.Benchmark)
  public static class AgentLimited extends Node {
    @Setup(Level.Trial)
    public void setUp() {
      start(16);
    }
  }

  /** One calling thread: its index in the session ids, and the sessions it woke. */
  @State(Scope.Thread)
  public static class Caller {
    char prefix;
    Semaphore done;
    long sessions;

    @Setup(Level.Trial)
    public void setUp(Open node) {
      int i = node.callers.getAndIncrement();
      if (i >= MAX_CALLERS) {
        throw new IllegalStateException("at most " + MAX_CALLERS + " calling threads");
      }
      prefix = (char) ('a' + i);
      done = node.done[i];
    }

    /** Admits and wakes a new session of this caller and waits until it has run. */
    void roundTrip(Scheduler scheduler) throws InterruptedException {
      scheduler.admit();
      scheduler.wake(prefix + Long.toString(sessions++));
      if (!done.tryAcquire(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("a woken session did not run in 10 s");
      }
    }
  }

  /** Admit, wake and run one new session at a time, from one thread. */
  @Benchmark
  public void admitWakeRun(Open node, Caller caller) throws InterruptedException {
    caller.roundTrip(node.scheduler);
  }

  /** The same from 4 threads at once on one node (the admission counter, the slot map, the permits contended). */
  @Benchmark
  @Threads(4)
  public void admitWakeRunContended(Open node, Caller caller) throws InterruptedException {
    caller.roundTrip(node.scheduler);
  }

  /** 1,000 new sessions admitted and woken at once, until all have run; time per session. */
  @Benchmark
  @OperationsPerInvocation(BURST)
  public void wakeBurst1000(Open node) throws InterruptedException {
    node.burst();
  }

  /** The same burst of sessions of one agent limited to 16 running at once; time per session. */
  @Benchmark
  @OperationsPerInvocation(BURST)
  public void wakeBurst1000AgentLimited(AgentLimited node) throws InterruptedException {
    node.burst();
  }
}
