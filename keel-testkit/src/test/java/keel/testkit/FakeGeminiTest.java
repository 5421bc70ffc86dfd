package keel.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

class FakeGeminiTest {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private final HttpClient http = HttpClient.newHttpClient();
  private FakeGemini fake;

  @BeforeEach
  void start() {
    fake = FakeGemini.start();
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private HttpResponse<String> post(String method, String body) throws IOException, InterruptedException {
    return post(method, body, Duration.ofSeconds(10));
  }

  private HttpResponse<String> post(String method, String body, Duration timeout)
      throws IOException, InterruptedException {
    String query = method.equals("streamGenerateContent") ? "?alt=sse" : "";
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/models/gemini-test:" + method + query))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("x-goog-api-key", "test-key")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> generate(List<ObjectNode> contents) throws IOException, InterruptedException {
    return post("generateContent", request(contents));
  }

  private static String request(List<ObjectNode> contents) {
    ObjectNode root = JSON.createObjectNode();
    root.putObject("systemInstruction").putArray("parts").addObject().put("text", "Be brief.");
    ArrayNode array = root.putArray("contents");
    contents.forEach(array::add);
    root.putArray("tools").addObject().putArray("functionDeclarations").addObject().put("name", "time_now");
    root.putObject("generationConfig").put("temperature", 0.5);
    return JSON.writeValueAsString(root);
  }

  private static ObjectNode user(String text) {
    ObjectNode c = JSON.createObjectNode().put("role", "user");
    c.putArray("parts").addObject().put("text", text);
    return c;
  }

  private static ObjectNode modelCall() {
    ObjectNode c = JSON.createObjectNode().put("role", "model");
    ObjectNode call = c.putArray("parts").addObject().putObject("functionCall");
    call.put("name", "time_now");
    call.putObject("args");
    return c;
  }

  private static ObjectNode functionResponse() {
    ObjectNode c = JSON.createObjectNode().put("role", "user");
    ObjectNode response = c.putArray("parts").addObject().putObject("functionResponse");
    response.put("name", "time_now");
    response.putObject("response").put("response", "12:00");
    return c;
  }

  @Test
  void toolLoop_callsTheFunctionUntilStepsAreDone_thenAnswersText() throws Exception {
    List<ObjectNode> conversation = new ArrayList<>(List.of(user("go steps=2")));
    for (int step = 0; step < 2; step++) {
      JsonNode body = JSON.readTree(generate(conversation).body());
      assertThat(body.at("/candidates/0/content/role").asString()).isEqualTo("model");
      assertThat(body.at("/candidates/0/content/parts/0/functionCall/name").asString()).isEqualTo("time_now");
      assertThat(body.at("/candidates/0/content/parts/0/functionCall/args").isObject()).isTrue();
      assertThat(body.at("/candidates/0/finishReason").asString()).isEqualTo("STOP");
      conversation.add(modelCall());
      conversation.add(functionResponse());
    }
    JsonNode done = JSON.readTree(generate(conversation).body());
    assertThat(done.at("/candidates/0/content/parts/0/text").asString()).isEqualTo("done after 2 steps");
    assertThat(done.at("/modelVersion").asString()).isEqualTo("gemini-test");
    assertThat(done.at("/responseId").asString()).isNotEmpty();
    JsonNode usage = done.at("/usageMetadata");
    assertThat(usage.at("/totalTokenCount").asLong())
        .isEqualTo(usage.at("/promptTokenCount").asLong() + usage.at("/candidatesTokenCount").asLong());
    assertThat(usage.at("/candidatesTokenCount").asLong()).isEqualTo(("done after 2 steps".length() + 3) / 4);
    assertThat(fake.requestCount()).isEqualTo(3);
    assertThat(fake.lastRequest().orElseThrow().functionResponsesSinceLastUserText()).isEqualTo(2);
  }

  @Test
  void toolLoop_withoutSteps_answersTextAtOnce() throws Exception {
    JsonNode body = JSON.readTree(generate(List.of(user("hello"))).body());
    assertThat(body.at("/candidates/0/content/parts/0/text").asString()).isEqualTo("done after 0 steps");
  }

  @Test
  void streaming_sendsPartialResponsesAsSse_withUsageAndFinishReasonLast() throws Exception {
    fake.script(FakeGemini.Script.text("one two three"));
    HttpResponse<String> response = post("streamGenerateContent", request(List.of(user("hi"))));
    assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
    List<String> data =
        response.body().lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
    assertThat(data).hasSize(3);
    StringBuilder text = new StringBuilder();
    for (String d : data) {
      JsonNode event = JSON.readTree(d);
      assertThat(event.at("/modelVersion").asString()).isEqualTo("gemini-test");
      text.append(event.at("/candidates/0/content/parts/0/text").asString(""));
    }
    assertThat(text.toString()).isEqualTo("one two three");
    JsonNode last = JSON.readTree(data.getLast());
    assertThat(last.at("/candidates/0/finishReason").asString()).isEqualTo("STOP");
    assertThat(last.at("/usageMetadata/candidatesTokenCount").asLong()).isPositive();
    assertThat(JSON.readTree(data.getFirst()).at("/candidates/0/finishReason").isMissingNode()).isTrue();
  }

  @Test
  void rateLimitNext_answers429ResourceExhausted_withRetryAfterAndRetryInfo_thenRecovers() throws Exception {
    fake.rateLimitNext(2, 7);
    for (int i = 0; i < 2; i++) {
      HttpResponse<String> limited = generate(List.of(user("hi")));
      assertThat(limited.statusCode()).isEqualTo(429);
      assertThat(limited.headers().firstValue("Retry-After")).contains("7");
      JsonNode error = JSON.readTree(limited.body()).get("error");
      assertThat(error.at("/code").asInt()).isEqualTo(429);
      assertThat(error.at("/status").asString()).isEqualTo("RESOURCE_EXHAUSTED");
      assertThat(error.at("/details/0/retryDelay").asString()).isEqualTo("7s");
    }
    assertThat(generate(List.of(user("hi"))).statusCode()).isEqualTo(200);
  }

  @Test
  void failNext_answersGoogleErrors() throws Exception {
    fake.failNext(1, 500).failNext(1, 503).failNext(1, 400).failNext(1, 403);
    List<String> statuses = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      HttpResponse<String> response = generate(List.of(user("hi")));
      JsonNode error = JSON.readTree(response.body()).get("error");
      assertThat(error.at("/code").asInt()).isEqualTo(response.statusCode());
      assertThat(error.at("/message").asString()).isNotEmpty();
      statuses.add(response.statusCode() + " " + error.at("/status").asString());
    }
    assertThat(statuses)
        .containsExactly("500 INTERNAL", "503 UNAVAILABLE", "400 INVALID_ARGUMENT", "403 PERMISSION_DENIED");
  }

  @Test
  void malformedNext_answersInvalidJson() throws Exception {
    fake.malformedNext(1);
    HttpResponse<String> response = generate(List.of(user("hi")));
    assertThat(response.statusCode()).isEqualTo(200);
    assertThatThrownBy(() -> JSON.readTree(response.body())).isInstanceOf(RuntimeException.class);
  }

  @Test
  void hangNext_outlastsTheClientTimeout() {
    fake.hangNext(1, Duration.ofSeconds(30));
    assertThatThrownBy(() -> post("generateContent", request(List.of(user("hi"))), Duration.ofMillis(300)))
        .isInstanceOf(HttpTimeoutException.class);
  }

  @Test
  void reportModel_reportsAnotherModelVersion() throws Exception {
    fake.reportModel("gemini-test-099");
    JsonNode body = JSON.readTree(generate(List.of(user("hi"))).body());
    assertThat(body.at("/modelVersion").asString()).isEqualTo("gemini-test-099");
  }

  @Test
  void latency_delaysTheAnswer() throws Exception {
    fake.latency(Duration.ofMillis(200));
    long start = System.nanoTime();
    generate(List.of(user("hi")));
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(200));
  }

  @Test
  void badRequest_answers400InvalidArgument() throws Exception {
    HttpResponse<String> response = post("generateContent", "{\"contents\": []}");
    assertThat(response.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(response.body()).at("/error/status").asString()).isEqualTo("INVALID_ARGUMENT");
  }

  @Test
  void requireApiKey_refusesAWrongKeyAs400_andAcceptsTheKeyQueryParameter() throws Exception {
    fake.requireApiKey("other");
    HttpResponse<String> refused = generate(List.of(user("hi")));
    assertThat(refused.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(refused.body()).at("/error/message").asString()).contains("API key not valid");
    HttpResponse<String> byQuery =
        http.send(
            HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/models/gemini-test:generateContent?key=other"))
                .POST(HttpRequest.BodyPublishers.ofString(request(List.of(user("hi")))))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(byQuery.statusCode()).isEqualTo(200);
  }

  @Test
  void requests_areRecordedWithTheirWireShape() throws Exception {
    post("streamGenerateContent", request(List.of(user("hi"), modelCall(), functionResponse())));
    FakeGemini.GenerateRequest recorded = fake.lastRequest().orElseThrow();
    assertThat(recorded.model()).isEqualTo("gemini-test");
    assertThat(recorded.stream()).isTrue();
    assertThat(recorded.systemInstruction()).contains("Be brief.");
    assertThat(recorded.tools()).containsExactly("time_now");
    assertThat(recorded.temperature()).contains(0.5);
    assertThat(recorded.contents()).extracting(FakeGemini.WireContent::role).containsExactly("user", "model", "user");
    assertThat(recorded.contents().get(1).parts().getFirst())
        .isEqualTo(new FakeGemini.WirePart.FunctionCall(java.util.Optional.empty(), "time_now", "{}"));
    assertThat(recorded.contents().get(2).parts().getFirst())
        .isEqualTo(
            new FakeGemini.WirePart.FunctionResponse(java.util.Optional.empty(), "time_now", "{\"response\":\"12:00\"}"));
  }

  @Test
  void models_listsTheDefaultModel() throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/models")).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(JSON.readTree(response.body()).at("/models/0/name").asString())
        .isEqualTo("models/" + FakeGemini.DEFAULT_MODEL);
  }
}
