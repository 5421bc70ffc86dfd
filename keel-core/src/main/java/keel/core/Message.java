package keel.core;

import java.util.List;
import java.util.Objects;

/** One entry of the conversation a model sees, rebuilt by folding a session's events. */
@com.fasterxml.jackson.annotation.JsonTypeInfo(
    use = com.fasterxml.jackson.annotation.JsonTypeInfo.Id.SIMPLE_NAME,
    property = "role")
@com.fasterxml.jackson.annotation.JsonSubTypes({
  @com.fasterxml.jackson.annotation.JsonSubTypes.Type(Message.User.class),
  @com.fasterxml.jackson.annotation.JsonSubTypes.Type(Message.Assistant.class),
  @com.fasterxml.jackson.annotation.JsonSubTypes.Type(Message.ToolResult.class)
})
public sealed interface Message {

  /** A message from a person or a caller. */
  record User(String text) implements Message {
    public User {
      Objects.requireNonNull(text, "text");
    }
  }

  /** What the model answered, with the tool calls it asked for. */
  record Assistant(String text, List<ToolCall> toolCalls) implements Message {
    public Assistant {
      Objects.requireNonNull(text, "text");
      toolCalls = List.copyOf(toolCalls);
    }
  }

  /** The result of one tool call, answering the call with the same id. */
  record ToolResult(String callId, String toolName, Content content, boolean error)
      implements Message {
    public ToolResult {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(toolName, "toolName");
      Objects.requireNonNull(content, "content");
    }
  }
}
