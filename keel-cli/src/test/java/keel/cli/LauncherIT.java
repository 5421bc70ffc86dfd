package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the real {@code ./keel} launcher as a process, as a user would on a fresh checkout. An
 * integration test: it runs after {@code package}, on the distribution the build just made.
 */
class LauncherIT {

  @TempDir Path data;

  @Test
  void keelDemo_fromTheRepositoryRoot_answersAndSuggestsNextSteps() throws Exception {
    Path root = Path.of("").toAbsolutePath().getParent();
    assertThat(root.resolve("keel")).as("the launcher at the repository root").isExecutable();
    ProcessBuilder pb = new ProcessBuilder("./keel", "demo", "--data-dir", data.toString())
        .directory(root.toFile())
        .redirectErrorStream(true);
    pb.environment().remove("KEEL_TOKEN");
    pb.environment().remove("KEEL_SERVER");
    Process p = pb.start();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Thread pump = Thread.ofVirtual().start(() -> copy(p.getInputStream(), out));
    boolean finished = p.waitFor(10, TimeUnit.MINUTES);
    if (!finished) {
      p.destroyForcibly();
    }
    pump.join(10_000);
    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(finished).as("./keel demo finished within 10 minutes:\n" + text).isTrue();
    assertThat(p.exitValue()).as(text).isZero();
    assertThat(text).contains("Here is what I remember:", "invoice run is on Fridays", "What to try next", "./keel serve",
        "./keel get sessions", "./keel run demo-assistant", "./keel trace s_");
    assertThat(Files.exists(data.resolve("admin.token"))).isTrue();
    assertThat(text).as("the distribution the build made is used as it is").doesNotContain("building Keel");
  }

  private static void copy(InputStream in, ByteArrayOutputStream out) {
    try (in) {
      in.transferTo(out);
    } catch (IOException e) {
      // the process ended
    }
  }
}
