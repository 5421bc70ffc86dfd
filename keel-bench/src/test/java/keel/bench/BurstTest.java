package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the burst at its quick size against a real server and model fake: nothing lost, order kept. */
class BurstTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void burst_quick_everyAcceptedInputIsProcessedInOrder() throws Exception {
    Map<String, Object> r = new Burst(new Burst.Options(100, 10, Duration.ofMillis(20), work), new Progress(true)).run();

    // Burst throws when an accepted input is lost, repeated or seen out of order
    Map<String, Object> fresh = (Map<String, Object>) r.get("new_sessions");
    Map<String, Object> hot = (Map<String, Object>) r.get("hot");
    assertThat((int) fresh.get("accepted") + (int) fresh.get("refused_429")).isEqualTo(100);
    assertThat((int) hot.get("accepted") + (int) hot.get("refused_429")).isEqualTo(100);
    assertThat((int) fresh.get("accepted")).isPositive();
    assertThat(((Number) hot.get("admission_p99_ms")).doubleValue()).isPositive();
    assertThat(((Number) r.get("inputs_checked_in_order")).longValue()).isEqualTo(10 + (int) hot.get("accepted"));
    assertThat(Bench.markdown(new LinkedHashMap<>(Map.of("machine", Bench.machine(), "burst", r))))
        .contains("### Burst: 100 concurrent requests", "| new sessions |", "| 10 hot sessions |");
  }
}
