package keel.execution;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.core.Usage;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Maps Keel's model requests to LangChain4j's chat messages and tools, and LangChain4j's answers
 * back, the same way for every provider that calls through LangChain4j. Usage is left to each
 * provider: each reports cached and reasoning tokens its own way.
 *
 * <p>Stateless and thread-safe.
 */
final class LangChainMessages {

  private static final ObjectMapper JSON = JsonMapper.builder().build();

  private LangChainMessages() {}

  /** The instructions as a system message (when not blank), then the conversation. */
  static List<ChatMessage> messages(ModelRequest request) {
    return messages(request, null);
  }

  /**
   * The instructions as a system message (when not blank), then the conversation. With {@code
   * lastAttributes}, every message of the conversation is built with attributes — {@code
   * lastAttributes} on the last one, none on the others — and a failed tool result is flagged as an
   * error (Anthropic's mapper reads a {@code cache_control} attribute as a cache marker).
   */
  static List<ChatMessage> messages(ModelRequest request, Map<String, Object> lastAttributes) {
    List<ChatMessage> messages = new ArrayList<>();
    if (!request.instructions().isBlank()) {
      messages.add(SystemMessage.from(request.instructions()));
    }
    List<Message> conversation = request.conversation();
    for (int i = 0; i < conversation.size(); i++) {
      Map<String, Object> attributes =
          lastAttributes == null ? null : i == conversation.size() - 1 ? lastAttributes : Map.of();
      messages.add(message(conversation.get(i), attributes));
    }
    return messages;
  }

  /** One message; plain when {@code attributes} is null, else built with them. */
  private static ChatMessage message(Message m, Map<String, Object> attributes) {
    return switch (m) {
      case Message.User u ->
          attributes == null
              ? UserMessage.from(u.text())
              : UserMessage.builder().addContent(TextContent.from(u.text())).attributes(attributes).build();
      case Message.Assistant a -> {
        List<ToolExecutionRequest> calls = new ArrayList<>();
        for (ToolCall c : a.toolCalls()) {
          calls.add(ToolExecutionRequest.builder().id(c.id()).name(c.name()).arguments(c.arguments()).build());
        }
        if (attributes != null) {
          AiMessage.Builder ai = AiMessage.builder().attributes(attributes);
          if (!a.text().isEmpty() || calls.isEmpty()) {
            ai.text(a.text());
          }
          if (!calls.isEmpty()) {
            ai.toolExecutionRequests(calls);
          }
          yield ai.build();
        }
        if (calls.isEmpty()) {
          yield AiMessage.from(a.text());
        }
        yield a.text().isEmpty() ? AiMessage.from(calls) : AiMessage.from(a.text(), calls);
      }
      case Message.ToolResult r -> {
        String text =
            switch (r.content()) {
              case Content.Inline inline -> inline.text();
              // The executor resolves blobs before calling; a preview beats failing the call.
              case Content.Blob blob -> blob.preview();
            };
        if (attributes == null) {
          yield ToolExecutionResultMessage.from(r.callId(), r.toolName(), text);
        }
        ToolExecutionResultMessage.Builder result =
            ToolExecutionResultMessage.builder().id(r.callId()).toolName(r.toolName()).text(text).attributes(attributes);
        if (r.error()) {
          result.isError(true);
        }
        yield result.build();
      }
    };
  }

  /** The request's tools, or a {@code PERMANENT} failure naming the tool whose schema is unusable. */
  static List<ToolSpecification> tools(ModelRequest request, String where) {
    List<ToolSpecification> tools = new ArrayList<>();
    for (ToolSpec tool : request.tools()) {
      tools.add(toolSpecification(tool, where));
    }
    return tools;
  }

  private static ToolSpecification toolSpecification(ToolSpec tool, String where) {
    JsonNode schema;
    try {
      schema = JSON.readTree(tool.parametersSchema());
    } catch (JacksonException e) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT,
          where + ": tool " + tool.name() + " has a parameters schema that is not JSON: " + e.getOriginalMessage());
    }
    ToolSpecification.Builder b = ToolSpecification.builder().name(tool.name());
    if (!tool.description().isEmpty()) {
      b.description(tool.description());
    }
    try {
      b.parameters(JsonSchemas.objectSchema(schema));
    } catch (IllegalArgumentException e) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT, where + ": tool " + tool.name() + ": " + e.getMessage());
    }
    return b.build();
  }

  /** The answer's text (empty when none). */
  static String text(ChatResponse response, String where) {
    AiMessage ai = response.aiMessage();
    if (ai == null) {
      throw new ModelFailure(ModelFailure.Kind.INVALID_RESPONSE, where + ": the answer has no message");
    }
    return ai.text() == null ? "" : ai.text();
  }

  /**
   * The answer's tool calls. A call without an id (Gemini usually sends none) gets {@code
   * call_<response id>_<index>}, or {@code call_<step>_<index>} when the answer has no id either;
   * missing arguments become {@code {}}.
   */
  static List<ToolCall> toolCalls(ChatResponse response, ModelRequest request, String where) {
    String prefix =
        response.id() == null || response.id().isBlank()
            ? "call_" + request.step()
            : "call_" + response.id().replaceAll("[^A-Za-z0-9_-]", "");
    return toolCalls(response, prefix, where, i -> "tool call " + i + " has no function name");
  }

  /**
   * The answer's tool calls. A call without an id gets {@code <idPrefix>_<index>}; missing
   * arguments become {@code {}}; a call without a name is an {@code INVALID_RESPONSE} failure
   * saying {@code unnamed} of its index.
   */
  static List<ToolCall> toolCalls(
      ChatResponse response, String idPrefix, String where, IntFunction<String> unnamed) {
    AiMessage ai = response.aiMessage();
    List<ToolCall> calls = new ArrayList<>();
    if (ai == null || !ai.hasToolExecutionRequests()) {
      return calls;
    }
    List<ToolExecutionRequest> requests = ai.toolExecutionRequests();
    for (int i = 0; i < requests.size(); i++) {
      ToolExecutionRequest r = requests.get(i);
      if (r.name() == null || r.name().isEmpty()) {
        throw new ModelFailure(ModelFailure.Kind.INVALID_RESPONSE, where + ": " + unnamed.apply(i));
      }
      String id = r.id() == null || r.id().isEmpty() ? idPrefix + "_" + i : r.id();
      String args = r.arguments() == null || r.arguments().isBlank() ? "{}" : r.arguments();
      calls.add(new ToolCall(id, r.name(), args));
    }
    return calls;
  }

  /**
   * The answer as a {@link ModelResponse}: its {@link #text}, its {@link #toolCalls(ChatResponse,
   * ModelRequest, String) tool calls}, {@code usage} and its {@link #version}.
   */
  static ModelResponse response(
      ChatResponse response, ModelRequest request, String modelId, String where, Usage usage) {
    return new ModelResponse(
        text(response, where), toolCalls(response, request, where), usage, version(response, modelId));
  }

  /**
   * The answer as a {@link ModelResponse}, as the OpenAI chat and Anthropic providers have always
   * read it: a tool call without an id gets {@code call_<step>_<index>} whatever the answer's id, a
   * call without a name fails saying {@code unnamed} of its index, and the model version is the
   * answer's model name unless that is missing or empty (a blank one is kept).
   */
  static ModelResponse responseByStep(
      ChatResponse response,
      ModelRequest request,
      String modelId,
      String where,
      Usage usage,
      IntFunction<String> unnamed) {
    String text = text(response, where);
    List<ToolCall> calls = toolCalls(response, "call_" + request.step(), where, unnamed);
    String version = response.modelName() == null || response.modelName().isEmpty() ? modelId : response.modelName();
    return new ModelResponse(text, calls, usage, version);
  }

  /** The model version the answer reports, else the requested model id. */
  static String version(ChatResponse response, String modelId) {
    return response.modelName() == null || response.modelName().isBlank() ? modelId : response.modelName();
  }
}
