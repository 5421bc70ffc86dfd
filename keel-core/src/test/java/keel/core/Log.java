package keel.core;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/** A session's event log built by tests, with gapless sequence numbers from 1. */
final class Log {

  static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  static final String SPAN = "00f067aa0ba902b7";
  static final Usage USAGE = new Usage(100, 20, 0, 50);

  private final String sessionId;
  private final List<StoredEvent> events = new ArrayList<>();

  Log(String sessionId) {
    this.sessionId = sessionId;
  }

  static Log conversation(String sessionId) {
    return new Log(sessionId).add(new SessionEvent.SessionStarted("helper", 3, "team-a", "user:ann", false));
  }

  static Log task(String sessionId) {
    return new Log(sessionId).add(new SessionEvent.SessionStarted("helper", 3, "team-a", "user:ann", true));
  }

  Log add(SessionEvent... es) {
    for (SessionEvent e : es) {
      events.add(stored(sessionId, events.size() + 1, e));
    }
    return this;
  }

  static StoredEvent stored(String sessionId, long seq, SessionEvent e) {
    return new StoredEvent(sessionId, seq, Instant.EPOCH.plusSeconds(seq), "node-a", TRACE, SPAN, e);
  }

  List<StoredEvent> events() {
    return List.copyOf(events);
  }

  StoredEvent last() {
    return events.getLast();
  }

  SessionState fold() {
    return SessionState.fold(events);
  }

  static SessionEvent.InputReceived input(String id, String text) {
    return new SessionEvent.InputReceived(id, text, "user:ann");
  }

  static SessionEvent.ModelCalled called(int step) {
    return new SessionEvent.ModelCalled(step, "openai", "gpt-test");
  }

  static SessionEvent.ModelResponded responded(int step, String text, ToolCall... calls) {
    return new SessionEvent.ModelResponded(step, text, List.of(calls), USAGE, "gpt-test-2025", 120);
  }

  static ToolCall call(String id) {
    return new ToolCall(id, "tool_" + id, "{\"q\":\"" + id + "\"}");
  }

  static SessionEvent.ToolCallAuthorized authorized(String callId) {
    return new SessionEvent.ToolCallAuthorized(callId, "mcp://files/" + callId, false);
  }

  static SessionEvent.ToolCallStarted started(String callId, int attempt) {
    return new SessionEvent.ToolCallStarted(callId, attempt, "key-" + callId);
  }

  static SessionEvent.ToolCallCompleted completed(String callId, String result) {
    return new SessionEvent.ToolCallCompleted(callId, Content.inline(result), false, 7);
  }

  /** Asserts-friendly view: how many tool results answer each assistant tool call id. */
  static java.util.Map<String, Integer> resultsPerCall(List<Message> conversation) {
    java.util.Map<String, Integer> counts = new java.util.LinkedHashMap<>();
    for (Message m : conversation) {
      if (m instanceof Message.Assistant a) {
        for (ToolCall c : a.toolCalls()) {
          counts.putIfAbsent(c.id(), 0);
        }
      }
    }
    for (Message m : conversation) {
      if (m instanceof Message.ToolResult r) {
        counts.merge(r.callId(), 1, Integer::sum);
      }
    }
    return counts;
  }
}
