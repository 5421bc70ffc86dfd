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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class AnthropicModelProviderTest {

  private static final String KEY = "sk-ant-test-secret-0123456789";
  private static final String INSTRUCTIONS = "You help. " + "Be precise and brief. ".repeat(20);

  private FakeAnthropic fake;
  private AnthropicModelProvider provider;

  @BeforeEach
  void start() {
    fake = FakeAnthropic.start();
    provider = new AnthropicModelProvider(Map.of("ANTHROPIC_API_KEY", KEY), Duration.ofSeconds(5));
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private AgentDescriptor.ModelSpec spec(Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl) {
    return new AgentDescriptor.ModelSpec(
        "anthropic",
        "claude-test",
        pinned,
        baseUrl,
        temperature,
        AgentDescriptor.OnDrift.WARN,
        Optional.empty(),
        List.of());
  }

  private ModelRequest request(List<Message> conversation, List<ToolSpec> tools) {
    return new ModelRequest(
        "helper",
        "s-1",
        spec(Optional.empty(), Optional.empty(), Optional.of(fake.baseUrl())),
        INSTRUCTIONS,
        conversation,
        tools,
        0);
  }

  private ModelRequest hello() {
    return request(List.of(new Message.User("hello")), List.of());
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

  private static ModelFailure failure(Runnable call) {
    try {
      call.run();
    } catch (ModelFailure f) {
      return f;
    }
    throw new AssertionError("expected a ModelFailure");
  }

  private static void assertNoKey(ModelFailure f) {
    for (Throwable t = f; t != null; t = t.getCause()) {
      assertThat(String.valueOf(t.getMessage())).doesNotContain(KEY);
    }
  }

  @Test
  void textAnswer_isReturnedWithVersionAndUsage() {
    fake.script(FakeAnthropic.Script.text("Hi there, friend."));
    ModelResponse response = provider.complete(hello(), ModelStream.NONE);
    assertThat(response.text()).isEqualTo("Hi there, friend.");
    assertThat(response.toolCalls()).isEmpty();
    assertThat(response.modelVersion()).isEqualTo("claude-test");
    assertThat(response.usage().outputTokens()).isEqualTo(("Hi there, friend.".length() + 3) / 4);
    assertThat(response.usage().inputTokens() + response.usage().cacheWriteTokens()).isPositive();

    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("claude-test");
    assertThat(sent.apiKey()).contains(KEY);
    assertThat(sent.anthropicVersion()).isNotEmpty();
    assertThat(sent.stream()).isTrue();
    assertThat(sent.maxTokens()).isEqualTo(AnthropicModelProvider.DEFAULT_MAX_TOKENS);
    assertThat(sent.system()).containsExactly(new Block.Text(INSTRUCTIONS, true));
    assertThat(sent.messages()).extracting(FakeAnthropic.WireMessage::role).containsExactly("user");
    assertThat(sent.messages().getFirst().text()).isEqualTo("hello");
  }

  @Test
  void requests_areSentCompact_notPrettyPrinted() {
    fake.script(FakeAnthropic.Script.text("ok"));
    provider.complete(hello(), ModelStream.NONE);
    String body = fake.lastRequest().orElseThrow().json();
    assertThat(body).doesNotContain("\n  ").doesNotContain("\" : ");
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
  void streaming_deliversPiecesInOrder_andTheResponseIsTheirConcatenation() {
    fake.script(FakeAnthropic.Script.text("one two three four five six"));
    List<String> pieces = new ArrayList<>();
    ModelResponse response = provider.complete(hello(), pieces::add);
    assertThat(pieces).hasSizeGreaterThan(1);
    assertThat(pieces.getFirst()).isEqualTo("one ");
    assertThat(String.join("", pieces)).isEqualTo(response.text()).isEqualTo("one two three four five six");
  }

  @Test
  void aSubscriberThatThrows_doesNotFailTheCall() {
    fake.script(FakeAnthropic.Script.text("one two three"));
    ModelResponse response =
        provider.complete(
            hello(),
            text -> {
              throw new IllegalStateException("subscriber bug");
            });
    assertThat(response.text()).isEqualTo("one two three");
  }

  @Test
  void reportedVersion_isTheServersEvenWhenItDrifted_andThePinIsRequested() {
    fake.reportModel("claude-test-20990101");
    ModelRequest pinned =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.of("20250505"), Optional.of(0.25), Optional.of(fake.baseUrl())),
            "You help.",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelResponse response = provider.complete(pinned, ModelStream.NONE);
    assertThat(response.modelVersion()).isEqualTo("claude-test-20990101");
    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.model()).isEqualTo("claude-test-20250505");
    assertThat(sent.temperature()).contains(0.25);
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

  @Test
  void rateLimited_isRateLimitedWithRetryAfter() {
    fake.rateLimitNext(1, 17);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.RATE_LIMITED);
    assertThat(f.retryAfter()).contains(Duration.ofSeconds(17));
    assertThat(f.retryable()).isTrue();
    assertThat(f.getMessage())
        .contains("anthropic provider")
        .contains(fake.baseUrl() + "/messages")
        .contains("rate_limit_error");
    assertThat(fake.requestCount()).as("LangChain4j must not retry by itself").isEqualTo(1);
  }

  @ParameterizedTest(name = "HTTP {0} is transient")
  @ValueSource(ints = {500, 503, 529})
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
  void badRequest_isPermanent_withAnthropicsMessage() {
    fake.failNext(1, 400);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.retryable()).isFalse();
    assertThat(f.getMessage()).contains("HTTP 400").contains("invalid_request_error");
  }

  @Test
  void malformedJson_isInvalidResponse() {
    fake.malformedNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains("anthropic provider");
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
  void hang_isTransientAfterTheTimeout() {
    AnthropicModelProvider impatient =
        new AnthropicModelProvider(Map.of("ANTHROPIC_API_KEY", KEY), Duration.ofMillis(500));
    fake.hangNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void streamStalledAfterItsHeaders_isTransientAfterTheTimeout() {
    AnthropicModelProvider impatient =
        new AnthropicModelProvider(Map.of("ANTHROPIC_API_KEY", KEY), Duration.ofMillis(500));
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
            spec(Optional.empty(), Optional.empty(), Optional.of(deadUrl)),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelFailure f = failure(() -> provider.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertNoKey(f);
    fake = FakeAnthropic.start(); // for @AfterEach
  }

  @Test
  void refusedKey_isPermanent_andTheKeyNeverAppears() {
    fake.requireApiKey("another-key");
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("ANTHROPIC_API_KEY").doesNotContain(KEY);
    assertNoKey(f);
  }

  @Test
  void failuresOfEveryKind_neverContainTheKey() {
    fake.rateLimitNext(1, 1).overloadNext(1).failNext(1, 500).malformedNext(1).failNext(1, 400).overloadMidStreamNext(1)
        .cutStreamNext(1).failNext(1, 401);
    for (int i = 0; i < 8; i++) {
      assertNoKey(failure(() -> provider.complete(hello(), ModelStream.NONE)));
    }
  }

  @Test
  void missingKey_forAnthropicItself_isPermanentWithoutSendingAnything() {
    AnthropicModelProvider keyless = new AnthropicModelProvider(Map.of());
    ModelRequest request =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.empty(), Optional.empty(), Optional.empty()),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelFailure f = failure(() -> keyless.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage())
        .contains("ANTHROPIC_API_KEY is not set")
        .contains(AnthropicModelProvider.DEFAULT_BASE_URL);
  }

  @Test
  void missingKey_forAnotherServer_sendsAPlaceholder_andTheBaseUrlComesFromTheEnvironment() {
    AnthropicModelProvider keyless = new AnthropicModelProvider(Map.of("ANTHROPIC_BASE_URL", fake.baseUrl()));
    ModelRequest request =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.empty(), Optional.empty(), Optional.empty()),
            "",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    assertThat(keyless.complete(request, ModelStream.NONE).text()).isEqualTo("done after 0 steps");
    assertThat(fake.lastRequest().orElseThrow().apiKey()).contains(AnthropicModelProvider.PLACEHOLDER_KEY);
  }

  @Test
  void badToolSchema_isPermanent_andNamesTheTool() {
    ToolSpec broken = new ToolSpec("broken", "Broken.", "{not json");
    ModelFailure f = failure(() -> provider.complete(request(List.of(new Message.User("hi")), List.of(broken)), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains("tool broken");
    assertThat(fake.requestCount()).isZero();
  }

  @Test
  void name_isAnthropic() {
    assertThat(provider.name()).isEqualTo("anthropic").isEqualTo(AnthropicModelProvider.NAME);
  }
}
