package keel.execution;

import static keel.execution.GatewayRequests.request;
import static keel.execution.GatewayRequests.response;
import static keel.execution.GatewayRequests.tool;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;
import keel.core.Message;
import keel.core.Usage;
import org.junit.jupiter.api.Test;

class ResponseCacheTest {

  private static final Predicate<String> READ_ONLY = Set.of("search", "time_now")::contains;

  @Test
  void key_atTemperatureZero_withoutTools_isPresent() {
    assertThat(ResponseCache.key(request("hi"), "openai", "gpt-4o-mini", READ_ONLY)).isPresent();
  }

  @Test
  void key_withoutTemperature_orAboveZero_isAbsent() {
    assertThat(ResponseCache.key(request(Optional.empty(), "hi", List.of()), "openai", "m", READ_ONLY)).isEmpty();
    assertThat(ResponseCache.key(request(Optional.of(0.2), "hi", List.of()), "openai", "m", READ_ONLY)).isEmpty();
  }

  @Test
  void key_withAToolThatWrites_isAbsent() {
    ModelRequest readOnly = request(Optional.of(0.0), "hi", List.of(tool("search"), tool("time_now")));
    ModelRequest writes = request(Optional.of(0.0), "hi", List.of(tool("search"), tool("send_email")));
    assertThat(ResponseCache.key(readOnly, "openai", "m", READ_ONLY)).isPresent();
    assertThat(ResponseCache.key(writes, "openai", "m", READ_ONLY)).isEmpty();
  }

  @Test
  void key_isASha256_thatChangesWithEveryPartOfTheRequest() {
    String base = ResponseCache.key(request("hi"), "openai", "m", READ_ONLY).orElseThrow();
    assertThat(base).matches("[0-9a-f]{64}");
    assertThat(ResponseCache.key(request("hi"), "openai", "m", READ_ONLY)).contains(base);
    assertThat(ResponseCache.key(request("hello"), "openai", "m", READ_ONLY)).get().isNotEqualTo(base);
    assertThat(ResponseCache.key(request("hi"), "openai", "m2", READ_ONLY)).get().isNotEqualTo(base);
    assertThat(ResponseCache.key(request("hi"), "other", "m", READ_ONLY)).get().isNotEqualTo(base);
    ModelRequest withTool = request(Optional.of(0.0), "hi", List.of(tool("search")));
    assertThat(ResponseCache.key(withTool, "openai", "m", READ_ONLY)).get().isNotEqualTo(base);
    ModelRequest otherInstructions =
        new ModelRequest("support", "s-1", GatewayRequests.model(Optional.of(0.0)), "Be terse.", List.of(new Message.User("hi")), List.of(), 0);
    assertThat(ResponseCache.key(otherInstructions, "openai", "m", READ_ONLY)).get().isNotEqualTo(base);
  }

  @Test
  void key_ignoresTheSessionAndStep() {
    ModelRequest a = request("hi");
    ModelRequest b = new ModelRequest("support", "s-2", a.model(), a.instructions(), a.conversation(), a.tools(), 3);
    assertThat(ResponseCache.key(a, "openai", "m", READ_ONLY)).isEqualTo(ResponseCache.key(b, "openai", "m", READ_ONLY));
  }

  @Test
  void getAfterPut_hits_andCostsNothing() {
    ResponseCache cache = new ResponseCache(Duration.ofMinutes(5), 100, new MutableTestClock());
    String key = ResponseCache.key(request("hi"), "openai", "m", READ_ONLY).orElseThrow();
    assertThat(cache.get(key)).isEmpty();
    cache.put(key, response("hello"));
    ModelResponse hit = cache.get(key).orElseThrow();
    assertThat(hit.text()).isEqualTo("hello");
    assertThat(hit.modelVersion()).isEqualTo("gpt-4o-mini-2024-07-18");
    assertThat(hit.usage()).isEqualTo(Usage.ZERO);
    assertThat(cache.hits()).isEqualTo(1);
    assertThat(cache.misses()).isEqualTo(1);
  }

  @Test
  void entries_expireAfterTheTtl_byTheInjectedClock() {
    MutableTestClock clock = new MutableTestClock();
    ResponseCache cache = new ResponseCache(Duration.ofMinutes(5), 100, clock);
    cache.put("k", response("hello"));
    clock.advance(Duration.ofMinutes(4).plusSeconds(59));
    assertThat(cache.get("k")).isPresent();
    clock.advance(Duration.ofSeconds(2));
    assertThat(cache.get("k")).isEmpty();
    assertThat(cache.hits()).isEqualTo(1);
    assertThat(cache.misses()).isEqualTo(1);
  }

  @Test
  void entriesBeyondTheMaximum_areEvicted() {
    ResponseCache cache = new ResponseCache(Duration.ofMinutes(5), 10, new MutableTestClock());
    for (int i = 0; i < 100; i++) {
      cache.put("k" + i, response("r" + i));
    }
    assertThat(cache.size()).isLessThanOrEqualTo(10);
  }

  @Test
  void constructor_rejectsNonPositiveLimits() {
    assertThatThrownBy(() -> new ResponseCache(Duration.ZERO, 10, new MutableTestClock()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ttl");
    assertThatThrownBy(() -> new ResponseCache(Duration.ofSeconds(1), 0, new MutableTestClock()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maxEntries");
  }
}
