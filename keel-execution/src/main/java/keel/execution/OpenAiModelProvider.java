package keel.execution;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.HttpException;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.openai.OpenAiTokenUsage;
import dev.langchain4j.model.output.TokenUsage;
import java.io.IOException;
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
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.core.Usage;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * The {@code openai} provider: any server that speaks OpenAI Chat Completions, called through
 * LangChain4j's {@link OpenAiStreamingChatModel} so that text reaches {@link ModelStream} as it is
 * generated.
 *
 * <p>Settings: {@code spec.model.baseUrl} when present, else the environment's {@code
 * OPENAI_BASE_URL}, else {@value #DEFAULT_BASE_URL}. The key is the environment's {@code
 * OPENAI_API_KEY}; without one, calls to the OpenAI default endpoint fail as {@link
 * ModelFailure.Kind#PERMANENT} and calls to any other endpoint (a local OpenAI-compatible server)
 * send a placeholder key. The key is never logged nor put in a message. The requested model id is
 * given by {@link #requestedModel}. LangChain4j's own retries are off: Keel retries.
 *
 * <p>Failures map to {@link ModelFailure} kinds: timeouts, connection errors and 5xx are {@code
 * TRANSIENT}; 429 is {@code RATE_LIMITED} with the server's {@code Retry-After}; a body that is not
 * a valid response is {@code INVALID_RESPONSE}; any other 4xx is {@code PERMANENT}.
 *
 * <p>Thread-safe: one LangChain4j model per (base URL, model id) is built on first use and shared.
 */
public final class OpenAiModelProvider implements ModelProvider {

  /** The provider's name in {@code spec.model.provider}. */
  public static final String NAME = "openai";

  /** OpenAI's own endpoint, used when neither the descriptor nor the environment names one. */
  public static final String DEFAULT_BASE_URL = "https://api.openai.com/v1";

  /** The default time allowed for one call, until the whole answer has arrived. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

  /** The key sent to servers other than OpenAI's when {@code OPENAI_API_KEY} is not set. */
  static final String PLACEHOLDER_KEY = "keel-no-key";

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final int MAX_CACHED_MODELS = 256;

  private final Optional<String> apiKey;
  private final String defaultBaseUrl;
  private final Duration timeout;
  private final java.net.http.HttpClient http;
  private final Map<ModelKey, StreamingChatModel> models = new ConcurrentHashMap<>();

  /** Creates a provider reading its settings from {@code env}, with {@link #DEFAULT_TIMEOUT}. */
  public OpenAiModelProvider(Map<String, String> env) {
    this(env, DEFAULT_TIMEOUT);
  }

  /**
   * Creates a provider reading its settings from {@code env}.
   *
   * @param env the environment ({@code OPENAI_API_KEY}, {@code OPENAI_BASE_URL})
   * @param timeout the time allowed for one call, from sending to the last byte of the answer
   */
  public OpenAiModelProvider(Map<String, String> env, Duration timeout) {
    CompactRequests.enable();
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    this.apiKey = Optional.ofNullable(env.get("OPENAI_API_KEY")).map(String::strip).filter(s -> !s.isEmpty());
    this.defaultBaseUrl =
        Optional.ofNullable(env.get("OPENAI_BASE_URL"))
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

  /**
   * The model id sent to the server. Without a pin it is {@code name}. With a pin, the pin is used
   * as is when it already contains {@code name} (a full model id such as {@code
   * gpt-4o-2024-08-06}); otherwise it is a bare revision and the id is {@code name + "-" + pin}
   * (name {@code gpt-4o}, pin {@code 2024-08-06}).
   */
  public static String requestedModel(AgentDescriptor.ModelSpec spec) {
    return spec.pinnedRevision()
        .map(String::strip)
        .filter(p -> !p.isEmpty())
        .map(p -> p.contains(spec.name()) ? p : spec.name() + "-" + p)
        .orElse(spec.name());
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    String baseUrl = stripSlash(request.model().baseUrl().map(String::strip).filter(s -> !s.isEmpty()).orElse(defaultBaseUrl));
    String modelId = requestedModel(request.model());
    String endpoint = baseUrl + "/chat/completions";
    String where = "openai provider (POST " + endpoint + ", model " + modelId + ")";
    String key = apiKey.orElse(null);
    if (key == null) {
      if (baseUrl.equals(stripSlash(DEFAULT_BASE_URL))) {
        throw new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": OPENAI_API_KEY is not set; set it in the server's environment");
      }
      key = PLACEHOLDER_KEY;
    }

    // Prompt caching: OpenAI caches long prompt prefixes by itself; a cache key per agent routes
    // the agent's calls to the same cache (the key names no session, so calls of all its sessions
    // share their common prefix: instructions and tools).
    dev.langchain4j.model.openai.OpenAiChatRequestParameters.Builder parameters =
        dev.langchain4j.model.openai.OpenAiChatRequestParameters.builder()
            .modelName(modelId)
            .customParameters(Map.of("prompt_cache_key", OpenAiResponsesModelProvider.promptCacheKey(request.agent())));
    if (!request.tools().isEmpty()) {
      List<ToolSpecification> tools = new ArrayList<>();
      for (ToolSpec tool : request.tools()) {
        tools.add(toolSpecification(tool, where));
      }
      parameters.toolSpecifications(tools);
    }
    request.model().temperature().ifPresent(parameters::temperature);
    ChatRequest.Builder chat = ChatRequest.builder().messages(messages(request)).parameters(parameters.build());

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
    // The exchange runs on its own virtual thread so that the whole call, including a stream that
    // stalls after its headers, is bounded by the timeout: on expiry the thread is interrupted,
    // which aborts its blocking read.
    Thread worker =
        Thread.ofVirtual()
            .name("keel-openai-call")
            .start(
                () -> {
                  try {
                    model.chat(chatRequest, handler);
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
            OpenAiStreamingChatModel.builder()
                .httpClientBuilder(new OpenAiHttpClient.Builder(http, timeout))
                .baseUrl(k.baseUrl())
                .apiKey(key)
                .modelName(k.modelId())
                .timeout(timeout)
                .logRequests(false)
                .logResponses(false)
                .build());
  }

  /** The cache key of a built model; the API key is fixed per provider, so it is not part of it. */
  private record ModelKey(String baseUrl, String modelId) {}

  // ---------------------------------------------------------------- requests

  private static List<ChatMessage> messages(ModelRequest request) {
    List<ChatMessage> messages = new ArrayList<>();
    if (!request.instructions().isBlank()) {
      messages.add(SystemMessage.from(request.instructions()));
    }
    for (Message m : request.conversation()) {
      switch (m) {
        case Message.User u -> messages.add(UserMessage.from(u.text()));
        case Message.Assistant a -> {
          List<ToolExecutionRequest> calls = new ArrayList<>();
          for (ToolCall c : a.toolCalls()) {
            calls.add(ToolExecutionRequest.builder().id(c.id()).name(c.name()).arguments(c.arguments()).build());
          }
          if (calls.isEmpty()) {
            messages.add(AiMessage.from(a.text()));
          } else if (a.text().isEmpty()) {
            messages.add(AiMessage.from(calls));
          } else {
            messages.add(AiMessage.from(a.text(), calls));
          }
        }
        case Message.ToolResult r -> {
          String text =
              switch (r.content()) {
                case Content.Inline inline -> inline.text();
                // The executor resolves blobs before calling; a preview beats failing the call.
                case Content.Blob blob -> blob.preview();
              };
          messages.add(ToolExecutionResultMessage.from(r.callId(), r.toolName(), text));
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
              ModelFailure.Kind.INVALID_RESPONSE, where + ": tool call " + i + " has no function name");
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
    long input = tokens.inputTokenCount() == null ? 0 : tokens.inputTokenCount();
    long output = tokens.outputTokenCount() == null ? 0 : tokens.outputTokenCount();
    long cached = 0;
    if (tokens instanceof OpenAiTokenUsage openAi
        && openAi.inputTokensDetails() != null
        && openAi.inputTokensDetails().cachedTokens() != null) {
      cached = Math.min(input, openAi.inputTokensDetails().cachedTokens());
    }
    // OpenAI's prompt_tokens include the cached ones; Keel counts them apart.
    return new Usage(input - cached, output, 0, cached);
  }

  // ---------------------------------------------------------------- failures

  /** Classifies a failure by walking its cause chain; the message never carries the key. */
  static ModelFailure failure(String where, Throwable error, String key) {
    OpenAiHttpClient.StatusException status = null;
    HttpException http = null;
    boolean timeout = false;
    boolean io = false;
    boolean json = false;
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof OpenAiHttpClient.StatusException s && status == null) {
        status = s;
      } else if (t instanceof HttpException h && http == null) {
        http = h;
      }
      String cls = t.getClass().getName();
      if (t instanceof HttpTimeoutException
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
        return new ModelFailure(
            ModelFailure.Kind.TRANSIENT, where + ": server error (HTTP " + code + ")" + detail, retryAfter, null);
      }
      if (code == 401 || code == 403) {
        // Auth errors may echo part of the key: say nothing of the body.
        return new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": HTTP " + code + ", the API key was refused; check OPENAI_API_KEY",
            null,
            null);
      }
      return new ModelFailure(
          ModelFailure.Kind.PERMANENT, where + ": request rejected (HTTP " + code + ")" + detail, null, null);
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

  private static String providerMessage(String body, String key) {
    if (body == null || body.isBlank()) {
      return "";
    }
    String message;
    try {
      JsonNode node = JSON.readTree(body);
      message = node.path("error").path("message").asString("");
    } catch (JacksonException e) {
      message = "";
    }
    if (message.isEmpty()) {
      return "";
    }
    message = scrub(message, key);
    if (message.length() > 300) {
      message = message.substring(0, 297) + "...";
    }
    return ": " + message;
  }

  private static String scrub(String text, String key) {
    return key == null || key.isEmpty() ? text : text.replace(key, "***");
  }

  private static String stripSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }
}
