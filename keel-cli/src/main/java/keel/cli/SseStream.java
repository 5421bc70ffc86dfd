package keel.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Reads a server-sent event stream on a virtual thread into a bounded queue, so the reader of
 * frames can wait with a timeout (and say it is waiting) instead of blocking on the socket.
 *
 * <p>Not thread-safe: one thread calls {@link #next}; closing from that thread stops the reader.
 */
final class SseStream implements AutoCloseable {

  /** One event of the stream; {@code end} marks the end of the stream (no more frames). */
  record Frame(Optional<Long> id, String event, String data, boolean end) {}

  private static final Frame END = new Frame(Optional.empty(), "", "", true);
  private static final int QUEUE = 256;

  private final InputStream in;
  private final BlockingQueue<Frame> frames = new ArrayBlockingQueue<>(QUEUE);
  private final Thread reader;
  private volatile boolean closed;

  SseStream(InputStream in) {
    this.in = in;
    this.reader = Thread.ofVirtual().name("keel-sse").start(this::read);
  }

  /** The next frame, or empty when none arrived within {@code wait}. */
  Optional<Frame> next(Duration wait) throws InterruptedException {
    return Optional.ofNullable(frames.poll(wait.toMillis(), TimeUnit.MILLISECONDS));
  }

  private void read() {
    try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      Long id = null;
      String event = "message";
      StringBuilder data = new StringBuilder();
      String line;
      while (!closed && (line = r.readLine()) != null) {
        if (line.isEmpty()) {
          if (!data.isEmpty()) {
            offer(new Frame(Optional.ofNullable(id), event, data.toString(), false));
          }
          id = null;
          event = "message";
          data.setLength(0);
        } else if (line.startsWith(":")) {
          continue;
        } else if (line.startsWith("id:")) {
          try {
            id = Long.parseLong(line.substring(3).strip());
          } catch (NumberFormatException e) {
            id = null;
          }
        } else if (line.startsWith("event:")) {
          event = line.substring(6).strip();
        } else if (line.startsWith("data:")) {
          if (!data.isEmpty()) {
            data.append('\n');
          }
          data.append(line.substring(5).startsWith(" ") ? line.substring(6) : line.substring(5));
        }
      }
    } catch (IOException | InterruptedException e) {
      // the stream ended or was closed; the END frame says so
    } finally {
      try {
        offer(END);
      } catch (InterruptedException ignored) {
        // closing
      }
    }
  }

  private void offer(Frame f) throws InterruptedException {
    while (!closed) {
      if (frames.offer(f, 100, TimeUnit.MILLISECONDS)) {
        return;
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    try {
      in.close();
    } catch (IOException ignored) {
      // already gone
    }
    reader.interrupt();
  }
}
