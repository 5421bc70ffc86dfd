package keel.execution;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatRequestParameters;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.openai.OpenAiTokenUsage;
import dev.langchain4j.model.output.TokenUsage;
import java.time.Duration;
import java.util.Map;
import keel.core.AgentDescriptor;
import keel.core.Usage;

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

  private static final String KEY_VARIABLE = "OPENAI_API_KEY";

  private static final StreamingCall CALL =
      new StreamingCall(
          "keel-openai-call",
          "the answer ended before it was complete",
          ProviderFailures.Dialect.OPENAI,
          KEY_VARIABLE);

  private final ProviderSettings settings;
  private final ModelCache models = new ModelCache();

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
    CompactRequests.enable("dev.langchain4j.model.openai.internal.Json", "OBJECT_MAPPER");
    this.settings = new ProviderSettings(env, timeout, KEY_VARIABLE, "OPENAI_BASE_URL", DEFAULT_BASE_URL);
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
    String baseUrl = settings.baseUrl(request);
    String modelId = requestedModel(request.model());
    String where = "openai provider (POST " + baseUrl + "/chat/completions, model " + modelId + ")";
    String key = settings.key(baseUrl, where);

    // Prompt caching: OpenAI caches long prompt prefixes by itself; a cache key per agent routes
    // the agent's calls to the same cache (the key names no session, so calls of all its sessions
    // share their common prefix: instructions and tools).
    OpenAiChatRequestParameters.Builder parameters =
        OpenAiChatRequestParameters.builder()
            .modelName(modelId)
            .customParameters(Map.of("prompt_cache_key", OpenAiResponsesModelProvider.promptCacheKey(request.agent())));
    if (!request.tools().isEmpty()) {
      parameters.toolSpecifications(LangChainMessages.tools(request, where));
    }
    request.model().temperature().ifPresent(parameters::temperature);
    ChatRequest chat =
        ChatRequest.builder().messages(LangChainMessages.messages(request)).parameters(parameters.build()).build();

    ChatResponse response = CALL.run(model(baseUrl, modelId, key), chat, stream, settings.timeout(), where, key);
    return LangChainMessages.responseByStep(
        response, request, modelId, where, usage(response.tokenUsage()), i -> "tool call " + i + " has no function name");
  }

  private StreamingChatModel model(String baseUrl, String modelId, String key) {
    return models.get(
        baseUrl,
        modelId,
        (url, id) ->
            OpenAiStreamingChatModel.builder()
                .httpClientBuilder(settings.httpClient())
                .baseUrl(url)
                .apiKey(key)
                .modelName(id)
                .timeout(settings.timeout())
                .logRequests(false)
                .logResponses(false)
                .build());
  }

  /**
   * Usage from OpenAI's token counts, Chat Completions' or the Responses API's: their input tokens
   * include the cached ones, which Keel counts apart as cache reads.
   */
  static Usage usage(TokenUsage tokens) {
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
    return new Usage(input - cached, output, 0, cached);
  }
}
