package keel.server;

import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import keel.control.Caller;
import keel.control.RevisionDiff;
import keel.control.Operators;
import keel.control.Role;
import keel.core.AgentDescriptor;
import keel.core.KeelException;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.AuditQuery;
import keel.data.AuditStore;
import keel.data.CostLedger;
import keel.data.InventoryStore;
import keel.data.SessionQuery;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.execution.SessionFrame;
import keel.execution.SessionService;
import keel.execution.Trace;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The HTTP API under {@code /v1}. Routes are declared once, in {@link #routes()}: the same table
 * registers the handlers and writes the OpenAPI document, so the document always matches the code.
 * Every route under {@code /v1} requires a bearer token: an operator's, or the server's admin token
 * (the bootstrap operator). Each route's {@link Access} is checked before its handler runs; the
 * handlers of listings show only what the caller's roles cover.
 */
final class Api {

  /** One route: method, path, what it does, its handler, and (for the document) its body. */
  record Route(String method, String path, String summary, Access access, Handler handler, Optional<String> requestSchema, int okStatus) {}

  /** Where the JWKS document is served without a token. */
  static final String JWKS_PATH = "/.well-known/jwks.json";
  /** How deep the trace of a session nests the traces of its sub-agents. */
  private static final int MAX_TRACE_DEPTH = 25;
  private static final int SSE_QUEUE = 4096;
  private static final long SSE_HEARTBEAT_SECONDS = 15;

  private final SessionService sessions;
  private final Store store;
  private final Inventory inventory;
  private final Operators operators;
  private final Health health;
  private final java.time.Clock clock;
  private final java.util.function.Supplier<String> metrics;
  private final Optional<keel.gateway.Gateway> gateway;
  private final ApprovalsApi approvals;

  /** What the probes report. */
  interface Health {
    boolean ready();

    String describe();
  }

  Api(SessionService sessions, Store store, Inventory inventory, Operators operators, java.util.function.Supplier<String> metrics, Health health) {
    this(sessions, store, inventory, operators, metrics, health, java.time.Clock.systemUTC());
  }

  Api(SessionService sessions, Store store, Inventory inventory, Operators operators, java.util.function.Supplier<String> metrics, Health health,
      java.time.Clock clock) {
    this(sessions, store, inventory, operators, metrics, health, clock, Optional.empty());
  }

  Api(SessionService sessions, Store store, Inventory inventory, Operators operators, java.util.function.Supplier<String> metrics, Health health,
      java.time.Clock clock, Optional<keel.gateway.Gateway> gateway) {
    this.gateway = gateway;
    this.metrics = metrics;
    this.sessions = sessions;
    this.store = store;
    this.inventory = inventory;
    this.operators = operators;
    this.health = health;
    this.clock = clock;
    this.approvals = new ApprovalsApi(sessions, store);
  }

  /** The approvals inbox, which the dashboard's Approvals page shares with {@code /v1/approvals}. */
  ApprovalsApi approvals() {
    return approvals;
  }

  List<Route> routes() {
    return List.of(
        new Route("POST", "/v1/apply", "Apply descriptors (multi-document YAML); each changed descriptor becomes a new revision. Needs admin for the owner of every descriptor in the file and of every descriptor it replaces; otherwise nothing is applied.", Access.listed(Role.ADMIN), this::apply,
            Optional.of("{\"type\":\"object\",\"required\":[\"yaml\"],\"properties\":{\"yaml\":{\"type\":\"string\"},\"source\":{\"type\":\"string\"},\"dry_run\":{\"type\":\"boolean\"}}}"), 200),
        new Route("GET", "/v1/agents", "List agents: latest revision, model, mode, sessions by status.", Access.listed(Role.VIEWER), this::listAgents, Optional.empty(), 200),
        new Route("GET", "/v1/agents/{name}", "Describe an agent: its latest descriptor and its revisions.", Access.agentPath(Role.VIEWER, "name"), this::describeAgent, Optional.empty(), 200),
        new Route("GET", "/v1/agents/{name}/revisions/{revision}", "One immutable revision of an agent.", Access.agentPath(Role.VIEWER, "name"), this::agentRevision, Optional.empty(), 200),
        new Route("GET", "/v1/inventory", "Every descriptor's latest revision, of every kind.", Access.listed(Role.VIEWER), this::listInventory, Optional.empty(), 200),
        new Route("POST", "/v1/sessions", "Start a session of an agent with a first message. Honours Idempotency-Key and traceparent headers.", Access.agentBody(Role.OPERATOR, "agent"), this::startSession,
            Optional.of("{\"type\":\"object\",\"required\":[\"agent\",\"message\"],\"properties\":{\"agent\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},\"task\":{\"type\":\"boolean\",\"description\":\"complete the session after its first answer\"}}}"), 201),
        new Route("GET", "/v1/sessions", "List sessions, newest first; filter by agent and status; page with before.", Access.listed(Role.VIEWER), this::listSessions, Optional.empty(), 200),
        new Route("GET", "/v1/sessions/{id}", "A session with its conversation, pending tool calls and usage.", Access.session(Role.VIEWER), this::getSession, Optional.empty(), 200),
        new Route("POST", "/v1/sessions/{id}/messages", "Send a message; it is stored before this answers. Honours Idempotency-Key.", Access.session(Role.OPERATOR), this::sendMessage,
            Optional.of("{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":{\"type\":\"string\"}}}"), 202),
        new Route("POST", "/v1/sessions/{id}/cancel", "Cancel a session at its next safe point.", Access.session(Role.OPERATOR), this::cancel,
            Optional.of("{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"}}}"), 202),
        new Route("POST", "/v1/sessions/{id}/resolve", "Decide a tool call whose outcome is unknown: succeeded, failed or retry.", Access.session(Role.APPROVER), this::resolve,
            Optional.of("{\"type\":\"object\",\"required\":[\"call_id\",\"resolution\"],\"properties\":{\"call_id\":{\"type\":\"string\"},\"resolution\":{\"enum\":[\"succeeded\",\"failed\",\"retry\"]},\"result\":{\"type\":\"string\"}}}"), 202),
        new Route("POST", "/v1/sessions/{id}/resume", "Let a session suspended on a model drift go on, accepting the reported version.", Access.session(Role.OPERATOR), this::resumeSession,
            Optional.empty(), 202),
        new Route("GET", "/v1/sessions/{id}/events", "A session's events after a sequence number.", Access.session(Role.VIEWER), this::events, Optional.empty(), 200),
        new Route("GET", "/v1/sessions/{id}/stream", "Server-sent events of a session, resumable with Last-Event-ID; model text arrives as delta events.", Access.session(Role.VIEWER), this::stream, Optional.empty(), 200),
        new Route("GET", "/v1/sessions/{id}/trace", "The session's trace: turns, model calls and tool calls as nested spans.", Access.session(Role.VIEWER), this::trace, Optional.empty(), 200),
        new Route("GET", "/v1/openapi.json", "This document.", Access.anyCaller(), this::openapi, Optional.empty(), 200),
        // revisions and change approval
        new Route("GET", "/v1/agents/{name}/revisions", "An agent's revision history: status, who applied and decided each, and why it widened.", Access.agentPath(Role.VIEWER, "name"), this::revisionHistory, Optional.empty(), 200),
        new Route("GET", "/v1/agents/{name}/diff", "A unified diff of two revisions' canonical YAML (?from=N&to=M), with whether the change widens what the agent may do.", Access.agentPath(Role.VIEWER, "name"), this::revisionDiff, Optional.empty(), 200),
        new Route("POST", "/v1/agents/{name}/rollback", "Roll back to an earlier revision (default: the one active before the active one) as a new revision; a rollback that widens waits for approval.", Access.agentPath(Role.ADMIN, "name"), this::rollback,
            Optional.of("{\"type\":\"object\",\"properties\":{\"revision\":{\"type\":\"integer\",\"minimum\":1}}}"), 200),
        new Route("POST", "/v1/agents/{name}/revisions/{revision}/approve", "Approve a pending revision: it becomes active. Whoever applied it may not approve it.", Access.agentPath(Role.APPROVER, "name"), this::approveRevision,
            Optional.empty(), 200),
        new Route("POST", "/v1/agents/{name}/revisions/{revision}/reject", "Reject a pending revision, saying why; the active revision stays in force.", Access.agentPath(Role.APPROVER, "name"), this::rejectRevision,
            Optional.of("{\"type\":\"object\",\"required\":[\"reason\"],\"properties\":{\"reason\":{\"type\":\"string\"}}}"), 200),
        // ---- operators and who am I
        new Route("POST", "/v1/operators", "Create an operator with roles (viewer, operator, approver, admin, each optionally @owner); the answer holds its token, shown only this once. An admin scoped to owners may give only roles scoped to owners it administers.", Access.listed(Role.ADMIN), this::createOperator,
            Optional.of("{\"type\":\"object\",\"required\":[\"name\",\"roles\"],\"properties\":{\"name\":{\"type\":\"string\"},\"roles\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"examples\":[\"viewer\",\"approver@finance\"]}}}}"), 201),
        new Route("GET", "/v1/operators", "List the operators the caller manages, revoked ones included; never their tokens.", Access.listed(Role.ADMIN), this::listOperators, Optional.empty(), 200),
        new Route("POST", "/v1/operators/{name}/revoke", "Revoke an operator; its token stops working for the next request.", Access.listed(Role.ADMIN), this::revokeOperator, Optional.empty(), 200),
        new Route("POST", "/v1/operators/{name}/token", "Issue a new token for an operator, shown only this once; its previous token stops working.", Access.listed(Role.ADMIN), this::issueOperatorToken, Optional.empty(), 200),
        new Route("GET", "/v1/whoami", "Who the bearer token stands for: the principal and its roles.", Access.anyCaller(), this::whoami, Optional.empty(), 200),
        new Route("GET", "/v1/jwks", "The public keys that verify session tokens (a JWKS document); also served without a token at /.well-known/jwks.json.", Access.anyCaller(), this::jwks, Optional.empty(), 200),
        new Route("GET", "/v1/costs", "Cost ledger totals over a time range (from, to: dates or instants, UTC), grouped by any of agent, owner, day, kind (group_by), filtered by agent and owner; only owners the caller may view.", Access.listed(Role.VIEWER), this::costs, Optional.empty(), 200),
        new Route("GET", "/v1/agents/{name}/budget", "An agent's budgets now: for each limit its window, what is used and reserved, and the percentage.", Access.agentPath(Role.VIEWER, "name"), this::agentBudget, Optional.empty(), 200),
        // ---- observability
        new Route("GET", "/metrics", "Prometheus metrics of this node and its store (text format); needs viewer for every owner.", Access.global(Role.VIEWER), this::metrics, Optional.empty(), 200),
        // ---- the MCP gateway
        new Route("GET", "/v1/tools", "The MCP gateway's tool catalog: each tool of the McpServers the caller may view, with its version, schema hash, side effects, price, whether its schema changed, and its schemas; starts servers not yet started. Optional server= filter.", Access.listed(Role.VIEWER), this::tools, Optional.empty(), 200),
        // the audit log
        new Route("GET", "/v1/audit", "Audit log entries, oldest first, filtered by kind, agent, owner, session, tool, since and until (UTC instants or dates), after (a sequence number, for paging) and limit (1 to 1000); only owners the caller may view.", Access.listed(Role.VIEWER), this::audit, Optional.empty(), 200),
        new Route("GET", "/v1/audit/verify", "Walks the audit log's hash chain: intact (entries checked, head hash) or the first broken entry and why; expect_head=HASH also checks an externally kept earlier head is in the chain.", Access.global(Role.VIEWER), this::auditVerify, Optional.empty(), 200),
        // ---- approvals: external calls that wait for a human
        new Route("GET", "/v1/approvals", "The approvals inbox (?status=pending|approved|denied|expired|withdrawn|all, default pending; ?agent=; ?limit=), newest first; only owners the caller may view.", Access.listed(Role.VIEWER), approvals::list, Optional.empty(), 200),
        new Route("GET", "/v1/approvals/stream", "Server-sent events of approvals requested, decided, expired and withdrawn (on any node), for the owners the caller may view.", Access.listed(Role.VIEWER), approvals::stream, Optional.empty(), 200),
        new Route("GET", "/v1/approvals/{id}", "One approval: the action, its value, the reasons (each naming its rule), the agent's reasoning, and the decision.", Access.listed(Role.VIEWER), approvals::get, Optional.empty(), 200),
        new Route("POST", "/v1/approvals/{id}/approve", "Approve a pending call, optionally editing its arguments (the edited call is checked again). Needs approver for the agent's owner; never the session's requester; one of spec.approval.approvers when listed.", Access.listed(Role.APPROVER), approvals::approve,
            Optional.of("{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"},\"arguments\":{\"type\":\"object\"}}}"), 200),
        new Route("POST", "/v1/approvals/{id}/deny", "Deny a pending call with a reason, which the model reads. Same rules as approve.", Access.listed(Role.APPROVER), approvals::deny,
            Optional.of("{\"type\":\"object\",\"required\":[\"reason\"],\"properties\":{\"reason\":{\"type\":\"string\"}}}"), 200));
  }

  void install(JavalinConfig cfg) {
    cfg.routes.before("/v1/*", this::authenticate);
    cfg.routes.before("/metrics", this::authenticate);
    for (Route r : routes()) {
      Handler checked = ctx -> {
        authorize(ctx, r.access());
        r.handler().handle(ctx);
      };
      switch (r.method()) {
        case "GET" -> cfg.routes.get(r.path(), checked);
        case "POST" -> cfg.routes.post(r.path(), checked);
        default -> throw new IllegalStateException("unsupported method " + r.method());
      }
    }
    cfg.routes.get("/healthz", ctx -> ctx.json(Views.JSON.createObjectNode().put("status", "ok")));
    // public by design: anyone may verify a session token a Keel agent presents
    cfg.routes.get(JWKS_PATH, this::jwks);
    cfg.routes.get("/readyz", ctx -> {
      boolean ready = health.ready();
      ctx.status(ready ? 200 : 503).contentType("application/json")
          .result(Views.JSON.createObjectNode().put("status", ready ? "ready" : "not ready").put("store", health.describe()).toString());
    });
    cfg.routes.exception(KeelException.class, (e, ctx) -> Problems.write(ctx, e));
    cfg.routes.exception(Exception.class, (e, ctx) -> Problems.unexpected(ctx, e));
  }

  private void authenticate(Context ctx) {
    String header = ctx.header("Authorization");
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      throw new KeelException.Unauthenticated(
          "this route needs an Authorization: Bearer <token> header; a local server's admin token is in its data directory's "
              + AdminToken.FILE_NAME);
    }
    Caller caller = operators.authenticate(header.substring(7).strip())
        .orElseThrow(() -> new KeelException.Unauthenticated(
            "the bearer token is not valid for this server: it is unknown, its operator was revoked, or a newer token replaced it"));
    ctx.attribute(CALLER, caller);
  }

  /**
   * Checks the caller against a route's {@link Access}, before its handler runs. A caller that
   * holds the role for no owner at all is refused the same way whatever it asks for; a caller
   * scoped to other owners learns that the thing exists but not what it is.
   */
  void authorize(Context ctx, Access access) {
    Caller caller = caller(ctx);
    Role role = access.role();
    boolean allowed =
        switch (access.scope()) {
          case ANY -> true;
          case GLOBAL -> caller.mayEverywhere(role);
          case LISTED -> caller.mayAnywhere(role);
          case AGENT_PATH -> caller.may(role, agentOwner(ctx.pathParam(access.param())));
          case AGENT_BODY -> caller.may(role, agentOwner(requiredString(body(ctx), access.param())));
          case SESSION_PATH -> caller.may(role, sessionOwner(ctx.pathParam(access.param())));
        };
    if (!allowed) {
      throw new KeelException.Forbidden(caller.principal() + " may not " + ctx.method() + " " + ctx.path()
          + ": it needs the role " + access.describe() + "; it has " + (caller.bindings().isEmpty() ? "no roles" : caller.bindings()));
    }
  }

  /** Whether the token a stream was opened with still lets its caller view the session. */
  private boolean stillAllowed(Context ctx, String sessionId) {
    String header = ctx.header("Authorization");
    Optional<Caller> now = header == null ? Optional.empty() : operators.authenticate(header.substring(7).strip());
    return now.isPresent() && now.get().may(Role.VIEWER, sessionOwner(sessionId));
  }

  private String agentOwner(String name) {
    return store.inventory().latest("Agent", name)
        .orElseThrow(() -> new KeelException.NotFound("there is no agent named \"" + name + "\""))
        .owner();
  }

  private String sessionOwner(String id) {
    return store.events().session(id)
        .orElseThrow(() -> new KeelException.NotFound("there is no session \"" + id + "\""))
        .owner();
  }

  private static final String CALLER = "keel.caller";

  /** Records who is calling, for {@link #authorize} and {@link #caller}: the dashboard signs in with a cookie, not a header. */
  static void attachCaller(Context ctx, Caller caller) {
    ctx.attribute(CALLER, caller);
  }

  static Caller caller(Context ctx) {
    Caller c = ctx.attribute(CALLER);
    if (c == null) {
      throw new KeelException.Unauthenticated("this route needs an Authorization: Bearer <token> header");
    }
    return c;
  }

  private static String principal(Context ctx) {
    return caller(ctx).principal();
  }

  private static ObjectNode body(Context ctx) {
    String text = ctx.body();
    if (text.isBlank()) {
      return Views.JSON.createObjectNode();
    }
    try {
      JsonNode n = Views.JSON.readTree(text);
      if (n instanceof ObjectNode o) {
        return o;
      }
      throw new KeelException.Invalid("request body: expected a JSON object");
    } catch (JacksonException e) {
      throw new KeelException.Invalid("request body: not valid JSON: " + e.getOriginalMessage());
    }
  }

  private static String requiredString(ObjectNode body, String field) {
    JsonNode v = body.get(field);
    if (v == null || !v.isString()) {
      throw new KeelException.Invalid(field + ": expected a string" + (v == null ? " (required)" : ", got " + v));
    }
    return v.asString();
  }

  private static int intParam(Context ctx, String name, int def, int min, int max) {
    String v = ctx.queryParam(name);
    if (v == null || v.isBlank()) {
      return def;
    }
    try {
      int i = Integer.parseInt(v);
      if (i < min || i > max) {
        throw new KeelException.Invalid(name + ": expected a number from " + min + " to " + max + ", got " + v);
      }
      return i;
    } catch (NumberFormatException e) {
      throw new KeelException.Invalid(name + ": expected a number, got \"" + v + "\"");
    }
  }

  private static long longParam(String name, String v) {
    try {
      long l = Long.parseLong(v.strip());
      if (l < 0) {
        throw new NumberFormatException();
      }
      return l;
    } catch (NumberFormatException e) {
      throw new KeelException.Invalid(name + ": expected a non-negative number, got \"" + v + "\"");
    }
  }

  private static void json(Context ctx, int status, JsonNode node) {
    ctx.status(status).contentType("application/json").result(Views.JSON.writeValueAsString(node));
  }

  // ---- inventory

  private void apply(Context ctx) {
    String yaml;
    String source = "request";
    boolean dryRun = "true".equals(ctx.queryParam("dry_run"));
    String type = Optional.ofNullable(ctx.contentType()).orElse("").toLowerCase(Locale.ROOT);
    if (type.contains("yaml") || type.startsWith("text/")) {
      yaml = ctx.body();
    } else {
      ObjectNode b = body(ctx);
      yaml = requiredString(b, "yaml");
      if (b.has("source")) {
        source = requiredString(b, "source");
      }
      dryRun = dryRun || b.path("dry_run").asBoolean(false);
    }
    List<Inventory.Result> results = inventory.apply(yaml, source, caller(ctx), dryRun);
    ObjectNode out = Views.JSON.createObjectNode();
    out.put("dry_run", dryRun);
    ArrayNode arr = out.putArray("results");
    for (Inventory.Result r : results) {
      ObjectNode o = arr.addObject();
      o.put("kind", r.kind());
      o.put("name", r.name());
      o.put("revision", r.revision());
      String result = !r.created() ? "unchanged" : r.status() == InventoryStore.Status.PENDING ? "pending_approval" : r.revision() == 1 ? "created" : "changed";
      o.put("result", result);
      o.put("status", r.status().wireName());
      o.put("applied_by", r.appliedBy());
      r.superseded().ifPresent(n -> o.put("superseded_revision", n));
      Views.review(o, r.review());
      ArrayNode w = o.putArray("warnings");
      r.warnings().forEach(w::add);
    }
    json(ctx, 200, out);
  }

  private void listAgents(Context ctx) {
    java.util.function.Predicate<String> visible = caller(ctx).owners(Role.VIEWER);
    List<ObjectNode> out = new ArrayList<>();
    Map<String, InventoryStore.Revision> pending = new HashMap<>();
    store.inventory().pendingOfKind("Agent").forEach(p -> pending.put(p.name(), p));
    for (InventoryStore.Revision r : store.inventory().latestOfKind("Agent")) {
      if (!visible.test(r.owner())) {
        continue;
      }
      AgentDescriptor a = sessions.catalog().revision(r.name(), r.number());
      ObjectNode o = Views.agent(a, r, store.events().countByStatus(r.name()));
      Optional.ofNullable(pending.get(r.name())).ifPresent(p -> o.set("pending", Views.revision(p, false)));
      out.add(o);
    }
    json(ctx, 200, Views.JSON.createObjectNode().set("agents", Views.array(out)));
  }

  private void describeAgent(Context ctx) {
    String name = ctx.pathParam("name");
    InventoryStore.Revision r = store.inventory().latest("Agent", name)
        .orElseThrow(() -> new KeelException.NotFound("there is no agent named \"" + name + "\""));
    AgentDescriptor a = sessions.catalog().revision(name, r.number());
    ObjectNode o = Views.agent(a, r, store.events().countByStatus(name));
    o.set("descriptor", Views.JSON.readTree(r.spec()));
    store.inventory().pending("Agent", name).ifPresent(p -> o.set("pending", Views.revision(p, false)));
    o.set("revisions", Views.array(store.inventory().history("Agent", name).stream().map(x -> Views.revision(x, false)).toList()));
    json(ctx, 200, o);
  }

  private void agentRevision(Context ctx) {
    String name = ctx.pathParam("name");
    int number = (int) longParam("revision", ctx.pathParam("revision"));
    InventoryStore.Revision r = store.inventory().revision("Agent", name, number)
        .orElseThrow(() -> new KeelException.NotFound("agent \"" + name + "\" has no revision " + number));
    json(ctx, 200, Views.revision(r, true));
  }

  private void listInventory(Context ctx) {
    List<ObjectNode> out = new ArrayList<>();
    java.util.function.Predicate<String> visible = caller(ctx).owners(Role.VIEWER);
    for (String kind : List.of("Agent", "McpServer", "Policy")) {
      store.inventory().latestOfKind(kind).stream().filter(r -> visible.test(r.owner())).forEach(r -> out.add(Views.revision(r, false)));
      store.inventory().pendingOfKind(kind).stream().filter(r -> visible.test(r.owner())).forEach(r -> out.add(Views.revision(r, false)));
    }
    json(ctx, 200, Views.JSON.createObjectNode().set("descriptors", Views.array(out)));
  }

  // ---- revisions and change approval

  private void revisionHistory(Context ctx) {
    String name = ctx.pathParam("name");
    List<InventoryStore.Revision> history = inventory.revisions().history(name);
    ObjectNode o = Views.JSON.createObjectNode();
    o.put("agent", name);
    history.stream().filter(r -> r.status() == InventoryStore.Status.ACTIVE).findFirst().ifPresent(r -> o.put("active_revision", r.number()));
    history.stream().filter(r -> r.status() == InventoryStore.Status.PENDING).findFirst().ifPresent(r -> o.put("pending_revision", r.number()));
    o.set("revisions", Views.array(history.stream().map(r -> Views.revision(r, false)).toList()));
    json(ctx, 200, o);
  }

  private void revisionDiff(Context ctx) {
    String name = ctx.pathParam("name");
    int from = requiredRevisionParam(ctx, "from");
    int to = requiredRevisionParam(ctx, "to");
    RevisionDiff d = inventory.revisions().diff(name, from, to);
    ObjectNode o = Views.JSON.createObjectNode();
    o.put("agent", name);
    o.set("from", Views.revision(d.from(), false));
    o.set("to", Views.revision(d.to(), false));
    o.put("diff", d.unified().isEmpty() ? "" : String.join("\n", d.unified()) + "\n");
    Views.review(o, d.review().toStore());
    json(ctx, 200, o);
  }

  private static int requiredRevisionParam(Context ctx, String param) {
    String v = ctx.queryParam(param);
    if (v == null || v.isBlank()) {
      throw new KeelException.Invalid(param + ": required: the revision number to compare, e.g. ?from=1&to=2");
    }
    return revisionNumber(param, v);
  }

  private static int revisionNumber(String what, String v) {
    try {
      int n = Integer.parseInt(v.strip());
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new KeelException.Invalid(what + ": expected a revision number (1 or more), got \"" + v + "\"");
  }

  private void rollback(Context ctx) {
    String name = ctx.pathParam("name");
    ObjectNode b = body(ctx);
    Optional<Integer> to = Optional.empty();
    JsonNode rev = b.get("revision");
    if (rev != null && !rev.isNull()) {
      if (!rev.isIntegralNumber() || !rev.canConvertToInt() || rev.asInt() < 1) {
        throw new KeelException.Invalid("revision: expected a revision number (1 or more), got " + rev);
      }
      to = Optional.of(rev.asInt());
    }
    InventoryStore.Applied a = inventory.revisions().rollback(name, to, caller(ctx));
    ObjectNode o = Views.revision(a.revision(), false);
    o.put("result", !a.created() ? "unchanged" : a.revision().status() == InventoryStore.Status.PENDING ? "pending_approval" : "rolled_back");
    a.superseded().ifPresent(s -> o.put("superseded_revision", s.number()));
    json(ctx, 200, o);
  }

  private void approveRevision(Context ctx) {
    String name = ctx.pathParam("name");
    int number = revisionNumber("revision", ctx.pathParam("revision"));
    json(ctx, 200, Views.revision(inventory.revisions().approve(name, number, caller(ctx)), false));
  }

  private void rejectRevision(Context ctx) {
    String name = ctx.pathParam("name");
    int number = revisionNumber("revision", ctx.pathParam("revision"));
    JsonNode reason = body(ctx).get("reason");
    if (reason == null || !reason.isString() || reason.asString().isBlank()) {
      throw new KeelException.Invalid("reason: required: a string saying why revision " + number + " is rejected"
          + (reason == null ? "" : ", got " + reason));
    }
    json(ctx, 200, Views.revision(inventory.revisions().reject(name, number, caller(ctx), reason.asString()), false));
  }

  // ---- sessions

  private void startSession(Context ctx) {
    ObjectNode b = body(ctx);
    String agent = requiredString(b, "agent");
    String message = requiredString(b, "message");
    boolean task = b.path("task").asBoolean(false);
    SessionRecord r = sessions.start(new SessionService.Start(
        agent, message, principal(ctx), task, Optional.ofNullable(ctx.header("Idempotency-Key")), traceIdOf(ctx.header("traceparent")), parentSpanOf(ctx.header("traceparent"))));
    json(ctx, 201, Views.session(r));
  }

  /** The trace id of a W3C traceparent header ({@code 00-<trace>-<span>-<flags>}), if valid. */
  static Optional<String> traceIdOf(String traceparent) {
    if (traceparent == null) {
      return Optional.empty();
    }
    String[] parts = traceparent.strip().split("-");
    if (parts.length >= 4 && parts[0].matches("[0-9a-f]{2}") && parts[1].matches("[0-9a-f]{32}") && !parts[0].equals("ff")) {
      return Optional.of(parts[1]);
    }
    return Optional.empty();
  }

  /** The parent span id of a W3C traceparent header, if the header is valid and the id is not all zeros. */
  static Optional<String> parentSpanOf(String traceparent) {
    if (traceIdOf(traceparent).isEmpty()) {
      return Optional.empty();
    }
    String[] parts = traceparent.strip().split("-");
    return parts[2].matches("[0-9a-f]{16}") && !parts[2].equals("0".repeat(16)) ? Optional.of(parts[2]) : Optional.empty();
  }

  private void metrics(Context ctx) {
    ctx.status(200).contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.get());
  }

  private void listSessions(Context ctx) {
    Optional<SessionStatus> status = Optional.ofNullable(ctx.queryParam("status")).filter(s -> !s.isBlank()).map(SessionStatus::fromWire);
    SessionQuery q = new SessionQuery(
        Optional.ofNullable(ctx.queryParam("agent")).filter(s -> !s.isBlank()),
        status,
        intParam(ctx, "limit", 50, 1, 1000),
        Optional.ofNullable(ctx.queryParam("before")).filter(s -> !s.isBlank()));
    Caller caller = caller(ctx);
    if (!caller.mayEverywhere(Role.VIEWER)) {
      q = q.withOwners(caller.scopedOwners(Role.VIEWER));
    }
    json(ctx, 200, Views.JSON.createObjectNode().set("sessions", Views.array(sessions.list(q).stream().map(Views::session).toList())));
  }

  private void getSession(Context ctx) {
    json(ctx, 200, Views.sessionView(sessions.view(ctx.pathParam("id"))));
  }

  private void sendMessage(Context ctx) {
    ObjectNode b = body(ctx);
    var in = sessions.send(ctx.pathParam("id"), requiredString(b, "message"), principal(ctx), Optional.ofNullable(ctx.header("Idempotency-Key")));
    json(ctx, 202, Views.input(in));
  }

  private void cancel(Context ctx) {
    ObjectNode b = body(ctx);
    String reason = b.has("reason") ? requiredString(b, "reason") : "cancelled through the API";
    sessions.cancel(ctx.pathParam("id"), principal(ctx), reason);
    json(ctx, 202, Views.JSON.createObjectNode().put("session_id", ctx.pathParam("id")).put("status", "cancelling"));
  }

  private void resolve(Context ctx) {
    ObjectNode b = body(ctx);
    String result = b.has("result") ? requiredString(b, "result") : "";
    sessions.resolve(ctx.pathParam("id"), requiredString(b, "call_id"), requiredString(b, "resolution"), result, principal(ctx));
    json(ctx, 202, Views.JSON.createObjectNode().put("session_id", ctx.pathParam("id")).put("call_id", requiredString(b, "call_id")));
  }

  private void resumeSession(Context ctx) {
    sessions.resume(ctx.pathParam("id"), principal(ctx));
    json(ctx, 202, Views.JSON.createObjectNode().put("session_id", ctx.pathParam("id")).put("status", "resuming"));
  }

  private void events(Context ctx) {
    String id = ctx.pathParam("id");
    long after = ctx.queryParam("after") == null ? 0 : longParam("after", ctx.queryParam("after"));
    int limit = intParam(ctx, "limit", 1000, 1, 10_000);
    List<StoredEvent> events = sessions.events(id, after, limit);
    json(ctx, 200, Views.JSON.createObjectNode().set("events", Views.array(events.stream().map(Views::event).toList())));
  }

  private void trace(Context ctx) {
    String id = ctx.pathParam("id");
    sessions.record(id);
    json(ctx, 200, Views.span(traceOf(id, 0, caller(ctx).owners(Role.VIEWER))));
  }

  /**
   * A session's whole trace, sub-agents nested, as {@code GET /v1/sessions/{id}/trace} shows it to
   * a caller who may view the owners {@code visible} accepts.
   */
  Trace.Span traceOf(String id, java.util.function.Predicate<String> visible) {
    return traceOf(id, 0, visible);
  }

  /**
   * A session's trace with the traces of the sub-agents it spawned nested under their calls; a
   * sub-agent session of an owner the caller may not view is left out, like its own routes.
   */
  private Trace.Span traceOf(String id, int depth, java.util.function.Predicate<String> visible) {
    List<StoredEvent> all = store.events().eventsAfter(id, 0);
    return Trace.of(id, all, child -> depth >= MAX_TRACE_DEPTH
        || store.events().session(child).filter(r -> visible.test(r.owner())).isEmpty()
        ? Optional.empty()
        : Optional.of(traceOf(child, depth + 1, visible)));
  }

  private void jwks(Context ctx) {
    ctx.status(200).header("Cache-Control", "public, max-age=60").contentType("application/json")
        .result(sessions.identity().jwks());
  }

  /**
   * Streams a session as server-sent events: first the stored events after {@code Last-Event-ID}
   * (or {@code ?after=}), then live ones. The handler blocks on its own virtual thread until the
   * client goes away; a subscriber that falls too far behind is told to reconnect.
   */
  private void stream(Context ctx) throws IOException, InterruptedException {
    String id = ctx.pathParam("id");
    sessions.record(id);
    String lastId = Optional.ofNullable(ctx.header("Last-Event-ID")).orElse(ctx.queryParam("after"));
    long after = lastId == null || lastId.isBlank() ? 0 : longParam("Last-Event-ID", lastId);
    BlockingQueue<SessionFrame> queue = new ArrayBlockingQueue<>(SSE_QUEUE);
    AtomicBoolean overflow = new AtomicBoolean();
    ctx.res().setStatus(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setCharacterEncoding("UTF-8");
    ctx.res().setHeader("Cache-Control", "no-cache");
    ctx.res().setHeader("X-Accel-Buffering", "no");
    OutputStream out = ctx.res().getOutputStream();
    try (AutoCloseable sub = sessions.subscribe(id, f -> {
      if (!queue.offer(f)) {
        overflow.set(true);
      }
    })) {
      write(out, ": stream of session " + id + "\n\n");
      while (true) {
        List<StoredEvent> page = sessions.events(id, after, 1000);
        for (StoredEvent e : page) {
          writeEvent(out, e);
          after = e.seq();
        }
        if (page.size() < 1000) {
          break;
        }
      }
      while (true) {
        SessionFrame f = queue.poll(SSE_HEARTBEAT_SECONDS, TimeUnit.SECONDS);
        if (overflow.get()) {
          write(out, "event: overflow\ndata: {\"reconnect_after\":" + after + "}\n\n");
          return;
        }
        if (f == null) {
          if (!stillAllowed(ctx, id)) {
            // the operator was revoked, its token replaced, or its roles no longer cover the session
            write(out, "event: unauthorized\ndata: {\"detail\":\"the token no longer allows following this session\"}\n\n");
            return;
          }
          write(out, ": keep-alive\n\n");
          continue;
        }
        switch (f) {
          case SessionFrame.Event e -> {
            if (e.event().seq() > after) {
              // a gap means frames were published before this subscriber caught up: read them
              if (e.event().seq() > after + 1) {
                for (StoredEvent missed : sessions.events(id, after, (int) (e.event().seq() - after - 1))) {
                  writeEvent(out, missed);
                  after = missed.seq();
                }
              }
              writeEvent(out, e.event());
              after = e.event().seq();
            }
          }
          case SessionFrame.Delta d ->
              write(out, "event: delta\ndata: " + Views.JSON.createObjectNode().put("text", d.text()) + "\n\n");
        }
      }
    } catch (IOException gone) {
      // the client disconnected
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static void writeEvent(OutputStream out, StoredEvent e) throws IOException {
    write(out, "id: " + e.seq() + "\nevent: " + e.event().type() + "\ndata: " + Views.JSON.writeValueAsString(Views.event(e)) + "\n\n");
  }

  private static void write(OutputStream out, String s) throws IOException {
    out.write(s.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  // ---- operators

  private void createOperator(Context ctx) {
    ObjectNode b = body(ctx);
    String name = requiredString(b, "name");
    JsonNode rolesNode = b.get("roles");
    if (rolesNode == null || !rolesNode.isArray()) {
      throw new KeelException.Invalid("roles: expected an array of roles such as [\"viewer\", \"approver@finance\"]"
          + (rolesNode == null ? " (required)" : ", got " + rolesNode));
    }
    List<String> roles = new ArrayList<>();
    for (int i = 0; i < rolesNode.size(); i++) {
      JsonNode r = rolesNode.get(i);
      if (!r.isString()) {
        throw new KeelException.Invalid("roles[" + i + "]: expected a string such as \"viewer\" or \"approver@finance\", got " + r);
      }
      roles.add(r.asString());
    }
    Operators.Issued issued = operators.create(caller(ctx), name, roles);
    json(ctx, 201, Views.operator(issued.operator()).put("token", issued.token()));
  }

  private void listOperators(Context ctx) {
    List<ObjectNode> out = operators.list(caller(ctx)).stream().map(Views::operator).toList();
    json(ctx, 200, Views.JSON.createObjectNode().set("operators", Views.array(out)));
  }

  private void revokeOperator(Context ctx) {
    json(ctx, 200, Views.operator(operators.revoke(caller(ctx), ctx.pathParam("name"))));
  }

  private void issueOperatorToken(Context ctx) {
    Operators.Issued issued = operators.issueToken(caller(ctx), ctx.pathParam("name"));
    json(ctx, 200, Views.operator(issued.operator()).put("token", issued.token()));
  }

  private void whoami(Context ctx) {
    Caller c = caller(ctx);
    ObjectNode o = Views.JSON.createObjectNode();
    o.put("principal", c.principal());
    ArrayNode roles = o.putArray("roles");
    c.bindings().forEach(b -> roles.add(b.toString()));
    json(ctx, 200, o);
  }

  private void openapi(Context ctx) {
    json(ctx, 200, OpenApi.document(routes()));
  }

  // ---- costs and budgets

  private void costs(Context ctx) {
    CostsQuery q = CostsQuery.parse(ctx.queryParam("from"), ctx.queryParam("to"), ctx.queryParam("group_by"),
        ctx.queryParam("agent"), ctx.queryParam("owner"), clock.instant());
    List<CostLedger.Row> rows = store.ledger().totals(q.query(), caller(ctx).owners(Role.VIEWER));
    json(ctx, 200, Views.costs(q, rows));
  }

  private void agentBudget(Context ctx) {
    String name = ctx.pathParam("name");
    InventoryStore.Revision r = store.inventory().latest("Agent", name)
        .orElseThrow(() -> new KeelException.NotFound("there is no agent named \"" + name + "\""));
    long blocked = store.events().countByStatus(name).getOrDefault(SessionStatus.BUDGET_BLOCKED, 0L);
    json(ctx, 200, Views.budget(name, r.number(), sessions.budgets().status(name), blocked));
  }

  // ---- the MCP gateway

  private void tools(Context ctx) {
    java.util.function.Predicate<String> visible = caller(ctx).owners(Role.VIEWER);
    Optional<String> server = Optional.ofNullable(ctx.queryParam("server")).filter(x -> !x.isBlank());
    List<keel.gateway.CatalogEntry> entries = gateway.map(g -> server.isPresent() ? g.catalog(java.util.Set.of(server.get())) : g.catalog())
        .orElse(List.of()).stream().filter(e -> visible.test(e.owner())).toList();
    List<keel.gateway.ServerStatus> servers = gateway.map(keel.gateway.Gateway::servers).orElse(List.of()).stream()
        .filter(st -> server.isEmpty() || st.name().equals(server.get()))
        .filter(st -> store.inventory().latest("McpServer", st.name()).map(r -> visible.test(r.owner())).orElse(false))
        .toList();
    json(ctx, 200, Views.tools(entries, servers));
  }

  // ---- the audit log

  private void audit(Context ctx) {
    AuditQuery q = AuditQuery.all(intParam(ctx, "limit", 100, 1, 1000));
    q = optionalParam(ctx, "kind").map(q::withKind).orElse(q);
    q = optionalParam(ctx, "agent").map(q::withAgent).orElse(q);
    q = optionalParam(ctx, "owner").map(q::withOwner).orElse(q);
    q = optionalParam(ctx, "session").map(q::withSession).orElse(q);
    q = optionalParam(ctx, "tool").map(q::withTool).orElse(q);
    q = optionalParam(ctx, "since").map(v -> CostsQuery.instant("since", v, false)).map(q::withSince).orElse(q);
    q = optionalParam(ctx, "until").map(v -> CostsQuery.instant("until", v, true)).map(q::withUntil).orElse(q);
    if (ctx.queryParam("after") != null) {
      long after = longParam("after", ctx.queryParam("after"));
      if (after < 0) {
        throw new KeelException.Invalid("after: expected a sequence number (0 or more), got " + after);
      }
      q = q.withAfter(after);
    }
    Caller caller = caller(ctx);
    if (!caller.mayEverywhere(Role.VIEWER)) {
      q = q.withOwners(caller.scopedOwners(Role.VIEWER));
    }
    json(ctx, 200, Views.audit(store.audit().query(q), q.limit()));
  }

  private void auditVerify(Context ctx) {
    Optional<String> expect = optionalParam(ctx, "expect_head").map(String::strip);
    try {
      expect.ifPresent(h -> AuditStore.checkHash(h, "expect_head"));
    } catch (IllegalArgumentException e) {
      throw new KeelException.Invalid(e.getMessage());
    }
    json(ctx, 200, Views.auditVerification(store.audit().verify(expect)));
  }

  private static Optional<String> optionalParam(Context ctx, String name) {
    return Optional.ofNullable(ctx.queryParam(name)).filter(v -> !v.isBlank());
  }
}
