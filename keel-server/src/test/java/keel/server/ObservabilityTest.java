package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.EventCodec;
import keel.testkit.FakeOpenAi;
import keel.testkit.FakeOtlpCollector;
import keel.testkit.FakeOtlpCollector.Span;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * OTLP export on the wire (a real collector decoding real protobuf requests), trace context into
 * provider requests, and Prometheus metrics at {@code /metrics}, all through a real server.
 */
class ObservabilityTest {

  static final String CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  static final String CALLER_SPAN = "00f067aa0ba902b7";

  @TempDir Path dir;
  KeelServer server;
  final HttpClient http = HttpClient.newHttpClient();
  final FakeOtlpCollector collector = FakeOtlpCollector.start();

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
    collector.close();
  }

  KeelServer start(boolean export) {
    Map<String, String> env = new HashMap<>();
    if (export) {
      env.put(KeelServer.OTLP_ENDPOINT, collector.baseUrl());
    }
    return KeelServer.start(ServerConfig.of(0, dir).withEnvironment(env));
  }

  HttpResponse<String> call(String method, String path, String body, String... headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path))
        .header("Authorization", "Bearer " + Files.readString(server.adminTokenFile()).strip());
    for (int i = 0; i < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  void apply(String yaml) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String startTask(String agent, String message, String... headers) throws Exception {
    HttpResponse<String> r = call("POST", "/v1/sessions",
        EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message).put("task", true).toString(), headers);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    String id = EventCodec.mapper().readTree(r.body()).get("id").asString();
    await().atMost(Duration.ofSeconds(20)).until(() -> status(id).equals("completed"));
    return id;
  }

  String status(String id) throws Exception {
    return EventCodec.mapper().readTree(call("GET", "/v1/sessions/" + id, null).body()).get("status").asString();
  }

  static String delegation() {
    return IdentityApiTest.agent("planner", """
        - turns:
            - call: [{tool: agent_researcher, args: {task: "find {{input}}"}}]
            - say: "planner: {{result}}"
        """, "agent://researcher, internal://time")
        + "---\n" + IdentityApiTest.agent("researcher", """
        - turns:
            - call: [{tool: time_now}]
            - say: "researcher found it"
        """, "internal://time");
  }

  static Span named(List<Span> spans, String name) {
    return spans.stream().filter(s -> s.name().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no span " + name + " in " + spans.stream().map(Span::name).toList()));
  }

  @Test
  void aMultiAgentSession_isExportedAsOneTrace_withGenAiSpansAndParentLinks() throws Exception {
    server = start(true);
    apply(delegation());
    String id = startTask("planner", "the invoice", "traceparent", "00-" + CALLER_TRACE + "-" + CALLER_SPAN + "-01");
    await().atMost(Duration.ofSeconds(20)).until(() -> collector.spans().stream().filter(s -> s.name().startsWith("invoke_agent")).count() == 2);
    List<Span> spans = collector.spans();
    assertThat(spans).allSatisfy(s -> assertThat(s.traceId()).isEqualTo(CALLER_TRACE));
    assertThat(spans.stream().map(Span::spanId).distinct().count()).as("each span once").isEqualTo(spans.size());

    Span planner = named(spans, "invoke_agent planner");
    assertThat(planner.parentSpanId()).as("the caller's span is the root's parent").isEqualTo(CALLER_SPAN);
    assertThat(planner.attributes()).containsEntry("gen_ai.operation.name", "invoke_agent")
        .containsEntry("gen_ai.agent.name", "planner").containsEntry("keel.session.id", id)
        .containsEntry("keel.root_session.id", id).containsEntry("keel.principal", "operator:admin");
    assertThat(planner.resource()).containsEntry("service.name", "keel");

    Span delegate = named(spans, "execute_tool agent_researcher");
    assertThat(delegate.attributes()).containsEntry("gen_ai.operation.name", "execute_tool")
        .containsEntry("gen_ai.tool.name", "agent_researcher").containsEntry("gen_ai.tool.type", "agent")
        .containsEntry("keel.principal", "agent:planner").containsKey("gen_ai.tool.call.id")
        .containsEntry("keel.decision", "delegated by agent://researcher");
    Span plannerTurn = spans.stream().filter(s -> s.spanId().equals(delegate.parentSpanId())).findFirst().orElseThrow();
    assertThat(plannerTurn.name()).isEqualTo("turn planner");
    assertThat(plannerTurn.parentSpanId()).isEqualTo(planner.spanId());

    Span researcher = named(spans, "invoke_agent researcher");
    assertThat(researcher.parentSpanId()).as("the sub-agent hangs under the call that spawned it").isEqualTo(delegate.spanId());
    assertThat(researcher.attributes()).containsEntry("keel.root_session.id", id).containsEntry("gen_ai.agent.name", "researcher");
    assertThat(researcher.attributes().get("keel.session.id")).isNotEqualTo(id);

    Span time = named(spans, "execute_tool time_now");
    Span researcherTurn = spans.stream().filter(s -> s.spanId().equals(time.parentSpanId())).findFirst().orElseThrow();
    assertThat(researcherTurn.parentSpanId()).isEqualTo(researcher.spanId());
    assertThat(time.attributes()).containsEntry("gen_ai.tool.type", "function").containsEntry("keel.principal", "agent:researcher");

    List<Span> chats = spans.stream().filter(s -> s.name().equals("chat s")).toList();
    assertThat(chats).hasSize(4);
    assertThat(chats).allSatisfy(c -> {
      assertThat(c.kind()).as("client").isEqualTo(3);
      assertThat(c.attributes()).containsEntry("gen_ai.operation.name", "chat").containsEntry("gen_ai.provider.name", "scripted")
          .containsEntry("gen_ai.system", "scripted").containsEntry("gen_ai.request.model", "s")
          .containsKeys("gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "keel.cost_usd",
              "gen_ai.response.finish_reasons");
      assertThat(c.attributes().get("gen_ai.usage.input_tokens")).isInstanceOf(Long.class);
      assertThat(c.endNanos()).isGreaterThanOrEqualTo(c.startNanos());
    });
    assertThat(chats.stream().map(c -> c.attributes().get("gen_ai.response.finish_reasons").toString()))
        .containsExactlyInAnyOrder("[tool_calls]", "[stop]", "[tool_calls]", "[stop]");
  }

  @Test
  void spansNotExportedBeforeAStop_areExportedAfterARestart() throws Exception {
    server = start(false);
    apply(delegation());
    String id = startTask("planner", "offline");
    server.close();
    assertThat(collector.requestCount()).isZero();

    collector.refuseNext(1);
    server = start(true);
    await().atMost(Duration.ofSeconds(30)).until(() -> collector.spans().stream().anyMatch(s -> s.name().equals("invoke_agent researcher"))
        && collector.spans().stream().anyMatch(s -> s.name().equals("invoke_agent planner")));
    assertThat(collector.requestCount()).as("the refused export was retried").isGreaterThan(1);
    Span planner = named(collector.spans(), "invoke_agent planner");
    assertThat(planner.attributes()).containsEntry("keel.session.id", id);
    assertThat(planner.parentSpanId()).isEmpty();
    int exported = collector.spans().size();
    // once exported, a restart sends nothing again
    server.close();
    server = start(true);
    Thread.sleep(1500);
    assertThat(collector.spans()).hasSize(exported);
  }

  @Test
  void providerRequests_carryTheModelCallSpanAsTraceparent() throws Exception {
    server = start(true);
    try (FakeOpenAi fake = FakeOpenAi.start()) {
      fake.answerText("hello from the fake");
      apply("""
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: remote, owner: team-a}
          spec:
            instructions: Be brief.
            model: {provider: openai, name: gpt-test, base_url: "%s"}
          """.formatted(fake.baseUrl()));
      startTask("remote", "hi", "traceparent", "00-" + CALLER_TRACE + "-" + CALLER_SPAN + "-01");
      assertThat(fake.traceparents()).hasSize(1);
      String tp = fake.traceparents().getFirst();
      assertThat(tp).matches("00-" + CALLER_TRACE + "-[0-9a-f]{16}-01");
      await().atMost(Duration.ofSeconds(20)).until(() -> collector.spans().stream().anyMatch(s -> s.name().equals("chat gpt-test")));
      Span chat = named(collector.spans(), "chat gpt-test");
      assertThat(tp).isEqualTo("00-" + CALLER_TRACE + "-" + chat.spanId() + "-01");
      assertThat(chat.attributes()).containsEntry("gen_ai.provider.name", "openai");
    }
  }

  @Test
  void metrics_showRealValues_afterSessionsRan_andNeedAViewerEverywhere() throws Exception {
    server = start(false);
    apply(delegation());
    startTask("planner", "count me");
    HttpResponse<String> r = call("GET", "/metrics", null);
    assertThat(r.statusCode()).isEqualTo(200);
    String text = r.body();
    assertThat(metric(text, "keel_sessions{agent=\"planner\",status=\"completed\"}")).isEqualTo(1.0);
    assertThat(metric(text, "keel_sessions{agent=\"researcher\",status=\"completed\"}")).isEqualTo(1.0);
    assertThat(metric(text, "keel_sessions_awaiting_approval{agent=\"planner\"}")).isEqualTo(0.0);
    assertThat(metric(text, "keel_model_calls_total{agent=\"planner\",provider=\"scripted\"}")).isEqualTo(2.0);
    assertThat(metric(text, "keel_tool_calls_total{agent=\"researcher\"}")).isEqualTo(1.0);
    assertThat(metric(text, "keel_tool_calls_total{agent=\"planner\"}")).isEqualTo(1.0);
    assertThat(metric(text, "keel_tool_errors_total{agent=\"planner\"}")).isEqualTo(0.0);
    assertThat(metric(text, "keel_model_tokens_total{agent=\"planner\",type=\"input\"}")).isPositive();
    assertThat(metric(text, "keel_steps_total{agent=\"planner\"}")).isGreaterThanOrEqualTo(1.0);
    assertThat(metric(text, "keel_step_duration_seconds_count{agent=\"planner\"}")).isGreaterThanOrEqualTo(1.0);
    assertThat(metric(text, "keel_model_call_duration_seconds_count{agent=\"researcher\",provider=\"scripted\"}")).isEqualTo(2.0);
    assertThat(metric(text, "keel_store_append_seconds_count")).isPositive();
    // every run rehydrated its session first; the buckets resolve well under a millisecond
    assertThat(metric(text, "keel_session_rehydrate_seconds_count{agent=\"planner\"}")).isGreaterThanOrEqualTo(1.0);
    assertThat(metric(text, "keel_session_rehydrate_seconds_sum{agent=\"planner\"}")).isPositive();
    assertThat(text.lines().filter(l -> l.startsWith("keel_session_rehydrate_seconds_bucket{agent=\"planner\",le=\"") && !l.contains("+Inf"))
        .map(l -> Double.parseDouble(l.substring(l.indexOf("le=\"") + 4, l.indexOf('"', l.indexOf("le=\"") + 4))))
        .filter(le -> le < 0.0001)).isNotEmpty();
    assertThat(text).contains("keel_admission_queue_depth ").contains("keel_cost_usd_total{agent=\"planner\"}")
        .contains("keel_store_append_seconds_bucket{");
    HttpResponse<String> anonymous = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(anonymous.statusCode()).isEqualTo(401);
  }

  static double metric(String text, String series) {
    Optional<String> line = text.lines().filter(l -> l.startsWith(series + " ")).findFirst();
    assertThat(line).as(series + " in\n" + text).isPresent();
    return Double.parseDouble(line.get().substring(series.length() + 1).strip());
  }
}
