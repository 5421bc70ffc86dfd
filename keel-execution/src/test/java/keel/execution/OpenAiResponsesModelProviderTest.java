package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.testkit.FakeOpenAiResponses;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class OpenAiResponsesModelProviderTest {

  private static final String KEY = "sk-test-secret-0123456789";

  private FakeOpenAiResponses fake;
  private OpenAiResponsesModelProvider provider;

  @BeforeEach
  void start() {
    fake = FakeOpenAiResponses.start();
    provider = new OpenAiResponsesModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofSeconds(5));
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature) {
    return spec(pinned, Optional.of(fake.baseUrl()), temperature);
  }

  private static AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<String> baseUrl, Optional<Double> temperature) {
    return new AgentDescriptor.ModelSpec(
        "openai-responses", "gpt-test", pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
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

  private static void assertKeyAbsent(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      assertThat(String.valueOf(t.getMessage())).doesNotContain(KEY);
      assertThat(String.valueOf(t)).doesNotContain(KEY);
    }
  }

  @Test
  void requests_areSentCompact_notPrettyPrinted() {
    fake.script(FakeOpenAiResponses.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    String body = fake.lastRequest().orElseThrow().json();
    assertThat(body).doesNotContain("\n  ").doesNotContain("\" : ");
  }

  @Test
  void textAnswer_isReturnedWithVersionAndUsage() {
    fake.script(FakeOpenAiResponses.Script.text("Hi there, friend."));
    ModelResponse response = provider.complete(hello(), ModelStream.NONE);
    assertThat(response.text()).isEqualTo("Hi there, friend.");
    assertThat(response.toolCalls()).isEmpty();
    assertThat(response.modelVersion()).isEqualTo("gpt-test");
    assertThat(response.usage().inputTokens()).isEqualTo(("You help.".length() + "hello".length() + 3) / 4);
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);

    FakeOpenAiResponses.ResponsesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gpt-test");
    assertThat(sent.stream()).isTrue();
    assertThat(sent.input())
        .containsExactly(
            new FakeOpenAiResponses.InputItem.Message("system", "You help."),
            new FakeOpenAiResponses.InputItem.Message("user", "hello"));
  }

  @Test
  void everyCall_carriesTheAgentsPromptCacheKey_andIsNotStored() {
    provider.complete(hello(), ModelStream.NONE);
    FakeOpenAiResponses.ResponsesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.promptCacheKey()).contains("keel:helper");
    assertThat(sent.store()).contains(false);
    assertThat(OpenAiResponsesModelProvider.promptCacheKey("a".repeat(100)))
        .startsWith("keel:")
        .hasSizeLessThanOrEqualTo(OpenAiResponsesModelProvider.MAX_CACHE_KEY)
        .isEqualTo(OpenAiResponsesModelProvider.promptCacheKey("a".repeat(100)))
        .isNotEqualTo(OpenAiResponsesModelProvider.promptCacheKey("a".repeat(101)));
  }

  @Test
  void toolCalls_roundTrip_inTheResponsesWireShape() {
    String schema =
        """
        {"type":"object","properties":{
          "city":{"type":"string","description":"City name"},
          "days":{"type":"integer"},
          "units":{"type":"string","enum":["c","f"]},
          "tags":{"type":"array","items":{"type":"string"}}},
         "required":["city"]}
        """;
    ToolSpec weather = new ToolSpec("weather", "Forecast for a city.", schema);
    fake.script(FakeOpenAiResponses.Script.toolLoop("weather"));

    List<Message> conversation = new ArrayList<>(List.of(new Message.User("forecast steps=1")));
    ModelResponse first = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls()).hasSize(1);
    ToolCall call = first.toolCalls().getFirst();
    assertThat(call.name()).isEqualTo("weather");
    assertThat(call.arguments()).isEqualTo("{}");
    assertThat(call.id()).startsWith("call_fake");

    JsonNode sentTools = JsonMapper.builder().build().readTree(fake.lastRequest().orElseThrow().json()).get("tools");
    assertThat(sentTools.at("/0/type").asString()).isEqualTo("function");
    assertThat(sentTools.at("/0/name").asString()).isEqualTo("weather");
    assertThat(sentTools.at("/0/description").asString()).isEqualTo("Forecast for a city.");
    JsonNode params = sentTools.at("/0/parameters");
    assertThat(params.at("/properties/city/type").asString()).isEqualTo("string");
    assertThat(params.at("/properties/days/type").asString()).isEqualTo("integer");
    assertThat(params.at("/properties/units/enum/1").asString()).isEqualTo("f");
    assertThat(params.at("/properties/tags/items/type").asString()).isEqualTo("string");
    assertThat(params.at("/required/0").asString()).isEqualTo("city");

    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(new Message.ToolResult(call.id(), "weather", Content.inline("sunny"), false));
    ModelResponse second = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(second.text()).isEqualTo("done after 1 steps");

    FakeOpenAiResponses.ResponsesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.input())
        .containsExactly(
            new FakeOpenAiResponses.InputItem.Message("system", "You help."),
            new FakeOpenAiResponses.InputItem.Message("user", "forecast steps=1"),
            new FakeOpenAiResponses.InputItem.FunctionCall(call.id(), "weather", "{}"),
            new FakeOpenAiResponses.InputItem.FunctionCallOutput(call.id(), "sunny"));
  }

  @Test
  void cachedTokens_areCountedApartFromInputTokens() {
    fake.script(request -> FakeOpenAiResponses.Reply.text("a cached answer").withCachedTokens(3));
    String longInput = "x".repeat(400);
    ModelResponse response =
        provider.complete(request(List.of(new Message.User(longInput)), List.of()), ModelStream.NONE);
    assertThat(response.usage().cacheReadTokens()).isEqualTo(3);
    long inputTokens = ("You help.".length() + longInput.length() + 3) / 4;
    assertThat(response.usage().inputTokens()).isEqualTo(inputTokens - 3);
  }

  @Test
  void streaming_deliversPiecesInOrder_andTheResponseIsTheirConcatenation() {
    fake.script(FakeOpenAiResponses.Script.text("one two three four five six"));
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
            "helper", "s-1", spec(Optional.of("2025-05-05"), Optional.of(0.25)), "You help.",
            List.of(new Message.User("hello")), List.of(), 0);
    ModelResponse response = provider.complete(pinned, ModelStream.NONE);
    assertThat(response.modelVersion()).isEqualTo("gpt-test-2099-01-01");
    FakeOpenAiResponses.ResponsesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gpt-test-2025-05-05");
    assertThat(sent.temperature()).contains(0.25);
  }

  @Test
  void rateLimited_isRateLimitedWithRetryAfter() {
    fake.rateLimitNext(1, 17);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.RATE_LIMITED);
    assertThat(f.retryAfter()).contains(Duration.ofSeconds(17));
    assertThat(f.getMessage()).contains("openai-responses provider").contains(fake.baseUrl() + "/responses");
    assertThat(fake.requestCount()).as("LangChain4j must not retry by itself").isEqualTo(1);
  }

  @Test
  void serverError_isTransient_andNotRetriedByLangChain4j() {
    fake.failNext(1, 500);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("HTTP 500");
    assertThat(fake.requestCount()).isEqualTo(1);
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void badRequest_isPermanent() {
    fake.failNext(1, 400);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
  }

  @Test
  void malformedJson_isInvalidResponse() {
    fake.malformedNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains("openai-responses provider");
  }

  @Test
  void hang_isTransientAfterTheTimeout() {
    OpenAiResponsesModelProvider impatient =
        new OpenAiResponsesModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofMillis(500));
    fake.hangNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void streamStalledAfterItsFirstEvent_isTransientAfterTheTimeout() {
    OpenAiResponsesModelProvider impatient =
        new OpenAiResponsesModelProvider(Map.of("OPENAI_API_KEY", KEY), Duration.ofMillis(500));
    fake.stallStreamNext(1, Duration.ofSeconds(30));
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("no complete answer within");
  }

  @Test
  void refusedKey_isPermanent_andTheKeyNeverAppears() {
    fake.requireApiKey("another-key");
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("OPENAI_API_KEY");
    assertKeyAbsent(f);
  }

  @Test
  void failuresOfEveryKind_neverContainTheKey() {
    fake.rateLimitNext(1, 1).failNext(1, 503).malformedNext(1).failNext(1, 400);
    for (int i = 0; i < 4; i++) {
      assertKeyAbsent(failure(() -> provider.complete(hello(), ModelStream.NONE)));
    }
  }

  @Test
  void missingKey_forOpenAiItself_isPermanentWithoutSendingAnything() {
    OpenAiResponsesModelProvider keyless = new OpenAiResponsesModelProvider(Map.of());
    ModelRequest request =
        new ModelRequest(
            "helper", "s-1", spec(Optional.empty(), Optional.empty(), Optional.empty()), "",
            List.of(new Message.User("hello")), List.of(), 0);
    ModelFailure f = failure(() -> keyless.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("OPENAI_API_KEY is not set");
  }

  @Test
  void missingKey_forALocalServer_sendsAPlaceholder_fromOpenAiBaseUrl() {
    OpenAiResponsesModelProvider keyless =
        new OpenAiResponsesModelProvider(Map.of("OPENAI_BASE_URL", fake.baseUrl()));
    ModelRequest request =
        new ModelRequest(
            "helper", "s-1", spec(Optional.empty(), Optional.empty(), Optional.empty()), "",
            List.of(new Message.User("hello")), List.of(), 0);
    assertThat(keyless.complete(request, ModelStream.NONE).text()).isEqualTo("done after 0 steps");
    assertThat(keyless.name()).isEqualTo("openai-responses").isEqualTo(OpenAiResponsesModelProvider.NAME);
  }
}
