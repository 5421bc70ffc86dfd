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

  private static final StreamingCall CALL =
      new StreamingCall(
          "keel-gemini-call",
          "the answer ended before it was complete",
          ProviderFailures.Dialect.OPENAI_OR_GOOGLE,
          KEY_VARIABLE);

  private final ProviderSettings settings;
  private final ModelCache models = new ModelCache();

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
    CompactRequests.enable("dev.langchain4j.model.googleai.Json", "OBJECT_MAPPER");
    this.settings = new ProviderSettings(env, timeout, KEY_VARIABLE, "GEMINI_BASE_URL", DEFAULT_BASE_URL);
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
    String baseUrl = settings.baseUrl(request);
    String modelId = requestedModel(request.model());
    String endpoint = baseUrl + "/models/" + modelId + ":streamGenerateContent";
    String where = "gemini provider (POST " + endpoint + ")";
    String key = settings.key(baseUrl, where);

    ChatRequest.Builder chat =
        ChatRequest.builder().messages(LangChainMessages.messages(request)).modelName(modelId);
    if (!request.tools().isEmpty()) {
      List<ToolSpecification> tools = LangChainMessages.tools(request, where);
      chat.toolSpecifications(tools);
    }
    request.model().temperature().ifPresent(chat::temperature);

    ChatResponse response = CALL.run(model(baseUrl, modelId, key), chat.build(), stream, settings.timeout(), where, key);
    return LangChainMessages.response(response, request, modelId, where, usage(response.tokenUsage()));
  }

  private StreamingChatModel model(String baseUrl, String modelId, String key) {
    return models.get(
        baseUrl,
        modelId,
        (url, id) ->
            GoogleAiGeminiStreamingChatModel.builder()
                .httpClientBuilder(new StrictEventsHttpClient.Builder(settings.httpClient()))
                .baseUrl(url)
                .apiKey(key)
                .modelName(id)
                .timeout(settings.timeout())
                .logRequests(false)
                .logResponses(false)
                .build());
  }

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
}
