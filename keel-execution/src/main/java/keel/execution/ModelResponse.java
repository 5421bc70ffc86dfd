package keel.execution;

import java.util.List;
import java.util.Objects;
import keel.core.ToolCall;
import keel.core.Usage;

/**
 * A model's complete answer.
 *
 * @param text the answer's text, empty when the model only asked for tools
 * @param toolCalls the tools the model asked to call, in order
 * @param usage the tokens the call used
 * @param modelVersion the exact model version the provider reported (the requested name when the
 *     provider reports none)
 */
public record ModelResponse(String text, List<ToolCall> toolCalls, Usage usage, String modelVersion) {
  public ModelResponse {
    Objects.requireNonNull(text, "text");
    toolCalls = List.copyOf(toolCalls);
    Objects.requireNonNull(usage, "usage");
    Objects.requireNonNull(modelVersion, "modelVersion");
  }
}
