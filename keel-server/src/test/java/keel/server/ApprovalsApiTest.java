package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.sun.net.httpserver.HttpServer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import keel.core.EventCodec;
import keel.execution.ApprovalToolProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The approvals inbox over real HTTP: who sees what, who may decide, double decisions, the
 * notification stream, and the webhook received by a local HTTP receiver.
 */
class ApprovalsApiTest {

  @TempDir Path dir;
  TestServer api;
  HttpServer receiver;
  final ConcurrentLinkedQueue<String[]> received = new ConcurrentLinkedQueue<>();

  static String agent(String name, String owner, String approvers) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: %s, owner: %s}
        spec:
          instructions: Pay.
          model: {provider: scripted, name: s, script: [{turns: [{say: "paying the supplier", call: [{tool: bank_pay, args: {amount: 2000}}]}, {say: "done {{result}}"}]}]}
          tools: [mcp://gateway/bank]
          approval: {on_action_value_usd_gt: 1000, approvers: [%s]}
        """.formatted(name, owner, approvers);
  }

  @BeforeEach
  void start() throws Exception {
    ApprovalToolProvider.EXECUTED.clear();
    receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    receiver.createContext("/hook", ex -> {
      try (InputStream in = ex.getRequestBody()) {
        received.add(new String[] {ex.getRequestHeaders().getFirst("Keel-Event"), ex.getRequestHeaders().getFirst("Keel-Signature"),
            new String(in.readAllBytes(), StandardCharsets.UTF_8)});
      }
      ex.sendResponseHeaders(204, -1);
      ex.close();
    });
    receiver.start();
    api = TestServer.start(dir, Map.of(
        ApprovalWebhook.URL_VARIABLE, "http://127.0.0.1:" + receiver.getAddress().getPort() + "/hook",
        ApprovalWebhook.SECRET_VARIABLE, "s3cret"));
    apply(agent("payer", "finance", "") + "---\n" + agent("other", "ops", "") + "---\n" + agent("picky", "finance", "carol"));
  }

  @AfterEach
  void stop() {
    api.close();
    receiver.stop(0);
  }

  void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String operator(String name, String... roles) throws Exception {
    var body = EventCodec.mapper().createObjectNode().put("name", name);
    var arr = body.putArray("roles");
    for (String role : roles) {
      arr.add(role);
    }
    HttpResponse<String> r = api.call("POST", "/v1/operators", body.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("token").asString();
  }

  /** Starts a session of {@code agent} as {@code token}'s operator and returns its pending approval. */
  JsonNode pending(String token, String agent) throws Exception {
    HttpResponse<String> s = api.callAs(token, "POST", "/v1/sessions", "{\"agent\":\"" + agent + "\",\"message\":\"pay\"}");
    assertThat(s.statusCode()).as(s.body()).isEqualTo(201);
    String session = TestServer.json(s).get("id").asString();
    JsonNode[] found = new JsonNode[1];
    await().atMost(Duration.ofSeconds(10)).until(() -> {
      for (JsonNode a : TestServer.json(api.call("GET", "/v1/approvals?agent=" + agent, null)).get("approvals")) {
        if (a.get("session_id").asString().equals(session)) {
          found[0] = a;
          return true;
        }
      }
      return false;
    });
    return found[0];
  }

  String status(String session) throws Exception {
    return TestServer.json(api.call("GET", "/v1/sessions/" + session, null)).get("status").asString();
  }

  @Test
  void theInbox_showsTheAction_itsValue_reasons_andReasoning_onlyForOwnersTheCallerMayView() throws Exception {
    String runner = operator("runner", "operator");
    JsonNode a = pending(runner, "payer");
    pending(runner, "other");
    assertThat(a.get("tool").asString()).isEqualTo("bank/pay");
    assertThat(a.get("value_usd").asString()).isEqualTo("2000");
    assertThat(a.get("arguments").get("amount").asInt()).isEqualTo(2000);
    assertThat(a.get("reasons").get(0).get("rule").asString()).isEqualTo("spec.approval.on_action_value_usd_gt");
    assertThat(a.get("reasoning").asString()).isEqualTo("paying the supplier");
    assertThat(a.get("requester").asString()).isEqualTo("operator:runner");

    String financeViewer = operator("fv", "viewer@finance");
    JsonNode seen = TestServer.json(api.callAs(financeViewer, "GET", "/v1/approvals", null)).get("approvals");
    assertThat(seen).hasSize(1);
    assertThat(seen.get(0).get("agent").asString()).isEqualTo("payer");
    String opsViewer = operator("ov", "viewer@ops");
    assertThat(api.callAs(opsViewer, "GET", "/v1/approvals/" + a.get("id").asString(), null).statusCode()).isEqualTo(403);
    assertThat(api.callAs(financeViewer, "GET", "/v1/approvals/" + a.get("id").asString(), null).statusCode()).isEqualTo(200);
    assertThat(api.call("GET", "/v1/approvals/apr_nope", null).statusCode()).isEqualTo(404);
    assertThat(api.call("GET", "/v1/approvals?status=maybe", null).statusCode()).isEqualTo(400);
  }

  @Test
  void deciders_areApproversOfTheOwner_neverTheRequester_andOneOfTheListedApprovers() throws Exception {
    String runner = operator("runner", "operator@finance", "approver@finance");
    JsonNode a = pending(runner, "payer");
    String id = a.get("id").asString();
    String opsApprover = operator("opsap", "approver@ops");
    String financeOperator = operator("fop", "operator@finance");
    String financeApprover = operator("fap", "approver@finance");
    HttpResponse<String> r;
    r = api.callAs(runner, "POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"mine\"}");
    assertThat(r.statusCode()).isEqualTo(403);
    assertThat(r.body()).contains("it started the session");
    assertThat(api.callAs(opsApprover, "POST", "/v1/approvals/" + id + "/approve", "{}").statusCode()).isEqualTo(403);
    assertThat(api.callAs(financeOperator, "POST", "/v1/approvals/" + id + "/approve", "{}").statusCode()).isEqualTo(403);
    assertThat(api.callAs(financeApprover, "POST", "/v1/approvals/" + id + "/deny", "{}").statusCode()).isEqualTo(400);
    r = api.callAs(financeApprover, "POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"invoice checked\"}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(TestServer.json(r).get("status").asString()).isEqualTo("approved");
    r = api.callAs(financeApprover, "POST", "/v1/approvals/" + id + "/deny", "{\"reason\":\"changed my mind\"}");
    assertThat(r.statusCode()).isEqualTo(409);
    await().atMost(Duration.ofSeconds(10)).until(() -> status(a.get("session_id").asString()).equals("idle"));
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":2000}");

    // picky lists carol: another approver of the owner is refused, carol decides
    JsonNode b = pending(runner, "picky");
    r = api.callAs(financeApprover, "POST", "/v1/approvals/" + b.get("id").asString() + "/deny", "{\"reason\":\"no\"}");
    assertThat(r.statusCode()).isEqualTo(403);
    assertThat(r.body()).contains("spec.approval.approvers lists only [carol]");
    String carol = operator("carol", "approver@finance");
    r = api.callAs(carol, "POST", "/v1/approvals/" + b.get("id").asString() + "/deny", "{\"reason\":\"not this supplier\"}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  @Test
  void anApproverMayEditTheArguments_andTheEditedCallRuns() throws Exception {
    JsonNode a = pending(operator("runner", "operator"), "payer");
    HttpResponse<String> r = api.call("POST", "/v1/approvals/" + a.get("id").asString() + "/approve",
        "{\"reason\":\"half now\",\"arguments\":{\"amount\":1000}}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(TestServer.json(r).get("decision").get("arguments").get("amount").asInt()).isEqualTo(1000);
    await().atMost(Duration.ofSeconds(10)).until(() -> !ApprovalToolProvider.EXECUTED.isEmpty());
    assertThat(ApprovalToolProvider.EXECUTED).containsExactly("bank/pay {\"amount\":1000}");
    assertThat(api.call("POST", "/v1/approvals/" + a.get("id").asString() + "/approve", "{\"arguments\":[1]}").statusCode()).isEqualTo(400);
  }

  @Test
  void theStream_notifiesRequestsAndDecisions_andTheWebhookIsSigned() throws Exception {
    String runner = operator("runner", "operator");
    HttpRequest req = HttpRequest.newBuilder(URI.create(api.server().url() + "/v1/approvals/stream"))
        .header("Authorization", "Bearer " + api.token()).build();
    HttpResponse<InputStream> stream = api.http().send(req, HttpResponse.BodyHandlers.ofInputStream());
    assertThat(stream.statusCode()).isEqualTo(200);
    ConcurrentLinkedQueue<String> lines = new ConcurrentLinkedQueue<>();
    Thread reader = Thread.ofVirtual().start(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) {
          lines.add(line);
        }
      } catch (Exception ignored) {
        // closed at the end of the test
      }
    });
    JsonNode a = pending(runner, "payer");
    await().atMost(Duration.ofSeconds(10)).until(() -> lines.contains("event: requested"));
    api.call("POST", "/v1/approvals/" + a.get("id").asString() + "/deny", "{\"reason\":\"no\"}");
    await().atMost(Duration.ofSeconds(10)).until(() -> lines.contains("event: decided"));
    assertThat(lines).anyMatch(l -> l.startsWith("data: ") && l.contains(a.get("id").asString()));
    reader.interrupt();

    await().atMost(Duration.ofSeconds(10)).until(() -> received.size() >= 2);
    List<String[]> hooks = List.copyOf(received);
    assertThat(hooks).extracting(h -> h[0]).containsExactly("requested", "decided");
    for (String[] h : hooks) {
      assertThat(h[1]).isEqualTo(ApprovalWebhook.signature("s3cret".getBytes(StandardCharsets.UTF_8), h[2]));
      assertThat(EventCodec.mapper().readTree(h[2]).get("approval").get("id").asString()).isEqualTo(a.get("id").asString());
    }
  }

  @Test
  void invalidCel_isRefusedAtApply_withTheDescriptorPathAndPosition() throws Exception {
    String yaml = """
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: broken}
        spec:
          deny_when: 'args.amount >'
          reason: broken
        """;
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(r.body()).contains("policy/broken: spec.deny_when: line 1, column");
  }
}
