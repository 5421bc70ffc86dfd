package keel.cli;

import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolEnvironment;
import keel.execution.ToolOutput;
import keel.execution.ToolProvider;
import keel.execution.ToolSpec;

/**
 * A test fixture: {@code internal://pause}, an idempotent tool ({@code pause_briefly}) that waits a
 * random moment of up to 150 ms, so that steps last long enough for a crash test's kills to land
 * inside them. Offered only when {@code KEEL_TEST_PAUSE} is set.
 */
public final class PauseToolProvider implements ToolProvider {

  @Override
  public List<Tool> tools(ToolEnvironment env) {
    return env.environment().containsKey("KEEL_TEST_PAUSE") ? List.of(new Pause()) : List.of();
  }

  private static final class Pause implements Tool {
    @Override
    public ToolSpec spec() {
      return new ToolSpec("pause_briefly", "Waits a moment.", "{\"type\":\"object\"}");
    }

    @Override
    public String capability() {
      return "internal://pause";
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    public ToolOutput call(ToolContext context, String arguments) {
      try {
        Thread.sleep(ThreadLocalRandom.current().nextInt(150));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return ToolOutput.ok("paused as " + context.principal());
    }
  }
}
