package keel.bench;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress on standard error: lines stamped with the seconds since the run began, and progress bars
 * for the long phases (drawn in place on a terminal; a line every two seconds in a log). Quiet: none.
 *
 * <p>Thread-safe: lines are single prints, and a bar may be stepped from many threads.
 */
final class Progress {

  private final long start = System.nanoTime();
  private final boolean quiet;

  Progress(boolean quiet) {
    this.quiet = quiet;
  }

  void line(String text) {
    if (!quiet) {
      System.err.printf("[%6.1fs] %s%n", (System.nanoTime() - start) / 1e9, text);
    }
  }

  /** A bar for {@code max} units of {@code task}; close it when the phase ends. */
  Bar bar(String task, long max) {
    if (quiet) {
      return new Bar(null);
    }
    boolean terminal = System.console() != null;
    ProgressBarBuilder b = new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setStyle(ProgressBarStyle.ASCII)
        .setUpdateIntervalMillis(terminal ? 200 : 2_000)
        .setConsumer(terminal ? new ConsoleProgressBarConsumer(System.err) : new DelegatingProgressBarConsumer(System.err::println));
    return new Bar(b.build());
  }

  /** A progress bar, or nothing when the run is quiet. */
  static final class Bar implements AutoCloseable {
    private final ProgressBar bar;

    private Bar(ProgressBar bar) {
      this.bar = bar;
    }

    void step() {
      if (bar != null) {
        bar.step();
      }
    }

    void stepTo(long n) {
      if (bar != null) {
        bar.stepTo(n);
      }
    }

    @Override
    public void close() {
      if (bar != null) {
        bar.close();
      }
    }
  }
}
