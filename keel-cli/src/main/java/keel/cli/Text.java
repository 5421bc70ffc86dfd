package keel.cli;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import tools.jackson.databind.JsonNode;

/** Small helpers for reading the API's JSON and shortening text for a terminal. */
final class Text {

  private Text() {}

  /** A field as text: empty when absent or null, the JSON text when not a scalar. */
  static String of(JsonNode node, String field) {
    JsonNode v = node == null ? null : node.get(field);
    if (v == null || v.isNull() || v.isMissingNode()) {
      return "";
    }
    return v.isValueNode() ? v.asString() : v.toString();
  }

  /** One line of at most {@code max} characters, with an ellipsis when cut. */
  static String abbreviate(String s, int max) {
    String one = s.replace("\r", "").replace('\n', ' ').strip();
    return one.length() <= max ? one : one.substring(0, Math.max(0, max - 1)) + "…";
  }

  /** How long ago an ISO-8601 time was, as {@code 5s}, {@code 3m}, {@code 2h} or {@code 4d}. */
  static String age(String iso, Instant now) {
    try {
      Duration d = Duration.between(Instant.parse(iso), now);
      long s = Math.max(0, d.toSeconds());
      if (s < 120) {
        return s + "s";
      }
      if (s < 2 * 3600) {
        return s / 60 + "m";
      }
      if (s < 2 * 86400) {
        return s / 3600 + "h";
      }
      return s / 86400 + "d";
    } catch (DateTimeParseException e) {
      return iso;
    }
  }

  /** The text of a stored content object: inline text, or a blob's preview and size. */
  static String content(JsonNode content) {
    if (content == null || content.isNull() || content.isMissingNode()) {
      return "";
    }
    if (content.isString()) {
      return content.asString();
    }
    if (content.has("text")) {
      return of(content, "text");
    }
    if (content.has("preview")) {
      return of(content, "preview") + " … (" + of(content, "bytes") + " bytes)";
    }
    return content.toString();
  }
}
