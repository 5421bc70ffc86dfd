package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the suspended scenario small against a real server in its own JVM on a real SQLite file:
 * every store size is measured, and the three resume figures come from real resumes (the rehydrate
 * one from the server's own histogram on /metrics) and are ordered as the phases they time.
 */
class SuspendedTest {

  @TempDir Path work;

  @Test
  void points_areZeroThenPowersOfTenThenTheSize() {
    assertThat(Suspended.points(1_000_000)).containsExactly(0, 10_000, 100_000, 1_000_000);
    assertThat(Suspended.points(250_000)).containsExactly(0, 10_000, 100_000, 250_000);
    assertThat(Suspended.points(10_000)).containsExactly(0, 10_000);
    assertThat(Suspended.points(2_000)).containsExactly(0, 2_000);
  }

  @Test
  void bucketPercentile_interpolatesWithinTheBucket_likeHistogramQuantile() {
    TreeMap<Double, Double> h = new TreeMap<>(Map.of(0.001, 50.0, 0.002, 100.0, 0.004, 100.0, Double.POSITIVE_INFINITY, 100.0));
    assertThat(Suspended.bucketPercentile(h, 50)).isCloseTo(0.001, within(1e-12));
    assertThat(Suspended.bucketPercentile(h, 25)).isCloseTo(0.0005, within(1e-12));
    assertThat(Suspended.bucketPercentile(h, 99)).isCloseTo(0.00198, within(1e-12));
    assertThat(Suspended.bucketUpper(h, 99)).isEqualTo(0.002);
    TreeMap<Double, Double> tail = new TreeMap<>(Map.of(0.001, 90.0, Double.POSITIVE_INFINITY, 100.0));
    assertThat(Suspended.bucketPercentile(tail, 99)).isEqualTo(0.001);
    assertThat(Suspended.bucketPercentile(new TreeMap<>(), 99)).isNaN();
  }

  @Test
  void histogram_readsTheResumeAgentsBucketsFromAScrape() {
    String scrape = """
        # TYPE keel_session_rehydrate_seconds histogram
        keel_session_rehydrate_seconds_bucket{agent="other",le="1.0E-5"} 7
        keel_session_rehydrate_seconds_bucket{agent="resume",le="1.0E-5"} 1
        keel_session_rehydrate_seconds_bucket{agent="resume",le="2.5E-4"} 3
        keel_session_rehydrate_seconds_bucket{agent="resume",le="+Inf"} 4
        keel_session_rehydrate_seconds_count{agent="resume"} 4
        """;
    assertThat(Suspended.histogram(scrape)).containsExactly(
        Map.entry(1.0E-5, 1.0), Map.entry(2.5E-4, 3.0), Map.entry(Double.POSITIVE_INFINITY, 4.0));
  }

  @Test
  @SuppressWarnings("unchecked")
  void run_small_measuresEveryStoreSize_andTheThreeResumeFigures() throws Exception {
    Map<String, Object> r = new Suspended(new Suspended.Options(300, 30, "512m", work), new Progress(true)).run();

    List<Map<String, Object>> points = (List<Map<String, Object>>) r.get("points");
    assertThat(points).extracting(p -> p.get("sessions")).containsExactly(0, 300);
    for (Map<String, Object> p : points) {
      Map<String, Object> idle = (Map<String, Object>) p.get("idle");
      assertThat(((Number) idle.get("heap_used_mib")).doubleValue()).isPositive();
      assertThat(((Number) idle.get("rss_mib")).doubleValue()).isPositive();
    }
    // the store grew with the sessions written into it
    assertThat(((Number) points.get(1).get("db_bytes")).longValue()).isGreaterThan(((Number) points.get(0).get("db_bytes")).longValue());
    Map<String, Object> seeding = (Map<String, Object>) r.get("seeding");
    assertThat(((Number) seeding.get("sessions_per_second")).doubleValue()).isPositive();

    Map<String, Object> resume = (Map<String, Object>) r.get("resume");
    assertThat(resume.get("n")).isEqualTo(30);
    Map<String, Object> rehydrate = (Map<String, Object>) resume.get("rehydrate_ms");
    // every measured turn ran at least once, and each run rehydrated its session
    assertThat(((Number) rehydrate.get("runs")).longValue()).isGreaterThanOrEqualTo(30);
    double a = ((Number) rehydrate.get("p50")).doubleValue();
    double accepted = p50(resume, "accepted_ms");
    double b = p50(resume, "first_event_ms");
    double c = p50(resume, "turn_ms");
    assertThat(a).isPositive();
    // the phases nest: the rehydrate is part of the way to the first event, which is part of the turn
    assertThat(a).isLessThan(b);
    assertThat(accepted).isLessThanOrEqualTo(b);
    assertThat(b).isLessThanOrEqualTo(c);
    assertThat(((Number) rehydrate.get("p99")).doubleValue()).isLessThanOrEqualTo(((Number) rehydrate.get("p99_bucket_upper")).doubleValue());
    Map<String, Object> reaped = (Map<String, Object>) resume.get("after_streams_reaped");
    assertThat(((Number) reaped.get("heap_used_mib")).doubleValue()).isPositive();

    String md = Bench.markdown(new LinkedHashMap<>(Map.of("machine", Bench.machine(), "suspended", r)));
    assertThat(md).contains("### Suspended sessions", "| 300 (idle after start) |", "(a) rehydrate", "(b) first durable event",
        "(c) whole turn", "Seeding: 300 sessions", "the closed event streams reaped");
    assertThat(Report.write(new LinkedHashMap<>(Map.of("machine", Bench.machine(), "suspended", r)), work.resolve("out"), "test"))
        .containsExactly("memory-vs-sessions.png", "resume-latency.png");
  }

  @SuppressWarnings("unchecked")
  private static double p50(Map<String, Object> resume, String key) {
    return ((Number) ((Map<String, Object>) resume.get(key)).get("p50")).doubleValue();
  }
}
