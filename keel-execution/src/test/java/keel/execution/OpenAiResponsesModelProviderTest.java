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
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class OpenAiResponsesModelProviderTest extends ModelProviderContract {

  private static final String KEY = "sk-test-secret-0123456789";

  private FakeOpenAiResponses fake;

  @Override
  protected FakeOpenAiResponses startFake() {
    fake = FakeOpenAiResponses.start();
    return fake;
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env, Duration timeout) {
    return new OpenAiResponsesModelProvider(env, timeout);
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env) {
    return new OpenAiResponsesModelProvider(env);
  }

  @Override
  protected String key() {
    return KEY;
  }

  @Override
  protected String keyVariable() {
    return "OPENAI_API_KEY";
  }

  @Override
  protected String baseUrlVariable() {
    return "OPENAI_BASE_URL";
  }

  @Override
  protected String providerName() {
    return OpenAiResponsesModelProvider.NAME;
  }

  @Override
  protected String defaultBaseUrl() {
    return OpenAiResponsesModelProvider.DEFAULT_BASE_URL;
  }

  @Override
  protected AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl) {
    return new AgentDescriptor.ModelSpec(
        "openai-responses", "gpt-test", pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
  }

  @Override
  protected String modelName() {
    return "gpt-test";
  }

  @Override
  protected String endpointPath() {
    return "/responses";
  }

  @Override
  protected String toolCallIdPrefix() {
    return "call_fake";
  }

  @Override
  protected Drift drift() {
    return new Drift("2025-05-05", "gpt-test-2025-05-05", "gpt-test-2099-01-01");
  }

  @Override
  protected void assertTextAnswerUsageAndWire(ModelResponse response) {
    assertThat(response.usage().inputTokens()).isEqualTo(("You help.".length() + "hello".length() + 3) / 4);
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);
    assertThat(fake.lastRequest().orElseThrow().input())
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
}
