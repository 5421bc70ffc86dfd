package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the identity scenario with tiny numbers and checks that its results are sane. */
class IdentityOverheadTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void identity_withTinyNumbers_measuresIssueAndBothKindsOfCheck() throws Exception {
    Map<String, Object> r = new IdentityOverhead(20, 1, work, new Progress(true)).run();
    for (String k : new String[] {"issue_us", "first_check_us", "repeat_check_us"}) {
      assertThat(((Number) ((Map<String, Object>) r.get(k)).get("p50")).doubleValue()).as(k).isPositive();
    }
    assertThat(((Number) r.get("token_bytes")).intValue()).isGreaterThan(200);
    assertThat(Bench.markdown(Map.of("machine", Bench.machine(), "identity", r)))
        .contains("### Agent identity per use", "first check of a token on a node");
  }
}
