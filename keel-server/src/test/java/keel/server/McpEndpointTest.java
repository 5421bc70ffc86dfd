package keel.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import keel.control.Identity;
import keel.control.SessionToken;
import keel.core.EventCodec;
import keel.testkit.mcp.BrokenServer;
import keel.testkit.mcp.LedgerServer;
import keel.testkit.mcp.ReceivedCall;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The gateway as an MCP server at {@code /mcp}: the MCP SDK's own client, over real HTTP on
 * 127.0.0.1, with an operator's API token or an agent's session token; the finance demo's
 * LedgerServer (Streamable HTTP) and a BrokenServer in {@code ok} mode (stdio) as upstreams.
 */
class McpEndpointTest {

  private static final String TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  @TempDir Path dir;
  TestServer api;
  LedgerServer ledger;
  final List<McpSyncClient> clients = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    ledger = LedgerServer.start();
    api = TestServer.start(dir, Map.of("PATH", System.getenv("PATH"), McpEndpoint.APPROVAL_WAIT_VARIABLE, "6s"));
    apply("""
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: ledger, owner: finance}
        spec:
          transport: streamable-http
          url: %s
          tools:
            read-entries: {side_effects: read-only}
            post-entry: {side_effects: side-effecting, value_usd: args.amount}
        """.formatted(ledger.url()));
    apply("""
        apiVersion: agent.os/v1
        kind: McpServer
        metadata: {name: rec, owner: ops}
        spec:
          transport: stdio
          command: %s
          tools:
            echo: {side_effects: idempotent}
        """.formatted(yamlList(BrokenServer.command("ok"))));
    apply("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: payer, owner: finance}
        spec:
          instructions: Pays invoices.
          model: {provider: scripted, name: s, script: [{turns: [{say: done}]}]}
          tools: [mcp://gateway/ledger]
          approval:
            on_action_value_usd_gt: 1000
        """);
    apply("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: reader, owner: finance}
        spec:
          instructions: Reads the ledger.
          model: {provider: scripted, name: s, script: [{turns: [{say: done}]}]}
          tools: [mcp://gateway/ledger/read-entries]
        """);
    apply("""
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: cap}
        spec:
          applies_to: {tools: ["ledger/post-entry"]}
          deny_when: 'args.amount > 100000.0'
          reason: no entry above 100000 USD is posted through the gateway
        """);
  }

  @AfterEach
  void stop() {
    clients.forEach(McpSyncClient::closeGracefully);
    api.close();
    ledger.close();
  }

  private static String yamlList(List<String> items) {
    List<String> quoted = new ArrayList<>();
    items.forEach(i -> quoted.add("\"" + i.replace("\\", "\\\\").replace("\"", "\\\"") + "\""));
    return "[" + String.join(", ", quoted) + "]";
  }

  private void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  private String operator(String name, String... roles) throws Exception {
    String body = EventCodec.mapper().createObjectNode().put("name", name)
        .set("roles", EventCodec.mapper().valueToTree(List.of(roles))).toString();
    HttpResponse<String> r = api.call("POST", "/v1/operators", body);
    assertThat(r.statusCode()).as(r.body()).isIn(200, 201);
    return TestServer.json(r).get("token").asString();
  }

  /** An agent's session token, signed with the server's own signing keys (as a session's token is). */
  private String agentToken(String agent, List<String> grants) {
    Identity identity = new Identity(api.server().store().signingKeys(), Clock.systemUTC(), api.server().config().identity());
    SessionToken t = identity.issue(new Identity.Subject(agent, 1, "s_outside", "s_outside", grants, List.of("operator:bob")));
    return t.compact();
  }

  private McpSyncClient client(String token, List<McpSchema.ProgressNotification> progress) {
    HttpClientStreamableHttpTransport transport = HttpClientStreamableHttpTransport.builder(api.server().url())
        .endpoint("/mcp")
        .requestBuilder(HttpRequest.newBuilder().header("Authorization", "Bearer " + token))
        .build();
    McpSyncClient c = McpClient.sync(transport)
        .requestTimeout(Duration.ofSeconds(60))
        .progressConsumer(progress::add)
        .build();
    c.initialize();
    clients.add(c);
    return c;
  }

  private McpSyncClient client(String token) {
    return client(token, Collections.synchronizedList(new ArrayList<>()));
  }

  private static List<String> names(McpSyncClient c) {
    return c.listTools().tools().stream().map(McpSchema.Tool::name).sorted().toList();
  }

  private static McpSchema.CallToolResult call(McpSyncClient c, String tool, Map<String, Object> args, Map<String, Object> meta) {
    return c.callTool(McpSchema.CallToolRequest.builder().name(tool).arguments(args).meta(meta).build());
  }

  private static String text(McpSchema.CallToolResult r) {
    return ((McpSchema.TextContent) r.content().getFirst()).text();
  }

  private static Map<String, Object> entry(double amount) {
    return Map.of("invoice_id", "INV-1002", "supplier_id", "sup-globex", "amount", amount, "currency", "USD");
  }

  private long posts() {
    return ledger.receivedCalls().stream().map(ReceivedCall::tool).filter("post-entry"::equals).count();
  }

  private JsonNode pendingApprovals() throws Exception {
    return TestServer.json(api.call("GET", "/v1/approvals", null)).get("approvals");
  }

  @Test
  void withoutAValidToken_theEndpointAnswers401BeforeMcp() throws Exception {
    String init = """
        {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},
         "clientInfo":{"name":"t","version":"1"}}}""";
    for (String auth : new String[] {null, "Bearer nonsense", "Bearer a.b.c", "Basic eDp5"}) {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(api.server().url() + "/mcp"))
          .header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream")
          .POST(HttpRequest.BodyPublishers.ofString(init));
      if (auth != null) {
        b.header("Authorization", auth);
      }
      HttpResponse<String> r = api.http().send(b.build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as(auth + ": " + r.body()).isEqualTo(401);
      assertThat(r.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"keel\"");
      assertThat(r.body()).contains("\"status\":401").contains(auth == null || auth.startsWith("Basic") ? "Bearer <token>" : "neither");
    }
  }

  @Test
  void operatorAndAgentTokens_listExactlyTheirTools() throws Exception {
    assertThat(names(client(api.token()))).containsExactly("ledger__post-entry", "ledger__read-entries", "rec__echo");
    assertThat(names(client(operator("alice", "operator@finance")))).containsExactly("ledger__post-entry", "ledger__read-entries");
    assertThat(names(client(operator("vera", "viewer@finance")))).isEmpty();
    assertThat(names(client(agentToken("payer", List.of("mcp://gateway/ledger"))))).containsExactly(
        "ledger__post-entry", "ledger__read-entries");
    assertThat(names(client(agentToken("reader", List.of("mcp://gateway/ledger/read-entries"))))).containsExactly(
        "ledger__read-entries");
    assertThat(names(client(agentToken("reader", List.of("mcp://gateway/ledger/read-entries@7"))))).isEmpty();

    McpSchema.CallToolResult read = call(client(agentToken("reader", List.of("mcp://gateway/ledger/read-entries"))),
        "ledger__read-entries", Map.of("invoice_id", "INV-1001"), Map.of("traceparent", TRACEPARENT));
    assertThat(read.isError()).isFalse();
    assertThat(read.structuredContent().toString()).contains("LE-0001");
    ReceivedCall received = ledger.receivedCalls().getLast();
    assertThat(received.traceparent()).hasValue(TRACEPARENT);
    assertThat(received.meta()).containsEntry("dev.keel/principal", "agent:reader");
  }

  @Test
  void theTokenOfACancelledSession_noLongerActs() throws Exception {
    HttpResponse<String> started = api.call("POST", "/v1/sessions", "{\"agent\":\"reader\",\"message\":\"read\"}");
    assertThat(started.statusCode()).as(started.body()).isEqualTo(201);
    String id = TestServer.json(started).get("id").asString();
    Identity identity = new Identity(api.server().store().signingKeys(), Clock.systemUTC(), api.server().config().identity());
    String token = identity.issue(new Identity.Subject("reader", 1, id, id, List.of("mcp://gateway/ledger/read-entries"),
        List.of("operator:admin"))).compact();
    McpSyncClient reader = client(token);
    assertThat(names(reader)).containsExactly("ledger__read-entries");

    HttpResponse<String> cancelled = api.call("POST", "/v1/sessions/" + id + "/cancel", "{\"reason\":\"runaway\"}");
    assertThat(cancelled.statusCode()).as(cancelled.body()).isIn(200, 202);
    org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() ->
        TestServer.json(api.call("GET", "/v1/sessions/" + id, null)).get("status").asString().equals("cancelled"));

    McpSchema.CallToolResult r = call(reader, "ledger__read-entries", Map.of("invoice_id", "INV-1001"), Map.of());
    assertThat(r.isError()).isTrue();
    assertThat(text(r)).contains("of this token is cancelled; its token no longer acts");
    assertThat(names(reader)).isEmpty();
  }

  @Test
  void anUngrantedOrUnknownTool_isRefused_andNothingRuns() throws Exception {
    McpSyncClient reader = client(agentToken("reader", List.of("mcp://gateway/ledger/read-entries")));
    McpSchema.CallToolResult r = call(reader, "ledger__post-entry", entry(10.00), Map.of());
    assertThat(r.isError()).isTrue();
    assertThat(text(r)).contains("agent:reader is not granted mcp://gateway/ledger/post-entry@1");

    McpSchema.CallToolResult other = call(client(operator("alice", "operator@finance")), "rec__echo", Map.of("message", "x"), Map.of());
    assertThat(other.isError()).isTrue();
    assertThat(text(other)).contains("operator:alice may not call rec/echo: it needs the role operator for owner \"ops\"");

    McpSchema.CallToolResult invented = call(reader, "bank__wire", Map.of(), Map.of());
    assertThat(text(invented)).contains("there is no tool named \"bank__wire\"");
    assertThat(posts()).isZero();
  }

  @Test
  void aCallAPolicyDenies_isRefusedWithTheReason() throws Exception {
    McpSchema.CallToolResult r = call(client(operator("alice", "operator@finance")), "ledger__post-entry", entry(250000.00),
        Map.of());
    assertThat(r.isError()).isTrue();
    assertThat(text(r)).isEqualTo("denied by policy/cap: no entry above 100000 USD is posted through the gateway");
    assertThat(posts()).isZero();

    McpSchema.CallToolResult bad = call(client(operator("al", "operator@finance")), "ledger__post-entry", Map.of("amount", 1),
        Map.of());
    assertThat(text(bad)).startsWith("invalid arguments for ledger/post-entry");
  }

  @Test
  void aCallAboveTheThreshold_waitsForAnApprover_thenRunsOnce() throws Exception {
    List<McpSchema.ProgressNotification> progress = Collections.synchronizedList(new ArrayList<>());
    McpSyncClient payer = client(agentToken("payer", List.of("mcp://gateway/ledger")), progress);
    String approver = operator("carol", "approver@finance");
    Map<String, Object> meta = Map.of("dev.keel/idempotency-key", "pay-1002", "progressToken", "p1", "traceparent", TRACEPARENT);

    CompletableFuture<McpSchema.CallToolResult> waiting = CompletableFuture.supplyAsync(
        () -> call(payer, "ledger__post-entry", entry(12500.00), meta));
    await().atMost(Duration.ofSeconds(5)).until(() -> pendingApprovals().size() == 1);
    JsonNode approval = pendingApprovals().get(0);
    assertThat(approval.get("tool").asString()).isEqualTo("ledger/post-entry");
    assertThat(approval.get("agent").asString()).isEqualTo("payer");
    assertThat(approval.toString()).contains("spec.approval.on_action_value_usd_gt");
    assertThat(posts()).isZero();
    String id = approval.get("id").asString();
    await().atMost(Duration.ofSeconds(5)).until(() -> !progress.isEmpty());

    HttpResponse<String> decided = api.callAs(approver, "POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"checked\"}");
    assertThat(decided.statusCode()).as(decided.body()).isEqualTo(200);

    McpSchema.CallToolResult r = waiting.get();
    assertThat(r.isError()).as(text(r)).isFalse();
    assertThat(r.structuredContent().toString()).contains("INV-1002");
    assertThat(posts()).isEqualTo(1);
    assertThat(ledger.receivedCalls().getLast().traceparent()).hasValue(TRACEPARENT);
    assertThat(progress.getFirst().message()).contains("waiting for approval " + id);

    // the same key again: the stored result, nothing executed twice
    McpSchema.CallToolResult again = call(payer, "ledger__post-entry", entry(12500.00), meta);
    assertThat(text(again)).isEqualTo(text(r));
    assertThat(posts()).isEqualTo(1);

    JsonNode audit = TestServer.json(api.call("GET", "/v1/audit?agent=payer", null)).get("entries");
    List<String> kinds = new ArrayList<>();
    audit.forEach(e -> kinds.add(e.get("kind").asString() + " " + e.get("actor").asString()));
    assertThat(kinds).containsSubsequence(
        "policy_decision agent:payer", "approval_requested agent:payer", "approval_decided operator:carol",
        "policy_decision agent:payer", "tool_call agent:payer", "tool_result agent:payer");
    JsonNode verify = TestServer.json(api.call("GET", "/v1/audit/verify", null));
    assertThat(verify.get("ok").asBoolean()).as(verify.toString()).isTrue();
    assertThat(verify.get("checked").asLong()).isGreaterThanOrEqualTo(6);
  }

  @Test
  void pastTheWait_theClientIsToldTheApprovalId_andCallingAgainAfterTheApprovalRunsItOnce() throws Exception {
    McpSyncClient payer = client(agentToken("payer", List.of("mcp://gateway/ledger")));
    Map<String, Object> meta = Map.of("dev.keel/idempotency-key", "pay-late");
    McpSchema.CallToolResult first = call(payer, "ledger__post-entry", entry(5000.00), meta);
    assertThat(first.isError()).isTrue();
    String id = pendingApprovals().get(0).get("id").asString();
    assertThat(text(first)).contains("approval " + id + " is still pending").contains("\"pay-late\"");
    assertThat(posts()).isZero();

    // the operator who started the session the token is of may not approve it
    String bob = operator("bob", "approver@finance");
    assertThat(api.callAs(bob, "POST", "/v1/approvals/" + id + "/approve", "{}").statusCode()).isEqualTo(403);
    String carol = operator("carol", "approver@finance");
    assertThat(api.callAs(carol, "POST", "/v1/approvals/" + id + "/approve", "{}").statusCode()).isEqualTo(200);

    McpSchema.CallToolResult second = call(payer, "ledger__post-entry", entry(5000.00), meta);
    assertThat(second.isError()).as(text(second)).isFalse();
    McpSchema.CallToolResult third = call(payer, "ledger__post-entry", entry(5000.00), meta);
    assertThat(text(third)).isEqualTo(text(second));
    assertThat(posts()).isEqualTo(1);
  }

  @Test
  void aDeniedCall_returnsTheReason_andNeverRuns() throws Exception {
    McpSyncClient payer = client(agentToken("payer", List.of("mcp://gateway/ledger")));
    CompletableFuture<McpSchema.CallToolResult> waiting = CompletableFuture.supplyAsync(
        () -> call(payer, "ledger__post-entry", entry(7000.00), Map.of("dev.keel/idempotency-key", "pay-deny")));
    await().atMost(Duration.ofSeconds(5)).until(() -> pendingApprovals().size() == 1);
    String id = pendingApprovals().get(0).get("id").asString();
    String carol = operator("carol", "approver@finance");
    HttpResponse<String> denied = api.callAs(carol, "POST", "/v1/approvals/" + id + "/deny", "{\"reason\":\"duplicate invoice\"}");
    assertThat(denied.statusCode()).as(denied.body()).isEqualTo(200);

    McpSchema.CallToolResult r = waiting.get();
    assertThat(r.isError()).isTrue();
    assertThat(text(r)).isEqualTo("not run: denied by operator:carol: duplicate invoice");
    assertThat(posts()).isZero();
  }

  private List<String> auditOf(String query) throws Exception {
    JsonNode audit = TestServer.json(api.call("GET", "/v1/audit?" + query, null)).get("entries");
    List<String> kinds = new ArrayList<>();
    audit.forEach(e -> kinds.add(e.get("kind").asString() + " " + e.get("actor").asString()));
    return kinds;
  }

  @Test
  void anOperatorsCall_thatAPolicyRequiresApprovalFor_waitsForAnotherApprover_thenRuns() throws Exception {
    apply("""
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: big-entries}
        spec:
          applies_to: {tools: ["ledger/post-entry"]}
          require_approval_when: 'value_usd > 50000.0'
          reason: an entry above 50000 USD needs a second pair of eyes
        """);
    String alice = operator("alice", "operator@finance", "approver@finance");
    McpSyncClient c = client(alice);
    // below the policy's value: runs at once
    McpSchema.CallToolResult small = call(c, "ledger__post-entry", entry(400.00), Map.of());
    assertThat(small.isError()).as(text(small)).isFalse();
    assertThat(posts()).isEqualTo(1);

    Map<String, Object> meta = Map.of("dev.keel/idempotency-key", "big-1");
    CompletableFuture<McpSchema.CallToolResult> waiting = CompletableFuture.supplyAsync(
        () -> call(c, "ledger__post-entry", entry(60000.00), meta));
    await().atMost(Duration.ofSeconds(5)).until(() -> pendingApprovals().size() == 1);
    JsonNode approval = pendingApprovals().get(0);
    assertThat(approval.get("principal").asString()).isEqualTo("operator:alice");
    assertThat(approval.get("session_id").asString()).isEmpty();
    assertThat(approval.get("owner").asString()).isEqualTo("finance");
    assertThat(approval.toString()).contains("policy/big-entries").contains("a second pair of eyes");
    assertThat(posts()).isEqualTo(1);
    String id = approval.get("id").asString();

    // the operator who asked may not approve its own call, even holding approver
    HttpResponse<String> own = api.callAs(alice, "POST", "/v1/approvals/" + id + "/approve", "{}");
    assertThat(own.statusCode()).as(own.body()).isEqualTo(403);
    String carol = operator("carol", "approver@finance");
    assertThat(api.callAs(carol, "POST", "/v1/approvals/" + id + "/approve", "{\"reason\":\"ok\"}").statusCode()).isEqualTo(200);

    McpSchema.CallToolResult r = waiting.get();
    assertThat(r.isError()).as(text(r)).isFalse();
    assertThat(posts()).isEqualTo(2);
    assertThat(ledger.receivedCalls().getLast().meta()).containsEntry("dev.keel/principal", "operator:alice");
    assertThat(auditOf("tool=ledger/post-entry")).containsSubsequence(
        "policy_decision operator:alice", "approval_requested operator:alice", "approval_decided operator:carol",
        "policy_decision operator:alice", "tool_call operator:alice", "tool_result operator:alice");
  }

  @Test
  void anAgentInShadowMode_proposesSideEffectingCalls_andNeverRunsThem_butReads() throws Exception {
    apply("""
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: trainee, owner: finance}
        spec:
          instructions: Learns to pay invoices.
          mode: shadow
          model: {provider: scripted, name: s, script: [{turns: [{say: done}]}]}
          tools: [mcp://gateway/ledger]
          approval:
            on_action_value_usd_gt: 1000
        """);
    McpSyncClient trainee = client(agentToken("trainee", List.of("mcp://gateway/ledger")));
    Map<String, Object> meta = Map.of("dev.keel/idempotency-key", "shadow-1");
    // above the threshold too: shadow mode proposes, nothing waits for approval
    McpSchema.CallToolResult r = call(trainee, "ledger__post-entry", entry(12500.00), meta);
    assertThat(r.isError()).isFalse();
    assertThat(text(r)).isEqualTo("recorded as a proposed action and not executed: trainee is in shadow mode");
    assertThat(call(trainee, "ledger__post-entry", entry(12500.00), meta).content()).isEqualTo(r.content());
    assertThat(posts()).isZero();
    assertThat(pendingApprovals()).isEmpty();

    // a proposal that a policy forbids is denied, not proposed
    McpSchema.CallToolResult capped = call(trainee, "ledger__post-entry", entry(250000.00), Map.of());
    assertThat(text(capped)).startsWith("denied by policy/cap:");

    McpSchema.CallToolResult read = call(trainee, "ledger__read-entries", Map.of("invoice_id", "INV-1001"), Map.of());
    assertThat(read.isError()).as(text(read)).isFalse();
    assertThat(ledger.receivedCalls()).extracting(ReceivedCall::tool).containsExactly("read-entries");

    JsonNode proposed = TestServer.json(api.call("GET", "/v1/audit?agent=trainee&kind=action_proposed", null)).get("entries");
    assertThat(proposed).hasSize(1);
    assertThat(proposed.get(0).get("actor").asString()).isEqualTo("agent:trainee");
    assertThat(proposed.get(0).get("tool").asString()).isEqualTo("ledger/post-entry");
    assertThat(proposed.get(0).get("detail").toString()).contains("\"via\":\"mcp\"").contains("shadow-1").contains("12500");
    assertThat(auditOf("agent=trainee&tool=ledger/post-entry")).doesNotContain("tool_call agent:trainee")
        .contains("action_proposed agent:trainee");
  }

  @Test
  void anExpiredAgentToken_isRefusedWith401_sayingItExpired() throws Exception {
    Clock past = Clock.fixed(java.time.Instant.now().minus(Duration.ofMinutes(30)), java.time.ZoneOffset.UTC);
    Identity then = new Identity(api.server().store().signingKeys(), past, api.server().config().identity());
    String expired = then.issue(new Identity.Subject("payer", 1, "s_outside", "s_outside", List.of("mcp://gateway/ledger"),
        List.of("operator:bob"))).compact();
    String init = """
        {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},
         "clientInfo":{"name":"t","version":"1"}}}""";
    HttpResponse<String> r = api.http().send(HttpRequest.newBuilder(URI.create(api.server().url() + "/mcp"))
        .header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream")
        .header("Authorization", "Bearer " + expired)
        .POST(HttpRequest.BodyPublishers.ofString(init)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(401);
    assertThat(r.headers().firstValue("Content-Type")).hasValue("application/problem+json");
    assertThat(r.body()).contains("the token expired at").contains("ask for a new token");
    assertThat(r.body()).doesNotContain(expired);

    // the SDK client cannot even initialize with it; nothing runs
    assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> client(expired))).isNotNull();
    assertThat(posts()).isZero();
  }

  @Test
  void anApproverEditsTheArguments_theEditedCallRuns_andAnEditThatBreaksADenyRuleIsRefused() throws Exception {
    McpSyncClient payer = client(agentToken("payer", List.of("mcp://gateway/ledger")));
    String carol = operator("carol", "approver@finance");

    CompletableFuture<McpSchema.CallToolResult> edited = CompletableFuture.supplyAsync(
        () -> call(payer, "ledger__post-entry", entry(12500.00), Map.of("dev.keel/idempotency-key", "edit-ok")));
    await().atMost(Duration.ofSeconds(5)).until(() -> pendingApprovals().size() == 1);
    String id = pendingApprovals().get(0).get("id").asString();
    HttpResponse<String> ok = api.callAs(carol, "POST", "/v1/approvals/" + id + "/approve",
        "{\"reason\":\"only the first instalment\",\"arguments\":{\"invoice_id\":\"INV-1002\",\"supplier_id\":\"sup-globex\","
            + "\"amount\":2500.0,\"currency\":\"USD\"}}");
    assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
    McpSchema.CallToolResult r = edited.get();
    assertThat(r.isError()).as(text(r)).isFalse();
    assertThat(posts()).isEqualTo(1);
    assertThat(((Number) ledger.receivedCalls().getLast().arguments().get("amount")).doubleValue()).isEqualTo(2500.0);

    // an edit above the deny rule's cap: approved, but the re-check refuses it and nothing runs
    CompletableFuture<McpSchema.CallToolResult> raised = CompletableFuture.supplyAsync(
        () -> call(payer, "ledger__post-entry", entry(12500.00), Map.of("dev.keel/idempotency-key", "edit-cap")));
    await().atMost(Duration.ofSeconds(5)).until(() -> pendingApprovals().size() == 1);
    String id2 = pendingApprovals().get(0).get("id").asString();
    HttpResponse<String> capped = api.callAs(carol, "POST", "/v1/approvals/" + id2 + "/approve",
        "{\"arguments\":{\"invoice_id\":\"INV-1002\",\"supplier_id\":\"sup-globex\",\"amount\":250000.0,\"currency\":\"USD\"}}");
    assertThat(capped.statusCode()).as(capped.body()).isEqualTo(200);
    McpSchema.CallToolResult refused = raised.get();
    assertThat(refused.isError()).isTrue();
    assertThat(text(refused)).isEqualTo(
        "approved, but the call as approved is denied by policy/cap: no entry above 100000 USD is posted through the gateway");
    assertThat(posts()).isEqualTo(1);
    // a repeat of the key gets the refusal, and still runs nothing
    assertThat(text(call(payer, "ledger__post-entry", entry(12500.00), Map.of("dev.keel/idempotency-key", "edit-cap"))))
        .isEqualTo(text(refused));
    assertThat(posts()).isEqualTo(1);
  }
}
