package keel.execution;

import java.util.Objects;

/** What a tool call returned: text for the model, and whether it is an error. */
public record ToolOutput(String text, boolean error) {
  public ToolOutput {
    Objects.requireNonNull(text, "text");
  }

  public static ToolOutput ok(String text) {
    return new ToolOutput(text, false);
  }

  public static ToolOutput error(String text) {
    return new ToolOutput(text, true);
  }
}
