package keel.execution;

import static keel.execution.GatewayRequests.request;
import static keel.execution.GatewayRequests.response;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class RequestCoalescerTest {

  private static final int THREADS = 100;

  /**
   * Starts {@link #THREADS} callers with the given keys at once; the supplier holds its call open
   * until every caller has either joined it or started its own, so that all of them overlap.
   */
  private static List<Future<Object>> hammer(
      RequestCoalescer coalescer, java.util.function.IntFunction<String> keyOf, AtomicInteger calls, RuntimeException failure)
      throws Exception {
    CountDownLatch start = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Future<Object>> results = new ArrayList<>();
    ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
    for (int i = 0; i < THREADS; i++) {
      String key = keyOf.apply(i);
      results.add(
          pool.submit(
              () -> {
                start.await();
                try {
                  return coalescer.call(
                      key,
                      () -> {
                        int n = calls.incrementAndGet();
                        try {
                          release.await(10, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                          Thread.currentThread().interrupt();
                        }
                        if (failure != null) {
                          throw failure;
                        }
                        return response("answer " + key + " #" + n);
                      });
                } catch (RuntimeException e) {
                  return e;
                }
              }));
    }
    start.countDown();
    // every caller is either waiting on a call or inside one
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (coalescer.shared() + calls.get() < THREADS && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    release.countDown();
    pool.shutdown();
    assertThat(pool.awaitTermination(20, TimeUnit.SECONDS)).isTrue();
    return results;
  }

  @Test
  void hundredConcurrentCallers_withOneKey_shareOneCall() throws Exception {
    RequestCoalescer coalescer = new RequestCoalescer();
    AtomicInteger calls = new AtomicInteger();
    List<Future<Object>> results = hammer(coalescer, i -> "same", calls, null);
    assertThat(calls).hasValue(1);
    ModelResponse first = (ModelResponse) results.getFirst().get();
    for (Future<Object> r : results) {
      assertThat(r.get()).isSameAs(first);
    }
    assertThat(coalescer.shared()).isEqualTo(THREADS - 1);
    assertThat(coalescer.inFlight()).isZero();
  }

  @Test
  void anException_isSharedByEveryWaitingCaller() throws Exception {
    RequestCoalescer coalescer = new RequestCoalescer();
    AtomicInteger calls = new AtomicInteger();
    ModelFailure failure = new ModelFailure(ModelFailure.Kind.TRANSIENT, "provider timed out");
    List<Future<Object>> results = hammer(coalescer, i -> "same", calls, failure);
    assertThat(calls).hasValue(1);
    for (Future<Object> r : results) {
      assertThat(r.get()).isSameAs(failure);
    }
    assertThat(coalescer.inFlight()).isZero();
  }

  @Test
  void differentKeys_doNotShare() throws Exception {
    RequestCoalescer coalescer = new RequestCoalescer();
    AtomicInteger calls = new AtomicInteger();
    List<Future<Object>> results = hammer(coalescer, i -> "key-" + (i % 10), calls, null);
    assertThat(calls).hasValue(10);
    assertThat(coalescer.shared()).isEqualTo(THREADS - 10);
    for (int i = 0; i < THREADS; i++) {
      assertThat(((ModelResponse) results.get(i).get()).text()).startsWith("answer key-" + (i % 10) + " #");
    }
  }

  @Test
  void aKey_isForgottenOnceItsCallIsDone() {
    RequestCoalescer coalescer = new RequestCoalescer();
    AtomicInteger calls = new AtomicInteger();
    ModelResponse first = coalescer.call("k", () -> response("one " + calls.incrementAndGet()));
    ModelResponse second = coalescer.call("k", () -> response("two " + calls.incrementAndGet()));
    assertThat(first.text()).isEqualTo("one 1");
    assertThat(second.text()).isEqualTo("two 2");
    assertThat(coalescer.shared()).isZero();
    assertThat(coalescer.inFlight()).isZero();
  }

  @Test
  void aKey_isForgottenAfterAFailure_too() {
    RequestCoalescer coalescer = new RequestCoalescer();
    assertThatThrownBy(() -> coalescer.call("k", () -> { throw new ModelFailure(ModelFailure.Kind.PERMANENT, "bad request"); }))
        .isInstanceOf(ModelFailure.class)
        .hasMessage("bad request");
    assertThat(coalescer.call("k", () -> response("fine")).text()).isEqualTo("fine");
  }

  @Test
  void key_dependsOnTheAgentAndTheRequestBody() {
    ModelRequest a = request("hi");
    String key = RequestCoalescer.key("support", a, "openai", "gpt-4o-mini");
    assertThat(key).matches("[0-9a-f]{64}");
    assertThat(RequestCoalescer.key("support", request("hi"), "openai", "gpt-4o-mini")).isEqualTo(key);
    assertThat(RequestCoalescer.key("billing", a, "openai", "gpt-4o-mini")).isNotEqualTo(key);
    assertThat(RequestCoalescer.key("support", request("hello"), "openai", "gpt-4o-mini")).isNotEqualTo(key);
    assertThat(RequestCoalescer.key("support", a, "openai", "gpt-4o")).isNotEqualTo(key);
  }
}
