package keel.core;

import java.util.Objects;

/**
 * A tool call a model asked for.
 *
 * @param id the call's id, unique within the session (providers' ids are kept when they give one)
 * @param name the tool's name as the model saw it, for example {@code memory_put}
 * @param arguments the arguments as a JSON object text
 */
public record ToolCall(String id, String name, String arguments) {
  public ToolCall {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(arguments, "arguments");
  }
}
