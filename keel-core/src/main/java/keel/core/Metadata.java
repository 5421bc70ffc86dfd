package keel.core;

import java.util.Map;
import java.util.Objects;

/**
 * A descriptor's metadata.
 *
 * @param name unique within its kind: lowercase letters, digits and dashes
 * @param owner the team that owns it; roles are scoped to owners ("" where the kind has none)
 * @param labels free-form labels
 */
public record Metadata(String name, String owner, Map<String, String> labels) {
  public Metadata {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(owner, "owner");
    labels = Map.copyOf(labels);
  }
}
