package keel.execution;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaException;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import com.networknt.schema.path.NodePath;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import keel.core.KeelException;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Checks a tool call's arguments against the tool's JSON Schema before anything runs, and says
 * what is wrong in words a model can act on ({@code arguments: $.amount: must be a number, got
 * "ten"}).
 *
 * <p>Schemas are compiled once per distinct schema text and kept in a bounded cache shared by all
 * instances. Schemas without {@code $schema} are read as JSON Schema 2020-12; remote {@code $ref}s
 * are never fetched.
 *
 * <p>Thread-safe: a compiled networknt {@link Schema} is immutable once its validators are
 * initialized, which {@link #of} does eagerly.
 */
final class ToolArguments {

  /** At most this many problems are reported for one call; the rest are counted. */
  static final int MAX_PROBLEMS = 20;

  /** Distinct compiled schemas kept; tools are few, but schemas come from upstream servers. */
  static final long MAX_SCHEMAS = 2_000;

  private static final int MAX_VALUE_CHARS = 80;
  private static final Pattern PLAIN_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

  private static final SchemaRegistry REGISTRY =
      SchemaRegistry.withDefaultDialect(
          SpecificationVersion.DRAFT_2020_12,
          b -> b.schemaCacheEnabled(false).schemaLoader(l -> l.fetchRemoteResources(false)));

  private static final ObjectMapper JSON =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private static final Cache<String, Schema> SCHEMAS = Caffeine.newBuilder().maximumSize(MAX_SCHEMAS).build();

  private final String tool;
  private final Schema schema;

  private ToolArguments(String tool, Schema schema) {
    this.tool = tool;
    this.schema = schema;
  }

  /**
   * The validator of a tool's arguments, compiled once per distinct schema text.
   *
   * @throws KeelException.Invalid when the tool's schema is not valid JSON or not a usable schema
   */
  static ToolArguments of(ToolSpec spec) {
    Objects.requireNonNull(spec, "spec");
    Schema schema = SCHEMAS.get(spec.parametersSchema(), text -> compile(spec.name(), text));
    return new ToolArguments(spec.name(), schema);
  }

  private static Schema compile(String tool, String text) {
    JsonNode node;
    try {
      node = JSON.readTree(text);
    } catch (JacksonException e) {
      throw new KeelException.Invalid(
          "tool " + tool + ": parameters schema is not valid JSON: " + e.getOriginalMessage() + where(e));
    }
    if (!node.isObject() && !node.isBoolean()) {
      throw new KeelException.Invalid(
          "tool " + tool + ": parameters schema must be a JSON object, got " + show(node));
    }
    try {
      Schema schema = REGISTRY.getSchema(node);
      schema.initializeValidators();
      return schema;
    } catch (SchemaException | IllegalArgumentException | IllegalStateException e) {
      throw new KeelException.Invalid("tool " + tool + ": parameters schema is not usable: " + e.getMessage());
    }
  }

  /** The tool's name, for messages. */
  String tool() {
    return tool;
  }

  /**
   * What is wrong with a call's arguments, or an empty list when they are valid. Blank text counts
   * as the empty object, as some providers send it for tools without parameters.
   */
  List<String> problems(String argumentsJson) {
    Objects.requireNonNull(argumentsJson, "argumentsJson");
    JsonNode args;
    try {
      args = JSON.readTree(argumentsJson.isBlank() ? "{}" : argumentsJson);
    } catch (JacksonException e) {
      return List.of("arguments are not valid JSON: " + e.getOriginalMessage() + where(e));
    }
    if (!args.isObject()) {
      return List.of("arguments must be a JSON object, got " + show(args));
    }
    List<com.networknt.schema.Error> errors = schema.validate(args);
    if (errors.isEmpty()) {
      return List.of();
    }
    List<String> problems = new ArrayList<>();
    for (com.networknt.schema.Error e : errors) {
      if (problems.size() == MAX_PROBLEMS) {
        problems.add("arguments: and " + (errors.size() - MAX_PROBLEMS) + " more problems");
        break;
      }
      problems.add("arguments: " + describe(e));
    }
    return List.copyOf(problems);
  }

  /** A problem as {@code <path>: <what is expected>, got <value>}. */
  private static String describe(com.networknt.schema.Error e) {
    String path = path(e.getInstanceLocation());
    Object[] args = e.getArguments() == null ? new Object[0] : e.getArguments();
    String keyword = e.getKeyword() == null ? "" : e.getKeyword();
    JsonNode value = e.getInstanceNode();
    return switch (keyword) {
      case "type" ->
          path + ": must be " + (args.length > 1 ? types(String.valueOf(args[1])) : "of another type") + got(value);
      case "required" -> child(path, e.getProperty()) + ": is required but missing";
      case "enum" -> path + ": must be one of " + (args.length > 0 ? args[0] : "the listed values") + got(value);
      case "const" -> path + ": must be " + (args.length > 0 ? args[0] : "the schema's constant") + got(value);
      case "additionalProperties", "unevaluatedProperties" ->
          child(path, e.getProperty()) + ": is not an allowed property";
      default -> path + ": " + e.getMessage() + (value == null || value.isContainer() ? "" : got(value));
    };
  }

  /** {@code $.a.b[2]}, from the error's instance location. */
  private static String path(NodePath location) {
    StringBuilder sb = new StringBuilder("$");
    if (location == null) {
      return sb.toString();
    }
    for (int i = 0; i < location.getNameCount(); i++) {
      Object element = location.getElement(i);
      if (element instanceof Integer index) {
        sb.append('[').append(index).append(']');
      } else {
        appendName(sb, String.valueOf(element));
      }
    }
    return sb.toString();
  }

  private static String child(String path, String property) {
    if (property == null) {
      return path;
    }
    StringBuilder sb = new StringBuilder(path);
    appendName(sb, property);
    return sb.toString();
  }

  private static void appendName(StringBuilder sb, String name) {
    if (PLAIN_NAME.matcher(name).matches()) {
      sb.append('.').append(name);
    } else {
      sb.append("['").append(name.replace("\\", "\\\\").replace("'", "\\'")).append("']");
    }
  }

  /** {@code number} → {@code a number}; {@code [string, null]} → {@code a string or null}. */
  private static String types(String expected) {
    String list = expected.strip();
    if (list.startsWith("[") && list.endsWith("]")) {
      list = list.substring(1, list.length() - 1);
    }
    List<String> words = new ArrayList<>();
    for (String t : list.split(",")) {
      String type = t.strip().replace("\"", "");
      words.add(
          switch (type) {
            case "integer", "object", "array" -> "an " + type;
            case "null" -> "null";
            default -> "a " + type;
          });
    }
    return String.join(" or ", words);
  }

  private static String got(JsonNode value) {
    return value == null ? "" : ", got " + show(value);
  }

  private static String show(JsonNode value) {
    String text = value.isObject() ? "an object " + value : value.isArray() ? "an array " + value : value.toString();
    return text.length() <= MAX_VALUE_CHARS ? text : text.substring(0, MAX_VALUE_CHARS) + "…";
  }

  private static String where(JacksonException e) {
    TokenStreamLocation loc = e.getLocation();
    if (loc == null || loc.getLineNr() < 1) {
      return "";
    }
    return " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
  }

  /** Compiled schemas currently cached, for tests and metrics. */
  static long cachedSchemas() {
    SCHEMAS.cleanUp();
    return SCHEMAS.estimatedSize();
  }
}
