package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.KeelException;
import keel.core.Message;
import keel.core.ToolCall;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class OpenAiModelProviderTest {

  private static final String KEY = "sk-test-secret-0123456789";

  private FakeOpenAi fake;
  private OpenAiModelProvider provider;

  @BeforeEach
  void start() {
    fake = FakeOpenAi.start();
    provider = new OpenAiModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofSeconds(5));
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature) {
    return new AgentDescriptor.ModelSpec(
        "openai",
        "gpt-test",
        pinned,
        Optional.of(fake.baseUrl()),
        temperature,
        AgentDescriptor.OnDrift.WARN,
        Optional.empty(),
        List.of());
  }

  private ModelRequest request(List<Message> conversation, List<ToolSpec> tools) {
    return new ModelRequest(
        "helper", "s-1", spec(Optional.empty(), Optional.empty()), "You help.", conversation, tools, 0);
  }

  private ModelRequest hello() {
    return request(List.of(new Message.User("hello")), List.of());
  }

  private static ModelFailure failure(Runnable call) {
    try {
      call.run();
    } catch (ModelFailure f) {
      return f;
    }
    throw new AssertionError("expected a ModelFailure");
  }

  @Test
  void textAnswer_isReturnedWithVersionAndUsage() {
    fake.script(FakeOpenAi.Script.text("Hi there, friend."));
    ModelResponse response = provider.complete(hello(), ModelStream.NONE);
    assertThat(response.text()).isEqualTo("Hi there, friend.");
    assertThat(response.toolCalls()).isEmpty();
    assertThat(response.modelVersion()).isEqualTo("gpt-test");
    assertThat(response.usage().inputTokens()).isPositive();
    assertThat(response.usage().outputTokens()).isPositive();

    FakeOpenAi.ChatRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gpt-test");
    assertThat(sent.messages()).extracting(FakeOpenAi.WireMessage::role).containsExactly("system", "user");
    assertThat(sent.messages().getFirst().content()).isEqualTo("You help.");
    assertThat(sent.stream()).isTrue();
  }

  @Test
  void requests_carryAPromptCacheKeyPerAgent() {
    fake.script(FakeOpenAi.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    assertThat(fake.lastRequest().orElseThrow().json()).contains("\"prompt_cache_key\":\"keel:" );
  }

  @Test
  void requests_areSentCompact_notPrettyPrinted() {
    fake.script(FakeOpenAi.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    String body = fake.lastRequest().orElseThrow().json();
    assertThat(body).doesNotContain("\n  ").doesNotContain(": ");
  }

  @Test
  void toolCalls_roundTrip_inTheOpenAiWireShape() throws Exception {
    String schema =
        """
        {"type":"object","properties":{
          "city":{"type":"string","description":"City name"},
          "days":{"type":"integer"},
          "units":{"type":"string","enum":["c","f"]},
          "tags":{"type":"array","items":{"type":"string"}},
          "exact":{"type":"boolean"},
          "ratio":{"type":"number"}},
         "required":["city"]}
        """;
    ToolSpec weather = new ToolSpec("weather", "Forecast for a city.", schema);
    fake.script(FakeOpenAi.Script.toolLoop("weather"));

    List<Message> conversation = new ArrayList<>(List.of(new Message.User("forecast steps=1")));
    ModelResponse first = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls()).hasSize(1);
    ToolCall call = first.toolCalls().getFirst();
    assertThat(call.name()).isEqualTo("weather");
    assertThat(call.arguments()).isEqualTo("{}");
    assertThat(call.id()).startsWith("call_");

    JsonNode sentTools = JsonMapper.builder().build().readTree(fake.lastRequest().orElseThrow().json()).get("tools");
    assertThat(sentTools.at("/0/type").asString()).isEqualTo("function");
    assertThat(sentTools.at("/0/function/name").asString()).isEqualTo("weather");
    assertThat(sentTools.at("/0/function/description").asString()).isEqualTo("Forecast for a city.");
    JsonNode params = sentTools.at("/0/function/parameters");
    assertThat(params.at("/properties/city/type").asString()).isEqualTo("string");
    assertThat(params.at("/properties/city/description").asString()).isEqualTo("City name");
    assertThat(params.at("/properties/days/type").asString()).isEqualTo("integer");
    assertThat(params.at("/properties/units/enum/1").asString()).isEqualTo("f");
    assertThat(params.at("/properties/tags/items/type").asString()).isEqualTo("string");
    assertThat(params.at("/properties/exact/type").asString()).isEqualTo("boolean");
    assertThat(params.at("/properties/ratio/type").asString()).isEqualTo("number");
    assertThat(params.at("/required/0").asString()).isEqualTo("city");

    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(new Message.ToolResult(call.id(), "weather", Content.inline("sunny"), false));
    ModelResponse second = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(second.text()).isEqualTo("done after 1 steps");

    FakeOpenAi.ChatRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.messages()).extracting(FakeOpenAi.WireMessage::role)
        .containsExactly("system", "user", "assistant", "tool");
    FakeOpenAi.WireMessage assistant = sent.messages().get(2);
    assertThat(assistant.toolCalls())
        .containsExactly(new FakeOpenAi.WireToolCall(call.id(), "weather", "{}"));
    FakeOpenAi.WireMessage tool = sent.messages().get(3);
    assertThat(tool.toolCallId()).contains(call.id());
    assertThat(tool.content()).isEqualTo("sunny");
  }

  @Test
  void cachedTokens_areCountedApartFromInputTokens() {
    fake.script(request -> FakeOpenAi.Reply.text("a cached answer").withCachedTokens(3));
    String longInput = "x".repeat(400);
    ModelResponse response =
        provider.complete(request(List.of(new Message.User(longInput)), List.of()), ModelStream.NONE);
    assertThat(response.usage().cacheReadTokens()).isEqualTo(3);
    // The fake reports ceil(chars / 4) prompt tokens; Keel's inputTokens exclude the cached ones.
    long promptTokens = ("You help.".length() + longInput.length() + 3) / 4;
    assertThat(response.usage().inputTokens()).isEqualTo(promptTokens - 3);
  }

  @Test
  void streaming_deliversPiecesInOrder_andTheResponseIsTheirConcatenation() {
    fake.script(FakeOpenAi.Script.text("one two three four five six"));
    List<String> pieces = new ArrayList<>();
    ModelResponse response = provider.complete(hello(), pieces::add);
    assertThat(pieces).hasSizeGreaterThan(1);
    assertThat(pieces.getFirst()).isEqualTo("one ");
    assertThat(String.join("", pieces)).isEqualTo(response.text()).isEqualTo("one two three four five six");
  }

  @Test
  void reportedVersion_isTheServersEvenWhenItDrifted() {
    fake.reportModel("gpt-test-2099-01-01");
    ModelRequest pinned =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.of("2025-05-05"), Optional.of(0.25)),
            "You help.",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelResponse response = provider.complete(pinned, ModelStream.NONE);
    assertThat(response.modelVersion()).isEqualTo("gpt-test-2099-01-01");
    FakeOpenAi.ChatRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gpt-test-2025-05-05");
    assertThat(sent.temperature()).contains(0.25);
  }

  @Test
  void requestedModel_followsThePinRule() {
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.empty(), Optional.empty()))).isEqualTo("gpt-test");
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.of("2025-05-05"), Optional.empty())))
        .isEqualTo("gpt-test-2025-05-05");
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.of("gpt-test-0613"), Optional.empty())))
        .isEqualTo("gpt-test-0613");
  }

  @Test
  void rateLimited_isRateLimitedWithRetryAfter() {
    fake.rateLimitNext(1, 17);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.RATE_LIMITED);
    assertThat(f.retryAfter()).contains(Duration.ofSeconds(17));
    assertThat(f.retryable()).isTrue();
    assertThat(f.getMessage()).contains("openai provider").contains(fake.baseUrl() + "/chat/completions");
    assertThat(fake.requestCount()).as("LangChain4j must not retry by itself").isEqualTo(1);
  }

  @Test
  void serverError_isTransient_andNotRetriedByLangChain4j() {
    fake.failNext(1, 500);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("HTTP 500").contains(fake.baseUrl());
    assertThat(fake.requestCount()).isEqualTo(1);
    // the next call succeeds
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void badRequest_isPermanent() {
    fake.failNext(1, 400);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.retryable()).isFalse();
  }

  @Test
  void malformedJson_isInvalidResponse() {
    fake.malformedNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains("openai provider");
  }

  @Test
  void hang_isTransientAfterTheTimeout() {
    OpenAiModelProvider impatient =
        new OpenAiModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofMillis(500));
    fake.hangNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void streamStalledAfterItsHeaders_isTransientAfterTheTimeout() {
    OpenAiModelProvider impatient =
        new OpenAiModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofMillis(500));
    fake.stallStreamNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("no complete answer within");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void connectionRefused_isTransient() {
    String deadUrl = fake.baseUrl();
    fake.close();
    ModelRequest request =
        new ModelRequest(
            "helper",
            "s-1",
            new AgentDescriptor.ModelSpec(
                "openai", "gpt-test", Optional.empty(), Optional.of(deadUrl), Optional.empty(),
                AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of()),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelFailure f = failure(() -> provider.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    fake = FakeOpenAi.start(); // for @AfterEach
  }

  @Test
  void refusedKey_isPermanent_andTheKeyNeverAppears() {
    fake.requireApiKey("another-key");
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("OPENAI_API_KEY").doesNotContain(KEY);
    for (Throwable t = f; t != null; t = t.getCause()) {
      assertThat(String.valueOf(t.getMessage())).doesNotContain(KEY);
    }
  }

  @Test
  void failuresOfEveryKind_neverContainTheKey() {
    fake.rateLimitNext(1, 1).failNext(1, 503).malformedNext(1).failNext(1, 400);
    for (int i = 0; i < 4; i++) {
      ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
      for (Throwable t = f; t != null; t = t.getCause()) {
        assertThat(String.valueOf(t.getMessage())).doesNotContain(KEY);
      }
    }
  }

  @Test
  void missingKey_forOpenAiItself_isPermanentWithoutSendingAnything() {
    OpenAiModelProvider keyless = new OpenAiModelProvider(Map.of());
    ModelRequest request =
        new ModelRequest(
            "helper",
            "s-1",
            new AgentDescriptor.ModelSpec(
                "openai", "gpt-test", Optional.empty(), Optional.empty(), Optional.empty(),
                AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of()),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelFailure f = failure(() -> keyless.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("OPENAI_API_KEY is not set").contains(OpenAiModelProvider.DEFAULT_BASE_URL);
  }

  @Test
  void missingKey_forALocalServer_sendsAPlaceholder() {
    OpenAiModelProvider keyless = new OpenAiModelProvider(Map.of("OPENAI_BASE_URL", fake.baseUrl()));
    ModelRequest request =
        new ModelRequest(
            "helper",
            "s-1",
            new AgentDescriptor.ModelSpec(
                "openai", "gpt-test", Optional.empty(), Optional.empty(), Optional.empty(),
                AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of()),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    assertThat(keyless.complete(request, ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void registry_knowsBothProviders_andNamesThemWhenAskedForAnother() {
    ModelProviders providers = ModelProviders.create(Map.of());
    assertThat(providers.provider("openai")).isInstanceOf(OpenAiModelProvider.class);
    assertThat(providers.provider("scripted")).isInstanceOf(ScriptedModelProvider.class);
    assertThatThrownBy(() -> providers.provider("x"))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessage("model provider \"x\" is not available; available: anthropic, gemini, openai, openai-responses, scripted");
  }
}
