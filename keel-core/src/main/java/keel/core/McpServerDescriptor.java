package keel.core;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A {@code kind: McpServer} descriptor: an upstream MCP server reached through the gateway. Parsed and
 * validated here; the MCP gateway ({@code keel.gateway}) runs it.
 *
 * @param metadata name and owner
 * @param spec the server's settings
 */
public record McpServerDescriptor(Metadata metadata, Spec spec) implements Descriptor {

  public McpServerDescriptor {
    Objects.requireNonNull(metadata, "metadata");
    Objects.requireNonNull(spec, "spec");
  }

  @Override
  public String kind() {
    return "McpServer";
  }

  /**
   * @param transport {@code stdio} or {@code streamable-http}
   * @param command the command line, for stdio
   * @param url the endpoint, for streamable-http
   * @param env environment for a stdio server: literal values or secret references
   * @param headers HTTP headers: literal values or secret references
   * @param tools the exposed tools by name (empty: every tool, side-effecting unless declared)
   * @param callsPerMinute {@code rate_limit.calls_per_minute}: calls the gateway lets through per
   *     minute to this server, from all sessions together
   * @param timeout how long one call (and the server's start) may take
   * @param maxOutputBytes {@code max_output_bytes}: the largest message the gateway reads from the
   *     server; a larger result is an error result for its call
   */
  public record Spec(
      String transport,
      List<String> command,
      Optional<String> url,
      Map<String, ValueSource> env,
      Map<String, ValueSource> headers,
      Map<String, ToolSettings> tools,
      Optional<Integer> callsPerMinute,
      Optional<Duration> timeout,
      Optional<Integer> maxOutputBytes) {
    public Spec {
      Objects.requireNonNull(transport, "transport");
      command = List.copyOf(command);
      Objects.requireNonNull(url, "url");
      env = Map.copyOf(env);
      headers = Map.copyOf(headers);
      tools = Map.copyOf(tools);
      Objects.requireNonNull(callsPerMinute, "callsPerMinute");
      Objects.requireNonNull(timeout, "timeout");
      Objects.requireNonNull(maxOutputBytes, "maxOutputBytes");
    }
  }

  /** A literal value, or the name of a secret resolved by the server at run time. */
  public record ValueSource(Optional<String> value, Optional<String> secret) {
    public ValueSource {
      Objects.requireNonNull(value, "value");
      Objects.requireNonNull(secret, "secret");
    }
  }

  /**
   * @param sideEffects {@code read-only}, {@code idempotent} or {@code side-effecting}
   * @param valueUsd a CEL expression over {@code args} giving the action's value in USD
   * @param priceUsdPerCall what one call costs
   */
  public record ToolSettings(
      String sideEffects, Optional<String> valueUsd, Optional<BigDecimal> priceUsdPerCall) {
    public ToolSettings {
      Objects.requireNonNull(sideEffects, "sideEffects");
      Objects.requireNonNull(valueUsd, "valueUsd");
      Objects.requireNonNull(priceUsdPerCall, "priceUsdPerCall");
    }
  }
}
