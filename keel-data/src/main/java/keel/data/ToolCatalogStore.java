package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The versions of every upstream MCP tool the gateway has seen. A tool's version is identified by
 * the hash of its schema (input and output schema, canonical JSON): the first schema seen is
 * version 1, each schema not seen before gets the next number, and a schema seen before keeps its
 * number (a tool that changes back is again the version it was).
 *
 * <p>Thread-safe. {@link #record} is atomic: nodes that see the same new schema at once agree on
 * one version number.
 */
public interface ToolCatalogStore {

  /**
   * One version of one tool.
   *
   * @param server the McpServer's name
   * @param tool the tool's name on that server
   * @param version 1, 2, … in the order the schemas were first seen
   * @param hash the schema's hash ({@code sha256:<hex>})
   * @param schema the canonical JSON the hash is taken over
   * @param recordedAt when this version was first seen
   */
  record ToolVersion(String server, String tool, int version, String hash, String schema, Instant recordedAt) {
    public ToolVersion {
      Objects.requireNonNull(server, "server");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(hash, "hash");
      Objects.requireNonNull(schema, "schema");
      Objects.requireNonNull(recordedAt, "recordedAt");
      if (version < 1) {
        throw new IllegalArgumentException("tool " + server + "/" + tool + ": version must be 1 or more, got " + version);
      }
    }
  }

  /**
   * The version of a tool with this schema hash: the stored one when the hash was seen before,
   * else a new version (one more than the highest) stored now.
   */
  ToolVersion record(String server, String tool, String hash, String schema, Instant now);

  /** Every version of a tool, oldest first. */
  List<ToolVersion> versions(String server, String tool);

  /** The highest version of a tool, if any was recorded. */
  default Optional<ToolVersion> latest(String server, String tool) {
    List<ToolVersion> all = versions(server, tool);
    return all.isEmpty() ? Optional.empty() : Optional.of(all.getLast());
  }
}
