package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the durable-steps scenario with tiny numbers and checks that its results are sane. */
class BenchSmokeTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void durableSteps_withTinyNumbers_countsEveryStepAndMeasuresTheFloor() throws Exception {
    DurableSteps.Options options = new DurableSteps.Options(4, 2, 1, 1, 2, List.of(1, 2), 5, 2, work);

    Map<String, Object> r = new DurableSteps(options, new Progress(true)).run();

    // DurableSteps checks every session went idle with N×K tool steps recorded, or throws
    Map<String, Object> t = (Map<String, Object>) r.get("throughput");
    Map<String, Object> sps = (Map<String, Object>) t.get("steps_per_second");
    for (String v : List.of("floor", "keel-scripted", "keel-openai")) {
      assertThat(((Number) ((Map<String, Object>) sps.get(v)).get("median")).doubleValue()).as(v).isPositive();
    }
    assertThat(((Number) ((Map<String, Object>) t.get("overhead_ms_openai")).get("n")).intValue()).isEqualTo(4 * 2);
    Map<String, Object> bytes = (Map<String, Object>) r.get("bytes_per_step");
    assertThat((List<Map<String, Object>>) bytes.get("rows"))
        .allSatisfy(row -> assertThat(((Number) row.get("step_event_bytes_per_step")).doubleValue()).isPositive());
    Map<String, Object> longSession = (Map<String, Object>) r.get("long_session");
    assertThat(((Number) longSession.get("event_bytes_total")).longValue()).isPositive();
    assertThat(Bench.markdown(Map.of("machine", Bench.machine(), "durable_steps", r))).contains("Keel (openai) / floor");
  }

  @Test
  void settings_quick_areSmall() {
    Bench.Settings s = Bench.Settings.parse(new String[] {"all", "--quick"});
    assertThat(s.sessions()).isEqualTo(20);
    assertThat(s.steps()).isLessThanOrEqualTo(10);
    assertThat(s.suspended()).isEqualTo(2_000);
  }
}
