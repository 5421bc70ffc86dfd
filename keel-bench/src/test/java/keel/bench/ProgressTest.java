package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Progress lines and bars go to standard error, as lines when it is not a terminal; quiet prints nothing. */
class ProgressTest {

  @Test
  void bar_inALog_printsTheTaskAndItsCount_quietPrintsNothing() {
    PrintStream saved = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      Progress loud = new Progress(false);
      try (Progress.Bar bar = loud.bar("resumes", 3)) {
        bar.step();
        bar.step();
        bar.step();
      }
      loud.line("done");
      String out = err.toString(StandardCharsets.UTF_8);
      assertThat(out).contains("resumes").contains("3/3").contains("] done");

      err.reset();
      Progress quiet = new Progress(true);
      try (Progress.Bar bar = quiet.bar("resumes", 3)) {
        bar.step();
      }
      quiet.line("done");
      assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    } finally {
      System.setErr(saved);
    }
  }
}
