package keel.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code keel bench identity --quick --jfr}: a real recording of a real scenario, and its summary. */
class ProfileTest {

  @TempDir Path work;

  @Test
  @SuppressWarnings("unchecked")
  void quickScenarioWithJfr_recordsANonEmptyFile_andSummarisesItWithKeelFrames() throws Exception {
    Path out = work.resolve("out");
    Bench.Settings s = Bench.Settings.parse(new String[] {"identity", "--quick", "--out", out.toString(), "--work-dir", work.toString()});

    Map<String, Object> results = Bench.runProfiled(s, new Progress(true));
    Bench.write(results, out, "keel bench identity --quick --jfr");

    Path jfr = out.resolve("profiles").resolve("identity.jfr");
    assertThat(jfr).isNotEmptyFile();
    assertThat(Files.size(jfr)).isGreaterThan(10_000);
    assertThat(results).containsKeys("identity", "profiles", "machine");
    Map<String, Object> p = (Map<String, Object>) ((Map<String, Object>) results.get("profiles")).get("identity");
    Map<String, Object> onCpu = (Map<String, Object>) p.get("execution_samples_keel_frame");
    assertThat(((Number) onCpu.get("events")).longValue()).as("execution samples").isPositive();
    List<Map<String, Object>> keelRows = (List<Map<String, Object>>) onCpu.get("top");
    assertThat(keelRows).as("samples attributed to Keel's code")
        .anySatisfy(r -> assertThat(r.get("what").toString()).startsWith("keel.control.Identity."));
    Map<String, Object> alloc = (Map<String, Object>) p.get("allocation_mib_by_site");
    assertThat(((Number) alloc.get("total_mib")).doubleValue()).as("sampled allocation").isPositive();
    Map<String, Object> cpu = (Map<String, Object>) p.get("cpu_seconds_by_thread");
    assertThat(((Number) cpu.get("events")).longValue()).as("thread CPU load events").isPositive();

    String summary = Files.readString(out.resolve("profiles").resolve("identity.md"));
    assertThat(summary).contains("# JFR profile: identity", "On CPU, by first keel.* frame", "`keel.control.Identity.",
        "Allocation by site", "Monitor contention", "Lock contention", "Other parking", "CPU by thread");
    assertThat(Files.readString(out.resolve("report.md")))
        .contains("## Profiles (JFR)", "### identity", "`keel.control.Identity.", "Agent identity per use");
  }

  @Test
  void parksOnLocks_areToldFromWaitsForWork() {
    assertThat(Profile.isLock("java.util.concurrent.locks.ReentrantLock$NonfairSync")).isTrue();
    assertThat(Profile.isLock("java.util.concurrent.Semaphore$FairSync")).isTrue();
    assertThat(Profile.isLock("java.util.concurrent.locks.ReentrantReadWriteLock$NonfairSync")).isTrue();
    assertThat(Profile.isLock("java.util.concurrent.locks.AbstractQueuedSynchronizer$ConditionObject")).isFalse();
    assertThat(Profile.isLock("java.util.concurrent.SynchronousQueue$Transferer")).isFalse();
    assertThat(Profile.isLock("java.util.concurrent.CompletableFuture$Signaller")).isFalse();
    assertThat(Profile.isLock("java.util.concurrent.CountDownLatch$Sync")).isFalse();
    assertThat(Profile.isLock("(no blocker)")).isFalse();
  }

  @Test
  void jfrWithAll_isRefused_becauseScenariosAreRecordedOneByOne() {
    Bench.Settings s = Bench.Settings.parse(new String[] {"--quick"});
    assertThat(s.scenarios()).containsExactly("all");
    assertThatThrownBy(() -> Bench.runProfiled(s, new Progress(true))).hasMessageContaining("name them");
  }
}
