package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the in-flight scenario at its quick size against a real server and a model fake in its own
 * JVM: every session gets its answer, the fake serves one call per session, and the sessions wait
 * together (the run takes a few latencies, not one per session).
 */
class InFlightTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void inFlight_quick_everySessionAnswers_andTheyWaitTogether() throws Exception {
    Map<String, Object> r = new InFlight(new InFlight.Options(200, Duration.ofMillis(1000), 64, 1, work), new Progress(true)).run();

    assertThat(r.get("model_calls")).as("warm-up and measured round, Keel and floor, one call each").isEqualTo(800L);
    assertThat(((Number) r.get("max_concurrent_steps")).intValue()).isGreaterThanOrEqualTo(200);
    double seconds = median(r.get("all_completed_seconds"));
    assertThat(seconds).as("200 calls of 1 s waited on together").isBetween(1.0, 30.0);
    assertThat(median(r.get("floor_seconds"))).as("the floor's 200 calls of 1 s").isBetween(1.0, 30.0);
    assertThat(median(r.get("fraction_of_ideal"))).isBetween(0.01, 1.0);
    assertThat(((Number) ((Map<String, Object>) r.get("start_round_trip_ms")).get("n")).intValue()).isEqualTo(200);
    assertThat((java.util.List<?>) r.get("memory_samples")).isNotEmpty();
    assertThat(((Number) r.get("peak_waiting_sessions")).longValue()).as("sessions seen in flight at once").isGreaterThan(1);
    Map<String, Object> peak = (Map<String, Object>) r.get("memory_during_wait");
    assertThat(((Number) peak.get("heap_used_max_mib")).doubleValue()).isPositive();
    assertThat(((Number) peak.get("rss_max_mib")).doubleValue()).isPositive();
    assertThat(Bench.markdown(new LinkedHashMap<>(Map.of("machine", Bench.machine(), "in_flight", r))))
        .contains("### In flight: 200 sessions", "fraction of ideal", "fraction of the floor", "| model calls served (Keel and floor, warm-up included) | 800 |");
    assertThat(Report.write(new LinkedHashMap<>(Map.of("machine", Bench.machine(), "in_flight", r)), work.resolve("report"), "test"))
        .contains("in-flight-memory.png");
  }

  @SuppressWarnings("unchecked")
  private static double median(Object spread) {
    return ((Number) ((Map<String, Object>) spread).get("median")).doubleValue();
  }

  @Test
  void settings_inFlight_defaultsAndQuick() {
    assertThat(Bench.Settings.parse(new String[] {"in-flight"}).inFlight()).isEqualTo(10_000);
    assertThat(Bench.Settings.parse(new String[] {"in-flight", "--quick"}).inFlight()).isEqualTo(200);
    assertThat(Bench.Settings.parse(new String[] {"in-flight", "--in-flight", "500"}).runs("in-flight")).isTrue();
    assertThat(InFlight.settings(10_000).maxConcurrentSteps()).isEqualTo(10_000);
    assertThat(InFlight.settings(10_000).admissionCapacity()).isEqualTo(20_000);
  }
}
