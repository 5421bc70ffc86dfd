package keel.bench;

import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.execution.ModelRequest;
import keel.execution.ModelResponse;
import keel.execution.ModelStream;
import keel.execution.OpenAiModelProvider;
import keel.execution.ToolSpec;

/**
 * The provider library without Keel: the same agent loop as {@link Floor}, but each model call goes
 * through Keel's OpenAI provider (LangChain4j's client) directly — no API, no scheduler, no store.
 * Keel (openai) over this loop is the cost of Keel's durable runtime on top of the provider library
 * it is required to use; this loop over the floor is the cost of the library itself.
 *
 * <p>Thread-safe: each session runs on its own virtual thread; the provider is shared.
 */
final class LibraryLoop {

  private static final ToolSpec TIME_NOW =
      new ToolSpec(
          "time_now",
          "Returns the current date and time in UTC (ISO-8601), the day of the week and the Unix time.",
          "{\"type\":\"object\",\"properties\":{}}");

  private final OpenAiModelProvider provider = new OpenAiModelProvider(Map.of());
  private final AgentDescriptor.ModelSpec model;

  LibraryLoop(String baseUrl) {
    this.model =
        new AgentDescriptor.ModelSpec(
            "openai", "gpt-4o-mini", Optional.empty(), Optional.of(baseUrl), Optional.empty(),
            AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
  }

  /** Runs {@code sessions} loops of {@code steps} tool steps at once; returns when all are done. */
  Floor.Run run(int sessions, int steps) throws Exception {
    return Floor.concurrently(sessions, (id, toolSteps, calls) -> session(id, steps, toolSteps, calls));
  }

  private Void session(int id, int k, AtomicLong toolSteps, AtomicLong calls) {
    List<Message> conversation = new ArrayList<>();
    conversation.add(new Message.User("steps=" + k + " run the benchmark"));
    for (int step = 0; step <= k + 1; step++) {
      ModelResponse r =
          provider.complete(
              new ModelRequest("library", "lib-" + id, model, Floor.INSTRUCTIONS, conversation, List.of(TIME_NOW), step),
              ModelStream.NONE);
      calls.incrementAndGet();
      conversation.add(new Message.Assistant(r.text(), r.toolCalls()));
      if (r.toolCalls().isEmpty()) {
        return null;
      }
      for (ToolCall c : r.toolCalls()) {
        ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
        String result =
            "{\"utc\":\"" + now.toInstant() + "\",\"day_of_week\":\"" + now.getDayOfWeek() + "\",\"unix\":" + now.toEpochSecond() + "}";
        conversation.add(new Message.ToolResult(c.id(), c.name(), Content.inline(result), false));
        toolSteps.incrementAndGet();
      }
    }
    throw new IllegalStateException("the model did not answer after " + (k + 1) + " tool steps");
  }
}
