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
import keel.testkit.FakeAnthropic;
import keel.testkit.FakeAnthropic.Block;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class AnthropicModelProviderTest extends ModelProviderContract {

  private static final String KEY = "sk-ant-test-secret-0123456789";
  private static final String INSTRUCTIONS = "You help. " + "Be precise and brief. ".repeat(20);

  private FakeAnthropic fake;

  @Override
  protected FakeAnthropic startFake() {
    fake = FakeAnthropic.start();
    return fake;
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env, Duration timeout) {
    return new AnthropicModelProvider(env, timeout);
  }

  @Override
  protected ModelProvider newProvider(Map<String, String> env) {
    return new AnthropicModelProvider(env);
  }

  @Override
  protected String key() {
    return KEY;
  }

  @Override
  protected String keyVariable() {
    return "ANTHROPIC_API_KEY";
  }

  @Override
  protected String baseUrlVariable() {
    return "ANTHROPIC_BASE_URL";
  }

  @Override
  protected String providerName() {
    return AnthropicModelProvider.NAME;
  }

  @Override
  protected String defaultBaseUrl() {
    return AnthropicModelProvider.DEFAULT_BASE_URL;
  }

  @Override
  protected AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl) {
    return new AgentDescriptor.ModelSpec(
        "anthropic", "claude-test", pinned, baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
  }

  @Override
  protected String modelName() {
    return "claude-test";
  }

  @Override
  protected String endpointPath() {
    return "/messages";
  }

  @Override
  protected String toolCallIdPrefix() {
    return "toolu_";
  }

  @Override
  protected Drift drift() {
    return new Drift("20250505", "claude-test-20250505", "claude-test-20990101");
  }

  /** Long enough to be worth a cache marker. */
  @Override
  protected String instructions() {
    return INSTRUCTIONS;
  }

  @Override
  protected void assertTextAnswerUsageAndWire(ModelResponse response) {
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);
    assertThat(response.usage().inputTokens() + response.usage().cacheWriteTokens()).isPositive();
    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.apiKey()).contains(KEY);
    assertThat(sent.anthropicVersion()).isNotEmpty();
    assertThat(sent.maxTokens()).isEqualTo(AnthropicModelProvider.DEFAULT_MAX_TOKENS);
    assertThat(sent.system()).containsExactly(new Block.Text(INSTRUCTIONS, true));
    assertThat(sent.messages()).extracting(FakeAnthropic.WireMessage::role).containsExactly("user");
    assertThat(sent.messages().getFirst().text()).isEqualTo("hello");
  }

  @Override
  protected void assertRateLimitedDetail(ModelFailure failure) {
    assertThat(failure.getMessage()).contains("rate_limit_error");
  }

  @Override
  protected void assertBadRequestDetail(ModelFailure failure) {
    assertThat(failure.getMessage()).contains("HTTP 400").contains("invalid_request_error");
  }

  @Override
  protected int scheduleOwnFaults() {
    fake.overloadNext(1).failNext(1, 500).overloadMidStreamNext(1).cutStreamNext(1).failNext(1, 401);
    return 5;
  }

  @Override
  protected void assertPlaceholderKeySent() {
    assertThat(fake.lastRequest().orElseThrow().apiKey()).contains(AnthropicModelProvider.PLACEHOLDER_KEY);
  }

  private static ToolSpec weather() {
    String schema =
        """
        {"type":"object","properties":{
          "city":{"type":"string","description":"City name"},
          "days":{"type":"integer"},
          "units":{"type":"string","enum":["c","f"]},
          "tags":{"type":"array","items":{"type":"string"}}},
         "required":["city"]}
        """;
    return new ToolSpec("weather", "Forecast for a city.", schema);
  }

  private static ToolSpec clock() {
    return new ToolSpec("time_now", "The current time.", "{\"type\":\"object\",\"properties\":{}}");
  }

  @Test
  void toolCalls_roundTrip_inTheAnthropicWireShape() throws Exception {
    fake.script(FakeAnthropic.Script.toolLoop("weather"));
    List<Message> conversation = new ArrayList<>(List.of(new Message.User("forecast steps=2")));
    List<ToolSpec> tools = List.of(weather(), clock());

    ModelResponse first = provider.complete(request(conversation, tools), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls()).hasSize(1);
    ToolCall call = first.toolCalls().getFirst();
    assertThat(call.name()).isEqualTo("weather");
    assertThat(call.arguments()).isEqualTo("{}");
    assertThat(call.id()).startsWith("toolu_");

    FakeAnthropic.MessagesRequest sentFirst = fake.lastRequest().orElseThrow();
    assertThat(sentFirst.tools()).extracting(FakeAnthropic.WireTool::name).containsExactly("weather", "time_now");
    assertThat(sentFirst.tools().getFirst().description()).isEqualTo("Forecast for a city.");
    JsonNode schema = JsonMapper.builder().build().readTree(sentFirst.tools().getFirst().inputSchema());
    assertThat(schema.at("/type").asString()).isEqualTo("object");
    assertThat(schema.at("/properties/city/type").asString()).isEqualTo("string");
    assertThat(schema.at("/properties/city/description").asString()).isEqualTo("City name");
    assertThat(schema.at("/properties/days/type").asString()).isEqualTo("integer");
    assertThat(schema.at("/properties/units/enum/1").asString()).isEqualTo("f");
    assertThat(schema.at("/properties/tags/items/type").asString()).isEqualTo("string");
    assertThat(schema.at("/required/0").asString()).isEqualTo("city");

    // a successful result, then a failed one
    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(new Message.ToolResult(call.id(), "weather", Content.inline("sunny"), false));
    ModelResponse second = provider.complete(request(conversation, tools), ModelStream.NONE);
    ToolCall secondCall = second.toolCalls().getFirst();
    conversation.add(new Message.Assistant("Checking again.", second.toolCalls()));
    conversation.add(new Message.ToolResult(secondCall.id(), "weather", Content.inline("no data"), true));
    ModelResponse third = provider.complete(request(conversation, tools), ModelStream.NONE);
    assertThat(third.text()).isEqualTo("done after 2 steps");
    assertThat(third.toolCalls()).isEmpty();

    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.messages()).extracting(FakeAnthropic.WireMessage::role)
        .containsExactly("user", "assistant", "user", "assistant", "user");
    assertThat(sent.messages().get(1).content())
        .containsExactly(new Block.ToolUse(call.id(), "weather", "{}", false));
    assertThat(sent.messages().get(2).content())
        .containsExactly(new Block.ToolResult(call.id(), "sunny", false, false));
    assertThat(sent.messages().get(3).content())
        .containsExactly(
            new Block.Text("Checking again.", false), new Block.ToolUse(secondCall.id(), "weather", "{}", false));
    assertThat(sent.messages().get(4).content())
        .containsExactly(new Block.ToolResult(secondCall.id(), "no data", true, true));
  }

  @Test
  void cacheMarkers_areOnTheSystemPrompt_theTools_andTheLastMessage() {
    fake.script(FakeAnthropic.Script.text("ok"));
    List<Message> conversation =
        List.of(new Message.User("first"), new Message.Assistant("answer", List.of()), new Message.User("second"));
    provider.complete(request(conversation, List.of(weather(), clock())), ModelStream.NONE);

    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.system()).allMatch(Block::cached);
    // The last tool definition carries the marker, which covers every tool before it.
    assertThat(sent.tools().getLast().cached()).isTrue();
    assertThat(sent.messages().getLast().content().getLast().cached()).as("rolling breakpoint").isTrue();
    assertThat(sent.messages().get(0).content()).noneMatch(Block::cached);
    assertThat(sent.messages().get(1).content()).noneMatch(Block::cached);
    assertThat(sent.cacheMarkers()).isLessThanOrEqualTo(FakeAnthropic.MAX_CACHE_MARKERS);
  }

  @Test
  void secondCallWithTheSamePrefix_readsItFromTheCache() {
    fake.script(FakeAnthropic.Script.text("ok"));
    List<ToolSpec> tools = List.of(weather());
    ModelResponse first = provider.complete(request(List.of(new Message.User("hello")), tools), ModelStream.NONE);
    assertThat(first.usage().cacheReadTokens()).isZero();
    assertThat(first.usage().cacheWriteTokens()).isPositive();

    ModelResponse second = provider.complete(request(List.of(new Message.User("hello")), tools), ModelStream.NONE);
    assertThat(second.usage().cacheReadTokens()).isEqualTo(first.usage().cacheWriteTokens());
    assertThat(second.usage().cacheWriteTokens()).isZero();
    assertThat(second.usage().totalTokens() - second.usage().outputTokens())
        .isEqualTo(first.usage().totalTokens() - first.usage().outputTokens());
  }

  @Test
  void nextStepOfAToolLoop_readsTheWholeConversationSoFarFromTheCache() {
    fake.script(FakeAnthropic.Script.toolLoop("time_now"));
    List<Message> conversation = new ArrayList<>(List.of(new Message.User("what time is it? steps=2")));
    List<ToolSpec> tools = List.of(clock());
    ModelResponse first = provider.complete(request(conversation, tools), ModelStream.NONE);
    long firstPrompt = first.usage().cacheWriteTokens() + first.usage().cacheReadTokens();
    // Anthropic's input_tokens exclude cached tokens; everything sits before the last marker.
    assertThat(first.usage().inputTokens()).isZero();

    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(
        new Message.ToolResult(first.toolCalls().getFirst().id(), "time_now", Content.inline("12:00"), false));
    ModelResponse second = provider.complete(request(conversation, tools), ModelStream.NONE);
    // The rolling breakpoint of the first call is found again by looking back from the new one.
    assertThat(second.usage().cacheReadTokens()).isEqualTo(firstPrompt);
    assertThat(second.usage().cacheWriteTokens()).isPositive();
  }

  @Test
  void aPinThatIsAFullModelId_isRequestedAsIs() {
    ModelRequest pinned =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.of("claude-test-20240229"), Optional.empty(), Optional.of(fake.baseUrl())),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    provider.complete(pinned, ModelStream.NONE);
    assertThat(fake.lastRequest().orElseThrow().model()).isEqualTo("claude-test-20240229");
  }

  // HTTP 500 is in the contract.
  @ParameterizedTest(name = "HTTP {0} is transient")
  @ValueSource(ints = {503, 529})
  void serverErrorsAndOverload_areTransient_andNotRetriedByLangChain4j(int status) {
    fake.failNext(1, status);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("HTTP " + status).contains(fake.baseUrl());
    assertThat(fake.requestCount()).isEqualTo(1);
    // the next call succeeds
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void overloadedInTheMiddleOfTheStream_isTransient() {
    fake.overloadMidStreamNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("overloaded_error");
  }

  @Test
  void aStreamCutBeforeMessageStop_isInvalidResponse_andDoesNotWaitForTheTimeout() {
    fake.script(FakeAnthropic.Script.text("one two three")).cutStreamNext(1);
    List<String> pieces = new ArrayList<>();
    long start = System.nanoTime();
    ModelFailure f = failure(() -> provider.complete(hello(), pieces::add));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains("ended before message_stop");
    assertThat(pieces).containsExactly("one ");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(4));
  }

  @Test
  void badToolSchema_isPermanent_andNamesTheTool() {
    ToolSpec broken = new ToolSpec("broken", "Broken.", "{not json");
    ModelFailure f = failure(() -> provider.complete(request(List.of(new Message.User("hi")), List.of(broken)), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("tool broken");
    assertThat(fake.requestCount()).isZero();
  }
}
