package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import keel.core.Content;
import keel.core.SessionEvent;
import keel.core.StoredEvent;
import keel.core.ToolCall;
import keel.core.Usage;
import org.junit.jupiter.api.Test;

class TraceTest {

  private final List<StoredEvent> events = new ArrayList<>();
  private Instant at = Instant.parse("2026-01-01T00:00:00Z");

  private void add(SessionEvent e) {
    at = at.plusMillis(5);
    events.add(new StoredEvent("s_1", events.size() + 1, at, "node", "t".repeat(32), "span" + events.size(), e));
  }

  private void turn(String input, String tool, String result) {
    add(new SessionEvent.InputReceived("in_" + input, input, "operator:admin"));
    add(new SessionEvent.ModelCalled(0, "scripted", "s"));
    add(new SessionEvent.ModelResponded(0, "", List.of(new ToolCall("call_0_0", tool, "{}")), new Usage(1, 1, 0, 0), "scripted/s", 1));
    add(new SessionEvent.ToolCallAuthorized("call_0_0", "internal://" + tool, true));
    add(new SessionEvent.ToolCallStarted("call_0_0", 1, "k-" + input));
    add(new SessionEvent.ToolCallCompleted("call_0_0", Content.inline(result), false, 1));
  }

  @Test
  void callIdsReusedInLaterTurns_getTheirOwnSpans() {
    add(new SessionEvent.SessionStarted("a", 1, "o", "operator:admin", false));
    turn("first", "time_now", "noon");
    turn("second", "memory_search", "notes");

    Trace.Span root = Trace.of("s_1", events);

    assertThat(root.children()).hasSize(2);
    Trace.Span firstTool = root.children().get(0).children().get(1);
    Trace.Span secondTool = root.children().get(1).children().get(1);
    assertThat(firstTool.name()).isEqualTo("tool time_now");
    assertThat(firstTool.attributes()).containsEntry("keel.tool.result", "noon");
    assertThat(secondTool.name()).isEqualTo("tool memory_search");
    assertThat(secondTool.attributes()).containsEntry("keel.tool.result", "notes");
  }
}
