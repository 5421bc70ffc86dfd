package keel.execution;

import dev.langchain4j.model.chat.request.json.JsonAnyOfSchema;
import dev.langchain4j.model.chat.request.json.JsonArraySchema;
import dev.langchain4j.model.chat.request.json.JsonBooleanSchema;
import dev.langchain4j.model.chat.request.json.JsonEnumSchema;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonNullSchema;
import dev.langchain4j.model.chat.request.json.JsonNumberSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchemaElement;
import dev.langchain4j.model.chat.request.json.JsonStringSchema;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * Turns a tool's JSON Schema text into LangChain4j's schema elements. Supports {@code type} {@code
 * object} (with {@code properties}, {@code required}, {@code additionalProperties}), {@code
 * string}, {@code number}, {@code integer}, {@code boolean}, {@code null}, {@code array} (with
 * {@code items}), {@code enum}, {@code anyOf}/{@code oneOf} and {@code description}; a nullable
 * type list such as {@code ["string", "null"]} becomes its non-null type. Anything else is rejected
 * with the path of the offending node.
 *
 * <p>Stateless and thread-safe.
 */
final class JsonSchemas {

  private JsonSchemas() {}

  /** The schema of a tool's arguments, which must be an object schema. */
  static JsonObjectSchema objectSchema(JsonNode root) {
    if (!root.isObject()) {
      throw new IllegalArgumentException("parameters schema: expected a JSON object, got " + root.getNodeType());
    }
    String type = type(root, "parameters schema");
    if (type != null && !type.equals("object")) {
      throw new IllegalArgumentException(
          "parameters schema: expected \"type\": \"object\", got \"" + type + "\"");
    }
    return object(root, "parameters schema");
  }

  private static JsonSchemaElement element(JsonNode node, String path) {
    if (!node.isObject()) {
      throw new IllegalArgumentException(path + ": expected a schema object, got " + node.getNodeType());
    }
    String description = node.path("description").isString() ? node.get("description").asString() : null;
    if (node.has("enum")) {
      List<String> values = new ArrayList<>();
      for (JsonNode v : node.get("enum")) {
        values.add(v.isString() ? v.asString() : v.toString());
      }
      return JsonEnumSchema.builder().description(description).enumValues(values).build();
    }
    JsonNode anyOf = node.has("anyOf") ? node.get("anyOf") : node.get("oneOf");
    if (anyOf != null) {
      List<JsonSchemaElement> options = new ArrayList<>();
      int i = 0;
      for (JsonNode option : anyOf) {
        options.add(element(option, path + ".anyOf[" + i++ + "]"));
      }
      return JsonAnyOfSchema.builder().description(description).anyOf(options).build();
    }
    String type = type(node, path);
    if (type == null) {
      if (node.has("properties")) {
        type = "object";
      } else {
        throw new IllegalArgumentException(path + ": missing \"type\"");
      }
    }
    return switch (type) {
      case "object" -> object(node, path);
      case "string" -> JsonStringSchema.builder().description(description).build();
      case "number" -> JsonNumberSchema.builder().description(description).build();
      case "integer" -> JsonIntegerSchema.builder().description(description).build();
      case "boolean" -> JsonBooleanSchema.builder().description(description).build();
      case "null" -> new JsonNullSchema();
      case "array" -> {
        JsonArraySchema.Builder b = JsonArraySchema.builder().description(description);
        if (node.has("items")) {
          b.items(element(node.get("items"), path + ".items"));
        }
        yield b.build();
      }
      default ->
          throw new IllegalArgumentException(
              path + ": unsupported type \"" + type + "\"; expected object, string, number, integer, boolean, null or array");
    };
  }

  private static JsonObjectSchema object(JsonNode node, String path) {
    JsonObjectSchema.Builder b = JsonObjectSchema.builder();
    if (node.path("description").isString()) {
      b.description(node.get("description").asString());
    }
    JsonNode properties = node.path("properties");
    if (properties.isObject()) {
      for (Map.Entry<String, JsonNode> p : properties.properties()) {
        b.addProperty(p.getKey(), element(p.getValue(), path + ".properties." + p.getKey()));
      }
    }
    List<String> required = new ArrayList<>();
    for (JsonNode r : node.path("required")) {
      required.add(r.asString());
    }
    if (!required.isEmpty()) {
      b.required(required);
    }
    if (node.path("additionalProperties").isBoolean()) {
      b.additionalProperties(node.get("additionalProperties").asBoolean());
    }
    return b.build();
  }

  /** The node's type, the non-null one of a type list, or null when absent. */
  private static String type(JsonNode node, String path) {
    JsonNode type = node.get("type");
    if (type == null) {
      return null;
    }
    if (type.isString()) {
      return type.asString();
    }
    if (type.isArray()) {
      for (JsonNode t : type) {
        if (!t.asString().equals("null")) {
          return t.asString();
        }
      }
      return "null";
    }
    throw new IllegalArgumentException(path + ": \"type\" must be a string or a list of strings");
  }
}
