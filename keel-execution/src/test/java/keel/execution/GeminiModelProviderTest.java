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
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class GeminiModelProviderTest extends ModelProviderContract {

  private static final String KEY = "AIza-test-secret-0123456789";

  private FakeGemini fake;

  @Override
  protected FakeGemini startFake() {
    fake = FakeGemini.start();
    return fake;
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env, Duration timeout) {
    return new GeminiModelProvider(env, timeout);
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env) {
    return new GeminiModelProvider(env);
  }

  @Override
  protected String key() {
    return KEY;
  }

  @Override
  protected String keyVariable() {
    return "GEMINI_API_KEY";
  }

  @Override
  protected String baseUrlVariable() {
    return "GEMINI_BASE_URL";
  }

  @Override
  protected String providerName() {
    return GeminiModelProvider.NAME;
  }

  @Override
  protected String defaultBaseUrl() {
    return GeminiModelProvider.DEFAULT_BASE_URL;
  }

  @Override
  protected AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl) {
    return spec("gemini-test", pinned, baseUrl, temperature);
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature) {
    return spec("gemini-test", pinned, Optional.of(fake.baseUrl()), temperature);
  }

  private static AgentDescriptor.ModelSpec spec(
      String name, Optional<String> pinned, Optional<String> baseUrl, Optional<Double> temperature) {
    return new AgentDescriptor.ModelSpec(
        "gemini", name, pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
  }

  @Override
  protected String modelName() {
    return "gemini-test";
  }

  @Override
  protected String endpointPath() {
    return "/models/gemini-test:streamGenerateContent";
  }

  @Override
  protected String toolCallIdPrefix() {
    return "call_";
  }

  @Override
  protected Drift drift() {
    return new Drift("002", "gemini-test-002", "gemini-test-099");
  }

  @Override
  protected void assertTextAnswerUsageAndWire(ModelResponse response) {
    // deterministic: ceil(chars / 4) of instructions and input, and of the answer
    assertThat(response.usage().inputTokens()).isEqualTo(("You help.".length() + "hello".length() + 3) / 4);
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);
    FakeGemini.GenerateRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.systemInstruction()).contains("You help.");
    assertThat(sent.contents()).extracting(FakeGemini.WireContent::role).containsExactly("user");
    assertThat(sent.contents().getFirst().text()).isEqualTo("hello");
  }

  @Override
  protected void assertRateLimitedDetail(ModelFailure failure) {
    assertThat(failure.getMessage()).contains("RESOURCE_EXHAUSTED");
  }

  @Override
  protected void assertBadRequestDetail(ModelFailure failure) {
    assertThat(failure.getMessage()).contains("INVALID_ARGUMENT");
  }

  @Override
  protected int scheduleOwnFaults() {
    fake.failNext(1, 403);
    return 1;
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
  void serverErrors_areTransient_andNameGooglesStatus() {
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

  // HTTP 400 is in the contract.
  @Test
  void forbidden_isPermanent() {
    fake.failNext(1, 403);
    ModelFailure forbidden = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(forbidden.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(forbidden.retryable()).isFalse();
  }

  // A refused key is in the contract.
  @Test
  void theKey_isSentInTheGoogleHeader() {
    fake.requireApiKey(KEY);
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }
}
