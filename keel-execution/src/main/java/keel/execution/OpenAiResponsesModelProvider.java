package keel.execution;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiResponsesChatRequestParameters;
import dev.langchain4j.model.openai.OpenAiResponsesStreamingChatModel;
import dev.langchain4j.model.openai.OpenAiTokenUsage;
import dev.langchain4j.model.output.TokenUsage;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import keel.core.Usage;

/**
 * The {@code openai-responses} provider: OpenAI's Responses API, called through LangChain4j's
 * {@link OpenAiResponsesStreamingChatModel}, which posts to {@code {baseUrl}/responses} with {@code
 * "stream": true} so that text reaches {@link ModelStream} as it is generated.
 *
 * <p>Settings are those of the {@code openai} provider: {@code spec.model.baseUrl} when present,
 * else the environment's {@code OPENAI_BASE_URL}, else {@value #DEFAULT_BASE_URL}; the key is
 * {@code OPENAI_API_KEY} (required for OpenAI's endpoint, a placeholder for any other), never logged
 * nor put in a message; the model id is {@link OpenAiModelProvider#requestedModel}. LangChain4j's
 * streaming Responses model does not retry; Keel retries.
 *
 * <p>Every call carries {@code prompt_cache_key} {@code keel:<agent>} (hashed when longer than
 * {@value #MAX_CACHE_KEY} characters), so that calls of one agent, which share their instructions
 * and tools, are routed to the same prompt cache; and {@code store: false}, since Keel sends the
 * whole conversation each time and keeps it itself. The conversation is sent in full ({@code
 * previous_response_id} is not used). Cached input tokens are counted apart from input tokens.
 * Failures map to {@link ModelFailure} kinds as in {@link ProviderFailures}.
 *
 * <p>Thread-safe: one LangChain4j model per (base URL, model id) is built on first use and shared.
 */
public final class OpenAiResponsesModelProvider implements ModelProvider {

  /** The provider's name in {@code spec.model.provider}. */
  public static final String NAME = "openai-responses";

  /** OpenAI's own endpoint, used when neither the descriptor nor the environment names one. */
  public static final String DEFAULT_BASE_URL = OpenAiModelProvider.DEFAULT_BASE_URL;

  /** The default time allowed for one call, until the whole answer has arrived. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

  /** The longest {@code prompt_cache_key} sent as is. */
  static final int MAX_CACHE_KEY = 64;

  private static final String KEY_VARIABLE = "OPENAI_API_KEY";
  private static final int MAX_CACHED_MODELS = 256;

  private final Optional<String> apiKey;
  private final String defaultBaseUrl;
  private final Duration timeout;
  private final java.net.http.HttpClient http;
  private final Map<ModelKey, StreamingChatModel> models = new ConcurrentHashMap<>();

  /** Creates a provider reading its settings from {@code env}, with {@link #DEFAULT_TIMEOUT}. */
  public OpenAiResponsesModelProvider(Map<String, String> env) {
    this(env, DEFAULT_TIMEOUT);
  }

  /**
   * Creates a provider reading its settings from {@code env}.
   *
   * @param env the environment ({@code OPENAI_API_KEY}, {@code OPENAI_BASE_URL})
   * @param timeout the time allowed for one call, from sending to the last byte of the answer
   */
  public OpenAiResponsesModelProvider(Map<String, String> env, Duration timeout) {
    CompactMappers.enable("dev.langchain4j.model.openai.OpenAiResponsesClient", "OBJECT_MAPPER");
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    this.apiKey = Optional.ofNullable(env.get(KEY_VARIABLE)).map(String::strip).filter(s -> !s.isEmpty());
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

  /** The {@code prompt_cache_key} of {@code agent}'s calls. */
  static String promptCacheKey(String agent) {
    String key = "keel:" + agent;
    if (key.length() <= MAX_CACHE_KEY) {
      return key;
    }
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(agent.getBytes(StandardCharsets.UTF_8));
      return "keel:" + HexFormat.of().formatHex(digest, 0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(stream, "stream");
    String baseUrl =
        stripSlash(request.model().baseUrl().map(String::strip).filter(s -> !s.isEmpty()).orElse(defaultBaseUrl));
    String modelId = OpenAiModelProvider.requestedModel(request.model());
    String where = "openai-responses provider (POST " + baseUrl + "/responses, model " + modelId + ")";
    String key = apiKey.orElse(null);
    if (key == null) {
      if (baseUrl.equals(stripSlash(DEFAULT_BASE_URL))) {
        throw new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": " + KEY_VARIABLE + " is not set; set it in the server's environment");
      }
      key = OpenAiModelProvider.PLACEHOLDER_KEY;
    }

    OpenAiResponsesChatRequestParameters.Builder parameters =
        OpenAiResponsesChatRequestParameters.builder()
            .modelName(modelId)
            .promptCacheKey(promptCacheKey(request.agent()))
            .store(false);
    if (!request.tools().isEmpty()) {
      parameters.toolSpecifications(LangChainMessages.tools(request, where));
    }
    request.model().temperature().ifPresent(parameters::temperature);
    ChatRequest chat =
        ChatRequest.builder().messages(LangChainMessages.messages(request)).parameters(parameters.build()).build();

    String sentKey = key;
    ChatResponse response =
        StreamingCall.run(
            model(baseUrl, modelId, key),
            chat,
            stream,
            timeout,
            "keel-openai-responses-call",
            where,
            error -> ProviderFailures.classify(where, error, sentKey, KEY_VARIABLE));
    return new ModelResponse(
        LangChainMessages.text(response, where),
        LangChainMessages.toolCalls(response, request, where),
        usage(response.tokenUsage()),
        LangChainMessages.version(response, modelId));
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
            OpenAiResponsesStreamingChatModel.builder()
                .httpClientBuilder(new StrictEventsHttpClient.Builder(new OpenAiHttpClient.Builder(http, timeout)))
                .baseUrl(k.baseUrl())
                .apiKey(key)
                .modelName(k.modelId())
                .logRequests(false)
                .logResponses(false)
                .build());
  }

  /** The cache key of a built model; the API key is fixed per provider, so it is not part of it. */
  private record ModelKey(String baseUrl, String modelId) {}

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
    // The Responses API's input_tokens include the cached ones; Keel counts them apart.
    return new Usage(input - cached, output, 0, cached);
  }

  private static String stripSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }
}
