package keel.bench;

/** Progress lines on standard error, stamped with the seconds since the run began. */
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
}
