package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the cost scenario on ten tasks and checks that both variants solve them and Keel pays less. */
class CostBenchTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void cost_tenTasks_bothSucceedEverywhere_keelEscalatesTheHardOnes_andCostsLess() throws Exception {
    long hard = CostBench.workload(10, CostBench.SEED).stream().filter(CostBench.Task::hard).count();
    assertThat(hard).as("the seed gives hard tasks among the first ten").isPositive();

    Map<String, Object> r = new CostBench(new CostBench.Options(10, 4, CostBench.SEED, work), new Progress(true)).run();

    Map<String, Object> raw = (Map<String, Object>) r.get("raw_api");
    Map<String, Object> keel = (Map<String, Object>) r.get("keel");
    assertThat(raw.get("successes")).as("raw API successes; failures %s", raw.get("failures")).isEqualTo(10);
    assertThat(keel.get("successes")).as("Keel successes; failures %s", keel.get("failures")).isEqualTo(10);
    BigDecimal rawCost = new BigDecimal((String) raw.get("cost_usd"));
    BigDecimal keelCost = new BigDecimal((String) keel.get("cost_usd"));
    assertThat(rawCost).isPositive();
    assertThat(keelCost).isPositive().isLessThan(rawCost);
    // each hard task escalates exactly once (escalated_step keeps the rest of the turn on the main model)
    assertThat(((Number) keel.get("escalations")).longValue()).isEqualTo(hard);
    assertThat((Map<String, Object>) keel.get("escalation_reasons")).containsOnlyKeys("invalid_tool_arguments", "empty_answer");
    assertThat(((Number) raw.get("escalations")).longValue()).isZero();
    assertThat(((Number) raw.get("cache_read_tokens")).longValue()).isZero();
    assertThat(((Number) keel.get("cache_read_tokens")).longValue()).isPositive();
    assertThat(((Number) keel.get("small_model_calls")).longValue()).isPositive();
    assertThat(Bench.markdown(Map.of("machine", Bench.machine(), "cost", r))).contains("Model cost: raw API vs Keel's defaults");
  }

  @Test
  void workload_isFixedBySeed_andMixesEasyAndHardTasks() {
    var tasks = CostBench.workload(300, CostBench.SEED);
    assertThat(tasks).isEqualTo(CostBench.workload(300, CostBench.SEED));
    long hard = tasks.stream().filter(CostBench.Task::hard).count();
    assertThat(hard).isBetween(80L, 130L);
    assertThat(tasks).allSatisfy(t -> assertThat(t.steps()).isBetween(t.hard() ? 2 : 1, t.hard() ? 3 : 2));
    assertThat(CostBench.Task.parse(tasks.get(16).message())).isEqualTo(tasks.get(16));
    assertThat(CostBench.policy().length() / 4).as("instructions, in the fake's tokens").isBetween(1_500, 2_500);
  }
}
