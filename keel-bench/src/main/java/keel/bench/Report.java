package keel.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.BoxChart;
import org.knowm.xchart.BoxChartBuilder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;

/**
 * The readable report of one run: {@code report.md} (the machine, the command, every table of
 * {@link Bench#markdown}) and PNG charts in {@code charts/}, drawn headless with XChart from the
 * same results tree that goes to {@code results.json}. A chart is drawn only for the scenarios that
 * ran.
 *
 * <p>Stateless and thread-safe; AWT runs headless (set before the first chart is drawn).
 */
final class Report {

  private static final int WIDTH = 800;
  private static final int HEIGHT = 480;

  private Report() {}

  /** Writes {@code report.md} and the charts it links to into {@code out}; returns the charts' file names. */
  static List<String> write(Map<String, Object> results, Path out, String command) throws IOException {
    System.setProperty("java.awt.headless", "true");
    Path charts = Files.createDirectories(out.resolve("charts"));
    Map<String, String> drawn = new LinkedHashMap<>(); // file name → caption
    draw(results, charts, drawn);
    StringBuilder b = new StringBuilder("# Keel benchmark report\n\n");
    b.append("Command: `").append(command).append("`\n\n");
    b.append(Bench.markdown(results));
    // --jfr: the profile summaries (Profile)
    if (results.get("profiles") instanceof Map<?, ?> profiles && !profiles.isEmpty()) {
      b.append("\n## Profiles (JFR)\n\n");
      for (Map.Entry<?, ?> e : profiles.entrySet()) {
        @SuppressWarnings("unchecked")
        Map<String, Object> p = (Map<String, Object>) e.getValue();
        b.append("### ").append(e.getKey()).append("\n\n").append(Profile.markdown(p));
      }
    }
    if (!drawn.isEmpty()) {
      b.append("\n## Charts\n\n");
      drawn.forEach((file, caption) -> b.append("**").append(caption).append("**\n\n![").append(caption)
          .append("](charts/").append(file).append(")\n\n"));
    }
    Files.writeString(out.resolve("report.md"), b.toString());
    return List.copyOf(drawn.keySet());
  }

  @SuppressWarnings("unchecked")
  private static void draw(Map<String, Object> r, Path dir, Map<String, String> drawn) throws IOException {
    Map<String, Object> d = (Map<String, Object>) r.get("durable_steps");
    if (d != null) {
      Map<String, Object> t = (Map<String, Object>) d.get("throughput");
      List<Map<String, Object>> reps = (List<Map<String, Object>>) t.get("repetitions");
      BoxChart box = new BoxChartBuilder().width(WIDTH).height(HEIGHT)
          .title("Durable steps/s, N = " + t.get("sessions") + " × K = " + t.get("steps") + " (" + reps.size() + " repetitions)")
          .yAxisTitle("steps/s").build();
      for (String v : ((Map<String, Object>) t.get("steps_per_second")).keySet()) {
        List<Number> values = new ArrayList<>();
        reps.forEach(rep -> values.add((Number) rep.get(v)));
        box.addSeries(v, values);
      }
      save(box, dir, "durable-throughput.png", "Durable step throughput per variant (box: repetitions)", drawn);

      Map<String, Object> c = (Map<String, Object>) d.get("concurrency");
      if (c != null) {
        XYChart xy = new XYChartBuilder().width(WIDTH).height(HEIGHT)
            .title("Throughput against concurrency (K = " + c.get("steps") + ", median of " + c.get("reps") + ")")
            .xAxisTitle("concurrent sessions").yAxisTitle("steps/s").build();
        xy.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        Map<String, Object> series = (Map<String, Object>) c.get("steps_per_second");
        series.forEach((v, points) -> {
          List<Number> xs = new ArrayList<>();
          List<Number> ys = new ArrayList<>();
          for (Map<String, Object> p : (List<Map<String, Object>>) points) {
            xs.add((Number) p.get("sessions"));
            ys.add((Number) p.get("median"));
          }
          xy.addSeries(v, xs, ys);
        });
        save(xy, dir, "throughput-vs-concurrency.png", "Throughput against concurrent sessions", drawn);
      }

      CategoryChart lat = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
          .title("Per-step overhead (N = " + t.get("sessions") + ", contended)").yAxisTitle("ms").build();
      for (String v : List.of("openai", "scripted")) {
        Map<String, Object> p = (Map<String, Object>) t.get("overhead_ms_" + v);
        lat.addSeries(v, List.of("p50", "p99"), List.of((Number) p.get("p50"), (Number) p.get("p99")));
      }
      save(lat, dir, "step-overhead.png", "Per-step overhead percentiles under load", drawn);

      Map<String, Object> by = (Map<String, Object>) d.get("bytes_per_step");
      XYChart bytes = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("Bytes stored per step as sessions grow")
          .xAxisTitle("tool steps per session (K)").yAxisTitle("bytes / step").build();
      List<Number> ks = new ArrayList<>();
      List<Number> ev = new ArrayList<>();
      List<Number> db = new ArrayList<>();
      for (Map<String, Object> row : (List<Map<String, Object>>) by.get("rows")) {
        ks.add((Number) row.get("steps"));
        ev.add((Number) row.get("step_event_bytes_per_step"));
        db.add((Number) row.get("db_growth_bytes_per_step"));
      }
      bytes.addSeries("step events", ks, ev);
      bytes.addSeries("SQLite growth", ks, db);
      save(bytes, dir, "bytes-per-step.png", "Bytes stored per step against session length", drawn);
    }
    List<String> names = new ArrayList<>();
    List<Number> p50 = new ArrayList<>();
    List<Number> p90 = new ArrayList<>();
    List<Number> p99 = new ArrayList<>();
    Map<String, Object> g = (Map<String, Object>) r.get("gateway");
    if (g != null) {
      percentiles(names, p50, p90, p99, "provider directly", (Map<String, Object>) g.get("provider_us"));
      percentiles(names, p50, p90, p99, "via gateway", (Map<String, Object>) g.get("gateway_us"));
    }
    Map<String, Object> id = (Map<String, Object>) r.get("identity");
    if (id != null) {
      percentiles(names, p50, p90, p99, "token issue", (Map<String, Object>) id.get("issue_us"));
      percentiles(names, p50, p90, p99, "token first check", (Map<String, Object>) id.get("first_check_us"));
      percentiles(names, p50, p90, p99, "token cached check", (Map<String, Object>) id.get("repeat_check_us"));
    }
    if (!names.isEmpty()) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title("Latency per operation (sequential)")
          .yAxisTitle("µs (log)").build();
      c.getStyler().setYAxisLogarithmic(true);
      c.getStyler().setYAxisMin(0.1); // bars start from the axis' minimum, which a log axis cannot put at 0
      c.getStyler().setXAxisLabelRotation(20);
      c.addSeries("p50", names, p50);
      c.addSeries("p90", names, p90);
      c.addSeries("p99", names, p99);
      save(c, dir, "latency-percentiles.png", "Latency percentiles: model gateway and agent identity", drawn);
    }
    Map<String, Object> s = (Map<String, Object>) r.get("suspended");
    if (s != null) {
      suspended(s, dir, drawn);
    }
    Map<String, Object> mg = (Map<String, Object>) r.get("mcp_gateway");
    if (mg != null) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
          .title("MCP tool call latency: direct SDK client vs through the Keel gateway").yAxisTitle("µs").build();
      List<String> ps = List.of("p50", "p90", "p99");
      for (String[] series : new String[][] {{"direct", "direct_us"}, {"via gateway", "gateway_us"}}) {
        Map<String, Object> m = (Map<String, Object>) mg.get(series[1]);
        c.addSeries(series[0], ps, List.of((Number) m.get("p50"), (Number) m.get("p90"), (Number) m.get("p99")));
      }
      save(c, dir, "mcp-gateway-latency.png", "MCP tool call latency percentiles: direct against through the gateway", drawn);
      XYChart xy = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("MCP calls per second against concurrency")
          .xAxisTitle("concurrent callers").yAxisTitle("calls/s").build();
      xy.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
      List<Number> xs = new ArrayList<>();
      List<Number> direct = new ArrayList<>();
      List<Number> gateway = new ArrayList<>();
      for (Map<String, Object> row : (List<Map<String, Object>>) mg.get("concurrency")) {
        xs.add((Number) row.get("concurrency"));
        direct.add((Number) ((Map<String, Object>) row.get("direct_calls_per_second")).get("median"));
        gateway.add((Number) ((Map<String, Object>) row.get("gateway_calls_per_second")).get("median"));
      }
      xy.addSeries("direct", xs, direct);
      xy.addSeries("via gateway", xs, gateway);
      save(xy, dir, "mcp-gateway-throughput.png", "MCP calls per second against concurrency: direct and through the gateway", drawn);
    }
    Map<String, Object> inFlight = (Map<String, Object>) r.get("in_flight");
    if (inFlight != null) {
      XYChart m = new XYChartBuilder().width(WIDTH).height(HEIGHT)
          .title("In flight: " + inFlight.get("sessions") + " sessions waiting on a " + inFlight.get("model_latency_ms")
              + " ms model call (last repetition)")
          .xAxisTitle("seconds since the first start").yAxisTitle("MiB / sessions").build();
      m.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
      m.getStyler().setMarkerSize(0);
      List<Number> t = new ArrayList<>();
      Map<String, List<Number>> ys = new LinkedHashMap<>();
      for (String k : List.of("heap_live_mib", "heap_used_mib", "rss_mib", "waiting_sessions")) {
        ys.put(k, new ArrayList<>());
      }
      for (Map<String, Object> sample : (List<Map<String, Object>>) inFlight.get("memory_samples")) {
        t.add((Number) sample.get("t_seconds"));
        ys.forEach((k, v) -> v.add((Number) sample.get(k)));
      }
      if (!t.isEmpty()) {
        ys.forEach((k, v) -> m.addSeries(k.equals("waiting_sessions") ? "sessions waiting (count)" : k.replace("_mib", " (MiB)")
            .replace('_', ' '), t, v));
        save(m, dir, "in-flight-memory.png", "In flight: heap, RSS and sessions waiting over time", drawn);
      }
    }
    Map<String, Object> cost = (Map<String, Object>) r.get("cost");
    if (cost != null) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title("Model cost of " + cost.get("tasks") + " tasks")
          .yAxisTitle("USD").build();
      Map<String, Object> a = (Map<String, Object>) cost.get("raw_api");
      Map<String, Object> k = (Map<String, Object>) cost.get("keel");
      c.addSeries("cost", List.of("raw API", "Keel defaults"),
          List.of(Double.parseDouble(a.get("cost_usd").toString()), Double.parseDouble(k.get("cost_usd").toString())));
      save(c, dir, "model-cost.png", "Model cost: raw API against Keel's defaults", drawn);
    }
    Map<String, Object> burst = (Map<String, Object>) r.get("burst");
    if (burst != null) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
          .title("Admission latency of " + burst.get("requests") + " concurrent requests").yAxisTitle("ms").build();
      List<String> ps = List.of("p50", "p99", "max");
      for (String[] series : new String[][] {{"new sessions", "new_sessions"}, {burst.get("hot_sessions") + " hot sessions", "hot"}}) {
        Map<String, Object> m = (Map<String, Object>) burst.get(series[1]);
        c.addSeries(series[0], ps, List.of((Number) m.get("admission_p50_ms"), (Number) m.get("admission_p99_ms"),
            (Number) m.get("admission_max_ms")));
      }
      save(c, dir, "burst-admission.png", "Burst: admission latency percentiles, new sessions against hot sessions", drawn);
    }
    Map<String, Object> ia = (Map<String, Object>) r.get("interactive");
    if (ia != null) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
          .title("Interactive latency per message (" + ia.get("messages") + " messages per path)").yAxisTitle("ms").build();
      c.getStyler().setXAxisLabelRotation(20);
      List<String> xs = List.of("POST → 202 p50", "POST → 202 p99", "first event p50", "first event p99", "answer p50", "answer p99");
      for (Map.Entry<String, Object> e : ((Map<String, Object>) ia.get("paths")).entrySet()) {
        Map<String, Object> p = (Map<String, Object>) e.getValue();
        List<Number> ys = new ArrayList<>();
        for (String k : List.of("post_202_ms", "first_event_ms", "final_answer_ms")) {
          ys.add((Number) ((Map<String, Object>) p.get(k)).get("p50"));
          ys.add((Number) ((Map<String, Object>) p.get(k)).get("p99"));
        }
        c.addSeries(e.getKey().equals("sse") ? "SSE (push)" : e.getKey().replace("poll_", "poll every ").replace("every 0ms", "back to back"), xs, ys);
      }
      save(c, dir, "interactive-latency.png", "Interactive latency: SSE push against request/response polling", drawn);
    }
  }

  /** Memory against suspended sessions in the store, and the three resume figures against the 5 ms target. */
  @SuppressWarnings("unchecked")
  private static void suspended(Map<String, Object> s, Path dir, Map<String, String> drawn) throws IOException {
    List<String> sizes = new ArrayList<>();
    Map<String, List<Number>> series = new LinkedHashMap<>();
    for (Map<String, Object> p : (List<Map<String, Object>>) s.get("points")) {
      sizes.add(String.format(java.util.Locale.ROOT, "%,d", ((Number) p.get("sessions")).longValue()));
      Map<String, Object> m = (Map<String, Object>) p.get("idle");
      series.computeIfAbsent("heap used after GC", k -> new ArrayList<>()).add((Number) m.get("heap_used_mib"));
      series.computeIfAbsent("heap committed", k -> new ArrayList<>()).add((Number) m.get("heap_committed_mib"));
      series.computeIfAbsent("RSS", k -> new ArrayList<>()).add((Number) m.get("rss_mib"));
    }
    CategoryChart m = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
        .title("Idle server memory against suspended sessions in the store").xAxisTitle("suspended sessions in the store")
        .yAxisTitle("MiB").build();
    series.forEach((name, values) -> m.addSeries(name, sizes, values));
    save(m, dir, "memory-vs-sessions.png", "Memory against suspended sessions (idle server in its own JVM)", drawn);
    if (s.get("resume") instanceof Map<?, ?> rm) {
      CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
          .title("Resuming a random one of " + String.format(java.util.Locale.ROOT, "%,d", ((Number) rm.get("sessions_in_store")).longValue())
              + " suspended sessions").yAxisTitle("ms (log)").build();
      c.getStyler().setYAxisLogarithmic(true);
      c.getStyler().setYAxisMin(0.01);
      List<String> phases = List.of("(a) rehydrate", "(b) first durable event", "(c) whole turn");
      List<Map<String, Object>> figures = List.of((Map<String, Object>) rm.get("rehydrate_ms"), (Map<String, Object>) rm.get("first_event_ms"),
          (Map<String, Object>) rm.get("turn_ms"));
      for (String p : List.of("p50", "p99")) {
        c.addSeries(p, phases, figures.stream().map(f -> (Number) Math.max(0.01, ((Number) f.get(p)).doubleValue())).toList());
      }
      c.addSeries("target (p99)", phases, List.of(5, 5, 5));
      save(c, dir, "resume-latency.png", "Resume of a suspended session: rehydrate, first durable event, whole turn (p50, p99; 5 ms target)", drawn);
    }
  }

  private static void percentiles(List<String> names, List<Number> p50, List<Number> p90, List<Number> p99, String name,
      Map<String, Object> m) {
    names.add(name);
    // a log axis cannot show 0: the cached check can round to it
    p50.add(positive(m.get("p50")));
    p90.add(positive(m.get("p90")));
    p99.add(positive(m.get("p99")));
  }

  private static double positive(Object value) {
    double v = ((Number) value).doubleValue();
    return Double.isNaN(v) || v < 0.1 ? 0.1 : v;
  }

  private static void save(Chart<?, ?> chart, Path dir, String file, String caption, Map<String, String> drawn)
      throws IOException {
    BitmapEncoder.saveBitmap(chart, dir.resolve(file).toString(), BitmapEncoder.BitmapFormat.PNG);
    drawn.put(file, caption);
  }
}
