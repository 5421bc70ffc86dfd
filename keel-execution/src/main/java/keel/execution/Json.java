package keel.execution;

import keel.core.EventCodec;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** JSON helpers for tool arguments. */
final class Json {

  private Json() {}

  /**
   * Parses tool arguments, which must be a JSON object.
   *
   * @throws IllegalArgumentException with a message the model can act on
   */
  static ObjectNode arguments(String json) {
    JsonNode node;
    try {
      node = EventCodec.mapper().readTree(json.isBlank() ? "{}" : json);
    } catch (JacksonException e) {
      throw new IllegalArgumentException("the arguments are not valid JSON: " + e.getOriginalMessage());
    }
    if (!(node instanceof ObjectNode obj)) {
      throw new IllegalArgumentException("the arguments must be a JSON object");
    }
    return obj;
  }

  /** A required string field of the arguments. */
  static String string(ObjectNode args, String field) {
    JsonNode v = args.get(field);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException("missing required argument \"" + field + "\"");
    }
    if (!v.isString()) {
      throw new IllegalArgumentException("argument \"" + field + "\" must be a string");
    }
    return v.asString();
  }

  static String write(Object value) {
    return EventCodec.mapper().writeValueAsString(value);
  }
}
