package keel.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReentrantLock;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolEnvironment;
import keel.execution.ToolOutput;
import keel.execution.ToolProvider;
import keel.execution.ToolSpec;

/**
 * A test fixture: {@code internal://effects}, a deliberately non-idempotent tool ({@code
 * effect_record}) that stands for an external action such as a payment. Each run appends its
 * idempotency key to the file named by {@code KEEL_TEST_EFFECTS_FILE} and forces it to disk before
 * returning, so a crash test can count how often every call really ran. It pauses a little to widen
 * the window in which a crash can interrupt it.
 */
public final class EffectsToolProvider implements ToolProvider {

  /** What one effect costs, as an external action with a price per call. */
  static final java.math.BigDecimal PRICE = new java.math.BigDecimal("0.0125");

  @Override
  public List<Tool> tools(ToolEnvironment env) {
    String file = env.environment().get("KEEL_TEST_EFFECTS_FILE");
    if (file == null) {
      return List.of();
    }
    return List.of(new EffectRecord(Path.of(file)));
  }

  private static final class EffectRecord implements Tool {
    private final Path file;
    /** Guards appends to the effects file. */
    private final ReentrantLock lock = new ReentrantLock();

    EffectRecord(Path file) {
      this.file = file;
    }

    @Override
    public ToolSpec spec() {
      return new ToolSpec("effect_record", "Performs an external action that must never happen twice.",
          "{\"type\":\"object\",\"properties\":{\"note\":{\"type\":\"string\"}}}");
    }

    @Override
    public String capability() {
      return "internal://effects";
    }

    @Override
    public boolean idempotent() {
      return false;
    }

    /** A price per call, so the crash test can check the cost ledger's external actions too. */
    @Override
    public java.math.BigDecimal pricePerCallUsd() {
      return PRICE;
    }

    @Override
    public ToolOutput call(ToolContext context, String arguments) {
      try {
        Thread.sleep(ThreadLocalRandom.current().nextInt(0, 25));
        lock.lock();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap((context.idempotencyKey() + "\n").getBytes(StandardCharsets.UTF_8)));
          ch.force(true);
        } finally {
          lock.unlock();
        }
        Thread.sleep(ThreadLocalRandom.current().nextInt(0, 25));
        return ToolOutput.ok("recorded");
      } catch (IOException e) {
        return ToolOutput.error("cannot record the effect: " + e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return ToolOutput.error("interrupted");
      }
    }
  }
}
