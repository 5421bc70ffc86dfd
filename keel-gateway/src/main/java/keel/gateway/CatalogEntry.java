package keel.gateway;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One tool of the catalog as it is now: an upstream server's tool, its current version and how
 * Keel treats it.
 *
 * @param server the McpServer's name
 * @param tool the tool's name on its server
 * @param owner the McpServer's owner
 * @param modelName the name models call it by ({@code <server>__<tool>}, see {@link ModelNames})
 * @param description the tool's description, from the server
 * @param inputSchema its input JSON Schema (JSON text)
 * @param outputSchema its output JSON Schema (JSON text), when it declares structured output
 * @param version its current version: 1 for the first schema Keel saw, then one more per new schema
 * @param hash the hash of the current schema ({@code sha256:<hex>} over the canonical JSON of
 *     input and output schema)
 * @param versions every version recorded for the tool, oldest first
 * @param changedAt when the current version was first seen, if it is not the tool's only version
 *     (the catalog's flag: the schema changed since Keel first saw the tool)
 * @param sideEffects the side-effect class from the descriptor
 * @param priceUsdPerCall what one call costs (zero when the descriptor gives no price)
 * @param valueUsd the descriptor's CEL expression over {@code args} for the action's value in USD
 */
public record CatalogEntry(
    String server,
    String tool,
    String owner,
    String modelName,
    String description,
    String inputSchema,
    Optional<String> outputSchema,
    int version,
    String hash,
    List<Integer> versions,
    Optional<Instant> changedAt,
    SideEffects sideEffects,
    BigDecimal priceUsdPerCall,
    Optional<String> valueUsd) {

  public CatalogEntry {
    Objects.requireNonNull(server, "server");
    Objects.requireNonNull(tool, "tool");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(modelName, "modelName");
    Objects.requireNonNull(description, "description");
    Objects.requireNonNull(inputSchema, "inputSchema");
    Objects.requireNonNull(outputSchema, "outputSchema");
    Objects.requireNonNull(hash, "hash");
    versions = List.copyOf(versions);
    Objects.requireNonNull(changedAt, "changedAt");
    Objects.requireNonNull(sideEffects, "sideEffects");
    Objects.requireNonNull(priceUsdPerCall, "priceUsdPerCall");
    Objects.requireNonNull(valueUsd, "valueUsd");
  }

  /** {@code <server>/<tool>}: the name in policies, approvals, the audit log and the API. */
  public String catalogName() {
    return server + "/" + tool;
  }

  /**
   * The capability of the current version, {@code mcp://gateway/<server>/<tool>@<version>}: covered
   * by a grant of the server, of the tool, or of exactly this version (see {@code
   * keel.control.Grants}).
   */
  public String capability() {
    return "mcp://gateway/" + server + "/" + tool + "@" + version;
  }

  /** Whether the tool's schema changed since Keel first saw it (it has more than one version). */
  public boolean changed() {
    return changedAt.isPresent();
  }
}
