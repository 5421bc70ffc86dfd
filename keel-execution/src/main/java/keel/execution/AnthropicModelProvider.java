package keel.execution;

import dev.langchain4j.model.anthropic.AnthropicStreamingChatModel;
import dev.langchain4j.model.anthropic.AnthropicTokenUsage;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.TokenUsage;
import java.time.Duration;
import java.util.Map;
import keel.core.Usage;

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
  static final String PLACEHOLDER_KEY = ProviderSettings.PLACEHOLDER_KEY;

  private static final String KEY_VARIABLE = "ANTHROPIC_API_KEY";

  private static final StreamingCall CALL =
      new StreamingCall(
          "keel-anthropic-call",
          "the stream ended before message_stop",
          ProviderFailures.Dialect.ANTHROPIC,
          KEY_VARIABLE);
  /** LangChain4j's Anthropic mapper reads this message attribute to add a cache marker. */
  private static final Map<String, Object> CACHE_MARKER = Map.of("cache_control", "ephemeral");

  private final ProviderSettings settings;
  private final ModelCache models = new ModelCache();

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
    this.settings = new ProviderSettings(env, timeout, KEY_VARIABLE, "ANTHROPIC_BASE_URL", DEFAULT_BASE_URL);
    CompactRequests.enable("dev.langchain4j.model.anthropic.internal.client.Json", "OBJECT_MAPPER");
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    String baseUrl = settings.baseUrl(request);
    String modelId = OpenAiModelProvider.requestedModel(request.model());
    String where = "anthropic provider (POST " + baseUrl + "/messages, model " + modelId + ")";
    String key = settings.key(baseUrl, where);

    // The last message carries the rolling cache breakpoint.
    ChatRequest.Builder chat =
        ChatRequest.builder().messages(LangChainMessages.messages(request, CACHE_MARKER)).modelName(modelId);
    if (!request.tools().isEmpty()) {
      chat.toolSpecifications(LangChainMessages.tools(request, where));
    }
    request.model().temperature().ifPresent(chat::temperature);

    // The HTTP client parses the stream on the call's thread, so when chat() returns the stream is
    // over; a stream that ended without message_stop never completes the answer.
    ChatResponse response = CALL.run(model(baseUrl, modelId, key), chat.build(), stream, settings.timeout(), where, key);
    return LangChainMessages.responseByStep(
        response, request, modelId, where, usage(response.tokenUsage()), i -> "tool_use block " + i + " has no name");
  }

  private StreamingChatModel model(String baseUrl, String modelId, String key) {
    return models.get(
        baseUrl,
        modelId,
        (url, id) ->
            AnthropicStreamingChatModel.builder()
                // The shared JDK client keeps retry-after on error answers, which LangChain4j's
                // own client drops; nothing in it is specific to OpenAI.
                .httpClientBuilder(settings.httpClient())
                .baseUrl(url)
                .apiKey(key)
                .modelName(id)
                .maxTokens(DEFAULT_MAX_TOKENS)
                .cacheSystemMessages(true)
                .cacheTools(true)
                .timeout(settings.timeout())
                .logRequests(false)
                .logResponses(false)
                .build());
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
}
