package keel.testkit.mcp;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Holds the end of a stdio server's stdin back from the MCP SDK until every request read so far
 * has been answered (bounded): the SDK's stdio transport drops the answers it has not written yet
 * once its input ends, so a client that writes its requests and closes stdin would lose them.
 * Requests are counted in the lines read (JSON-RPC messages with an {@code id} and a {@code
 * method}), answers in the lines written (with an {@code id} and a {@code result} or {@code
 * error}).
 *
 * <p>Thread-safe: the counters are guarded by {@link #lock}.
 */
final class StdioDrain {

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition answered = lock.newCondition();
  /** Guarded by {@link #lock}. */
  private long requests;
  /** Guarded by {@link #lock}. */
  private long answers;

  private final CountDownLatch ended = new CountDownLatch(1);
  private final Duration limit;

  StdioDrain(Duration limit) {
    this.limit = limit;
  }

  /** Counts down when stdin ended and the requests were answered (or the limit passed). */
  CountDownLatch ended() {
    return ended;
  }

  InputStream input(InputStream in) {
    LineCounter lines = new LineCounter(true);
    return new FilterInputStream(in) {
      @Override
      public int read() throws IOException {
        int b = super.read();
        if (b >= 0) {
          lines.accept(new byte[] {(byte) b}, 0, 1);
        }
        return b < 0 ? atEnd() : b;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0) {
          lines.accept(b, off, n);
        }
        return n < 0 ? atEnd() : n;
      }
    };
  }

  OutputStream output(OutputStream out) {
    LineCounter lines = new LineCounter(false);
    return new FilterOutputStream(out) {
      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        this.out.write(b, off, len);
        lines.accept(b, off, len);
      }

      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }
    };
  }

  private int atEnd() {
    long deadline = System.nanoTime() + limit.toNanos();
    lock.lock();
    try {
      while (answers < requests) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        answered.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      lock.unlock();
    }
    ended.countDown();
    return -1;
  }

  /** Splits a byte stream in lines and counts the requests (input) or answers (output) among them. */
  private final class LineCounter {
    private final boolean input;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(); // guarded by its stream's single user

    LineCounter(boolean input) {
      this.input = input;
    }

    void accept(byte[] b, int off, int len) {
      for (int i = off; i < off + len; i++) {
        if (b[i] == '\n') {
          count(line.toString(StandardCharsets.UTF_8));
          line.reset();
        } else {
          line.write(b[i]);
        }
      }
    }

    private void count(String text) {
      if (text.isBlank()) {
        return;
      }
      Map<String, Object> m;
      try {
        m = Json.readObject(text, "stdio");
      } catch (IllegalArgumentException e) {
        return; // not ours to judge: the SDK answers it (or not) as it sees fit
      }
      boolean counts =
          input
              ? m.containsKey("id") && m.containsKey("method")
              : m.containsKey("id") && (m.containsKey("result") || m.containsKey("error"));
      if (counts) {
        lock.lock();
        try {
          if (input) {
            requests++;
          } else {
            answers++;
            answered.signalAll();
          }
        } finally {
          lock.unlock();
        }
      }
    }
  }
}
