package keel.execution;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.HttpException;
import dev.langchain4j.model.anthropic.AnthropicStreamingChatModel;
import dev.langchain4j.model.anthropic.AnthropicTokenUsage;
import dev.langchain4j.model.anthropic.internal.api.AnthropicStreamingException;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.TokenUsage;
import java.io.IOException;
import java.lang.reflect.Field;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.core.Usage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * The {@code anthropic} provider: Anthropic's Messages API, called through LangChain4j's {@link
 * AnthropicStreamingChatModel} so that text reaches {@link ModelStream} as it is generated.
 *
 * <p>Settings: {@code spec.model.baseUrl} when present, else the environment's {@code
 * ANTHROPIC_BASE_URL}, else {@value #DEFAULT_BASE_URL}. The key is the environment's {@code
 * ANTHROPIC_API_KEY}, sent as {@code x-api-key}; without one, calls to Anthropic's own endpoint fail
 * as {@link ModelFailure.Kind#PERMANENT} and calls to any other endpoint (a proxy, a fake) send a
 * placeholder key. The key is never logged nor put in a message. The requested model id follows
 * {@link OpenAiModelProvider#requestedModel}'s pin rule. Answers are limited to {@value
 * #DEFAULT_MAX_TOKENS} output tokens. LangChain4j does not retry streamed calls: Keel retries.
 *
 * <p>Prompt caching is on: the system prompt, the tool definitions and the last message of the
 * conversation carry {@code cache_control: {type: ephemeral}}. The first two mark the stable prefix;
 * the third is a rolling breakpoint, so the next step of the same session reads the whole
 * conversation so far from the cache (Anthropic looks back up to 20 blocks from a marker for an
 * earlier write). That is three of the four markers Anthropic allows. Cache writes and reads are
 * reported apart in {@link Usage}.
 *
 * <p>Failures map to {@link ModelFailure} kinds as for {@link OpenAiModelProvider}: timeouts,
 * connection errors, 5xx and 529 ({@code overloaded_error}, also when sent as an error event in the
 * middle of a stream) are {@code TRANSIENT}; 429 is {@code RATE_LIMITED} with the server's {@code
 * retry-after}; a body that is not a valid answer, or a stream that ends before {@code
 * message_stop}, is {@code INVALID_RESPONSE}; any other 4xx is {@code PERMANENT}.
 *
 * <p>Thread-safe: one LangChain4j model per (base URL, model id) is built on first use and shared.
 */
public final class AnthropicModelProvider implements ModelProvider {

  /** The provider's name in {@code spec.model.provider}. */
  public static final String NAME = "anthropic";

  /** Anthropic's own endpoint, used when neither the descriptor nor the environment names one. */
  public static final String DEFAULT_BASE_URL = "https://api.anthropic.com/v1";

  /** The default time allowed for one call, until the whole answer has arrived. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

  /** The {@code max_tokens} sent with every call: the Messages API requires one. */
  public static final int DEFAULT_MAX_TOKENS = 4096;

  /** The key sent to servers other than Anthropic's when {@code ANTHROPIC_API_KEY} is not set. */
  static final String PLACEHOLDER_KEY = "keel-no-key";

  private static final Logger LOG = LoggerFactory.getLogger(AnthropicModelProvider.class);
  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final int MAX_CACHED_MODELS = 256;
  /** LangChain4j's Anthropic mapper reads this message attribute to add a cache marker. */
  private static final Map<String, Object> CACHE_MARKER = Map.of("cache_control", "ephemeral");

  private static volatile boolean compactRequests;

  private final Optional<String> apiKey;
  private final String defaultBaseUrl;
  private final Duration timeout;
  private final java.net.http.HttpClient http;
  private final Map<ModelKey, StreamingChatModel> models = new ConcurrentHashMap<>();

  /** Creates a provider reading its settings from {@code env}, with {@link #DEFAULT_TIMEOUT}. */
  public AnthropicModelProvider(Map<String, String> env) {
    this(env, DEFAULT_TIMEOUT);
  }

  /**
   * Creates a provider reading its settings from {@code env}.
   *
   * @param env the environment ({@code ANTHROPIC_API_KEY}, {@code ANTHROPIC_BASE_URL})
   * @param timeout the time allowed for one call, from sending to the last byte of the answer
   */
  public AnthropicModelProvider(Map<String, String> env, Duration timeout) {
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    compactRequests();
    this.apiKey = Optional.ofNullable(env.get("ANTHROPIC_API_KEY")).map(String::strip).filter(s -> !s.isEmpty());
    this.defaultBaseUrl =
        Optional.ofNullable(env.get("ANTHROPIC_BASE_URL"))
            .map(String::strip)
            .filter(s -> !s.isEmpty())
            .orElse(DEFAULT_BASE_URL);
    this.timeout = timeout;
    this.http =
        java.net.http.HttpClient.newBuilder()
            .connectTimeout(timeout)
            .version(java.net.http.HttpClient.Version.HTTP_1_1)
            .build();
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    String baseUrl = stripSlash(request.model().baseUrl().map(String::strip).filter(s -> !s.isEmpty()).orElse(defaultBaseUrl));
    String modelId = OpenAiModelProvider.requestedModel(request.model());
    String where = "anthropic provider (POST " + baseUrl + "/messages, model " + modelId + ")";
    String key = apiKey.orElse(null);
    if (key == null) {
      if (baseUrl.equals(DEFAULT_BASE_URL)) {
        throw new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": ANTHROPIC_API_KEY is not set; set it in the server's environment");
      }
      key = PLACEHOLDER_KEY;
    }

    ChatRequest.Builder chat = ChatRequest.builder().messages(messages(request)).modelName(modelId);
    if (!request.tools().isEmpty()) {
      List<ToolSpecification> tools = new ArrayList<>();
      for (ToolSpec tool : request.tools()) {
        tools.add(toolSpecification(tool, where));
      }
      chat.toolSpecifications(tools);
    }
    request.model().temperature().ifPresent(chat::temperature);

    StreamingChatModel model = model(baseUrl, modelId, key);
    ModelStream guarded = new GuardedStream(stream, where);
    CompletableFuture<ChatResponse> result = new CompletableFuture<>();
    StreamingChatResponseHandler handler =
        new StreamingChatResponseHandler() {
          @Override
          public void onPartialResponse(String partial) {
            guarded.onText(partial);
          }

          @Override
          public void onCompleteResponse(ChatResponse response) {
            result.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            result.completeExceptionally(error);
          }
        };
    ChatRequest chatRequest = chat.build();
    // As in the openai provider: the exchange runs on its own virtual thread so that the timeout
    // bounds the whole call, including a stream that stalls after its headers. The HTTP client
    // parses the stream on that thread, so when chat() returns the stream is over; a stream that
    // ended without message_stop never calls the handler, and is caught here.
    Thread worker =
        Thread.ofVirtual()
            .name("keel-anthropic-call")
            .start(
                () -> {
                  try {
                    model.chat(chatRequest, handler);
                    result.completeExceptionally(new IncompleteStream());
                  } catch (Throwable e) {
                    result.completeExceptionally(e);
                  }
                });
    ChatResponse response;
    try {
      response = result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw failure(where, e.getCause(), key);
    } catch (TimeoutException e) {
      worker.interrupt();
      throw new ModelFailure(
          ModelFailure.Kind.TRANSIENT, where + ": no complete answer within " + timeout, null, null);
    } catch (InterruptedException e) {
      worker.interrupt();
      Thread.currentThread().interrupt();
      throw new ModelFailure(ModelFailure.Kind.TRANSIENT, where + ": interrupted", null, e);
    }
    return toModelResponse(response, request, modelId, where);
  }

  private StreamingChatModel model(String baseUrl, String modelId, String key) {
    ModelKey cacheKey = new ModelKey(baseUrl, modelId);
    StreamingChatModel cached = models.get(cacheKey);
    if (cached != null) {
      return cached;
    }
    if (models.size() >= MAX_CACHED_MODELS) {
      models.clear(); // bounded: descriptors name few models; a flood of names must not grow memory
    }
    return models.computeIfAbsent(
        cacheKey,
        k ->
            AnthropicStreamingChatModel.builder()
                // The shared JDK client keeps retry-after on error answers, which LangChain4j's
                // own client drops; nothing in it is specific to OpenAI.
                .httpClientBuilder(new OpenAiHttpClient.Builder(http, timeout))
                .baseUrl(k.baseUrl())
                .apiKey(key)
                .modelName(k.modelId())
                .maxTokens(DEFAULT_MAX_TOKENS)
                .cacheSystemMessages(true)
                .cacheTools(true)
                .timeout(timeout)
                .logRequests(false)
                .logResponses(false)
                .build());
  }

  /** The cache key of a built model; the API key is fixed per provider, so it is not part of it. */
  private record ModelKey(String baseUrl, String modelId) {}

  // ---------------------------------------------------------------- requests

  /** The conversation as LangChain4j messages, the last one carrying the rolling cache marker. */
  private static List<ChatMessage> messages(ModelRequest request) {
    List<ChatMessage> messages = new ArrayList<>();
    if (!request.instructions().isBlank()) {
      messages.add(SystemMessage.from(request.instructions()));
    }
    List<Message> conversation = request.conversation();
    for (int i = 0; i < conversation.size(); i++) {
      Map<String, Object> attributes = i == conversation.size() - 1 ? CACHE_MARKER : Map.of();
      switch (conversation.get(i)) {
        case Message.User u ->
            messages.add(UserMessage.builder().addContent(TextContent.from(u.text())).attributes(attributes).build());
        case Message.Assistant a -> {
          List<ToolExecutionRequest> calls = new ArrayList<>();
          for (ToolCall c : a.toolCalls()) {
            calls.add(ToolExecutionRequest.builder().id(c.id()).name(c.name()).arguments(c.arguments()).build());
          }
          AiMessage.Builder ai = AiMessage.builder().attributes(attributes);
          if (!a.text().isEmpty() || calls.isEmpty()) {
            ai.text(a.text());
          }
          if (!calls.isEmpty()) {
            ai.toolExecutionRequests(calls);
          }
          messages.add(ai.build());
        }
        case Message.ToolResult r -> {
          String text =
              switch (r.content()) {
                case Content.Inline inline -> inline.text();
                // The executor resolves blobs before calling; a preview beats failing the call.
                case Content.Blob blob -> blob.preview();
              };
          ToolExecutionResultMessage.Builder result =
              ToolExecutionResultMessage.builder().id(r.callId()).toolName(r.toolName()).text(text).attributes(attributes);
          if (r.error()) {
            result.isError(true);
          }
          messages.add(result.build());
        }
      }
    }
    return messages;
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

  // ---------------------------------------------------------------- responses

  private static ModelResponse toModelResponse(
      ChatResponse response, ModelRequest request, String modelId, String where) {
    AiMessage ai = response.aiMessage();
    if (ai == null) {
      throw new ModelFailure(ModelFailure.Kind.INVALID_RESPONSE, where + ": the answer has no message");
    }
    String text = ai.text() == null ? "" : ai.text();
    List<ToolCall> calls = new ArrayList<>();
    if (ai.hasToolExecutionRequests()) {
      List<ToolExecutionRequest> requests = ai.toolExecutionRequests();
      for (int i = 0; i < requests.size(); i++) {
        ToolExecutionRequest r = requests.get(i);
        if (r.name() == null || r.name().isEmpty()) {
          throw new ModelFailure(
              ModelFailure.Kind.INVALID_RESPONSE, where + ": tool_use block " + i + " has no name");
        }
        String id = r.id() == null || r.id().isEmpty() ? "call_" + request.step() + "_" + i : r.id();
        String args = r.arguments() == null || r.arguments().isBlank() ? "{}" : r.arguments();
        calls.add(new ToolCall(id, r.name(), args));
      }
    }
    String version =
        response.modelName() == null || response.modelName().isEmpty() ? modelId : response.modelName();
    return new ModelResponse(text, calls, usage(response.tokenUsage()), version);
  }

  private static Usage usage(TokenUsage tokens) {
    if (tokens == null) {
      return Usage.ZERO;
    }
    // Anthropic's input_tokens already exclude the tokens written to and read from the cache.
    long input = tokens.inputTokenCount() == null ? 0 : tokens.inputTokenCount();
    long output = tokens.outputTokenCount() == null ? 0 : tokens.outputTokenCount();
    long write = 0;
    long read = 0;
    if (tokens instanceof AnthropicTokenUsage anthropic) {
      write = anthropic.cacheCreationInputTokens() == null ? 0 : anthropic.cacheCreationInputTokens();
      read = anthropic.cacheReadInputTokens() == null ? 0 : anthropic.cacheReadInputTokens();
    }
    return new Usage(Math.max(0, input), Math.max(0, output), Math.max(0, write), Math.max(0, read));
  }

  // ---------------------------------------------------------------- failures

  /** The stream closed without {@code message_stop}, so LangChain4j never completed the answer. */
  private static final class IncompleteStream extends RuntimeException {
    private static final long serialVersionUID = 1L;

    IncompleteStream() {
      super("the stream ended before message_stop", null, false, false);
    }
  }

  /** Classifies a failure by walking its cause chain; the message never carries the key. */
  static ModelFailure failure(String where, Throwable error, String key) {
    OpenAiHttpClient.StatusException status = null;
    HttpException http = null;
    AnthropicStreamingException streamError = null;
    boolean timeout = false;
    boolean io = false;
    boolean json = false;
    boolean incomplete = false;
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof OpenAiHttpClient.StatusException s && status == null) {
        status = s;
      } else if (t instanceof HttpException h && http == null) {
        http = h;
      } else if (t instanceof AnthropicStreamingException s && streamError == null) {
        streamError = s;
      }
      String cls = t.getClass().getName();
      if (t instanceof IncompleteStream) {
        incomplete = true;
      } else if (t instanceof HttpTimeoutException
          || t instanceof TimeoutException
          || t instanceof dev.langchain4j.exception.TimeoutException) {
        timeout = true;
      } else if (cls.startsWith("com.fasterxml.jackson.") || cls.startsWith("tools.jackson.")) {
        // Checked before IOException: Jackson 2's parse errors are IOExceptions.
        json = true;
      } else if (t instanceof IOException) {
        io = true;
      }
    }
    if (status != null || http != null) {
      int code = status != null ? status.statusCode() : http.statusCode();
      Duration retryAfter = status != null ? status.retryAfter().orElse(null) : null;
      String detail = status != null ? providerMessage(status.body(), key) : "";
      if (code == 429) {
        return new ModelFailure(
            ModelFailure.Kind.RATE_LIMITED,
            where + ": rate limited (HTTP 429)"
                + (retryAfter != null ? ", retry after " + retryAfter.toSeconds() + "s" : "")
                + detail,
            retryAfter,
            null);
      }
      if (code >= 500 || code == 408) {
        String what = code == 529 ? "overloaded" : "server error";
        return new ModelFailure(
            ModelFailure.Kind.TRANSIENT, where + ": " + what + " (HTTP " + code + ")" + detail, retryAfter, null);
      }
      if (code == 401 || code == 403) {
        // Auth errors may echo part of the key: say nothing of the body.
        return new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": HTTP " + code + ", the API key was refused; check ANTHROPIC_API_KEY",
            null,
            null);
      }
      return new ModelFailure(
          ModelFailure.Kind.PERMANENT, where + ": request rejected (HTTP " + code + ")" + detail, null, null);
    }
    if (streamError != null) {
      // An error event inside a 200 stream: its type says what an HTTP status would have said.
      String type = String.valueOf(streamError.type());
      String detail = ": " + type + ": " + truncate(scrub(String.valueOf(streamError.getMessage()), key));
      ModelFailure.Kind kind =
          switch (type) {
            case "overloaded_error", "api_error", "timeout_error" -> ModelFailure.Kind.TRANSIENT;
            case "rate_limit_error" -> ModelFailure.Kind.RATE_LIMITED;
            case "authentication_error", "permission_error", "invalid_request_error", "not_found_error",
                "request_too_large", "billing_error" -> ModelFailure.Kind.PERMANENT;
            default -> ModelFailure.Kind.INVALID_RESPONSE;
          };
      return new ModelFailure(kind, where + ": the stream failed" + detail, null, null);
    }
    if (incomplete) {
      return new ModelFailure(
          ModelFailure.Kind.INVALID_RESPONSE, where + ": the stream ended before message_stop", null, null);
    }
    if (timeout) {
      return new ModelFailure(ModelFailure.Kind.TRANSIENT, where + ": timed out", null, error);
    }
    if (json) {
      return new ModelFailure(
          ModelFailure.Kind.INVALID_RESPONSE, where + ": the answer is not valid JSON", null, null);
    }
    if (io) {
      return new ModelFailure(
          ModelFailure.Kind.TRANSIENT,
          where + ": connection failed: " + scrub(String.valueOf(error.getMessage()), key),
          null,
          error);
    }
    return new ModelFailure(
        ModelFailure.Kind.INVALID_RESPONSE,
        where + ": unexpected failure " + error.getClass().getSimpleName() + ": " + scrub(String.valueOf(error.getMessage()), key),
        null,
        null);
  }

  /** Anthropic's {@code {"type": "error", "error": {"type", "message"}}} as {@code ": type: message"}. */
  private static String providerMessage(String body, String key) {
    if (body == null || body.isBlank()) {
      return "";
    }
    String type;
    String message;
    try {
      JsonNode error = JSON.readTree(body).path("error");
      type = error.path("type").asString("");
      message = error.path("message").asString("");
    } catch (JacksonException e) {
      return "";
    }
    if (message.isEmpty()) {
      return type.isEmpty() ? "" : ": " + type;
    }
    return ": " + (type.isEmpty() ? "" : type + ": ") + truncate(scrub(message, key));
  }

  private static String truncate(String message) {
    return message.length() > 300 ? message.substring(0, 297) + "..." : message;
  }

  private static String scrub(String text, String key) {
    return key == null || key.isEmpty() ? text : text.replace(key, "***");
  }

  private static String stripSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }

  /**
   * LangChain4j's Anthropic module, like its OpenAI module (see {@link CompactRequests}), writes
   * request bodies with a static mapper that indents its output; this switches indenting off once.
   * If a later version moves the mapper, requests stay indented and a debug line says so.
   */
  private static void compactRequests() {
    if (compactRequests) {
      return;
    }
    compactRequests = true;
    try {
      Class<?> json = Class.forName("dev.langchain4j.model.anthropic.internal.client.Json");
      Field field = json.getDeclaredField("OBJECT_MAPPER");
      field.setAccessible(true);
      if (field.get(null) instanceof com.fasterxml.jackson.databind.ObjectMapper m) {
        m.disable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT);
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.debug("LangChain4j's Anthropic requests stay indented: {}", e.toString());
    }
  }
}
