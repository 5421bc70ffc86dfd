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
    // effect_pay is the same action as an external tool of the gateway ("effects/pay"), so the
    // approval crash test can kill the server around approved calls
    return List.of(new EffectRecord(Path.of(file), "effect_record", "internal://effects", false),
        new EffectRecord(Path.of(file), "effect_pay", "mcp://gateway/effects/pay", true));
  }

  private static final class EffectRecord implements Tool {
    private final Path file;
    /** Guards appends to the effects file. */
    private final ReentrantLock lock = new ReentrantLock();

    private final String name;
    private final String capability;
    private final boolean external;

    EffectRecord(Path file, String name, String capability, boolean external) {
      this.file = file;
      this.name = name;
      this.capability = capability;
      this.external = external;
    }

    @Override
    public boolean external() {
      return external;
    }

    @Override
    public String catalogName() {
      return external ? "effects/pay" : name;
    }

    @Override
    public ToolSpec spec() {
      return new ToolSpec(name, "Performs an external action that must never happen twice.",
          "{\"type\":\"object\",\"properties\":{\"note\":{\"type\":\"string\"}}}");
    }

    @Override
    public String capability() {
      return capability;
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
