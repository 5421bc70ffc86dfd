package keel.execution;

import java.util.Objects;

/**
 * A tool as a model sees it.
 *
 * @param name the function name, matching {@code [a-zA-Z0-9_-]{1,64}}
 * @param description what the tool does, for the model
 * @param parametersSchema a JSON Schema (as JSON text) of the arguments object
 */
public record ToolSpec(String name, String description, String parametersSchema) {
  public ToolSpec {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(description, "description");
    Objects.requireNonNull(parametersSchema, "parametersSchema");
    if (!name.matches("[a-zA-Z0-9_-]{1,64}")) {
      throw new IllegalArgumentException("tool name \"" + name + "\" must match [a-zA-Z0-9_-]{1,64}");
    }
  }
}
