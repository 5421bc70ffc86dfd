package keel.execution;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.JsonNodeFactory;
import tools.jackson.databind.node.ObjectNode;

/**
 * The identity of a model request's body: a canonical JSON form (fixed field order, every message
 * written out explicitly rather than through Jackson's type annotations, so that a change of
 * serialization settings cannot silently change keys) and its SHA-256.
 *
 * <p>What is in it: the provider, the model, the base URL and temperature of the agent's model
 * settings, the instructions, the conversation and the tools (name, description, schema text);
 * optionally the agent. The session id and the step number are not: two sessions asking the same
 * thing make the same request.
 *
 * <p>Stateless and thread-safe.
 */
final class RequestDigest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private RequestDigest() {}

  /** The lowercase hex SHA-256 of {@link #canonicalJson}. */
  static String sha256(String agentOrNull, ModelRequest request, String provider, String model) {
    byte[] bytes = canonicalJson(agentOrNull, request, provider, model).getBytes(StandardCharsets.UTF_8);
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }

  /** The request's canonical JSON; {@code agentOrNull} is left out when null. */
  static String canonicalJson(String agentOrNull, ModelRequest request, String provider, String model) {
    ObjectNode root = NODES.objectNode();
    if (agentOrNull != null) {
      root.put("agent", agentOrNull);
    }
    root.put("provider", provider);
    root.put("model", model);
    root.put("base_url", request.model().baseUrl().orElse(null));
    if (request.model().temperature().isPresent()) {
      root.put("temperature", request.model().temperature().get().doubleValue());
    } else {
      root.putNull("temperature");
    }
    root.put("instructions", request.instructions());
    ArrayNode conversation = root.putArray("conversation");
    for (Message m : request.conversation()) {
      conversation.add(message(m));
    }
    ArrayNode tools = root.putArray("tools");
    for (ToolSpec t : request.tools()) {
      ObjectNode tool = tools.addObject();
      tool.put("name", t.name());
      tool.put("description", t.description());
      tool.put("parameters_schema", t.parametersSchema());
    }
    return JSON.writeValueAsString(root);
  }

  private static ObjectNode message(Message m) {
    ObjectNode node = NODES.objectNode();
    switch (m) {
      case Message.User u -> {
        node.put("role", "user");
        node.put("text", u.text());
      }
      case Message.Assistant a -> {
        node.put("role", "assistant");
        node.put("text", a.text());
        ArrayNode calls = node.putArray("tool_calls");
        for (ToolCall c : a.toolCalls()) {
          ObjectNode call = calls.addObject();
          call.put("id", c.id());
          call.put("name", c.name());
          call.put("arguments", c.arguments());
        }
      }
      case Message.ToolResult r -> {
        node.put("role", "tool");
        node.put("call_id", r.callId());
        node.put("tool", r.toolName());
        node.put("error", r.error());
        switch (r.content()) {
          case Content.Inline i -> node.put("text", i.text());
          case Content.Blob b -> node.put("blob_sha256", b.sha256());
        }
      }
    }
    return node;
  }
}
