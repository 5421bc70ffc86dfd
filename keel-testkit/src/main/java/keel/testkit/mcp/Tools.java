package keel.testkit.mcp;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.TextContent;
import io.modelcontextprotocol.spec.McpSchema.ToolAnnotations;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the demo servers declare their tools: each with an input and an output schema, MCP
 * annotations matching its side-effect class, and a handler whose result is structured content
 * (with the same JSON as text, for clients that read only text). A {@link ToolError} becomes an
 * {@code isError} result with its message; any other exception from a handler becomes one too,
 * saying it is the server's fault, and is logged — a handler never breaks the server.
 *
 * <p>Thread-safe: stateless; handlers bring their own state.
 */
final class Tools {

  private static final Logger LOG = LoggerFactory.getLogger(Tools.class);
  private static final Pattern CURRENCY = Pattern.compile("[A-Z]{3}");

  /** How a tool behaves, as the MCP annotations say it. */
  enum Effects {
    READ_ONLY,
    IDEMPOTENT,
    SIDE_EFFECTING
  }

  /** A tool's handler: arguments and {@code _meta} in, structured result out. */
  @FunctionalInterface
  interface Handler {
    Reply handle(Map<String, Object> arguments, Map<String, Object> meta);
  }

  /** A handler's structured result, and whether it replays an earlier call's result. */
  record Reply(Map<String, Object> structured, boolean replayed) {
    static Reply of(Map<String, Object> structured) {
      return new Reply(structured, false);
    }

    static Reply of(Journal.Outcome outcome) {
      return new Reply(outcome.entry().result(), outcome.replayed());
    }
  }

  private Tools() {}

  /**
   * A tool: {@code inputSchema} and {@code outputSchema} are JSON Schema texts; every call is
   * recorded in {@code calls} first, as received.
   */
  static SyncToolSpecification tool(
      String name,
      String title,
      String description,
      Effects effects,
      String inputSchema,
      String outputSchema,
      CallLog calls,
      Clock clock,
      Handler handler) {
    var mapper = McpJsonDefaults.getMapper();
    McpSchema.Tool tool =
        McpSchema.Tool.builder()
            .name(name)
            .title(title)
            .description(description)
            .inputSchema(mapper, inputSchema)
            .outputSchema(mapper, outputSchema)
            .annotations(
                ToolAnnotations.builder()
                    .title(title)
                    .readOnlyHint(effects == Effects.READ_ONLY)
                    .destructiveHint(effects == Effects.SIDE_EFFECTING)
                    .idempotentHint(effects != Effects.SIDE_EFFECTING)
                    .openWorldHint(false)
                    .build())
            .build();
    return new SyncToolSpecification(
        tool,
        (exchange, request) -> {
          Map<String, Object> args = request.arguments() == null ? Map.of() : request.arguments();
          Map<String, Object> meta = request.meta() == null ? Map.of() : request.meta();
          calls.record(new ReceivedCall(name, args, meta, clock.instant()));
          try {
            Reply reply = handler.handle(args, meta);
            var result =
                CallToolResult.builder()
                    .structuredContent(reply.structured())
                    .addContent(TextContent.builder(Json.write(reply.structured())).build());
            if (reply.replayed()) {
              result.meta(Map.of(McpMeta.REPLAYED, true));
            }
            return result.build();
          } catch (ToolError e) {
            return error(e.getMessage());
          } catch (RuntimeException e) {
            LOG.warn("tool {} failed", name, e);
            return error("the " + name + " tool failed inside the server: " + e.getMessage());
          }
        });
  }

  private static CallToolResult error(String message) {
    return CallToolResult.builder().addContent(TextContent.builder(message).build()).isError(true).build();
  }

  // ---------------------------------------------------------------- argument readers

  /** A required non-blank string argument. */
  static String text(Map<String, Object> args, String name) {
    if (args.get(name) instanceof String s && !s.isBlank()) {
      return s;
    }
    throw new ToolError("argument \"" + name + "\": expected a non-empty string, got " + Json.write(args.get(name)));
  }

  /** An optional string argument (absent, null or blank: empty). */
  static Optional<String> optionalText(Map<String, Object> args, String name) {
    Object v = args.get(name);
    if (v == null || (v instanceof String s && s.isBlank())) {
      return Optional.empty();
    }
    return Optional.of(text(args, name));
  }

  /** A required positive amount with at most two decimals, scaled to two. */
  static BigDecimal amount(Map<String, Object> args, String name) {
    if (!(args.get(name) instanceof Number n)) {
      throw new ToolError("argument \"" + name + "\": expected a number, got " + Json.write(args.get(name)));
    }
    BigDecimal d = Json.decimal(n);
    if (d.signum() <= 0) {
      throw new ToolError("argument \"" + name + "\": expected a positive amount, got " + d.toPlainString());
    }
    if (d.stripTrailingZeros().scale() > 2) {
      throw new ToolError("argument \"" + name + "\": at most two decimals, got " + d.toPlainString());
    }
    return d.setScale(2, RoundingMode.UNNECESSARY);
  }

  /** A required ISO 4217 currency code (three capital letters). */
  static String currency(Map<String, Object> args, String name) {
    String c = text(args, name);
    if (!CURRENCY.matcher(c).matches()) {
      throw new ToolError("argument \"" + name + "\": expected a three-letter currency code such as USD, got \"" + c + "\"");
    }
    return c;
  }

  /** The JSON Schema of a money amount. */
  static final String AMOUNT_SCHEMA = "{\"type\": \"number\", \"exclusiveMinimum\": 0}";

  /** The JSON Schema of a currency code. */
  static final String CURRENCY_SCHEMA = "{\"type\": \"string\", \"pattern\": \"^[A-Z]{3}$\"}";
}
