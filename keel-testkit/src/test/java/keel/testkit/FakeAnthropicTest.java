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
import keel.testkit.FakeAnthropic.Block;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

class FakeAnthropicTest {

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final String SYSTEM = "You are a careful assistant. ".repeat(10);
  private final HttpClient http = HttpClient.newHttpClient();
  private FakeAnthropic fake;

  @BeforeEach
  void start() {
    fake = FakeAnthropic.start();
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  private HttpResponse<String> post(String body) throws IOException, InterruptedException {
    return post(body, Duration.ofSeconds(10), "test-key");
  }

  private HttpResponse<String> post(String body, Duration timeout, String key)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/messages"))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (key != null) {
      b.header("x-api-key", key);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** A request body: a cached system prompt, one cached tool, the messages, and optionally streamed. */
  private static ObjectNode request(List<ObjectNode> messages, boolean stream) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", "claude-test");
    root.put("max_tokens", 1024);
    ArrayNode system = root.putArray("system");
    ObjectNode sys = system.addObject().put("type", "text").put("text", SYSTEM);
    sys.putObject("cache_control").put("type", "ephemeral");
    ObjectNode tool = root.putArray("tools").addObject();
    tool.put("name", "time_now").put("description", "The current time.");
    tool.putObject("input_schema").put("type", "object").putObject("properties");
    tool.putObject("cache_control").put("type", "ephemeral");
    ArrayNode array = root.putArray("messages");
    messages.forEach(array::add);
    root.put("stream", stream);
    return root;
  }

  private static String body(List<ObjectNode> messages, boolean stream) {
    return JSON.writeValueAsString(request(messages, stream));
  }

  private static ObjectNode user(String text) {
    ObjectNode m = JSON.createObjectNode().put("role", "user");
    m.putArray("content").addObject().put("type", "text").put("text", text);
    return m;
  }

  private static ObjectNode assistantToolUse(String id) {
    ObjectNode m = JSON.createObjectNode().put("role", "assistant");
    ObjectNode use = m.putArray("content").addObject();
    use.put("type", "tool_use").put("id", id).put("name", "time_now").putObject("input");
    return m;
  }

  private static ObjectNode toolResult(String id, boolean marked) {
    ObjectNode m = JSON.createObjectNode().put("role", "user");
    ObjectNode result = m.putArray("content").addObject();
    result.put("type", "tool_result").put("tool_use_id", id).put("content", "12:00");
    if (marked) {
      result.putObject("cache_control").put("type", "ephemeral");
    }
    return m;
  }

  private static void mark(ObjectNode message) {
    ((ObjectNode) message.get("content").get(message.get("content").size() - 1))
        .putObject("cache_control")
        .put("type", "ephemeral");
  }

  /** The data of each event of an SSE body, as (event name, JSON data) pairs in order. */
  private static List<Event> events(String body) {
    List<Event> events = new ArrayList<>();
    String name = null;
    for (String line : body.split("\n")) {
      if (line.startsWith("event: ")) {
        name = line.substring(7);
      } else if (line.startsWith("data: ")) {
        events.add(new Event(name, JSON.readTree(line.substring(6))));
      }
    }
    return events;
  }

  private record Event(String name, JsonNode data) {}

  // ---------------------------------------------------------------- the default script

  @Test
  void toolLoop_callsTheToolUntilStepsAreDone_thenAnswersText() throws Exception {
    List<ObjectNode> conversation = new ArrayList<>(List.of(user("go steps=2")));
    for (int step = 0; step < 2; step++) {
      JsonNode body = JSON.readTree(post(body(conversation, false)).body());
      assertThat(body.at("/type").asString()).isEqualTo("message");
      assertThat(body.at("/role").asString()).isEqualTo("assistant");
      assertThat(body.at("/stop_reason").asString()).isEqualTo("tool_use");
      assertThat(body.at("/content/0/type").asString()).isEqualTo("tool_use");
      assertThat(body.at("/content/0/name").asString()).isEqualTo("time_now");
      assertThat(body.at("/content/0/input").isObject()).isTrue();
      String id = body.at("/content/0/id").asString();
      assertThat(id).startsWith("toolu_");
      conversation.add(assistantToolUse(id));
      conversation.add(toolResult(id, false));
    }
    JsonNode done = JSON.readTree(post(body(conversation, false)).body());
    assertThat(done.at("/model").asString()).isEqualTo("claude-test");
    assertThat(done.at("/content/0/type").asString()).isEqualTo("text");
    assertThat(done.at("/content/0/text").asString()).isEqualTo("done after 2 steps");
    assertThat(done.at("/stop_reason").asString()).isEqualTo("end_turn");
    assertThat(done.at("/usage/output_tokens").asLong()).isEqualTo(("done after 2 steps".length() + 3) / 4);
    assertThat(fake.requestCount()).isEqualTo(3);
    assertThat(fake.requests()).hasSize(3);
    FakeAnthropic.MessagesRequest last = fake.lastRequest().orElseThrow();
    assertThat(last.toolResultsSinceLastUserText()).isEqualTo(2);
    assertThat(last.lastUserText()).isEqualTo("go steps=2");
    assertThat(last.messages().get(2).content())
        .singleElement()
        .isInstanceOfSatisfying(Block.ToolResult.class, r -> assertThat(r.content()).isEqualTo("12:00"));
    assertThat(last.apiKey()).contains("test-key");
    assertThat(last.anthropicVersion()).isEqualTo("2023-06-01");
  }

  @Test
  void toolLoop_withoutSteps_answersTextAtOnce_andAStringContentIsOneTextBlock() throws Exception {
    ObjectNode root = request(List.of(), false);
    root.putArray("messages").addObject().put("role", "user").put("content", "hello");
    root.put("system", "plain system prompt");
    JsonNode body = JSON.readTree(post(JSON.writeValueAsString(root)).body());
    assertThat(body.at("/content/0/text").asString()).isEqualTo("done after 0 steps");
    FakeAnthropic.MessagesRequest sent = fake.lastRequest().orElseThrow();
    assertThat(sent.system()).containsExactly(new Block.Text("plain system prompt", false));
    assertThat(sent.messages().getFirst().content()).containsExactly(new Block.Text("hello", false));
  }

  @Test
  void streaming_sendsTheRealEventSequence() throws Exception {
    fake.script(req -> new FakeAnthropic.Reply("one two three", List.of(new FakeAnthropic.Reply.Call("time_now", "{\"tz\":\"UTC\"}")), FakeAnthropic.StopReason.TOOL_USE));
    HttpResponse<String> response = post(body(List.of(user("hi")), true));
    assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
    List<Event> events = events(response.body());
    assertThat(events).allMatch(e -> e.name().equals(e.data().path("type").asString()));
    assertThat(events.getFirst().name()).isEqualTo("message_start");
    assertThat(events.getFirst().data().at("/message/model").asString()).isEqualTo("claude-test");
    assertThat(events.getFirst().data().at("/message/usage/input_tokens").isNumber()).isTrue();
    assertThat(events.get(events.size() - 2).name()).isEqualTo("message_delta");
    assertThat(events.get(events.size() - 2).data().at("/delta/stop_reason").asString()).isEqualTo("tool_use");
    assertThat(events.get(events.size() - 2).data().at("/usage/output_tokens").asLong()).isPositive();
    assertThat(events.getLast().name()).isEqualTo("message_stop");

    StringBuilder text = new StringBuilder();
    StringBuilder json = new StringBuilder();
    for (Event e : events) {
      if (e.name().equals("content_block_start") && e.data().at("/content_block/type").asString().equals("tool_use")) {
        assertThat(e.data().at("/index").asInt()).isEqualTo(1);
        assertThat(e.data().at("/content_block/name").asString()).isEqualTo("time_now");
      }
      if (e.name().equals("content_block_delta")) {
        JsonNode delta = e.data().get("delta");
        switch (delta.path("type").asString()) {
          case "text_delta" -> text.append(delta.get("text").asString());
          case "input_json_delta" -> json.append(delta.get("partial_json").asString());
          default -> throw new AssertionError("unexpected delta " + delta);
        }
      }
    }
    assertThat(text.toString()).isEqualTo("one two three");
    assertThat(JSON.readTree(json.toString()).at("/tz").asString()).isEqualTo("UTC");
  }

  @Test
  void aReplyLongerThanMaxTokens_isCut_andStopsWithMaxTokens() throws Exception {
    fake.script(FakeAnthropic.Script.text("x".repeat(100)));
    ObjectNode root = request(List.of(user("hi")), false);
    root.put("max_tokens", 5);
    JsonNode body = JSON.readTree(post(JSON.writeValueAsString(root)).body());
    assertThat(body.at("/stop_reason").asString()).isEqualTo("max_tokens");
    assertThat(body.at("/content/0/text").asString()).hasSize(20);
    assertThat(body.at("/usage/output_tokens").asLong()).isEqualTo(5);
  }

  // ---------------------------------------------------------------- prompt cache

  @Test
  void cache_firstRequestWritesThePrefix_anIdenticalOneReadsIt() throws Exception {
    JsonNode first = JSON.readTree(post(body(List.of(user("hello")), false)).body()).get("usage");
    assertThat(first.get("cache_read_input_tokens").asLong()).isZero();
    long written = first.get("cache_creation_input_tokens").asLong();
    assertThat(written).isPositive();
    assertThat(first.get("input_tokens").asLong()).as("the unmarked message").isPositive();

    JsonNode second = JSON.readTree(post(body(List.of(user("hello")), false)).body()).get("usage");
    assertThat(second.get("cache_read_input_tokens").asLong()).isEqualTo(written);
    assertThat(second.get("cache_creation_input_tokens").asLong()).isZero();
    assertThat(second.get("input_tokens").asLong()).isEqualTo(first.get("input_tokens").asLong());
  }

  @Test
  void cache_theStreamedUsageReportsTheSameCounts() throws Exception {
    post(body(List.of(user("hello")), false));
    JsonNode start = events(post(body(List.of(user("hello")), true)).body()).getFirst().data();
    assertThat(start.at("/message/usage/cache_read_input_tokens").asLong()).isPositive();
    assertThat(start.at("/message/usage/cache_creation_input_tokens").asLong()).isZero();
  }

  @Test
  void cache_aChangedSystemPrompt_missesTheCache() throws Exception {
    post(body(List.of(user("hello")), false));
    ObjectNode changed = request(List.of(user("hello")), false);
    ((ObjectNode) changed.get("system").get(0)).put("text", SYSTEM + "More.");
    JsonNode usage = JSON.readTree(post(JSON.writeValueAsString(changed)).body()).get("usage");
    // The tools come first in the prefix and did not change: their marker is still a hit.
    long toolsOnly = usage.get("cache_read_input_tokens").asLong();
    assertThat(usage.get("cache_creation_input_tokens").asLong()).isGreaterThan(toolsOnly);

    ObjectNode otherModel = request(List.of(user("hello")), false);
    otherModel.put("model", "claude-other");
    JsonNode other = JSON.readTree(post(JSON.writeValueAsString(otherModel)).body()).get("usage");
    assertThat(other.get("cache_read_input_tokens").asLong()).as("caches are per model").isZero();
  }

  @Test
  void cache_aRollingBreakpoint_findsTheEarlierWriteByLookingBack() throws Exception {
    ObjectNode question = user("what time is it? steps=1");
    mark(question);
    JsonNode first = JSON.readTree(post(body(List.of(question), false)).body()).get("usage");
    long firstPrefix = first.get("cache_creation_input_tokens").asLong();
    assertThat(first.get("input_tokens").asLong()).as("everything is before the last marker").isZero();

    // The next step moves the marker to the new last block; the old one is not marked any more.
    ObjectNode unmarked = user("what time is it? steps=1");
    List<ObjectNode> next =
        List.of(unmarked, assistantToolUse("toolu_1"), toolResult("toolu_1", true));
    JsonNode second = JSON.readTree(post(body(next, false)).body()).get("usage");
    assertThat(second.get("cache_read_input_tokens").asLong()).isEqualTo(firstPrefix);
    assertThat(second.get("cache_creation_input_tokens").asLong()).isPositive();
    assertThat(second.get("input_tokens").asLong()).isZero();
  }

  @Test
  void cache_withoutMarkers_nothingIsCached() throws Exception {
    ObjectNode root = request(List.of(user("hello")), false);
    ((ObjectNode) root.get("system").get(0)).remove("cache_control");
    ((ObjectNode) root.get("tools").get(0)).remove("cache_control");
    String body = JSON.writeValueAsString(root);
    post(body);
    JsonNode usage = JSON.readTree(post(body).body()).get("usage");
    assertThat(usage.get("cache_read_input_tokens").asLong()).isZero();
    assertThat(usage.get("cache_creation_input_tokens").asLong()).isZero();
  }

  @Test
  void cache_belowTheMinimumLength_markersAreIgnored() throws Exception {
    fake.minimumCacheableTokens(1_000_000);
    post(body(List.of(user("hello")), false));
    JsonNode usage = JSON.readTree(post(body(List.of(user("hello")), false)).body()).get("usage");
    assertThat(usage.get("cache_read_input_tokens").asLong()).isZero();
    assertThat(usage.get("cache_creation_input_tokens").asLong()).isZero();
  }

  @Test
  void cache_clearCache_andReset_forgetEverything() throws Exception {
    post(body(List.of(user("hello")), false));
    fake.clearCache();
    JsonNode usage = JSON.readTree(post(body(List.of(user("hello")), false)).body()).get("usage");
    assertThat(usage.get("cache_read_input_tokens").asLong()).isZero();
    fake.reset();
    assertThat(fake.requests()).isEmpty();
    assertThat(fake.requestCount()).isZero();
    usage = JSON.readTree(post(body(List.of(user("hello")), false)).body()).get("usage");
    assertThat(usage.get("cache_read_input_tokens").asLong()).isZero();
  }

  @Test
  void moreThanFourCacheMarkers_isRejectedLikeTheRealApi() throws Exception {
    ObjectNode a = user("a");
    ObjectNode b = user("b");
    ObjectNode c = user("c");
    mark(a);
    mark(b);
    mark(c);
    HttpResponse<String> response = post(body(List.of(a, b, c), false));
    assertThat(response.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(response.body()).at("/error/message").asString()).contains("Found 5");
  }

  // ---------------------------------------------------------------- faults

  @Test
  void rateLimitNext_answers429WithRetryAfter_thenRecovers() throws Exception {
    fake.rateLimitNext(2, 7);
    for (int i = 0; i < 2; i++) {
      HttpResponse<String> limited = post(body(List.of(user("hi")), false));
      assertThat(limited.statusCode()).isEqualTo(429);
      assertThat(limited.headers().firstValue("retry-after")).contains("7");
      JsonNode error = JSON.readTree(limited.body());
      assertThat(error.at("/type").asString()).isEqualTo("error");
      assertThat(error.at("/error/type").asString()).isEqualTo("rate_limit_error");
      assertThat(error.at("/error/message").asString()).isNotEmpty();
    }
    assertThat(post(body(List.of(user("hi")), false)).statusCode()).isEqualTo(200);
  }

  @ParameterizedTest(name = "HTTP {0} is {1}")
  @CsvSource({
    "400, invalid_request_error",
    "401, authentication_error",
    "403, permission_error",
    "404, not_found_error",
    "500, api_error",
    "503, api_error",
    "529, overloaded_error"
  })
  void failNext_answersTheStatusWithAnthropicsErrorType(int status, String type) throws Exception {
    fake.failNext(1, status);
    HttpResponse<String> response = post(body(List.of(user("hi")), true));
    assertThat(response.statusCode()).isEqualTo(status);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString()).isEqualTo(type);
  }

  @Test
  void overloadNext_answers529() throws Exception {
    fake.overloadNext(1);
    HttpResponse<String> response = post(body(List.of(user("hi")), false));
    assertThat(response.statusCode()).isEqualTo(529);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString()).isEqualTo("overloaded_error");
  }

  @Test
  void overloadMidStreamNext_sendsAnErrorEventAfterMessageStart() throws Exception {
    fake.overloadMidStreamNext(1);
    HttpResponse<String> response = post(body(List.of(user("hi")), true));
    assertThat(response.statusCode()).isEqualTo(200);
    List<Event> events = events(response.body());
    assertThat(events.getFirst().name()).isEqualTo("message_start");
    assertThat(events.getLast().name()).isEqualTo("error");
    assertThat(events.getLast().data().at("/error/type").asString()).isEqualTo("overloaded_error");
    assertThat(events).noneMatch(e -> e.name().equals("message_stop"));
  }

  @Test
  void malformedNext_answersBodiesThatAreNotJson() throws Exception {
    fake.malformedNext(2);
    HttpResponse<String> plain = post(body(List.of(user("hi")), false));
    assertThat(plain.statusCode()).isEqualTo(200);
    assertThatThrownBy(() -> JSON.readTree(plain.body())).isInstanceOf(tools.jackson.core.JacksonException.class);
    HttpResponse<String> streamed = post(body(List.of(user("hi")), true));
    assertThat(streamed.body()).startsWith("event: message_start").doesNotContain("message_stop");
  }

  @Test
  void cutStreamNext_endsTheStreamWithoutMessageStop() throws Exception {
    fake.script(FakeAnthropic.Script.text("one two three")).cutStreamNext(2);
    List<Event> events = events(post(body(List.of(user("hi")), true)).body());
    assertThat(events.getLast().name()).isEqualTo("content_block_delta");
    assertThat(events.getLast().data().at("/delta/text").asString()).isEqualTo("one ");
    String plain = post(body(List.of(user("hi")), false)).body();
    assertThatThrownBy(() -> JSON.readTree(plain)).isInstanceOf(tools.jackson.core.JacksonException.class);
  }

  @Test
  void hangNext_holdsTheAnswerBeyondTheClientsTimeout() {
    fake.hangNext(1, Duration.ofSeconds(30));
    assertThatThrownBy(() -> post(body(List.of(user("hi")), false), Duration.ofMillis(300), "k"))
        .isInstanceOf(HttpTimeoutException.class);
  }

  @Test
  void reportModel_reportsAnotherModelThanRequested() throws Exception {
    fake.reportModel("claude-test-20990101");
    JsonNode body = JSON.readTree(post(body(List.of(user("hi")), false)).body());
    assertThat(body.at("/model").asString()).isEqualTo("claude-test-20990101");
    assertThat(fake.lastRequest().orElseThrow().model()).isEqualTo("claude-test");
  }

  @Test
  void aMissingOrWrongKey_isAnAuthenticationError() throws Exception {
    HttpResponse<String> missing = post(body(List.of(user("hi")), false), Duration.ofSeconds(10), null);
    assertThat(missing.statusCode()).isEqualTo(401);
    fake.requireApiKey("right");
    HttpResponse<String> wrong = post(body(List.of(user("hi")), false), Duration.ofSeconds(10), "wrong");
    assertThat(wrong.statusCode()).isEqualTo(401);
    assertThat(JSON.readTree(wrong.body()).at("/error/type").asString()).isEqualTo("authentication_error");
    assertThat(post(body(List.of(user("hi")), false), Duration.ofSeconds(10), "right").statusCode()).isEqualTo(200);
  }

  @Test
  void anInvalidRequest_isA400NamingTheField() throws Exception {
    ObjectNode root = request(List.of(user("hi")), false);
    root.remove("max_tokens");
    HttpResponse<String> response = post(JSON.writeValueAsString(root));
    assertThat(response.statusCode()).isEqualTo(400);
    JsonNode error = JSON.readTree(response.body());
    assertThat(error.at("/error/type").asString()).isEqualTo("invalid_request_error");
    assertThat(error.at("/error/message").asString()).contains("max_tokens");
  }

  @Test
  void aScriptThatThrows_isAnApiError() throws Exception {
    fake.script(
        req -> {
          throw new IllegalStateException("boom");
        });
    HttpResponse<String> response = post(body(List.of(user("hi")), false));
    assertThat(response.statusCode()).isEqualTo(500);
    assertThat(JSON.readTree(response.body()).at("/error/type").asString()).isEqualTo("api_error");
  }

  @Test
  void requests_keepOnlyTheLastThousand() throws Exception {
    String body = body(List.of(user("hi")), false);
    for (int i = 0; i < FakeAnthropic.RECORDED_LIMIT + 5; i++) {
      post(body);
    }
    assertThat(fake.requests()).hasSize(FakeAnthropic.RECORDED_LIMIT);
    assertThat(fake.requestCount()).isEqualTo(FakeAnthropic.RECORDED_LIMIT + 5);
  }

  @Test
  void settings_rejectBadValues() {
    assertThatThrownBy(() -> fake.failNext(1, 200)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> fake.rateLimitNext(-1, 1)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> fake.latency(Duration.ofSeconds(-1))).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new FakeAnthropic.Reply.Call("t", "[1]"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("JSON object");
  }
}
