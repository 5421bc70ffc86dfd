package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the mcp-gateway scenario with tiny numbers against a real ledger server and checks its results. */
class McpGatewayBenchTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void mcpGateway_withTinyNumbers_pairsDirectAndGatewayCalls_andAuditsEveryGatewayCall() throws Exception {
    Map<String, Object> r = new McpGatewayBench(new McpGatewayBench.Options(20, 2, List.of(1, 4), 16, work), new Progress(true)).run();

    for (String k : List.of("direct_us", "gateway_us")) {
      Map<String, Object> p = (Map<String, Object>) r.get(k);
      assertThat(((Number) p.get("p50")).doubleValue()).as(k).isPositive();
      assertThat(((Number) p.get("n")).intValue()).as(k).isEqualTo(40);
    }
    Map<String, Object> stages = (Map<String, Object>) r.get("gateway_stages_us");
    assertThat(stages).containsOnlyKeys("token_check", "policy_check", "gateway_call", "audit_append");
    List<Map<String, Object>> sweep = (List<Map<String, Object>>) r.get("concurrency");
    assertThat(sweep).extracting(row -> row.get("concurrency")).containsExactly(1, 4);
    assertThat(((Number) ((Map<String, Object>) sweep.get(1).get("gateway_calls_per_second")).get("median")).doubleValue()).isPositive();
    // warm-up 20 + 2 × 20 sequential, then per level and repetition at least 16 calls: all audited, chain intact
    assertThat(((Number) r.get("audit_records_written")).longValue()).isGreaterThanOrEqualTo(3L * (60 + 2 * 2 * 16));
    assertThat(r.get("audit_chain_verified")).isEqualTo(true);
    Path out = work.resolve("out");
    Bench.write(new java.util.LinkedHashMap<>(Map.of("machine", Bench.machine(), "mcp_gateway", r)), out, "keel bench mcp-gateway");
    assertThat(java.nio.file.Files.readString(out.resolve("report.md")))
        .contains("### MCP gateway", "added by the gateway at p50", "](charts/mcp-gateway-latency.png)");
    for (String chart : List.of("mcp-gateway-latency.png", "mcp-gateway-throughput.png")) {
      assertThat(BenchSmokeTest.png(out.resolve("charts").resolve(chart))).as(chart).isTrue();
    }
  }
}
