package keel.execution;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.googleai.GoogleAiGeminiStreamingChatModel;
import dev.langchain4j.model.googleai.GoogleAiGeminiTokenUsage;
import dev.langchain4j.model.output.TokenUsage;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import keel.core.AgentDescriptor;
import keel.core.Usage;

/**
 * The {@code gemini} provider: Google's Gemini API (Google AI Studio keys), called through
 * LangChain4j's {@link GoogleAiGeminiStreamingChatModel}, which posts to {@code
 * {baseUrl}/models/{model}:streamGenerateContent?alt=sse} so that text reaches {@link ModelStream}
 * as it is generated.
 *
 * <p>Settings: {@code spec.model.baseUrl} when present, else the environment's {@code
 * GEMINI_BASE_URL}, else {@value #DEFAULT_BASE_URL}. The key is the environment's {@code
 * GEMINI_API_KEY}, sent in the {@code x-goog-api-key} header; without one, calls to Google's
 * endpoint fail as {@link ModelFailure.Kind#PERMANENT} and calls to any other endpoint send a
 * placeholder key. The key is never logged nor put in a message. The model id follows {@link
 * OpenAiModelProvider#requestedModel} (name {@code gemini-1.5-flash}, pin {@code 002}: {@code
 * gemini-1.5-flash-002}), without a leading {@code models/}. LangChain4j's streaming Gemini model
 * does not retry; Keel retries.
 *
 * <p>Usage: Gemini's {@code promptTokenCount} includes {@code cachedContentTokenCount}, which Keel
 * counts apart as cache reads; {@code thoughtsTokenCount} (thinking models) is billed as output
 * and added to the output tokens. Failures map to {@link ModelFailure} kinds as in {@link
 * ProviderFailures}; a 429's delay comes from {@code Retry-After} or Google's {@code RetryInfo}.
 *
 * <p>Thread-safe: one LangChain4j model per (base URL, model id) is built on first use and shared.
 */
public final class GeminiModelProvider implements ModelProvider {

  /** The provider's name in {@code spec.model.provider}. */
  public static final String NAME = "gemini";

  /** Google's Gemini API endpoint, used when neither the descriptor nor the environment names one. */
  public static final String DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta";

  /** The default time allowed for one call, until the whole answer has arrived. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

  /** The environment variable holding the API key. */
  static final String KEY_VARIABLE = "GEMINI_API_KEY";

  /** The key sent to servers other than Google's when {@code GEMINI_API_KEY} is not set. */
  static final String PLACEHOLDER_KEY = "keel-no-key";

  private static final int MAX_CACHED_MODELS = 256;

  private final Optional<String> apiKey;
  private final String defaultBaseUrl;
  private final Duration timeout;
  private final java.net.http.HttpClient http;
  private final Map<ModelKey, StreamingChatModel> models = new ConcurrentHashMap<>();

  /** Creates a provider reading its settings from {@code env}, with {@link #DEFAULT_TIMEOUT}. */
  public GeminiModelProvider(Map<String, String> env) {
    this(env, DEFAULT_TIMEOUT);
  }

  /**
   * Creates a provider reading its settings from {@code env}.
   *
   * @param env the environment ({@code GEMINI_API_KEY}, {@code GEMINI_BASE_URL})
   * @param timeout the time allowed for one call, from sending to the last byte of the answer
   */
  public GeminiModelProvider(Map<String, String> env, Duration timeout) {
    CompactMappers.enable("dev.langchain4j.model.googleai.Json", "OBJECT_MAPPER");
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    this.apiKey = Optional.ofNullable(env.get(KEY_VARIABLE)).map(String::strip).filter(s -> !s.isEmpty());
    this.defaultBaseUrl =
        Optional.ofNullable(env.get("GEMINI_BASE_URL"))
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
   * The model id sent to the server: {@link OpenAiModelProvider#requestedModel}'s rule, without a
   * leading {@code models/} (the path already has one).
   */
  public static String requestedModel(AgentDescriptor.ModelSpec spec) {
    String id = OpenAiModelProvider.requestedModel(spec);
    return id.startsWith("models/") ? id.substring("models/".length()) : id;
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(stream, "stream");
    String baseUrl =
        stripSlash(request.model().baseUrl().map(String::strip).filter(s -> !s.isEmpty()).orElse(defaultBaseUrl));
    String modelId = requestedModel(request.model());
    String endpoint = baseUrl + "/models/" + modelId + ":streamGenerateContent";
    String where = "gemini provider (POST " + endpoint + ")";
    String key = apiKey.orElse(null);
    if (key == null) {
      if (baseUrl.equals(stripSlash(DEFAULT_BASE_URL))) {
        throw new ModelFailure(
            ModelFailure.Kind.PERMANENT,
            where + ": " + KEY_VARIABLE + " is not set; set it in the server's environment");
      }
      key = PLACEHOLDER_KEY;
    }

    ChatRequest.Builder chat =
        ChatRequest.builder().messages(LangChainMessages.messages(request)).modelName(modelId);
    if (!request.tools().isEmpty()) {
      List<ToolSpecification> tools = LangChainMessages.tools(request, where);
      chat.toolSpecifications(tools);
    }
    request.model().temperature().ifPresent(chat::temperature);

    String sentKey = key;
    ChatResponse response =
        StreamingCall.run(
            model(baseUrl, modelId, key),
            chat.build(),
            stream,
            timeout,
            "keel-gemini-call",
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
            GoogleAiGeminiStreamingChatModel.builder()
                .httpClientBuilder(new StrictEventsHttpClient.Builder(new OpenAiHttpClient.Builder(http, timeout)))
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

  static Usage usage(TokenUsage tokens) {
    if (tokens == null) {
      return Usage.ZERO;
    }
    long input = tokens.inputTokenCount() == null ? 0 : tokens.inputTokenCount();
    long output = tokens.outputTokenCount() == null ? 0 : tokens.outputTokenCount();
    long cached = 0;
    if (tokens instanceof GoogleAiGeminiTokenUsage gemini) {
      if (gemini.cachedContentTokenCount() != null) {
        cached = Math.min(input, gemini.cachedContentTokenCount());
      }
      if (gemini.thoughtsTokenCount() != null) {
        output += gemini.thoughtsTokenCount();
      }
    }
    return new Usage(input - cached, output, 0, cached);
  }

  private static String stripSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }
}
