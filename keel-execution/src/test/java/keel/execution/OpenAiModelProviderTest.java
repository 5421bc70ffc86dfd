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
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class OpenAiModelProviderTest extends ModelProviderContract {

  private static final String KEY = "sk-test-secret-0123456789";

  private FakeOpenAi fake;

  @Override
  protected FakeOpenAi startFake() {
    fake = FakeOpenAi.start();
    return fake;
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env, Duration timeout) {
    return new OpenAiModelProvider(env, timeout);
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env) {
    return new OpenAiModelProvider(env);
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
    return OpenAiModelProvider.NAME;
  }

  @Override
  protected String defaultBaseUrl() {
    return OpenAiModelProvider.DEFAULT_BASE_URL;
  }

  @Override
  protected AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl) {
    return new AgentDescriptor.ModelSpec(
        "openai", "gpt-test", pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature) {
    return spec(pinned, temperature, Optional.of(fake.baseUrl()));
  }

  @Override
  protected String modelName() {
    return "gpt-test";
  }

  @Override
  protected String endpointPath() {
    return "/chat/completions";
  }

  @Override
  protected String toolCallIdPrefix() {
    return "call_";
  }

  @Override
  protected Drift drift() {
    return new Drift("2025-05-05", "gpt-test-2025-05-05", "gpt-test-2099-01-01");
  }

  @Override
  protected void assertTextAnswerUsageAndWire(ModelResponse response) {
    assertThat(response.usage().inputTokens()).isPositive();
    FakeOpenAi.ChatRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.messages()).extracting(FakeOpenAi.WireMessage::role).containsExactly("system", "user");
    assertThat(sent.messages().getFirst().content()).isEqualTo("You help.");
  }

  @Test
  void requests_carryAPromptCacheKeyPerAgent() {
    fake.script(FakeOpenAi.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    assertThat(fake.lastRequest().orElseThrow().json()).contains("\"prompt_cache_key\":\"keel:" );
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
  void requestedModel_followsThePinRule() {
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.empty(), Optional.empty()))).isEqualTo("gpt-test");
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.of("2025-05-05"), Optional.empty())))
        .isEqualTo("gpt-test-2025-05-05");
    assertThat(OpenAiModelProvider.requestedModel(spec(Optional.of("gpt-test-0613"), Optional.empty())))
        .isEqualTo("gpt-test-0613");
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
