package keel.execution;

import java.util.List;
import java.util.Objects;
import keel.core.AgentDescriptor;
import keel.core.Message;

/**
 * A model call as the step executor asks for it.
 *
 * @param agent the calling agent's name (its principal is {@code agent:<name>})
 * @param sessionId the session the call is made for
 * @param model the agent's model settings from its descriptor
 * @param instructions the system prompt
 * @param conversation the conversation so far; every {@link keel.core.Content} in it is inline
 *     (the executor resolves stored blobs before calling)
 * @param tools the tools the agent is granted, as the model should see them
 * @param step the number of model calls already made since the last input (0 for the first)
 */
public record ModelRequest(
    String agent,
    String sessionId,
    AgentDescriptor.ModelSpec model,
    String instructions,
    List<Message> conversation,
    List<ToolSpec> tools,
    int step) {
  public ModelRequest {
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(instructions, "instructions");
    conversation = List.copyOf(conversation);
    tools = List.copyOf(tools);
  }

  /** The text of the most recent user message, or empty if there is none. */
  public String latestInput() {
    for (int i = conversation.size() - 1; i >= 0; i--) {
      if (conversation.get(i) instanceof Message.User u) {
        return u.text();
      }
    }
    return "";
  }
}
