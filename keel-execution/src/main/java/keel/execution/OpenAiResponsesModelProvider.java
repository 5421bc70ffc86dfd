package keel.execution;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiResponsesChatRequestParameters;
import dev.langchain4j.model.openai.OpenAiResponsesStreamingChatModel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;

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

  private static final StreamingCall CALL =
      new StreamingCall(
          "keel-openai-responses-call",
          "the answer ended before it was complete",
          ProviderFailures.Dialect.OPENAI_OR_GOOGLE,
          KEY_VARIABLE);

  private final ProviderSettings settings;
  private final ModelCache models = new ModelCache();

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
    CompactRequests.enable("dev.langchain4j.model.openai.OpenAiResponsesClient", "OBJECT_MAPPER");
    this.settings = new ProviderSettings(env, timeout, KEY_VARIABLE, "OPENAI_BASE_URL", DEFAULT_BASE_URL);
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
    String baseUrl = settings.baseUrl(request);
    String modelId = OpenAiModelProvider.requestedModel(request.model());
    String where = "openai-responses provider (POST " + baseUrl + "/responses, model " + modelId + ")";
    String key = settings.key(baseUrl, where);

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

    ChatResponse response = CALL.run(model(baseUrl, modelId, key), chat, stream, settings.timeout(), where, key);
    return LangChainMessages.response(response, request, modelId, where, OpenAiModelProvider.usage(response.tokenUsage()));
  }

  private StreamingChatModel model(String baseUrl, String modelId, String key) {
    return models.get(
        baseUrl,
        modelId,
        (url, id) ->
            OpenAiResponsesStreamingChatModel.builder()
                .httpClientBuilder(new StrictEventsHttpClient.Builder(settings.httpClient()))
                .baseUrl(url)
                .apiKey(key)
                .modelName(id)
                .logRequests(false)
                .logResponses(false)
                .build());
  }
}
