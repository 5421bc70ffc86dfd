package keel.execution;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import keel.core.AgentDescriptor;
import keel.data.MemoryStore;
import tools.jackson.databind.node.ObjectNode;

/**
 * The built-in internal tools: {@code internal://time} ({@code time_now}) and {@code
 * internal://memory} ({@code memory_put}, {@code memory_get}, {@code memory_search}).
 *
 * <p>Memory notes are per agent: {@code persistent} notes outlive sessions (and are purged after
 * {@code retention_days}); {@code session} notes belong to the session and are deleted when it ends.
 */
public final class InternalTools implements ToolProvider {

  private static final int MAX_KEY_CHARS = 200;
  private static final int MAX_VALUE_CHARS = 64 * 1024;

  @Override
  public List<Tool> tools(ToolEnvironment env) {
    return List.of(
        new TimeNow(env),
        new MemoryPut(env),
        new MemoryGet(env),
        new MemorySearch(env));
  }

  private record TimeNow(ToolEnvironment env) implements Tool {
    @Override
    public ToolSpec spec() {
      return new ToolSpec(
          "time_now",
          "Returns the current date and time in UTC (ISO-8601), the day of the week and the Unix time.",
          "{\"type\":\"object\",\"properties\":{}}");
    }

    @Override
    public String capability() {
      return "internal://time";
    }

    @Override
    public boolean readOnly() {
      return true;
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    public ToolOutput call(ToolContext context, String arguments) {
      ZonedDateTime now = ZonedDateTime.ofInstant(env.clock().instant(), ZoneOffset.UTC);
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("utc", now.toInstant().toString());
      out.put("day_of_week", now.getDayOfWeek().toString());
      out.put("unix", now.toEpochSecond());
      return ToolOutput.ok(Json.write(out));
    }
  }

  /** Where an agent's notes live: persistent notes in scope "", session notes in the session's. */
  private static String scope(ToolContext context) {
    AgentDescriptor.MemoryType type = context.agent().spec().memory().type();
    return switch (type) {
      case NONE ->
          throw new IllegalArgumentException(
              "agent \""
                  + context.agent().name()
                  + "\" has spec.memory.type none, so it keeps no notes; declare session or"
                  + " persistent memory to use memory tools");
      case SESSION -> context.sessionId();
      case PERSISTENT -> "";
    };
  }

  private static void purgeExpired(ToolEnvironment env, ToolContext context) {
    AgentDescriptor.MemorySpec memory = context.agent().spec().memory();
    if (memory.type() == AgentDescriptor.MemoryType.PERSISTENT && memory.retentionDays().isPresent()) {
      Instant before = env.clock().instant().minus(Duration.ofDays(memory.retentionDays().get()));
      env.store().memory().purge(context.identity().agent(), "", before);
    }
  }

  private abstract static class MemoryTool implements Tool {
    final ToolEnvironment env;

    MemoryTool(ToolEnvironment env) {
      this.env = env;
    }

    @Override
    public String capability() {
      return "internal://memory";
    }

    @Override
    public final ToolOutput call(ToolContext context, String arguments) {
      try {
        ObjectNode args = Json.arguments(arguments);
        String scope = scope(context);
        // the notes belong to the verified principal, not to whatever the descriptor says
        return run(context.identity().agent(), scope, args, context);
      } catch (IllegalArgumentException e) {
        return ToolOutput.error(spec().name() + ": " + e.getMessage());
      }
    }

    abstract ToolOutput run(String agent, String scope, ObjectNode args, ToolContext context);
  }

  private static final class MemoryPut extends MemoryTool {
    MemoryPut(ToolEnvironment env) {
      super(env);
    }

    @Override
    public ToolSpec spec() {
      return new ToolSpec(
          "memory_put",
          "Saves a note under a key, replacing any note with that key.",
          "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\",\"description\":\"a short name\"},"
              + "\"value\":{\"type\":\"string\",\"description\":\"the note\"}},\"required\":[\"key\",\"value\"]}");
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    ToolOutput run(String agent, String scope, ObjectNode args, ToolContext context) {
      String key = Json.string(args, "key");
      String value = Json.string(args, "value");
      if (key.isBlank() || key.length() > MAX_KEY_CHARS) {
        throw new IllegalArgumentException("\"key\" must be 1 to " + MAX_KEY_CHARS + " characters");
      }
      if (value.length() > MAX_VALUE_CHARS) {
        throw new IllegalArgumentException("\"value\" is longer than " + MAX_VALUE_CHARS + " characters");
      }
      env.store().memory().put(agent, scope, key, value);
      return ToolOutput.ok("saved \"" + key + "\"");
    }
  }

  private static final class MemoryGet extends MemoryTool {
    MemoryGet(ToolEnvironment env) {
      super(env);
    }

    @Override
    public ToolSpec spec() {
      return new ToolSpec(
          "memory_get",
          "Reads the note saved under a key.",
          "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\"}},\"required\":[\"key\"]}");
    }

    @Override
    public boolean readOnly() {
      return true;
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    ToolOutput run(String agent, String scope, ObjectNode args, ToolContext context) {
      purgeExpired(env, context);
      String key = Json.string(args, "key");
      return env.store()
          .memory()
          .get(agent, scope, key)
          .map(n -> ToolOutput.ok(n.value()))
          .orElseGet(() -> ToolOutput.ok("no note under \"" + key + "\""));
    }
  }

  private static final class MemorySearch extends MemoryTool {
    MemorySearch(ToolEnvironment env) {
      super(env);
    }

    @Override
    public ToolSpec spec() {
      return new ToolSpec(
          "memory_search",
          "Finds notes whose key or text contains any of the query's words, best matches first.",
          "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"},"
              + "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50}},\"required\":[\"query\"]}");
    }

    @Override
    public boolean readOnly() {
      return true;
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    ToolOutput run(String agent, String scope, ObjectNode args, ToolContext context) {
      purgeExpired(env, context);
      String query = Json.string(args, "query");
      int limit = args.has("limit") ? Math.max(1, Math.min(50, args.get("limit").asInt(10))) : 10;
      List<MemoryStore.Note> notes = env.store().memory().search(agent, scope, query, limit);
      List<Map<String, String>> out =
          notes.stream().map(n -> Map.of("key", n.key(), "value", n.value())).toList();
      return ToolOutput.ok(Json.write(out));
    }
  }
}
