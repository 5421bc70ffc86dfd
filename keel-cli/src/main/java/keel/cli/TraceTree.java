package keel.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import tools.jackson.databind.JsonNode;

/**
 * Prints a trace (as {@code GET /v1/sessions/{id}/trace} returns it) as an indented tree: each span's
 * name, then its kind and duration in a column, then its key attributes; failed spans are marked.
 */
final class TraceTree {

  private static final int MAX_NAME = 64;
  private static final int VALUE_CHARS = 80;

  private record Line(String left, JsonNode span) {}

  private TraceTree() {}

  static void print(JsonNode root, PrintStream out) {
    List<Line> lines = new ArrayList<>();
    collect(root, "", "", lines);
    int width = 0;
    for (Line l : lines) {
      width = Math.max(width, l.left().length());
    }
    for (Line l : lines) {
      JsonNode s = l.span();
      String duration = s.has("duration_ms") ? Text.of(s, "duration_ms") + " ms" : "open";
      StringBuilder sb = new StringBuilder(l.left());
      sb.append(" ".repeat(width - l.left().length() + 2));
      sb.append(String.format("%-7s %9s", Text.of(s, "kind"), duration));
      String attrs = attributes(s);
      if (s.path("error").asBoolean(false)) {
        sb.append("  ✗ ERROR");
      }
      if (!attrs.isEmpty()) {
        sb.append("  ").append(attrs);
      }
      out.println(sb.toString().stripTrailing());
    }
  }

  private static void collect(JsonNode span, String first, String rest, List<Line> lines) {
    lines.add(new Line(first + Text.abbreviate(Text.of(span, "name"), MAX_NAME), span));
    List<JsonNode> children = new ArrayList<>();
    span.path("children").forEach(children::add);
    for (int i = 0; i < children.size(); i++) {
      boolean last = i == children.size() - 1;
      collect(children.get(i), rest + (last ? "└─ " : "├─ "), rest + (last ? "   " : "│  "), lines);
    }
  }

  /** The attributes a person looks for first, by span kind. */
  private static String attributes(JsonNode span) {
    JsonNode a = span.path("attributes");
    List<String> parts = new ArrayList<>();
    switch (Text.of(span, "kind")) {
      case "session" -> {
        add(parts, "agent", Text.of(a, "keel.agent.name") + " r" + Text.of(a, "keel.agent.revision"));
        add(parts, "by", Text.of(a, "keel.principal"));
        add(parts, "chain", Text.of(a, "keel.delegation.chain"));
      }
      case "turn" -> add(parts, "from", Text.of(a, "keel.input.sender"));
      case "model" -> {
        String in = Text.of(a, "gen_ai.usage.input_tokens");
        if (!in.isEmpty()) {
          parts.add("tokens " + in + " in / " + Text.of(a, "gen_ai.usage.output_tokens") + " out");
        }
        String calls = Text.of(a, "keel.model.tool_calls");
        if (!calls.isEmpty() && !calls.equals("0")) {
          parts.add(calls + (calls.equals("1") ? " tool call" : " tool calls"));
        }
        add(parts, "text", quote(Text.of(a, "keel.model.text")));
        add(parts, "as", Text.of(a, "keel.principal"));
      }
      case "tool" -> {
        add(parts, "args", Text.abbreviate(Text.of(a, "keel.tool.arguments"), VALUE_CHARS));
        add(parts, "decision", Text.of(a, "keel.decision"));
        add(parts, "as", Text.of(a, "keel.principal"));
        add(parts, "sub-agent", Text.of(a, "keel.subagent.session.id"));
        add(parts, "result", Text.abbreviate(Text.of(a, "keel.tool.result"), VALUE_CHARS));
        add(parts, "outcome", Text.of(a, "keel.tool.outcome"));
        add(parts, "human", Text.of(a, "keel.human.decision"));
        String attempts = Text.of(a, "keel.tool.attempts");
        if (!attempts.isEmpty() && !attempts.equals("1")) {
          parts.add("attempts " + attempts);
        }
      }
      default -> add(parts, "", Text.of(a, "keel.detail"));
    }
    return String.join("  ", parts);
  }

  private static String quote(String s) {
    return s.isEmpty() ? "" : "\"" + Text.abbreviate(s, VALUE_CHARS) + "\"";
  }

  private static void add(List<String> parts, String key, String value) {
    if (!value.isBlank() && !value.equals(" r")) {
      parts.add(key.isEmpty() ? value : key + " " + value);
    }
  }
}
