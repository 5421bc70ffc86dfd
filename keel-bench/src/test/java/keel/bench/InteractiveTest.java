package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the interactive scenario at its quick size against a real server and model fake: every
 * answer arrives once and in order on each path, and the report shows the three paths.
 */
class InteractiveTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void interactive_quick_everyAnswerArrivesOnceInOrder_onEveryPath() throws Exception {
    Map<String, Object> r = new Interactive(new Interactive.Options(20, 5, List.of(0, 50), work), new Progress(true)).run();

    // Interactive throws when an answer is lost, repeated, or arrives out of order
    assertThat(r.get("answers_checked")).isEqualTo(3L * 25);
    Map<String, Object> paths = (Map<String, Object>) r.get("paths");
    assertThat(paths).containsOnlyKeys("sse", "poll_0ms", "poll_50ms");
    for (Object p : paths.values()) {
      Map<String, Object> m = (Map<String, Object>) p;
      Map<String, Object> ack = (Map<String, Object>) m.get("post_202_ms");
      Map<String, Object> answer = (Map<String, Object>) m.get("final_answer_ms");
      assertThat(ack.get("n")).isEqualTo(20);
      assertThat(((Number) answer.get("p50")).doubleValue()).isPositive();
    }
    // one stream request plus one POST per message; polling needs at least one GET per message more
    assertThat((long) ((Map<String, Object>) paths.get("sse")).get("requests")).isEqualTo(1 + 25);
    assertThat((long) ((Map<String, Object>) paths.get("poll_0ms")).get("requests")).isGreaterThanOrEqualTo(2 * 25);
    // a client polling every 50 ms cannot see an answer sooner than its first poll
    Map<String, Object> slow = (Map<String, Object>) ((Map<String, Object>) paths.get("poll_50ms")).get("final_answer_ms");
    assertThat(((Number) slow.get("p50")).doubleValue()).isGreaterThanOrEqualTo(50.0);

    Map<String, Object> results = new LinkedHashMap<>(Map.of("machine", Bench.machine(), "interactive", r));
    Path out = work.resolve("out");
    Bench.write(results, out, "keel bench interactive --quick");
    assertThat(Files.readString(out.resolve("report.md")))
        .contains("### Interactive latency: 20 messages", "| SSE stream held open (push) |", "polled every 50 ms", "interactive-latency.png");
    assertThat(out.resolve("charts/interactive-latency.png")).isNotEmptyFile();
  }
}
