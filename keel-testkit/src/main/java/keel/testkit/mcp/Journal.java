package keel.testkit.mcp;

import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The journal of a demo server's executed actions, and the at-most-once rule of idempotency keys:
 * a call whose key was already used for the same tool returns the stored first result and runs
 * nothing. Kept in memory, or in a JSON-lines file that survives the server's process (and is
 * shared by the processes that use the same file, so a restarted server still replays).
 *
 * <p>Thread-safe: {@link #once} checks, runs and appends under one lock (and, for a file, under
 * the file's lock), so two concurrent calls with the same key run the action once.
 */
final class Journal {

  /** What {@link #once} did: the entry, and whether it was replayed rather than run. */
  record Outcome(JournalEntry entry, boolean replayed) {}

  /** An action: given the journal so far and its entry's sequence, performs and returns the result. */
  @FunctionalInterface
  interface Action {
    Map<String, Object> run(List<JournalEntry> history, long sequence);
  }

  private final Optional<Path> file;
  private final Clock clock;
  private final ReentrantLock lock = new ReentrantLock();
  /** Guarded by {@link #lock}; the entries of an in-memory journal. */
  private final List<JournalEntry> memory = new ArrayList<>();

  private Journal(Optional<Path> file, Clock clock) {
    this.file = file;
    this.clock = clock;
  }

  static Journal inMemory(Clock clock) {
    return new Journal(Optional.empty(), clock);
  }

  static Journal file(Path file, Clock clock) {
    return new Journal(Optional.of(file), clock);
  }

  /** The entries of the journal file at {@code file}, oldest first (none when it does not exist). */
  static List<JournalEntry> read(Path file) {
    if (!java.nio.file.Files.exists(file)) {
      return List.of();
    }
    return Json.readLines(file).stream().map(Json::decodeEntry).toList();
  }

  /** Every entry, oldest first. */
  List<JournalEntry> entries() {
    lock.lock();
    try {
      return file.map(Journal::read).orElseGet(() -> List.copyOf(memory));
    } finally {
      lock.unlock();
    }
  }

  /**
   * Runs {@code action} once for {@code tool}: when {@code meta} carries an idempotency key already
   * journaled for this tool, returns that entry instead (or fails when the arguments differ).
   *
   * @throws ToolError from the action, or for a key reused with other arguments
   */
  Outcome once(String tool, Map<String, Object> arguments, Map<String, Object> meta, Action action) {
    Optional<String> key = McpMeta.string(meta, McpMeta.IDEMPOTENCY_KEY);
    lock.lock();
    try {
      if (file.isEmpty()) {
        Outcome o = decide(tool, arguments, meta, key, List.copyOf(memory), action);
        if (!o.replayed()) {
          memory.add(o.entry());
        }
        return o;
      }
      Outcome[] outcome = new Outcome[1];
      Json.underFileLock(
          file.get(),
          lines -> {
            List<JournalEntry> history = lines.stream().map(Json::decodeEntry).toList();
            outcome[0] = decide(tool, arguments, meta, key, history, action);
            return outcome[0].replayed() ? null : Json.encode(outcome[0].entry());
          });
      return outcome[0];
    } finally {
      lock.unlock();
    }
  }

  private Outcome decide(
      String tool,
      Map<String, Object> arguments,
      Map<String, Object> meta,
      Optional<String> key,
      List<JournalEntry> history,
      Action action) {
    if (key.isPresent()) {
      for (JournalEntry e : history) {
        if (e.tool().equals(tool) && e.idempotencyKey().equals(key)) {
          if (!Json.same(e.arguments(), arguments)) {
            throw new ToolError(
                "idempotency key \""
                    + key.get()
                    + "\" was first used for "
                    + tool
                    + " with other arguments "
                    + Json.write(e.arguments())
                    + "; use a new key for a different call");
          }
          return new Outcome(e, true);
        }
      }
    }
    long sequence = history.size() + 1L;
    Map<String, Object> result = action.run(history, sequence);
    return new Outcome(new JournalEntry(sequence, tool, arguments, result, meta, clock.instant()), false);
  }
}
