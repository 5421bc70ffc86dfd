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

class FakeOpenAiTest {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private final HttpClient http = HttpClient.newHttpClient();
  private FakeOpenAi fake;

  @BeforeEach
  void start() {
    fake = FakeOpenAi.start();
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private HttpResponse<String> post(String body) throws IOException, InterruptedException {
    return post(body, Duration.ofSeconds(10));
  }

  private HttpResponse<String> post(String body, Duration timeout)
      throws IOException, InterruptedException {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/chat/completions"))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer test-key")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private static String request(List<ObjectNode> messages, boolean stream) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", "gpt-test");
    ArrayNode array = root.putArray("messages");
    messages.forEach(array::add);
    root.put("stream", stream);
    if (stream) {
      root.putObject("stream_options").put("include_usage", true);
    }
    return JSON.writeValueAsString(root);
  }

  private static ObjectNode user(String text) {
    return JSON.createObjectNode().put("role", "user").put("content", text);
  }

  private static ObjectNode assistantCall(String id) {
    ObjectNode m = JSON.createObjectNode().put("role", "assistant");
    m.putNull("content");
    ObjectNode call = m.putArray("tool_calls").addObject();
    call.put("id", id).put("type", "function");
    call.putObject("function").put("name", "time_now").put("arguments", "{}");
    return m;
  }

  private static ObjectNode toolResult(String id) {
    return JSON.createObjectNode()
        .put("role", "tool")
        .put("tool_call_id", id)
        .put("content", "12:00");
  }

  @Test
  void toolLoop_callsTheToolUntilStepsAreDone_thenAnswersText() throws Exception {
    List<ObjectNode> conversation = new ArrayList<>(List.of(user("go steps=2")));
    for (int step = 0; step < 2; step++) {
      JsonNode body = JSON.readTree(post(request(conversation, false)).body());
      JsonNode message = body.at("/choices/0/message");
      assertThat(body.at("/choices/0/finish_reason").asString()).isEqualTo("tool_calls");
      assertThat(message.at("/tool_calls/0/function/name").asString()).isEqualTo("time_now");
      assertThat(message.at("/tool_calls/0/function/arguments").asString()).isEqualTo("{}");
      String id = message.at("/tool_calls/0/id").asString();
      conversation.add(assistantCall(id));
      conversation.add(toolResult(id));
    }
    JsonNode done = JSON.readTree(post(request(conversation, false)).body());
    assertThat(done.at("/object").asString()).isEqualTo("chat.completion");
    assertThat(done.at("/model").asString()).isEqualTo("gpt-test");
    assertThat(done.at("/choices/0/message/content").asString()).isEqualTo("done after 2 steps");
    assertThat(done.at("/choices/0/finish_reason").asString()).isEqualTo("stop");
    assertThat(done.at("/usage/total_tokens").asLong())
        .isEqualTo(done.at("/usage/prompt_tokens").asLong() + done.at("/usage/completion_tokens").asLong());
    assertThat(fake.requestCount()).isEqualTo(3);
    assertThat(fake.requests()).hasSize(3);
    assertThat(fake.lastRequest().orElseThrow().toolMessagesSinceLastUser()).isEqualTo(2);
  }

  @Test
  void toolLoop_withoutSteps_answersTextAtOnce() throws Exception {
    JsonNode body = JSON.readTree(post(request(List.of(user("hello")), false)).body());
    assertThat(body.at("/choices/0/message/content").asString()).isEqualTo("done after 0 steps");
  }

  @Test
  void streaming_sendsChunksThenUsageThenDone() throws Exception {
    fake.script(FakeOpenAi.Script.text("one two three"));
    HttpResponse<String> response = post(request(List.of(user("hi")), true));
    assertThat(response.headers().firstValue("Content-Type").orElseThrow())
        .startsWith("text/event-stream");
    List<String> data =
        response.body().lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
    assertThat(data.getLast()).isEqualTo("[DONE]");
    StringBuilder text = new StringBuilder();
    JsonNode usage = null;
    for (String d : data.subList(0, data.size() - 1)) {
      JsonNode chunk = JSON.readTree(d);
      assertThat(chunk.at("/object").asString()).isEqualTo("chat.completion.chunk");
      text.append(chunk.at("/choices/0/delta/content").asString(""));
      if (chunk.has("usage")) {
        usage = chunk.get("usage");
      }
    }
    assertThat(text.toString()).isEqualTo("one two three");
    assertThat(usage).isNotNull();
    assertThat(usage.at("/completion_tokens").asLong()).isPositive();
  }

  @Test
  void rateLimitNext_answers429WithRetryAfter_thenRecovers() throws Exception {
    fake.rateLimitNext(2, 7);
    for (int i = 0; i < 2; i++) {
      HttpResponse<String> limited = post(request(List.of(user("hi")), false));
      assertThat(limited.statusCode()).isEqualTo(429);
      assertThat(limited.headers().firstValue("Retry-After")).contains("7");
      assertThat(JSON.readTree(limited.body()).at("/error/code").asString())
          .isEqualTo("rate_limit_exceeded");
    }
    assertThat(post(request(List.of(user("hi")), false)).statusCode()).isEqualTo(200);
  }

  @Test
  void failNext_answersServerError() throws Exception {
    fake.failNext(1, 503);
    HttpResponse<String> response = post(request(List.of(user("hi")), false));
    assertThat(response.statusCode()).isEqualTo(503);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString()).isEqualTo("server_error");
  }

  @Test
  void malformedNext_answersInvalidJson() throws Exception {
    fake.malformedNext(1);
    HttpResponse<String> response = post(request(List.of(user("hi")), false));
    assertThat(response.statusCode()).isEqualTo(200);
    assertThatThrownBy(() -> JSON.readTree(response.body())).isInstanceOf(RuntimeException.class);
  }

  @Test
  void hangNext_outlastsTheClientTimeout() {
    fake.hangNext(1, Duration.ofSeconds(30));
    assertThatThrownBy(() -> post(request(List.of(user("hi")), false), Duration.ofMillis(300)))
        .isInstanceOf(HttpTimeoutException.class);
  }

  @Test
  void reportModel_reportsAnotherVersion() throws Exception {
    fake.reportModel("gpt-test-2099-01-01");
    JsonNode body = JSON.readTree(post(request(List.of(user("hi")), false)).body());
    assertThat(body.at("/model").asString()).isEqualTo("gpt-test-2099-01-01");
  }

  @Test
  void latency_delaysTheAnswer() throws Exception {
    fake.latency(Duration.ofMillis(200));
    long start = System.nanoTime();
    post(request(List.of(user("hi")), false));
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(200));
  }

  @Test
  void badRequest_answers400WithOpenAiError() throws Exception {
    HttpResponse<String> response = post("{\"messages\": []}");
    assertThat(response.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString())
        .isEqualTo("invalid_request_error");
  }

  @Test
  void requireApiKey_rejectsAnotherKey() throws Exception {
    fake.requireApiKey("other");
    assertThat(post(request(List.of(user("hi")), false)).statusCode()).isEqualTo(401);
  }

  @Test
  void models_listsTheDefaultModel() throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/models")).build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(JSON.readTree(response.body()).at("/data/0/id").asString())
        .isEqualTo(FakeOpenAi.DEFAULT_MODEL);
  }

  @Test
  void requests_areRecordedWithTheirWireShape() throws Exception {
    post(request(List.of(user("hi"), assistantCall("call_9"), toolResult("call_9")), true));
    FakeOpenAi.ChatRequest recorded = fake.lastRequest().orElseThrow();
    assertThat(recorded.model()).isEqualTo("gpt-test");
    assertThat(recorded.stream()).isTrue();
    assertThat(recorded.includeUsage()).isTrue();
    assertThat(recorded.messages()).extracting(FakeOpenAi.WireMessage::role)
        .containsExactly("user", "assistant", "tool");
    assertThat(recorded.messages().get(1).toolCalls().getFirst().id()).isEqualTo("call_9");
    assertThat(recorded.messages().get(2).toolCallId()).contains("call_9");
  }
}
