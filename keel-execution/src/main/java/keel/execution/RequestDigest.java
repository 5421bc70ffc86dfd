package keel.execution;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import tools.jackson.core.JsonGenerator;
import tools.jackson.databind.json.JsonMapper;

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
 * <p>The digest is computed on every model call (coalescing, the response cache), over a
 * conversation that grows with the session: the JSON is streamed straight into the hash, with no
 * tree, string or byte copy of the conversation in between.
 *
 * <p>Stateless and thread-safe.
 */
final class RequestDigest {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  private RequestDigest() {}

  /** The lowercase hex SHA-256 of {@link #canonicalJson}. */
  static String sha256(String agentOrNull, ModelRequest request, String provider, String model) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
    write(new DigestOutputStream(OutputStream.nullOutputStream(), sha), agentOrNull, request, provider, model);
    return HexFormat.of().formatHex(sha.digest());
  }

  /** The request's canonical JSON; {@code agentOrNull} is left out when null. */
  static String canonicalJson(String agentOrNull, ModelRequest request, String provider, String model) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    write(out, agentOrNull, request, provider, model);
    return out.toString(StandardCharsets.UTF_8);
  }

  private static void write(OutputStream out, String agentOrNull, ModelRequest request, String provider, String model) {
    try (JsonGenerator g = JSON.createGenerator(out)) {
      g.writeStartObject();
      if (agentOrNull != null) {
        g.writeStringProperty("agent", agentOrNull);
      }
      g.writeStringProperty("provider", provider);
      g.writeStringProperty("model", model);
      g.writeStringProperty("base_url", request.model().baseUrl().orElse(null));
      if (request.model().temperature().isPresent()) {
        g.writeNumberProperty("temperature", request.model().temperature().get().doubleValue());
      } else {
        g.writeNullProperty("temperature");
      }
      g.writeStringProperty("instructions", request.instructions());
      g.writeArrayPropertyStart("conversation");
      for (Message m : request.conversation()) {
        message(g, m);
      }
      g.writeEndArray();
      g.writeArrayPropertyStart("tools");
      for (ToolSpec t : request.tools()) {
        g.writeStartObject();
        g.writeStringProperty("name", t.name());
        g.writeStringProperty("description", t.description());
        g.writeStringProperty("parameters_schema", t.parametersSchema());
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    }
  }

  private static void message(JsonGenerator g, Message m) {
    g.writeStartObject();
    switch (m) {
      case Message.User u -> {
        g.writeStringProperty("role", "user");
        g.writeStringProperty("text", u.text());
      }
      case Message.Assistant a -> {
        g.writeStringProperty("role", "assistant");
        g.writeStringProperty("text", a.text());
        g.writeArrayPropertyStart("tool_calls");
        for (ToolCall c : a.toolCalls()) {
          g.writeStartObject();
          g.writeStringProperty("id", c.id());
          g.writeStringProperty("name", c.name());
          g.writeStringProperty("arguments", c.arguments());
          g.writeEndObject();
        }
        g.writeEndArray();
      }
      case Message.ToolResult r -> {
        g.writeStringProperty("role", "tool");
        g.writeStringProperty("call_id", r.callId());
        g.writeStringProperty("tool", r.toolName());
        g.writeBooleanProperty("error", r.error());
        switch (r.content()) {
          case Content.Inline i -> g.writeStringProperty("text", i.text());
          case Content.Blob b -> g.writeStringProperty("blob_sha256", b.sha256());
        }
      }
    }
    g.writeEndObject();
  }
}
