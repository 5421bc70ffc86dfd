package keel.testkit.mcp;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The {@code tools/call} requests a demo server received: the last {@value #LIMIT} in memory, or
 * every one in a JSON-lines file (for a server that runs as a child process).
 *
 * <p>Thread-safe: guarded by a lock (and the file's lock).
 */
final class CallLog {

  /** How many calls an in-memory log keeps. */
  static final int LIMIT = 1000;

  private final Optional<Path> file;
  private final ReentrantLock lock = new ReentrantLock();
  /** Guarded by {@link #lock}. */
  private final Deque<ReceivedCall> memory = new ArrayDeque<>();

  private CallLog(Optional<Path> file) {
    this.file = file;
  }

  static CallLog inMemory() {
    return new CallLog(Optional.empty());
  }

  static CallLog file(Path file) {
    return new CallLog(Optional.of(file));
  }

  /** The calls recorded in the file at {@code file}, oldest first (none when it does not exist). */
  static List<ReceivedCall> read(Path file) {
    if (!Files.exists(file)) {
      return List.of();
    }
    return Json.readLines(file).stream().map(Json::decodeCall).toList();
  }

  void record(ReceivedCall call) {
    lock.lock();
    try {
      if (file.isPresent()) {
        Json.underFileLock(file.get(), lines -> Json.encode(call));
      } else {
        memory.addLast(call);
        while (memory.size() > LIMIT) {
          memory.removeFirst();
        }
      }
    } finally {
      lock.unlock();
    }
  }

  /** The calls recorded, oldest first. */
  List<ReceivedCall> calls() {
    lock.lock();
    try {
      return file.map(CallLog::read).orElseGet(() -> List.copyOf(memory));
    } finally {
      lock.unlock();
    }
  }
}
