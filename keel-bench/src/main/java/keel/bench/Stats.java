package keel.bench;

import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/** Order statistics over measured samples. Stateless and thread-safe. */
final class Stats {

  private Stats() {}

  /** The median and the spread of a few repetitions. */
  record Spread(double median, double min, double max, int n) {
    static Spread of(Collection<? extends Number> values) {
      double[] v = values.stream().mapToDouble(Number::doubleValue).sorted().toArray();
      if (v.length == 0) {
        return new Spread(Double.NaN, Double.NaN, Double.NaN, 0);
      }
      return new Spread(percentile(v, 50), v[0], v[v.length - 1], v.length);
    }

    Map<String, Object> json() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("median", median);
      m.put("min", min);
      m.put("max", max);
      m.put("n", n);
      return m;
    }

    /** {@code median (min–max)} with the given number of decimals. */
    String format(int decimals) {
      String f = "%." + decimals + "f";
      return String.format(f + " (" + f + "–" + f + ")", median, min, max);
    }
  }

  /** The p-th percentile (nearest rank) of sorted values; NaN when there are none. */
  static double percentile(double[] sorted, double p) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    if (p == 50 && sorted.length % 2 == 0) {
      return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    }
    int rank = (int) Math.ceil(p / 100.0 * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  static double percentile(Collection<? extends Number> values, double p) {
    double[] v = values.stream().mapToDouble(Number::doubleValue).toArray();
    Arrays.sort(v);
    return percentile(v, p);
  }

  static double mean(Collection<? extends Number> values) {
    return values.stream().mapToDouble(Number::doubleValue).average().orElse(Double.NaN);
  }

  /** p50, p90, p99 and max of nanosecond samples, in milliseconds, and how many there were. */
  static Map<String, Object> millis(Collection<Long> nanos) {
    double[] v = nanos.stream().mapToDouble(n -> n / 1e6).sorted().toArray();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", percentile(v, 50));
    m.put("p90", percentile(v, 90));
    m.put("p99", percentile(v, 99));
    m.put("max", v.length == 0 ? Double.NaN : v[v.length - 1]);
    m.put("n", v.length);
    return m;
  }
}
