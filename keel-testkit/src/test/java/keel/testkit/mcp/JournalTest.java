package keel.testkit.mcp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The journal file: at most once per key under concurrency, and a torn last line cut off. */
class JournalTest {

  private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-16T09:30:00Z"), ZoneOffset.UTC);

  @TempDir Path dir;

  @Test
  void once_fromManyThreads_withOneKey_runsTheActionOnce() throws Exception {
    Path file = dir.resolve("j.jsonl");
    AtomicInteger runs = new AtomicInteger();
    List<Journal> journals = List.of(Journal.file(file, CLOCK), Journal.file(file, CLOCK)); // two servers, one file
    try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
      List<Future<Journal.Outcome>> outcomes = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        Journal j = journals.get(i % 2);
        String key = "k" + (i % 4);
        outcomes.add(
            pool.submit(
                () ->
                    j.once("pay", Map.of("n", 1), Map.of(McpMeta.IDEMPOTENCY_KEY, key), (h, seq) -> {
                      runs.incrementAndGet();
                      return Map.of("id", "P" + seq);
                    })));
      }
      long replayed = 0;
      for (Future<Journal.Outcome> o : outcomes) {
        replayed += o.get().replayed() ? 1 : 0;
      }
      assertThat(replayed).isEqualTo(60);
    }
    assertThat(runs).hasValue(4);
    assertThat(Journal.read(file)).extracting(JournalEntry::sequence).containsExactly(1L, 2L, 3L, 4L);
  }

  @Test
  void aTornLastLine_isCutOff_andTheNextEntryFollowsTheWholeOnes() throws Exception {
    Path file = dir.resolve("j.jsonl");
    Journal j = Journal.file(file, CLOCK);
    j.once("pay", Map.of(), Map.of(), (h, seq) -> Map.of("id", "P" + seq));
    Files.writeString(file, "{\"sequence\": 2, \"tool\": \"pa", StandardCharsets.UTF_8, StandardOpenOption.APPEND);

    Journal.Outcome o = j.once("pay", Map.of(), Map.of(), (h, seq) -> Map.of("id", "P" + seq));
    assertThat(o.entry().sequence()).isEqualTo(2);
    assertThat(Journal.read(file)).extracting(e -> e.result().get("id")).containsExactly("P1", "P2");
    assertThat(Files.readString(file)).doesNotContain("\"pa\n").endsWith("\n");
  }

  @Test
  void aFailingAction_addsNoEntry() {
    Journal j = Journal.inMemory(CLOCK);
    assertThatThrownBy(() -> j.once("pay", Map.of(), Map.of(McpMeta.IDEMPOTENCY_KEY, "k"), (h, seq) -> {
          throw new ToolError("no");
        }))
        .isInstanceOf(ToolError.class);
    assertThat(j.entries()).isEmpty();
    // the key was not spent: a later good call with it runs
    assertThat(j.once("pay", Map.of(), Map.of(McpMeta.IDEMPOTENCY_KEY, "k"), (h, seq) -> Map.of("ok", true)).replayed()).isFalse();
  }
}
