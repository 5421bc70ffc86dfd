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
    System.out.println(last.json());
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
}
