package keel.gateway;

import java.util.Objects;
import java.util.Optional;

/**
 * What an upstream call gave: the text the model reads, whether it is an error, and the
 * structured content when the tool returned some.
 *
 * @param text for the model: the structured content as JSON when there is some, else the text of
 *     the content blocks; for an error, what went wrong and where
 * @param error whether the call failed (the tool said so, or the gateway could not complete it)
 * @param structuredContent the tool's {@code structuredContent} as JSON text, if any
 */
public record CallResult(String text, boolean error, Optional<String> structuredContent) {

  public CallResult {
    Objects.requireNonNull(text, "text");
    Objects.requireNonNull(structuredContent, "structuredContent");
  }

  static CallResult failure(String text) {
    return new CallResult(text, true, Optional.empty());
  }
}
