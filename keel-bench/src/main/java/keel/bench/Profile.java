package keel.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingFile;

/**
 * {@code keel bench --jfr}: a JDK Flight Recorder recording of one scenario in the bench JVM
 * ({@code <out>/profiles/<scenario>.jfr}, JFR's {@code profile} settings, with lock events from
 * 1 ms and the CPU load of each thread every second), and its summary: the methods most often on
 * CPU (top frame, and first {@code keel.*} frame), in native code (where SQLite's writes and
 * fsyncs show), the allocation sites by sampled weight, lock contention (monitor enter and park) by
 * total time with the first {@code keel.*} frame, garbage collection, and the CPU by thread. The
 * summary is a JSON-ready tree (it goes into {@code results.json}) rendered by {@link #markdown}
 * into {@code <scenario>.md} and the report. Child JVMs a scenario starts are not recorded.
 *
 * <p>Not thread-safe: one recording at a time, started and stopped by one thread.
 */
final class Profile implements AutoCloseable {

  /** Rows per table of the summary. */
  static final int TOP = 12;

  private final String scenario;
  private final Path file;
  private final Recording recording;
  private final Instant began = Instant.now();

  private Profile(String scenario, Path file, Recording recording) {
    this.scenario = scenario;
    this.file = file;
    this.recording = recording;
  }

  /** Starts recording {@code scenario} into {@code dir/<scenario>.jfr}. */
  static Profile start(String scenario, Path dir) throws IOException {
    Files.createDirectories(dir);
    Configuration profile;
    try {
      profile = Configuration.getConfiguration("profile");
    } catch (ParseException e) {
      throw new IOException("the JDK's JFR \"profile\" settings cannot be read: " + e.getMessage(), e);
    }
    Recording r = new Recording(profile);
    r.setName("keel-bench-" + scenario);
    r.enable("jdk.JavaMonitorEnter").withThreshold(Duration.ofMillis(1)).withStackTrace();
    r.enable("jdk.ThreadPark").withThreshold(Duration.ofMillis(1)).withStackTrace();
    r.enable("jdk.ThreadCPULoad").withPeriod(Duration.ofSeconds(1));
    r.enable("jdk.CPULoad").withPeriod(Duration.ofSeconds(1));
    Path file = dir.resolve(scenario + ".jfr");
    r.setDestination(file);
    r.setToDisk(true);
    r.start();
    return new Profile(scenario, file, r);
  }

  /** Stops the recording, writes it and its summary ({@code <scenario>.md}); returns the summary. */
  Map<String, Object> stop() throws IOException {
    recording.stop();
    recording.close();
    Map<String, Object> summary = summarize(scenario, file, Duration.between(began, Instant.now()));
    Files.writeString(file.resolveSibling(scenario + ".md"), "# JFR profile: " + scenario + "\n\n" + markdown(summary));
    return summary;
  }

  @Override
  public void close() {
    recording.close();
  }

  // ---------------------------------------------------------------- reading

  /** Counts and weights by key, with the first keel.* frame of each key's heaviest event. */
  private static final class Tally {
    final Map<String, double[]> byKey = new HashMap<>(); // key → {value, count}
    double total;
    long count;

    void add(String key, double value) {
      double[] v = byKey.computeIfAbsent(key, k -> new double[2]);
      v[0] += value;
      v[1]++;
      total += value;
      count++;
    }

    /** The heaviest keys: key, value, count, share of the total. */
    List<Map<String, Object>> top(int n, String valueName) {
      List<Map<String, Object>> rows = new ArrayList<>();
      byKey.entrySet().stream()
          .sorted(Comparator.comparingDouble((Map.Entry<String, double[]> e) -> -e.getValue()[0]).thenComparing(Map.Entry::getKey))
          .limit(n)
          .forEach(e -> {
            Map<String, Object> row = new LinkedHashMap<>();
            String[] parts = e.getKey().split("\t", -1);
            row.put("what", parts[0]);
            if (parts.length > 1) {
              row.put("keel_frame", parts[1]);
            }
            row.put(valueName, round(e.getValue()[0]));
            row.put("events", (long) e.getValue()[1]);
            row.put("share", total == 0 ? 0.0 : round(e.getValue()[0] / total));
            rows.add(row);
          });
      return rows;
    }

    Map<String, Object> json(int n, String valueName) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("events", count);
      m.put("total_" + valueName, round(total));
      m.put("top", top(n, valueName));
      return m;
    }
  }

  static final String NO_KEEL_FRAME = "(no keel.* frame)";

  /** Reads a recording and summarises it; {@code wall} is how long it recorded. */
  static Map<String, Object> summarize(String scenario, Path file, Duration wall) throws IOException {
    Tally topFrames = new Tally();
    Tally keelFrames = new Tally();
    Tally nativeFrames = new Tally();
    Tally allocations = new Tally();
    Tally allocationsKeel = new Tally();
    Tally monitors = new Tally();
    Tally lockParks = new Tally();
    Tally parks = new Tally();
    Tally threads = new Tally();
    double gcPauseMs = 0;
    long gcs = 0;
    double jvmCpu = 0;
    double machineCpu = 0;
    long cpuSamples = 0;
    int cpus = Runtime.getRuntime().availableProcessors();
    try (RecordingFile in = new RecordingFile(file)) {
      while (in.hasMoreEvents()) {
        RecordedEvent e = in.readEvent();
        switch (e.getEventType().getName()) {
          case "jdk.ExecutionSample" -> {
            topFrames.add(topFrame(e.getStackTrace()), 1);
            keelFrames.add(keelFrame(e.getStackTrace()), 1);
          }
          case "jdk.NativeMethodSample" -> nativeFrames.add(topFrame(e.getStackTrace()) + "\t" + keelFrame(e.getStackTrace()), 1);
          case "jdk.ObjectAllocationSample" -> {
            double mib = e.getLong("weight") / 1048576.0;
            String type = e.getClass("objectClass") == null ? "?" : e.getClass("objectClass").getName();
            allocations.add(type + " at " + topFrame(e.getStackTrace()), mib);
            allocationsKeel.add(keelFrame(e.getStackTrace()), mib);
          }
          case "jdk.JavaMonitorEnter" -> monitors.add(
              (e.getClass("monitorClass") == null ? "?" : e.getClass("monitorClass").getName()) + " in " + topFrame(e.getStackTrace())
                  + "\t" + keelFrame(e.getStackTrace()),
              e.getDuration().toNanos() / 1e6);
          case "jdk.ThreadPark" -> {
            String blocker = e.getClass("parkedClass") == null ? "(no blocker)" : e.getClass("parkedClass").getName();
            (isLock(blocker) ? lockParks : parks).add(
                blocker + " in " + parkSite(e.getStackTrace()) + "\t" + keelFrame(e.getStackTrace()), e.getDuration().toNanos() / 1e6);
          }
          case "jdk.ThreadCPULoad" -> {
            RecordedThread t = e.getThread();
            String name = t == null || t.getJavaName() == null ? "(unnamed)" : t.getJavaName();
            // a share of the whole machine over the last period (1 s): CPU seconds = share × cores × 1 s
            threads.add(name.replaceAll("[0-9]+", "#"), (e.getFloat("user") + e.getFloat("system")) * cpus);
          }
          case "jdk.CPULoad" -> {
            jvmCpu += e.getFloat("jvmUser") + e.getFloat("jvmSystem");
            machineCpu += e.getFloat("machineTotal");
            cpuSamples++;
          }
          case "jdk.GarbageCollection" -> {
            gcs++;
            gcPauseMs += e.getDuration("sumOfPauses").toNanos() / 1e6;
          }
          default -> {
            // other events of the profile settings stay in the file for JDK Mission Control
          }
        }
      }
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("scenario", scenario);
    m.put("file", file.getFileName().toString());
    m.put("file_bytes", Files.size(file));
    m.put("recorded_seconds", round(wall.toNanos() / 1e9));
    m.put("cores", cpus);
    m.put("jvm_cpu_share", cpuSamples == 0 ? 0.0 : round(jvmCpu / cpuSamples));
    m.put("machine_cpu_share", cpuSamples == 0 ? 0.0 : round(machineCpu / cpuSamples));
    m.put("gc_collections", gcs);
    m.put("gc_pause_ms", round(gcPauseMs));
    m.put("execution_samples_top_frame", topFrames.json(TOP, "samples"));
    m.put("execution_samples_keel_frame", keelFrames.json(TOP, "samples"));
    m.put("native_samples", nativeFrames.json(TOP, "samples"));
    m.put("allocation_mib_by_site", allocations.json(TOP, "mib"));
    m.put("allocation_mib_by_keel_frame", allocationsKeel.json(TOP, "mib"));
    m.put("monitor_enter_ms", monitors.json(TOP, "ms"));
    m.put("lock_park_ms", lockParks.json(TOP, "ms"));
    m.put("thread_park_ms", parks.json(TOP, "ms"));
    m.put("cpu_seconds_by_thread", threads.json(TOP, "cpu_seconds"));
    return m;
  }

  /**
   * Whether a park's blocker is a lock (contention) rather than a wait for work or for a result:
   * ReentrantLock, ReentrantReadWriteLock, StampedLock, Semaphore and other synchronizers, but not
   * a condition (a queue's or a pool's wait for work), a future or a queue's own transfer.
   */
  static boolean isLock(String blocker) {
    return !blocker.contains("ConditionObject") && !blocker.contains("Future") && !blocker.contains("Queue")
        && !blocker.contains("ForkJoinPool") && !blocker.contains("CountDownLatch") && !blocker.equals("(no blocker)")
        && (blocker.contains("Lock") || blocker.contains("Semaphore") || blocker.contains("Sync"));
  }

  private static String method(RecordedFrame f) {
    return f.getMethod().getType().getName() + "." + f.getMethod().getName();
  }

  private static String topFrame(RecordedStackTrace st) {
    return st == null || st.getFrames().isEmpty() ? "(no stack)" : method(st.getFrames().getFirst());
  }

  /** The first frame of Keel's own code (this recorder's excepted), with its line: where Keel asked for the work. */
  private static String keelFrame(RecordedStackTrace st) {
    if (st != null) {
      for (RecordedFrame f : st.getFrames()) {
        String type = f.getMethod().getType().getName();
        if (f.isJavaFrame() && type.startsWith("keel.") && !type.equals(Profile.class.getName())) {
          return method(f) + ":" + f.getLineNumber();
        }
      }
    }
    return NO_KEEL_FRAME;
  }

  /** Where a thread parked: the first frame below the locking machinery (LockSupport, AQS, …). */
  private static String parkSite(RecordedStackTrace st) {
    if (st != null) {
      for (RecordedFrame f : st.getFrames()) {
        String type = f.getMethod().getType().getName();
        if (!type.startsWith("java.util.concurrent.locks.") && !type.startsWith("jdk.internal.misc.")
            && !type.equals("java.lang.VirtualThread") && !type.startsWith("java.util.concurrent.ForkJoin")) {
          return method(f);
        }
      }
    }
    return "?";
  }

  private static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }

  // ---------------------------------------------------------------- Markdown

  /** The summary as Markdown tables (from the JSON tree, so a report can be redrawn from results.json). */
  @SuppressWarnings("unchecked")
  static String markdown(Map<String, Object> p) {
    StringBuilder b = new StringBuilder();
    b.append("Recording `profiles/").append(p.get("file")).append("` (").append(String.format(Locale.ROOT, "%,.1f", ((Number) p.get("file_bytes")).longValue() / 1048576.0))
        .append(" MiB, ").append(num(p.get("recorded_seconds"), 1)).append(" s; open it in JDK Mission Control or with `jfr print`). ")
        .append("CPU while recording: this JVM ").append(pct(p.get("jvm_cpu_share"))).append(" of the machine's ").append(p.get("cores"))
        .append(" cores, the whole machine ").append(pct(p.get("machine_cpu_share"))).append(" (other processes: the rest). GC: ")
        .append(p.get("gc_collections")).append(" collections, ").append(num(p.get("gc_pause_ms"), 0)).append(" ms of pauses in all.\n\n");
    table(b, "On CPU, by top frame (jdk.ExecutionSample)", (Map<String, Object>) p.get("execution_samples_top_frame"), "samples", "method", false);
    table(b, "On CPU, by first keel.* frame (where Keel's code asked for the work)",
        (Map<String, Object>) p.get("execution_samples_keel_frame"), "samples", "first keel.* frame", false);
    table(b, "In native code (jdk.NativeMethodSample: JNI calls such as SQLite's, sockets; running or blocked)",
        (Map<String, Object>) p.get("native_samples"), "samples", "native method", true);
    table(b, "Allocation by site (jdk.ObjectAllocationSample, by weight)", (Map<String, Object>) p.get("allocation_mib_by_site"), "mib",
        "type at top frame", false);
    table(b, "Allocation by first keel.* frame", (Map<String, Object>) p.get("allocation_mib_by_keel_frame"), "mib", "first keel.* frame", false);
    table(b, "Monitor contention (jdk.JavaMonitorEnter ≥ 1 ms, total time blocked)", (Map<String, Object>) p.get("monitor_enter_ms"), "ms",
        "monitor class in blocked method", true);
    table(b, "Lock contention (jdk.ThreadPark ≥ 1 ms on a lock or semaphore, total time parked)", (Map<String, Object>) p.get("lock_park_ms"),
        "ms", "lock in method", true);
    table(b, "Other parking (jdk.ThreadPark ≥ 1 ms: waits for work, for a result, in a queue; idle threads count here)",
        (Map<String, Object>) p.get("thread_park_ms"), "ms", "blocker in method", true);
    table(b, "CPU by thread (jdk.ThreadCPULoad each second; digits in names folded to #; platform threads, so virtual threads count on their carriers, ForkJoinPool-#-worker-#)",
        (Map<String, Object>) p.get("cpu_seconds_by_thread"), "cpu_seconds", "thread", false);
    return b.toString();
  }

  @SuppressWarnings("unchecked")
  private static void table(StringBuilder b, String title, Map<String, Object> t, String value, String what, boolean keelColumn) {
    String unit = switch (value) {
      case "mib" -> "MiB";
      case "ms" -> "ms";
      case "cpu_seconds" -> "CPU s";
      default -> "samples";
    };
    b.append("**").append(title).append("**: ").append(t.get("events")).append(" events, ")
        .append(num(t.get("total_" + value), value.equals("samples") ? 0 : 1)).append(" ").append(unit).append(" in all.\n\n");
    List<Map<String, Object>> rows = (List<Map<String, Object>>) t.get("top");
    if (rows.isEmpty()) {
      b.append("(none)\n\n");
      return;
    }
    b.append("| ").append(what).append(keelColumn ? " | first keel.* frame" : "").append(" | ").append(unit).append(" | share |\n| --- |")
        .append(keelColumn ? " --- |" : "").append(" --- | --- |\n");
    for (Map<String, Object> r : rows) {
      b.append("| `").append(r.get("what")).append("` |");
      if (keelColumn) {
        b.append(" `").append(r.get("keel_frame")).append("` |");
      }
      b.append(" ").append(num(r.get(value), value.equals("samples") ? 0 : 1)).append(" | ").append(pct(r.get("share"))).append(" |\n");
    }
    b.append("\n");
  }

  private static String num(Object o, int decimals) {
    return String.format(Locale.ROOT, "%,." + decimals + "f", ((Number) o).doubleValue());
  }

  private static String pct(Object fraction) {
    return String.format(Locale.ROOT, "%.1f %%", ((Number) fraction).doubleValue() * 100);
  }
}
