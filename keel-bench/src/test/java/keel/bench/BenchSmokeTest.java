package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
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
    DurableSteps.Options options = new DurableSteps.Options(4, 2, 1, 1, 2, List.of(1, 2), 5, 2, List.of(1, 4), 1, true, 21, true, work);

    Map<String, Object> r = new DurableSteps(options, new Progress(true)).run();

    // DurableSteps checks every session went idle with N×K tool steps recorded, or throws
    Map<String, Object> t = (Map<String, Object>) r.get("throughput");
    Map<String, Object> sps = (Map<String, Object>) t.get("steps_per_second");
    for (String v : List.of("floor", "keel-scripted", "keel-openai", "keel-scripted-pg", "keel-openai-pg")) {
      assertThat(((Number) ((Map<String, Object>) sps.get(v)).get("median")).doubleValue()).as(v).isPositive();
    }
    assertThat(((Number) ((Map<String, Object>) t.get("overhead_ms_openai")).get("n")).intValue()).isEqualTo(4 * 2);
    Map<String, Object> bytes = (Map<String, Object>) r.get("bytes_per_step");
    assertThat((List<Map<String, Object>>) bytes.get("rows"))
        .allSatisfy(row -> assertThat(((Number) row.get("step_event_bytes_per_step")).doubleValue()).isPositive());
    Map<String, Object> longSession = (Map<String, Object>) r.get("long_session");
    assertThat(((Number) longSession.get("event_bytes_total")).longValue()).isPositive();
    Map<String, Object> tracing = (Map<String, Object>) r.get("tracing");
    assertThat(((Number) tracing.get("spans_exported")).intValue()).as("spans the traced server exported").isPositive();
    assertThat(((Number) tracing.get("trace_spans")).intValue()).isBetween(15, 30);
    assertThat((Map<String, Object>) t.get("otlp_on_over_off")).containsKeys("scripted", "openai");
    Map<String, Object> results = new java.util.LinkedHashMap<>(Map.of("machine", Bench.machine(), "durable_steps", r));
    Path out = work.resolve("out");
    Bench.write(results, out, "keel bench durable-steps");
    assertThat(Files.readString(out.resolve("report.md")))
        .contains("Keel (openai) / floor", "Keel on PostgreSQL, `openai` provider", "On PostgreSQL (embedded server", "Throughput against concurrency", "Tracing overhead", "Command: `keel bench durable-steps`",
            "](charts/durable-throughput.png)", "](charts/throughput-vs-concurrency.png)");
    assertThat(out.resolve("results.json")).isNotEmptyFile();
    for (String chart : List.of("durable-throughput.png", "throughput-vs-concurrency.png", "step-overhead.png", "bytes-per-step.png")) {
      assertThat(png(out.resolve("charts").resolve(chart))).as(chart).isTrue();
    }
  }

  /** A real PNG: its signature and a decodable image of some size. */
  static boolean png(Path file) throws java.io.IOException {
    byte[] b = Files.readAllBytes(file);
    java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(file.toFile());
    return b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G' && img != null && img.getWidth() >= 400;
  }

  @Test
  void settings_quick_areSmall() {
    Bench.Settings s = Bench.Settings.parse(new String[] {"all", "--quick"});
    assertThat(s.runs("suspended")).isTrue();
    assertThat(s.sessions()).isEqualTo(20);
    assertThat(s.steps()).isLessThanOrEqualTo(10);
    assertThat(s.suspended()).isEqualTo(2_000);
  }

  @Test
  void settings_severalScenarios_runOnlyThose() {
    Bench.Settings s = Bench.Settings.parse(new String[] {"gateway", "identity", "--quick"});
    assertThat(s.runs("gateway")).isTrue();
    assertThat(s.runs("identity")).isTrue();
    assertThat(s.runs("durable-steps")).isFalse();
  }

  @Test
  void settings_unknownScenario_isRefusedWithTheUsage() {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Bench.Settings.parse(new String[] {"durable-stepz"}))
        .hasMessageContaining("unknown argument \"durable-stepz\"").hasMessageContaining("keel bench");
  }
}
