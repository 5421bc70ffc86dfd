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
import keel.testkit.FakeModelServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The behaviours every {@link ModelProvider} that talks to a real API shares, run against each
 * provider and its fake from {@code keel.testkit}. A subclass starts its fake, builds its provider,
 * and checks the wire shapes that only it has; everything here holds for all of them.
 */
abstract class ModelProviderContract {



  /** A pinned version, the model it requests, and a later version the server reports instead. */
  record Drift(String pin, String requestedModel, String reportedModel) {}

  protected ModelProvider provider;

  // ---------------------------------------------------------------- what a subclass supplies

  private FakeModelServer fake;

  /** Starts a fresh fake, which the subclass may also keep for its wire-specific tests. */
  protected abstract FakeModelServer startFake();

  /** The fake started for this test. */
  protected final FakeModelServer fake() {
    return fake;
  }

  /** What the fake's last request said. */
  protected final FakeModelServer.Request lastRequest() {
    return fake.lastRecorded().orElseThrow();
  }

  /** The provider under test, built from this environment. */
  protected abstract ModelProvider newProvider(Map<String, String> env, Duration timeout);

  /** The provider built with its defaults, as the registry builds it. */
  protected abstract ModelProvider newProvider(Map<String, String> env);

  /** The secret key; never to be seen in a failure. */
  protected abstract String key();

  /** The environment variable holding the key, e.g. {@code OPENAI_API_KEY}. */
  protected abstract String keyVariable();

  /** The environment variable naming another server, e.g. {@code OPENAI_BASE_URL}. */
  protected abstract String baseUrlVariable();

  /** The provider's constant NAME. */
  protected abstract String providerName();

  /** The default base URL, named when the key is missing. */
  protected abstract String defaultBaseUrl();

  /** The spec of an agent on this provider, with its provider name and model written out. */
  protected abstract AgentDescriptor.ModelSpec spec(
      Optional<String> pinned, Optional<Double> temperature, Optional<String> baseUrl);

  /** The model named in {@link #spec}. */
  protected abstract String modelName();

  /** The path of the endpoint called, after the base URL, as named in failures. */
  protected abstract String endpointPath();

  /** How the fake's tool call ids begin. */
  protected abstract String toolCallIdPrefix();

  protected abstract Drift drift();

  protected String instructions() {
    return "You help.";
  }

  /** The usage and the wire shape of the request behind {@link #textAnswer_isReturnedWithVersionAndUsage}. */
  protected abstract void assertTextAnswerUsageAndWire(ModelResponse response);

  /** What a provider adds to a rate limit's message, e.g. the API's error type. */
  protected void assertRateLimitedDetail(ModelFailure failure) {}

  /** What a provider adds to a bad request's message. */
  protected void assertBadRequestDetail(ModelFailure failure) {}

  /** Schedules the provider's own faults for {@link #failuresOfEveryKind_neverContainTheKey}; answers how many. */
  protected int scheduleOwnFaults() {
    return 0;
  }

  /** What a keyless call to another server sent instead of a key. */
  protected void assertPlaceholderKeySent() {}

  // ---------------------------------------------------------------- helpers

  @BeforeEach
  void startFakeAndProvider() {
    fake = startFake();
    provider = newProvider(Map.of(keyVariable(), key()), Duration.ofSeconds(5));
  }

  @AfterEach
  void stopFake() {
    fake().close();
  }

  protected ModelRequest request(List<Message> conversation, List<ToolSpec> tools) {
    return new ModelRequest(
        "helper",
        "s-1",
        spec(Optional.empty(), Optional.empty(), Optional.of(fake().baseUrl())),
        instructions(),
        conversation,
        tools,
        0);
  }

  protected ModelRequest hello() {
    return request(List.of(new Message.User("hello")), List.of());
  }

  private static ModelRequest helloTo(AgentDescriptor.ModelSpec spec) {
    return new ModelRequest("helper", "s-1", spec, "", List.of(new Message.User("hello")), List.of(), 0);
  }

  protected static ModelFailure failure(Runnable call) {
    try {
      call.run();
    } catch (ModelFailure f) {
      return f;
    }
    throw new AssertionError("expected a ModelFailure");
  }

  protected void assertKeyAbsent(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      assertThat(String.valueOf(t.getMessage())).doesNotContain(key());
      assertThat(String.valueOf(t)).doesNotContain(key());
    }
  }

  // ---------------------------------------------------------------- the contract

  @Test
  void name_isTheProviderNameWrittenInTheSpec() {
    assertThat(provider.name())
        .isEqualTo(providerName())
        .isEqualTo(spec(Optional.empty(), Optional.empty(), Optional.empty()).provider());
  }

  @Test
  void textAnswer_isReturnedWithVersionAndUsage() {
    fake().answerText("Hi there, friend.");
    ModelResponse response = provider.complete(hello(), ModelStream.NONE);
    assertThat(response.text()).isEqualTo("Hi there, friend.");
    assertThat(response.toolCalls()).isEmpty();
    assertThat(response.modelVersion()).isEqualTo(modelName());
    assertThat(response.usage().outputTokens()).isPositive();
    assertThat(lastRequest().model()).isEqualTo(modelName());
    assertThat(lastRequest().stream()).isTrue();
    assertTextAnswerUsageAndWire(response);
  }

  @Test
  void requests_areSentCompact_notPrettyPrinted() {
    fake().answerText("ok");
    provider.complete(hello(), ModelStream.NONE);
    assertThat(lastRequest().json()).doesNotContain("\n  ").doesNotContain(": ");
  }

  @Test
  void toolCall_roundTrip_endsInTheFinalAnswer() {
    ToolSpec weather =
        new ToolSpec(
            "weather",
            "Forecast for a city.",
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}");
    fake().answerToolLoop("weather");
    List<Message> conversation = new ArrayList<>(List.of(new Message.User("forecast steps=1")));

    ModelResponse first = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls()).hasSize(1);
    ToolCall call = first.toolCalls().getFirst();
    assertThat(call.name()).isEqualTo("weather");
    assertThat(call.arguments()).isEqualTo("{}");
    assertThat(call.id()).startsWith(toolCallIdPrefix());

    conversation.add(new Message.Assistant("", first.toolCalls()));
    conversation.add(new Message.ToolResult(call.id(), "weather", Content.inline("sunny"), false));
    ModelResponse second = provider.complete(request(conversation, List.of(weather)), ModelStream.NONE);
    assertThat(second.text()).isEqualTo("done after 1 steps");
    assertThat(second.toolCalls()).isEmpty();
  }

  @Test
  void streaming_deliversPiecesInOrder_andTheResponseIsTheirConcatenation() {
    fake().answerText("one two three four five six");
    List<String> pieces = new ArrayList<>();
    ModelResponse response = provider.complete(hello(), pieces::add);
    assertThat(pieces).hasSizeGreaterThan(1);
    assertThat(pieces.getFirst()).isEqualTo("one ");
    assertThat(String.join("", pieces)).isEqualTo(response.text()).isEqualTo("one two three four five six");
  }

  @Test
  void aSubscriberThatThrows_doesNotFailTheCall() {
    fake().answerText("one two three");
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
    Drift drift = drift();
    fake().reportModel(drift.reportedModel());
    ModelRequest pinned =
        new ModelRequest(
            "helper",
            "s-1",
            spec(Optional.of(drift.pin()), Optional.of(0.25), Optional.of(fake().baseUrl())),
            "You help.",
            List.of(new Message.User("hello")),
            List.of(),
            0);
    ModelResponse response = provider.complete(pinned, ModelStream.NONE);
    assertThat(response.modelVersion()).isEqualTo(drift.reportedModel());
    assertThat(lastRequest().model()).isEqualTo(drift.requestedModel());
    assertThat(lastRequest().temperature()).contains(0.25);
  }

  @Test
  void rateLimited_isRateLimitedWithRetryAfter() {
    fake().rateLimitNext(1, 17);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.RATE_LIMITED);
    assertThat(f.retryAfter()).contains(Duration.ofSeconds(17));
    assertThat(f.retryable()).isTrue();
    assertThat(f.getMessage())
        .contains(providerName() + " provider")
        .contains(fake().baseUrl() + endpointPath());
    assertRateLimitedDetail(f);
    assertThat(fake().requestCount()).as("LangChain4j must not retry by itself").isEqualTo(1);
  }

  @Test
  void serverError_isTransient_andNotRetriedByLangChain4j() {
    fake().failNext(1, 500);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("HTTP 500").contains(fake().baseUrl());
    assertThat(fake().requestCount()).isEqualTo(1);
    // the next call succeeds
    assertThat(provider.complete(hello(), ModelStream.NONE).text()).isEqualTo("done after 0 steps");
  }

  @Test
  void badRequest_isPermanent() {
    fake().failNext(1, 400);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.retryable()).isFalse();
    assertBadRequestDetail(f);
  }

  @Test
  void malformedJson_isInvalidResponse() {
    fake().malformedNext(1);
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.INVALID_RESPONSE);
    assertThat(f.getMessage()).contains(providerName() + " provider");
  }

  @Test
  void hang_isTransientAfterTheTimeout() {
    ModelProvider impatient = newProvider(Map.of(keyVariable(), key()), Duration.ofMillis(500));
    fake().hangNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void streamStalledAfterItBegan_isTransientAfterTheTimeout() {
    ModelProvider impatient = newProvider(Map.of(keyVariable(), key()), Duration.ofMillis(500));
    fake().answerText("one two three");
    fake().stallStreamNext(1, Duration.ofSeconds(30));
    long start = System.nanoTime();
    ModelFailure f = failure(() -> impatient.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertThat(f.getMessage()).contains("no complete answer within");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void connectionRefused_isTransient_withoutTheKey() {
    String deadUrl = fake().baseUrl();
    fake().close();
    ModelRequest request = helloTo(spec(Optional.empty(), Optional.empty(), Optional.of(deadUrl)));
    ModelFailure f = failure(() -> provider.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.TRANSIENT);
    assertKeyAbsent(f);
    startFake(); // for @AfterEach
  }

  @Test
  void refusedKey_isPermanent_andTheKeyNeverAppears() {
    fake().requireApiKey("another-key");
    ModelFailure f = failure(() -> provider.complete(hello(), ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains(keyVariable());
    assertKeyAbsent(f);
  }

  @Test
  void failuresOfEveryKind_neverContainTheKey() {
    fake().rateLimitNext(1, 1);
    fake().failNext(1, 503);
    fake().malformedNext(1);
    fake().failNext(1, 400);
    int faults = 4 + scheduleOwnFaults();
    for (int i = 0; i < faults; i++) {
      assertKeyAbsent(failure(() -> provider.complete(hello(), ModelStream.NONE)));
    }
  }

  @Test
  void missingKey_forTheProvidersOwnServer_isPermanentWithoutSendingAnything() {
    ModelProvider keyless = newProvider(Map.of());
    ModelRequest request = helloTo(spec(Optional.empty(), Optional.empty(), Optional.empty()));
    ModelFailure f = failure(() -> keyless.complete(request, ModelStream.NONE));
    assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT);
    assertThat(f.getMessage()).contains(keyVariable() + " is not set").contains(defaultBaseUrl());
    assertThat(fake().requestCount()).isZero();
  }

  @Test
  void missingKey_forAnotherServer_sendsAPlaceholder_andTheBaseUrlComesFromTheEnvironment() {
    ModelProvider keyless = newProvider(Map.of(baseUrlVariable(), fake().baseUrl()));
    ModelRequest request = helloTo(spec(Optional.empty(), Optional.empty(), Optional.empty()));
    assertThat(keyless.complete(request, ModelStream.NONE).text()).isEqualTo("done after 0 steps");
    assertPlaceholderKeySent();
  }
}
