package keel.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.stream.Stream;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Every route of the API against every role, for every owner, scoped to the owner of what the route
 * touches, and scoped to another owner, plus a revoked token, a garbage token and no token: each
 * call is either allowed (neither 401 nor 403) or refused (403 for an operator, 401 for no valid
 * token) exactly as the table below says.
 *
 * <p>The table is written by hand, from what each route should need, and never read from the
 * routes' {@link Access}: so a route declared with the wrong access fails here. A route in {@link
 * Api#routes()} without a row fails {@link #everyRoute_hasARow_andEveryRowARoute()}. Adding a row is
 * one line: the route's key, what it needs, and how to call it.
 */
class RouteAccessTest {

  // ---- the table ------------------------------------------------------------------------------

  /** Where the caller must hold the role. */
  enum Reach {
    /** Any valid token, whatever its roles. */
    ANY_CALLER,
    /** For the owner of what the call touches: {@link #OWNER}, the owner of the fixture's agent. */
    OWNER,
    /** For at least one owner, any owner (listings, which then show only what the caller covers). */
    SOMEWHERE,
    /** For every owner. */
    EVERYWHERE
  }

  /** What a route needs: a role (by wire name) and where. */
  record Need(String role, Reach reach) {}

  /** One row: what the route needs and how to call it. */
  record Row(Need need, Function<Fixture, Call> call) {}

  /** One HTTP call: method, path, JSON body (or null). */
  record Call(String method, String path, String body) {}

  static final String OWNER = "team-a";
  static final String OTHER_OWNER = "team-b";

  static Need need(String role, Reach reach) {
    return new Need(role, reach);
  }

  static Call get(String path) {
    return new Call("GET", path, null);
  }

  static Call post(String path, String body) {
    return new Call("POST", path, body);
  }

  static final Map<String, Row> TABLE = new LinkedHashMap<>();

  static void row(String route, Need need, Function<Fixture, Call> call) {
    if (TABLE.put(route, new Row(need, call)) != null) {
      throw new IllegalStateException("two rows for " + route);
    }
  }

  static {
    row("POST /v1/apply", need("admin", Reach.OWNER), f -> post("/v1/apply", f.applyBody()));
    row("GET /v1/agents", need("viewer", Reach.SOMEWHERE), f -> get("/v1/agents"));
    row("GET /v1/agents/{name}", need("viewer", Reach.OWNER), f -> get("/v1/agents/" + f.agent()));
    row("GET /v1/agents/{name}/revisions/{revision}", need("viewer", Reach.OWNER), f -> get("/v1/agents/" + f.agent() + "/revisions/1"));
    row("GET /v1/inventory", need("viewer", Reach.SOMEWHERE), f -> get("/v1/inventory"));
    row("POST /v1/sessions", need("operator", Reach.OWNER), f -> post("/v1/sessions", "{\"agent\":\"" + f.agent() + "\",\"message\":\"hi\"}"));
    row("GET /v1/sessions", need("viewer", Reach.SOMEWHERE), f -> get("/v1/sessions"));
    row("GET /v1/sessions/{id}", need("viewer", Reach.OWNER), f -> get("/v1/sessions/" + f.session()));
    row("POST /v1/sessions/{id}/messages", need("operator", Reach.OWNER), f -> post("/v1/sessions/" + f.session() + "/messages", "{\"message\":\"again\"}"));
    row("POST /v1/sessions/{id}/cancel", need("operator", Reach.OWNER), f -> post("/v1/sessions/" + f.session() + "/cancel", "{}"));
    row("POST /v1/sessions/{id}/resolve", need("approver", Reach.OWNER), f -> post("/v1/sessions/" + f.session() + "/resolve", "{\"call_id\":\"c-1\",\"resolution\":\"failed\"}"));
    row("POST /v1/sessions/{id}/resume", need("operator", Reach.OWNER), f -> post("/v1/sessions/" + f.session() + "/resume", null));
    row("GET /v1/sessions/{id}/events", need("viewer", Reach.OWNER), f -> get("/v1/sessions/" + f.session() + "/events"));
    row("GET /v1/sessions/{id}/stream", need("viewer", Reach.OWNER), f -> get("/v1/sessions/" + f.session() + "/stream"));
    row("GET /v1/sessions/{id}/trace", need("viewer", Reach.OWNER), f -> get("/v1/sessions/" + f.session() + "/trace"));
    row("GET /v1/openapi.json", need("viewer", Reach.ANY_CALLER), f -> get("/v1/openapi.json"));
    row("POST /v1/operators", need("admin", Reach.OWNER), f -> post("/v1/operators", "{\"name\":\"" + f.uniqueName() + "\",\"roles\":[\"viewer@" + OWNER + "\"]}"));
    row("GET /v1/operators", need("admin", Reach.SOMEWHERE), f -> get("/v1/operators"));
    row("POST /v1/operators/{name}/revoke", need("admin", Reach.OWNER), f -> post("/v1/operators/" + f.newOperator("viewer@" + OWNER) + "/revoke", null));
    row("POST /v1/operators/{name}/token", need("admin", Reach.OWNER), f -> post("/v1/operators/" + f.newOperator("operator@" + OWNER) + "/token", null));
    row("GET /v1/whoami", need("viewer", Reach.ANY_CALLER), f -> get("/v1/whoami"));
    row("GET /v1/jwks", need("viewer", Reach.ANY_CALLER), f -> get("/v1/jwks"));
    row("GET /v1/costs", need("viewer", Reach.SOMEWHERE), f -> get("/v1/costs"));
    row("GET /v1/agents/{name}/budget", need("viewer", Reach.OWNER), f -> get("/v1/agents/" + f.agent() + "/budget"));
    row("GET /v1/agents/{name}/revisions", need("viewer", Reach.OWNER), f -> get("/v1/agents/" + f.agent() + "/revisions"));
    row("GET /v1/agents/{name}/diff", need("viewer", Reach.OWNER), f -> get("/v1/agents/" + f.agent() + "/diff?from=1&to=1"));
    row("POST /v1/agents/{name}/rollback", need("admin", Reach.OWNER), f -> post("/v1/agents/" + f.agent() + "/rollback", "{\"revision\":1}"));
    row("POST /v1/agents/{name}/revisions/{revision}/approve", need("approver", Reach.OWNER),
        f -> post("/v1/agents/beta/revisions/" + f.pendingRevision() + "/approve", null));
    row("POST /v1/agents/{name}/revisions/{revision}/reject", need("approver", Reach.OWNER),
        f -> post("/v1/agents/beta/revisions/" + f.pendingRevision() + "/reject", "{\"reason\":\"not now\"}"));
    row("GET /metrics", need("viewer", Reach.EVERYWHERE), f -> get("/metrics"));
    row("GET /v1/tools", need("viewer", Reach.SOMEWHERE), f -> get("/v1/tools"));
    row("GET /v1/audit", need("viewer", Reach.SOMEWHERE), f -> get("/v1/audit"));
    row("GET /v1/audit/verify", need("viewer", Reach.EVERYWHERE), f -> get("/v1/audit/verify"));
    row("GET /v1/approvals", need("viewer", Reach.SOMEWHERE), f -> get("/v1/approvals"));
    row("GET /v1/approvals/stream", need("viewer", Reach.SOMEWHERE), f -> get("/v1/approvals/stream"));
    row("GET /v1/approvals/{id}", need("viewer", Reach.OWNER), f -> get("/v1/approvals/" + f.approval()));
    row("POST /v1/approvals/{id}/approve", need("approver", Reach.OWNER), f -> post("/v1/approvals/" + f.approval() + "/approve", "{\"reason\":\"ok\"}"));
    row("POST /v1/approvals/{id}/deny", need("approver", Reach.OWNER), f -> post("/v1/approvals/" + f.approval() + "/deny", "{\"reason\":\"no\"}"));
  }

  /** What each role includes, written out (approver does not include operator). */
  static final Map<String, Set<String>> INCLUDES = Map.of(
      "viewer", Set.of("viewer"),
      "operator", Set.of("viewer", "operator"),
      "approver", Set.of("viewer", "approver"),
      "admin", Set.of("viewer", "operator", "approver", "admin"));

  // ---- the callers ----------------------------------------------------------------------------

  /** Where a caller's one binding applies. */
  enum Scope {
    EVERY_OWNER,
    THE_OWNER,
    ANOTHER_OWNER
  }

  /** A caller: an operator with one binding, or a token that authenticates as no one. */
  record Who(String label, Optional<String> role, Optional<Scope> scope, Optional<String> token) {
    boolean authenticated() {
      return role.isPresent();
    }

    /** What the table says for this caller. */
    boolean allowedBy(Need need) {
      if (role.isEmpty()) {
        return false;
      }
      boolean hasRole = INCLUDES.get(role.get()).contains(need.role());
      return switch (need.reach()) {
        case ANY_CALLER -> true;
        case SOMEWHERE -> hasRole;
        case OWNER -> hasRole && scope.get() != Scope.ANOTHER_OWNER;
        case EVERYWHERE -> hasRole && scope.get() == Scope.EVERY_OWNER;
      };
    }
  }

  // ---- the fixture ----------------------------------------------------------------------------

  static final String AGENT =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: alpha, owner: team-a}
      spec:
        instructions: Answer.
        model: {provider: scripted, name: s, script: [{turns: [{say: "Hello."}]}]}
      """;

  /** The server and what the rows call: an agent of {@link #OWNER} and a session of it. */
  static final class Fixture {
    final KeelServer server;
    final String rootToken;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final AtomicInteger names = new AtomicInteger();
    String session;

    Fixture(KeelServer server, String rootToken) {
      this.server = server;
      this.rootToken = rootToken;
    }

    String agent() {
      return "alpha";
    }

    String session() {
      return session;
    }

    String applyBody() {
      return EventCodec.mapper().createObjectNode().put("yaml", AGENT).put("source", "alpha.yaml").toString();
    }

    /**
     * Applies (as the bootstrap admin) a widening change to agent "beta" of {@link #OWNER} and returns
     * the pending revision it creates; each call raises {@code max_steps} again, so there is always a
     * fresh pending revision that someone other than its applier can decide.
     */
    int pendingRevision() {
      int steps = 10 + names.incrementAndGet();
      String yaml = AGENT.replace("{name: alpha,", "{name: beta,") + "  max_steps: " + steps + "\n";
      Response r = send(post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "beta.yaml").toString()),
          Optional.of(rootToken));
      assertThat(r.status()).as(r.body()).isEqualTo(200);
      JsonNode result = EventCodec.mapper().readTree(r.body()).get("results").get(0);
      assertThat(result.get("status").asString()).as(r.body()).isIn("pending", "active");
      if (result.get("status").asString().equals("active")) {
        return pendingRevision(); // the first apply of beta creates it, active at once
      }
      return result.get("revision").asInt();
    }

    private String approval;

    /**
     * A pending (or, once a row decided it, decided) approval of an agent of {@link #OWNER}, from a
     * session the bootstrap admin started: a call over the agent's value threshold.
     */
    String approval() {
      if (approval != null) {
        return approval;
      }
      String yaml = """
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: payer, owner: team-a}
          spec:
            instructions: Pay.
            model: {provider: scripted, name: s, script: [{turns: [{call: [{tool: bank_pay, args: {amount: 2000}}]}, {say: done}]}]}
            tools: [mcp://gateway/bank]
            approval: {on_action_value_usd_gt: 1000}
          """;
      Response applied = send(post("/v1/apply", EventCodec.mapper().createObjectNode().put("yaml", yaml).put("source", "payer.yaml").toString()),
          Optional.of(rootToken));
      assertThat(applied.status()).as(applied.body()).isEqualTo(200);
      Response started = send(post("/v1/sessions", "{\"agent\":\"payer\",\"message\":\"pay\"}"), Optional.of(rootToken));
      assertThat(started.status()).as(started.body()).isEqualTo(201);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> {
        JsonNode list = EventCodec.mapper().readTree(send(get("/v1/approvals?agent=payer"), Optional.of(rootToken)).body()).get("approvals");
        if (list.isEmpty()) {
          return false;
        }
        approval = list.get(0).get("id").asString();
        return true;
      });
      return approval;
    }

    String uniqueName() {
      return "op-" + names.incrementAndGet();
    }

    /** Creates an operator (as the bootstrap admin) and returns its name. */
    String newOperator(String... roles) {
      return create(uniqueName(), roles).get("name").asString();
    }

    JsonNode create(String name, String... roles) {
      ObjectNode body = EventCodec.mapper().createObjectNode().put("name", name);
      var arr = body.putArray("roles");
      for (String r : roles) {
        arr.add(r);
      }
      Response r = send(post("/v1/operators", body.toString()), Optional.of(rootToken));
      assertThat(r.status()).as(r.body()).isEqualTo(201);
      return EventCodec.mapper().readTree(r.body());
    }

    /** Sends a call; reads at most a little of the body, so a stream answers as soon as it starts. */
    Response send(Call c, Optional<String> token) {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + c.path())).timeout(Duration.ofSeconds(30));
      token.ifPresent(t -> b.header("Authorization", "Bearer " + t));
      if (c.body() != null) {
        b.header("Content-Type", "application/json");
      }
      b.method(c.method(), c.body() == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(c.body()));
      try {
        HttpResponse<InputStream> r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        String body;
        try (InputStream in = r.body()) {
          body = c.path().endsWith("/stream") && r.statusCode() == 200 ? "" : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
        return new Response(r.statusCode(), body);
      } catch (Exception e) {
        throw new AssertionError(c.method() + " " + c.path() + " failed: " + e, e);
      }
    }
  }

  record Response(int status, String body) {}

  @TempDir static Path dir;
  static KeelServer server;
  static Fixture fixture;
  static final List<Who> CALLERS = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()));
    fixture = new Fixture(server, Files.readString(server.adminTokenFile()).strip());
    Response applied = fixture.send(post("/v1/apply", fixture.applyBody()), Optional.of(fixture.rootToken));
    assertThat(applied.status()).as(applied.body()).isEqualTo(200);
    Response started = fixture.send(post("/v1/sessions", "{\"agent\":\"alpha\",\"message\":\"hi\"}"), Optional.of(fixture.rootToken));
    assertThat(started.status()).as(started.body()).isEqualTo(201);
    fixture.session = EventCodec.mapper().readTree(started.body()).get("id").asString();

    for (String role : List.of("viewer", "operator", "approver", "admin")) {
      for (Scope scope : Scope.values()) {
        String binding = switch (scope) {
          case EVERY_OWNER -> role;
          case THE_OWNER -> role + "@" + OWNER;
          case ANOTHER_OWNER -> role + "@" + OTHER_OWNER;
        };
        String token = fixture.create(role + "-" + scope.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'), binding)
            .get("token").asString();
        CALLERS.add(new Who(binding, Optional.of(role), Optional.of(scope), Optional.of(token)));
      }
    }
    String revoked = fixture.create("gone", "admin").get("token").asString();
    assertThat(fixture.send(post("/v1/operators/gone/revoke", null), Optional.of(fixture.rootToken)).status()).isEqualTo(200);
    CALLERS.add(new Who("a revoked admin's token", Optional.empty(), Optional.empty(), Optional.of(revoked)));
    CALLERS.add(new Who("a garbage token", Optional.empty(), Optional.empty(), Optional.of("keel_not-a-token")));
    CALLERS.add(new Who("no token", Optional.empty(), Optional.empty(), Optional.empty()));
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  static String key(Api.Route r) {
    return r.method() + " " + r.path();
  }

  @Test
  void everyRoute_hasARow_andEveryRowARoute() {
    Set<String> routes = new TreeSet<>(server.routes().stream().map(RouteAccessTest::key).toList());
    Set<String> missing = new TreeSet<>(routes);
    missing.removeAll(TABLE.keySet());
    Set<String> stale = new TreeSet<>(TABLE.keySet());
    stale.removeAll(routes);
    assertThat(missing).as("routes without a row in RouteAccessTest's table: add one per route").isEmpty();
    assertThat(stale).as("rows for routes that no longer exist").isEmpty();
  }

  @Test
  void theCallers_coverEveryRoleAndScope_andTheTokensThatAreNoOne() {
    assertThat(CALLERS).hasSize(4 * 3 + 3);
    assertThat(CALLERS.stream().filter(Who::authenticated).map(w -> w.role().get() + "/" + w.scope().get()).distinct()).hasSize(12);
  }

  @TestFactory
  Stream<DynamicTest> everyRoute_allowsAndRefusesExactlyAsTheTableSays() {
    return server.routes().stream()
        .filter(r -> TABLE.containsKey(key(r)))
        .map(r -> DynamicTest.dynamicTest(key(r), () -> check(key(r), TABLE.get(key(r)))));
  }

  private static void check(String route, Row row) {
    List<String> wrong = new ArrayList<>();
    for (Who who : CALLERS) {
      Call call = row.call().apply(fixture);
      Response r = fixture.send(call, who.token());
      boolean expected = who.allowedBy(row.need());
      String outcome = who.label() + " -> " + r.status() + " (expected " + (expected ? "allowed" : who.authenticated() ? "403" : "401") + ")";
      if (r.status() >= 500) {
        wrong.add(outcome + ": " + r.body());
      } else if (expected && (r.status() == 401 || r.status() == 403)) {
        wrong.add(outcome + ": " + r.body());
      } else if (!expected && r.status() != (who.authenticated() ? 403 : 401)) {
        wrong.add(outcome);
      } else if (!expected) {
        assertThat(r.body()).as("a refusal is a problem document: %s %s", route, who.label()).contains("\"status\":" + r.status());
      }
    }
    assertThat(wrong).as(route + " needs " + row.need().role() + " " + row.need().reach()).isEmpty();
  }
}
