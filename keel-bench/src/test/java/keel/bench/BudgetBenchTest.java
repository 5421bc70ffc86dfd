package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the budget scenario with a dozen sessions and checks that its figures are sane. */
class BudgetBenchTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void budget_aDozenSessions_blockAtTheLimit_andOverspendNoMoreThanTheCallsInFlight() throws Exception {
    BudgetBench.Options o = new BudgetBench.Options(12, 1, new BigDecimal("0.25"), 1, 20, 20, work);

    Map<String, Object> r = new BudgetBench(o, new Progress(true)).run();

    Map<String, Object> e = (Map<String, Object>) r.get("enforcement");
    BigDecimal limit = new BigDecimal((String) e.get("limit_usd"));
    assertThat(limit).isPositive();
    // estimates above what calls spend: never over the limit, and some sessions wait
    assertThat(new BigDecimal((String) e.get("used_usd"))).isPositive().isLessThanOrEqualTo(limit);
    assertThat((Integer) e.get("sessions_blocked")).isPositive();
    assertThat(e.get("ledger_model_usd")).isEqualTo(e.get("used_usd"));
    assertThat(e.get("target_met")).isEqualTo(true);
    Map<String, Object> low = (Map<String, Object>) r.get("enforcement_low_estimate");
    assertThat(low.get("target_met")).isEqualTo(true);
    assertThat(new BigDecimal((String) low.get("overspend_usd")))
        .isLessThanOrEqualTo(new BigDecimal((String) low.get("in_flight_at_limit_usd")));
    Map<String, Object> overhead = (Map<String, Object>) r.get("overhead");
    assertThat(((Number) ((Map<String, Object>) overhead.get("reservation_latency_micros")).get("p50")).doubleValue()).isPositive();
    assertThat(Bench.markdown(Map.of("machine", Bench.machine(), "budget", r))).contains("Budget enforcement under contention");
  }
}
