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

class FakeOpenAiResponsesTest {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private final HttpClient http = HttpClient.newHttpClient();
  private FakeOpenAiResponses fake;

  @BeforeEach
  void start() {
    fake = FakeOpenAiResponses.start();
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private HttpResponse<String> post(String body) throws IOException, InterruptedException {
    return post(body, Duration.ofSeconds(10));
  }

  private HttpResponse<String> post(String body, Duration timeout) throws IOException, InterruptedException {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/responses"))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer test-key")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private static String request(List<ObjectNode> input, boolean stream) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", "gpt-test");
    root.put("instructions", "Be brief.");
    ArrayNode array = root.putArray("input");
    input.forEach(array::add);
    root.putArray("tools").addObject().put("type", "function").put("name", "time_now").putObject("parameters");
    root.put("stream", stream);
    root.put("prompt_cache_key", "keel:helper");
    return JSON.writeValueAsString(root);
  }

  private static ObjectNode user(String text) {
    ObjectNode m = JSON.createObjectNode().put("type", "message").put("role", "user");
    m.putArray("content").addObject().put("type", "input_text").put("text", text);
    return m;
  }

  private static ObjectNode functionCall(String callId) {
    return JSON.createObjectNode()
        .put("type", "function_call")
        .put("call_id", callId)
        .put("name", "time_now")
        .put("arguments", "{}");
  }

  private static ObjectNode functionOutput(String callId) {
    return JSON.createObjectNode().put("type", "function_call_output").put("call_id", callId).put("output", "12:00");
  }

  @Test
  void toolLoop_callsTheFunctionUntilStepsAreDone_thenAnswersText() throws Exception {
    List<ObjectNode> input = new ArrayList<>(List.of(user("go steps=2")));
    for (int step = 0; step < 2; step++) {
      JsonNode body = JSON.readTree(post(request(input, false)).body());
      JsonNode item = body.at("/output/0");
      assertThat(item.at("/type").asString()).isEqualTo("function_call");
      assertThat(item.at("/name").asString()).isEqualTo("time_now");
      assertThat(item.at("/arguments").asString()).isEqualTo("{}");
      String callId = item.at("/call_id").asString();
      input.add(functionCall(callId));
      input.add(functionOutput(callId));
    }
    JsonNode done = JSON.readTree(post(request(input, false)).body());
    assertThat(done.at("/object").asString()).isEqualTo("response");
    assertThat(done.at("/status").asString()).isEqualTo("completed");
    assertThat(done.at("/model").asString()).isEqualTo("gpt-test");
    assertThat(done.at("/output/0/type").asString()).isEqualTo("message");
    assertThat(done.at("/output/0/content/0/type").asString()).isEqualTo("output_text");
    assertThat(done.at("/output/0/content/0/text").asString()).isEqualTo("done after 2 steps");
    assertThat(done.at("/usage/total_tokens").asLong())
        .isEqualTo(done.at("/usage/input_tokens").asLong() + done.at("/usage/output_tokens").asLong());
    assertThat(done.at("/usage/input_tokens_details/cached_tokens").asLong()).isZero();
    assertThat(fake.requestCount()).isEqualTo(3);
    assertThat(fake.lastRequest().orElseThrow().functionOutputsSinceLastUser()).isEqualTo(2);
  }

  @Test
  void toolLoop_withAStringInput_answersTextAtOnce() throws Exception {
    JsonNode body = JSON.readTree(post("{\"model\":\"gpt-test\",\"input\":\"hello\"}").body());
    assertThat(body.at("/output/0/content/0/text").asString()).isEqualTo("done after 0 steps");
  }

  @Test
  void streaming_sendsTypedEvents_inOrder_endingWithCompleted() throws Exception {
    fake.script(request -> new FakeOpenAiResponses.Reply(
        "one two", List.of(new FakeOpenAiResponses.Reply.Call("time_now", "{\"tz\":\"UTC\"}")), 0));
    HttpResponse<String> response = post(request(List.of(user("hi")), true));
    assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
    List<String> eventLines = response.body().lines().filter(l -> l.startsWith("event: ")).map(l -> l.substring(7)).toList();
    assertThat(eventLines)
        .containsExactly(
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed");
    List<JsonNode> data =
        response.body().lines().filter(l -> l.startsWith("data: ")).map(l -> JSON.readTree(l.substring(6))).toList();
    StringBuilder text = new StringBuilder();
    StringBuilder args = new StringBuilder();
    for (int i = 0; i < data.size(); i++) {
      JsonNode e = data.get(i);
      assertThat(e.at("/type").asString()).isEqualTo(eventLines.get(i));
      assertThat(e.at("/sequence_number").asInt()).isEqualTo(i);
      if (eventLines.get(i).equals("response.output_text.delta")) {
        text.append(e.at("/delta").asString());
      } else if (eventLines.get(i).equals("response.function_call_arguments.delta")) {
        args.append(e.at("/delta").asString());
      }
    }
    assertThat(text.toString()).isEqualTo("one two");
    assertThat(args.toString()).isEqualTo("{\"tz\":\"UTC\"}");
    JsonNode completed = data.getLast().get("response");
    assertThat(completed.at("/status").asString()).isEqualTo("completed");
    assertThat(completed.at("/output/1/call_id").asString()).isEqualTo(data.get(9).at("/item/call_id").asString());
    assertThat(completed.at("/usage/output_tokens").asLong()).isPositive();
  }

  @Test
  void rateLimitNext_answers429WithRetryAfter_thenRecovers() throws Exception {
    fake.rateLimitNext(1, 7);
    HttpResponse<String> limited = post(request(List.of(user("hi")), false));
    assertThat(limited.statusCode()).isEqualTo(429);
    assertThat(limited.headers().firstValue("Retry-After")).contains("7");
    assertThat(JSON.readTree(limited.body()).at("/error/code").asString()).isEqualTo("rate_limit_exceeded");
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
    assertThat(JSON.readTree(post(request(List.of(user("hi")), false)).body()).at("/model").asString())
        .isEqualTo("gpt-test-2099-01-01");
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
    HttpResponse<String> response = post("{\"input\": []}");
    assertThat(response.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString()).isEqualTo("invalid_request_error");
  }

  @Test
  void requireApiKey_rejectsAnotherKey() throws Exception {
    fake.requireApiKey("other");
    assertThat(post(request(List.of(user("hi")), false)).statusCode()).isEqualTo(401);
  }

  @Test
  void requests_areRecordedWithTheirWireShape() throws Exception {
    post(request(List.of(user("hi"), functionCall("call_9"), functionOutput("call_9")), true));
    FakeOpenAiResponses.ResponsesRequest recorded = fake.lastRequest().orElseThrow();
    assertThat(recorded.model()).isEqualTo("gpt-test");
    assertThat(recorded.stream()).isTrue();
    assertThat(recorded.instructions()).contains("Be brief.");
    assertThat(recorded.tools()).containsExactly("time_now");
    assertThat(recorded.promptCacheKey()).contains("keel:helper");
    assertThat(recorded.input())
        .containsExactly(
            new FakeOpenAiResponses.InputItem.Message("user", "hi"),
            new FakeOpenAiResponses.InputItem.FunctionCall("call_9", "time_now", "{}"),
            new FakeOpenAiResponses.InputItem.FunctionCallOutput("call_9", "12:00"));
  }
}
