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
import keel.testkit.FakeGemini;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class GeminiModelProviderTest {

  private static final String KEY = "AIza-test-secret-0123456789";

  private FakeGemini fake;
  private GeminiModelProvider provider;

  @BeforeEach
  void start() {
    fake = FakeGemini.start();
    provider = new GeminiModelProvider(Map.of("GEMINI_API_KEY", KEY), Duration.ofSeconds(5));
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature) {
    return spec("gemini-test", pinned, Optional.of(fake.baseUrl()), temperature);
  }

  private static AgentDescriptor.ModelSpec spec(
      String name, Optional<String> pinned, Optional<String> baseUrl, Optional<Double> temperature) {
    return new AgentDescriptor.ModelSpec(
        "gemini", name, pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
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
    fake.script(FakeGemini.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    String body = fake.lastRequest().orElseThrow().json();
    assertThat(body).doesNotContain("\n  ").doesNotContain("\" : ");
  }

  @Test
  void textAnswer_isReturnedWithVersionAndUsage() {
    fake.script(FakeGemini.Script.text("Hi there, friend."));
    ModelResponse response = provider.complete(hello(), ModelStream.NONE);
    assertThat(response.text()).isEqualTo("Hi there, friend.");
    assertThat(response.toolCalls()).isEmpty();
    assertThat(response.modelVersion()).isEqualTo("gemini-test");
    // deterministic: ceil(chars / 4) of instructions and input, and of the answer
    assertThat(response.usage().inputTokens()).isEqualTo(("You help.".length() + "hello".length() + 3) / 4);
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);

    FakeGemini.GenerateRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gemini-test");
    assertThat(sent.stream()).isTrue();
    assertThat(sent.systemInstruction()).contains("You help.");
    assertThat(sent.contents()).extracting(FakeGemini.WireContent::role).containsExactly("user");
    assertThat(sent.contents().getFirst().text()).isEqualTo("hello");
  }

  @Test
  void toolCalls_roundTrip_inTheGeminiWireShape() {
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
    fake.script(
        request ->
            request.functionResponsesSinceLastUserText() == 0
                ? FakeGemini.Reply.toolCall("weather", "{\"city\":\"Oslo\",\"days\":2}")
                : FakeGemini.Reply.text("done"));

    List<Message> conversation = new ArrayList<>(List.of(new Message.User("forecast")));
    ModelResponse first = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls()).hasSize(1);
    ToolCall call = first.toolCalls().getFirst();
    assertThat(call.name()).isEqualTo("weather");
    assertThat(JsonMapper.builder().build().readTree(call.arguments()))
        .isEqualTo(JsonMapper.builder().build().readTree("{\"city\":\"Oslo\",\"days\":2}"));
    assertThat(call.id()).startsWith("call_");

    JsonNode sent = JsonMapper.builder().build().readTree(fake.lastRequest().orElseThrow().json());
    JsonNode declaration = sent.at("/tools/0/functionDeclarations/0");
    assertThat(declaration.at("/name").asString()).isEqualTo("weather");
    assertThat(declaration.at("/description").asString()).isEqualTo("Forecast for a city.");
    JsonNode params = declaration.at("/parameters");
    assertThat(params.at("/properties/city/type").asString()).isEqualToIgnoringCase("string");
    assertThat(params.at("/properties/city/description").asString()).isEqualTo("City name");
    assertThat(params.at("/properties/days/type").asString()).isEqualToIgnoringCase("integer");
    assertThat(params.at("/properties/units/enum/1").asString()).isEqualTo("f");
    assertThat(params.at("/properties/tags/items/type").asString()).isEqualToIgnoringCase("string");
    assertThat(params.at("/properties/exact/type").asString()).isEqualToIgnoringCase("boolean");
    assertThat(params.at("/properties/ratio/type").asString()).isEqualToIgnoringCase("number");
    assertThat(params.at("/required/0").asString()).isEqualTo("city");

    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(new Message.ToolResult(call.id(), "weather", Content.inline("sunny"), false));
    ModelResponse second = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(second.text()).isEqualTo("done");

    FakeGemini.GenerateRequest last = fake.lastRequest().orElseThrow();
    assertThat(last.contents()).hasSize(3);
    assertThat(last.contents().get(1).role()).isEqualTo("model");
    FakeGemini.WirePart.FunctionCall sentCall =
        (FakeGemini.WirePart.FunctionCall) last.contents().get(1).parts().getFirst();
    assertThat(sentCall.name()).isEqualTo("weather");
    assertThat(sentCall.args()).isEqualTo("{\"city\":\"Oslo\",\"days\":2}");
    FakeGemini.WirePart.FunctionResponse sentResult =
        (FakeGemini.WirePart.FunctionResponse) last.contents().get(2).parts().getFirst();
    assertThat(sentResult.name()).isEqualTo("weather");
    assertThat(sentResult.response()).contains("sunny");
  }

  @Test
  void cachedAndThinkingTokens_areCountedAsKeelCountsThem() {
    fake.script(request -> FakeGemini.Reply.text("a cached answer").withCachedTokens(3));
    String longInput = "x".repeat(400);
    ModelResponse response =
        provider.complete(request(List.of(new Message.User(longInput)), List.of()), ModelStream.NONE);
    assertThat(response.usage().cacheReadTokens()).isEqualTo(3);
    long promptTokens = ("You help.".length() + longInput.length() + 3) / 4;
    assertThat(response.usage().inputTokens()).isEqualTo(promptTokens - 3);
  }

  @Test
  void streaming_deliversPiecesInOrder_andTheResponseIsTheirConcatenation() {
    fake.script(FakeGemini.Script.text("one two three four five six"));
    List<String> pieces = new ArrayList<>();
    ModelResponse response = provider.complete(hello(), pieces::add);
    assertThat(pieces).hasSizeGreaterThan(1);
    assertThat(pieces.getFirst()).isEqualTo("one ");
    assertThat(String.join("", pieces)).isEqualTo(response.text()).isEqualTo("one two three four five six");
  }

  @Test
  void defaultToolLoop_runsToItsEnd() {
    List<Message> conversation = new ArrayList<>(List.of(new Message.User("go steps=2")));
    ToolSpec timeNow = new ToolSpec("time_now", "The time.", "{\"type\":\"object\"}");
    for (int step = 0; step < 2; step++) {
      ModelRequest r =
          new ModelRequest("helper", "s-1", spec(Optional.empty(), Optional.empty()), "", conversation, List.of(timeNow), step);
      ModelResponse response = provider.complete(r, ModelStream.NONE);
      assertThat(response.toolCalls()).extracting(ToolCall::name).containsExactly("time_now");
      conversation.add(new Message.Assistant("", response.toolCalls()));
      ToolCall call = response.toolCalls().getFirst();
      conversation.add(new Message.ToolResult(call.id(), call.name(), Content.inline("12:00"), false));
    }
    ModelRequest last =
        new ModelRequest("helper", "s-1", spec(Optional.empty(), Optional.empty()), "", conversation, List.of(timeNow), 2);
    assertThat(provider.complete(last, ModelStream.NONE).text()).isEqualTo("done after 2 steps");
    assertThat(fake.lastRequest().orElseThrow().systemInstruction()).isEmpty();
  }

  @Test
  void reportedVersion_isTheServersEvenWhenItDrifted() {
    fake.reportModel("gemini-test-099");
    ModelRequest pinned =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.of("002"), Optional.of(0.25)),
            "You help.",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelResponse response = provider.complete(pinned, ModelStream.NONE);
    assertThat(response.modelVersion()).isEqualTo("gemini-test-099");
    FakeGemini.GenerateRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("gemini-test-002");
    assertThat(sent.temperature()).contains(0.25);
  }

  @Test
  void requestedModel_followsThePinRule_andDropsAModelsPrefix() {
    assertThat(GeminiModelProvider.requestedModel(spec(Optional.empty(), Optional.empty()))).isEqualTo("gemini-test");
    assertThat(GeminiModelProvider.requestedModel(spec(Optional.of("002"), Optional.empty())))
        .isEqualTo("gemini-test-002");
    assertThat(GeminiModelProvider.requestedModel(spec(Optional.of("gemini-test-001"), Optional.empty())))
        .isEqualTo("gemini-test-001");
    assertThat(GeminiModelProvider.requestedModel(spec("models/gemini-x", Optional.empty(), Optional.empty(), Optional.empty())))
        .isEqualTo("gemini-x");
  }

  @Test
  void rateLimited_isRateLimitedWithRetryAfter() {
    fake.rateLimitNext(1, 17);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.RATE_LIMITED);
    assertThat(f.retryAfter()).contains(Duration.ofSeconds(17));
    assertThat(f.retryable()).isTrue();
    assertThat(f.getMessage())
        .contains("gemini provider")
        .contains(fake.baseUrl() + "/models/gemini-test:streamGenerateContent")
        .contains("RESOURCE_EXHAUSTED");
    assertThat(fake.requestCount()).as("LangChain4j must not retry by itself").isEqualTo(1);
  }

  @Test
  void serverErrors_areTransient_andNotRetriedByLangChain4j() {
    fake.failNext(1, 500).failNext(1, 503);
    ModelFailure internal = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(internal.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(internal.getMessage()).contains("HTTP 500").contains("INTERNAL");
    ModelFailure unavailable = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(unavailable.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(unavailable.getMessage()).contains("HTTP 503").contains("UNAVAILABLE");
    assertThat(fake.requestCount()).isEqualTo(2);
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void badRequestAndForbidden_arePermanent() {
    fake.failNext(1, 400).failNext(1, 403);
    ModelFailure invalid = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(invalid.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(invalid.getMessage()).contains("INVALID_ARGUMENT");
    ModelFailure forbidden = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(forbidden.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(forbidden.retryable()).isFalse();
  }

  @Test
  void malformedJson_isInvalidResponse() {
    fake.malformedNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains("gemini provider");
  }

  @Test
  void hang_isTransientAfterTheTimeout() {
    GeminiModelProvider impatient = new GeminiModelProvider(Map.of("GEMINI_API_KEY", KEY), Duration.ofMillis(500));
    fake.hangNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void streamStalledAfterItsFirstEvent_isTransientAfterTheTimeout() {
    GeminiModelProvider impatient = new GeminiModelProvider(Map.of("GEMINI_API_KEY", KEY), Duration.ofMillis(500));
    fake.script(FakeGemini.Script.text("one two three"));
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
            "helper", "s-1", spec("gemini-test", Optional.empty(), Optional.of(deadUrl), Optional.empty()),
            "", List.of(new Message.User("hello")), List.of(), 0);
    ModelFailure f = failure(() -> provider.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertKeyAbsent(f);
    fake = FakeGemini.start(); // for @AfterEach
  }

  @Test
  void theKey_isSentInTheGoogleHeader_andARefusedKeyIsPermanentWithoutTheKey() {
    fake.requireApiKey(KEY);
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
    fake.requireApiKey("another-key");
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("GEMINI_API_KEY");
    assertKeyAbsent(f);
  }

  @Test
  void failuresOfEveryKind_neverContainTheKey() {
    fake.rateLimitNext(1, 1).failNext(1, 503).malformedNext(1).failNext(1, 400).failNext(1, 403);
    for (int i = 0; i < 5; i++) {
      assertKeyAbsent(failure(() -> provider.complete(hello(), ModelStream.NONE)));
    }
  }

  @Test
  void missingKey_forGoogleItself_isPermanentWithoutSendingAnything() {
    GeminiModelProvider keyless = new GeminiModelProvider(Map.of());
    ModelRequest request =
        new ModelRequest(
            "helper", "s-1", spec("gemini-test", Optional.empty(), Optional.empty(), Optional.empty()),
            "", List.of(new Message.User("hello")), List.of(), 0);
    ModelFailure f = failure(() -> keyless.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("GEMINI_API_KEY is not set").contains(GeminiModelProvider.DEFAULT_BASE_URL);
  }

  @Test
  void missingKey_forALocalServer_sendsAPlaceholder_fromGeminiBaseUrl() {
    GeminiModelProvider keyless = new GeminiModelProvider(Map.of("GEMINI_BASE_URL", fake.baseUrl()));
    ModelRequest request =
        new ModelRequest(
            "helper", "s-1", spec("gemini-test", Optional.empty(), Optional.empty(), Optional.empty()),
            "", List.of(new Message.User("hello")), List.of(), 0);
    assertThat(keyless.complete(request, ModelStream.NONE).text()).isEqualTo("done after 0 steps");
    assertThat(keyless.name()).isEqualTo("gemini").isEqualTo(GeminiModelProvider.NAME);
  }
}
