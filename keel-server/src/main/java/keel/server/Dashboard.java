package keel.server;

import gg.jte.ContentType;
import gg.jte.TemplateEngine;
import gg.jte.output.StringOutput;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import io.javalin.http.staticfiles.Location;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import keel.control.Caller;
import keel.control.Operators;
import keel.control.Role;
import keel.core.AgentDescriptor;
import keel.core.BudgetKind;
import keel.core.KeelException;
import keel.core.Message;
import keel.core.SessionStatus;
import keel.data.Approval;
import keel.data.CostLedger;
import keel.data.InventoryStore;
import keel.data.SessionQuery;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.execution.SessionFrame;
import keel.execution.SessionService;
import keel.execution.SessionView;
import keel.execution.Trace;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;
import tools.jackson.databind.node.StringNode;

/**
 * The web dashboard at {@code /}: server-side pages rendered with jte templates (compiled into this
 * package at build time from {@code src/main/jte}), htmx and chart.js served from their webjars, no
 * front-end build.
 *
 * <p>Signing in: the operator pastes an API token into the form at {@code /login}; it is checked by
 * {@link Operators#authenticate} exactly as a bearer token is, and the browser gets an HttpOnly,
 * SameSite=Strict cookie naming a server-side {@link WebSessions} entry. Every page resolves the
 * {@link Caller} again from that entry and is checked with the same {@link Access} rules as the
 * API ({@link Api#authorize}), and listings filter with the caller's owners, so a page shows
 * exactly what the caller's token could read through {@code /v1}. POST forms carry a CSRF token
 * (the session's, or a double-submit cookie on the sign-in form) and are refused from another
 * origin.
 *
 * <p>Live pages: the session page listens to {@code /sessions/{id}/live}, a server-sent event
 * stream that says "changed" after each stored event; htmx then fetches the page's body fragment
 * again. The Approvals page listens to {@code /approvals/live}, the API's approvals stream read
 * with the browser's session, and fetches its list again on each notice.
 *
 * <p>Approvals are decided from forms posted to {@code /approvals/{id}/approve|deny}: checked like
 * the sign-out form (the session's CSRF token, the origin), then decided through {@link
 * ApprovalsApi#decide}, the same checks and store path as the API, so a refusal carries the API's
 * reason.
 *
 * <p>Thread-safe: handlers share only thread-safe collaborators.
 */
final class Dashboard {

  static final String SESSION_COOKIE = "keel_session";
  static final String LOGIN_CSRF_COOKIE = "keel_login_csrf";
  private static final int SSE_QUEUE = 1024;
  private static final long SSE_HEARTBEAT_SECONDS = 15;
  private static final int COST_DAYS = 30;
  /** The most approvals one listing shows (the store's limit); older ones are reached with the filters or the API. */
  private static final int MAX_APPROVALS = 1000;
  private static final int APPROVALS_SHOWN = 200;
  private static final DateTimeFormatter SHOWN = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'").withZone(ZoneOffset.UTC);

  // ---- what the templates render (records of strings and numbers, formatted here)

  /** What every page's frame shows: the title, the active tab, who is signed in. */
  record Frame(String title, String active, String principal, String roles, String csrf) {}

  record Count(String status, long n) {}

  record AgentRow(
      String name, String owner, String mode, int revision, int pending, String model, String pin,
      List<Count> sessions, String spendToday, String limitPerDay, int percent, String lastActivity, long approvals) {}

  record AgentsPage(Frame frame, List<AgentRow> agents) {}

  record RevisionRow(int number, String status, String appliedBy, String appliedAt, String decision, boolean widens, String diff) {}

  record SessionRow(String id, String agent, String owner, String status, String created, String updated) {}

  record AgentPage(Frame frame, AgentRow agent, List<RevisionRow> revisions, List<SessionRow> sessions, String costChart, String costTotal) {}

  record Attr(String key, String value) {}

  /** One span of the waterfall: its nesting depth, and where its bar starts and how wide it is in percent. */
  record SpanRow(String id, String name, String kind, int depth, double left, double width, String duration, boolean error, boolean open,
      List<Attr> attributes, String note) {}

  /**
   * A point where a human or a rule decided about an action, drawn from the trace: an approval wait
   * ({@code human}), a denial ({@code denied}) or a shadow-mode proposal ({@code proposed}).
   */
  record DecisionRow(String kind, String label, String spanId, String span, String note, String approvalId) {}

  record MessageRow(String role, String text) {}

  record SessionBody(SessionRow session, String cost, long modelCalls, String tokens, String failure, List<MessageRow> conversation,
      List<SpanRow> spans, String traceDuration, List<DecisionRow> decisions) {}

  record SessionPage(Frame frame, SessionBody body, long lastSeq) {}

  record CostRow(String day, String group, String kind, String usd) {}

  record CostsPage(Frame frame, String from, String to, String total, String chartByDay, String chartByAgent, String chartByOwner,
      List<CostRow> byAgent, List<CostRow> byOwner) {}

  record ErrorPage(Frame frame, int status, String message) {}

  record ReasonRow(String rule, String reason) {}

  /**
   * One approval as the inbox shows it. {@code mayDecide} is whether the signed-in operator may
   * decide it now; otherwise {@code refusal} says why not (empty once it is decided). {@code error}
   * is the reason the API gave for refusing this browser's last decision.
   */
  record ApprovalRow(String id, String status, String sessionId, String agent, String owner, String tool, String arguments,
      String value, List<ReasonRow> reasons, String reasoning, String requester, String requested, String expires,
      String decidedBy, String decidedAt, String decisionReason, String editedArguments, boolean mayDecide, String refusal,
      String error, String csrf) {}

  record Filter(String status, String href, boolean active) {}

  record ApprovalsBody(String status, String agent, List<ApprovalRow> approvals) {}

  record ApprovalsPage(Frame frame, List<Filter> filters, ApprovalsBody body, String notice) {}

  record LoginPage(String csrf, String error) {}

  private final Api api;
  private final SessionService sessions;
  private final Store store;
  private final Inventory inventory;
  private final Operators operators;
  private final Clock clock;
  private final WebSessions web;
  private final TemplateEngine templates = TemplateEngine.createPrecompiled(null, ContentType.Html, null, "keel.server");

  Dashboard(Api api, SessionService sessions, Store store, Inventory inventory, Operators operators, Clock clock) {
    this.api = api;
    this.sessions = sessions;
    this.store = store;
    this.inventory = inventory;
    this.operators = operators;
    this.clock = clock;
    this.web = new WebSessions(clock, new SecureRandom());
  }

  /** The pages, each with the access it needs, checked as the API checks its routes. */
  private Map<String, Page> pages() {
    Map<String, Page> p = new LinkedHashMap<>();
    p.put("/agents", new Page(Access.listed(Role.VIEWER), this::agents));
    p.put("/agents/{name}", new Page(Access.agentPath(Role.VIEWER, "name"), this::agent));
    p.put("/sessions/{id}", new Page(Access.session(Role.VIEWER), this::session));
    p.put("/sessions/{id}/body", new Page(Access.session(Role.VIEWER), this::sessionBody));
    p.put("/sessions/{id}/live", new Page(Access.session(Role.VIEWER), this::live));
    p.put("/costs", new Page(Access.listed(Role.VIEWER), this::costs));
    p.put("/approvals", new Page(Access.listed(Role.VIEWER), this::approvals));
    p.put("/approvals/list", new Page(Access.listed(Role.VIEWER), this::approvalsList));
    // the API's stream, read with the browser's session: notices only of owners the caller may view
    p.put("/approvals/live", new Page(Access.listed(Role.VIEWER), (ctx, caller, w) -> api.approvals().stream(ctx)));
    return p;
  }

  private record Page(Access access, PageHandler handler) {}

  @FunctionalInterface
  private interface PageHandler {
    void handle(Context ctx, Caller caller, WebSessions.Web session) throws Exception;
  }

  void install(JavalinConfig cfg) {
    cfg.staticFiles.enableWebjars();
    cfg.staticFiles.add(sf -> {
      sf.hostedPath = "/assets";
      sf.directory = "/keel/dashboard";
      sf.location = Location.CLASSPATH;
    });
    cfg.routes.get("/", ctx -> ctx.redirect("/agents"));
    cfg.routes.get("/login", this::loginForm);
    cfg.routes.post("/login", this::login);
    cfg.routes.post("/logout", this::logout);
    pages().forEach((path, page) -> cfg.routes.get(path, guarded(page)));
    cfg.routes.post("/approvals/{id}/approve", decision(true));
    cfg.routes.post("/approvals/{id}/deny", decision(false));
  }

  private Handler guarded(Page page) {
    return ctx -> {
      secureHeaders(ctx);
      Optional<WebSessions.Web> w = web.find(ctx.cookie(SESSION_COOKIE));
      Optional<Caller> caller = w.flatMap(s -> operators.authenticate(s.token()));
      if (caller.isEmpty()) {
        w.ifPresent(s -> web.close(s.id()));
        toLogin(ctx);
        return;
      }
      try {
        Api.attachCaller(ctx, caller.get());
        api.authorize(ctx, page.access());
        page.handler().handle(ctx, caller.get(), w.get());
      } catch (KeelException e) {
        int status = Problems.status(e);
        if (ctx.header("HX-Request") != null) {
          ctx.status(status).contentType("text/html; charset=utf-8").result("<p class=\"error\">" + escape(e.getMessage()) + "</p>");
        } else {
          render(ctx, status, "error.jte", new ErrorPage(frame(caller.get(), w.get(), "Error", ""), status, e.getMessage()));
        }
      }
    };
  }

  private static void toLogin(Context ctx) {
    if (ctx.header("HX-Request") != null) {
      ctx.header("HX-Redirect", "/login");
      ctx.status(401).result("");
    } else {
      ctx.redirect("/login");
    }
  }

  // ---- signing in and out

  private void loginForm(Context ctx) {
    showLogin(ctx, 200, "");
  }

  private void showLogin(Context ctx, int status, String error) {
    secureHeaders(ctx);
    String csrf = web.randomValue();
    setCookie(ctx, LOGIN_CSRF_COOKIE, csrf, "/login", -1);
    render(ctx, status, "login.jte", new LoginPage(csrf, error));
  }

  private void login(Context ctx) {
    if (!sameOrigin(ctx) || !WebSessions.same(ctx.cookie(LOGIN_CSRF_COOKIE), ctx.formParam("csrf"))) {
      showLogin(ctx, 403, "The sign-in form expired or came from another site; sign in again from this page.");
      return;
    }
    String token = Optional.ofNullable(ctx.formParam("token")).orElse("").strip();
    if (token.isEmpty()) {
      showLogin(ctx, 400, "Paste an operator API token (it starts with " + Operators.TOKEN_PREFIX + ", or the admin token from the data directory).");
      return;
    }
    Optional<Caller> caller = operators.authenticate(token);
    if (caller.isEmpty()) {
      showLogin(ctx, 401, "That token is not valid for this server: it is unknown, its operator was revoked, or a newer token replaced it.");
      return;
    }
    WebSessions.Web w = web.open(token);
    setCookie(ctx, LOGIN_CSRF_COOKIE, "", "/login", 0);
    setCookie(ctx, SESSION_COOKIE, w.id(), "/", -1);
    ctx.redirect("/agents");
  }

  private void logout(Context ctx) {
    Optional<WebSessions.Web> w = web.find(ctx.cookie(SESSION_COOKIE));
    if (w.isPresent()) {
      if (!sameOrigin(ctx) || !WebSessions.same(w.get().csrf(), ctx.formParam("csrf"))) {
        ctx.status(403).contentType("text/plain; charset=utf-8").result("sign-out refused: the form's CSRF token does not match this browser's session");
        return;
      }
      web.close(w.get().id());
    }
    setCookie(ctx, SESSION_COOKIE, "", "/", 0);
    ctx.redirect("/login");
  }

  /** A POST from a page of another origin is refused even before its CSRF token is compared. */
  private static boolean sameOrigin(Context ctx) {
    String origin = ctx.header("Origin");
    if (origin == null || origin.isEmpty()) {
      return true;
    }
    try {
      URI o = URI.create(origin);
      String host = ctx.header("Host");
      return host != null && (o.getHost() + (o.getPort() < 0 ? "" : ":" + o.getPort())).equalsIgnoreCase(host);
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static void setCookie(Context ctx, String name, String value, String path, int maxAge) {
    StringBuilder c = new StringBuilder(name).append('=').append(value).append("; Path=").append(path).append("; HttpOnly; SameSite=Strict");
    if (maxAge >= 0) {
      c.append("; Max-Age=").append(maxAge);
    }
    if ("https".equalsIgnoreCase(ctx.scheme())) {
      c.append("; Secure");
    }
    ctx.res().addHeader("Set-Cookie", c.toString());
  }

  private static void secureHeaders(Context ctx) {
    ctx.header("Cache-Control", "no-store");
    ctx.header("X-Frame-Options", "DENY");
    ctx.header("X-Content-Type-Options", "nosniff");
    // "same-origin", not "no-referrer": with no-referrer Chromium sends "Origin: null" on form posts, which the origin check refuses
    ctx.header("Referrer-Policy", "same-origin");
    ctx.header("Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'");
  }

  private Frame frame(Caller c, WebSessions.Web w, String title, String active) {
    return new Frame(title, active, c.principal(),
        c.bindings().isEmpty() ? "no roles" : String.join(", ", c.bindings().stream().map(Caller.Binding::toString).toList()), w.csrf());
  }

  private void render(Context ctx, int status, String template, Object model) {
    StringOutput out = new StringOutput();
    templates.render(template, model, out);
    ctx.status(status).contentType("text/html; charset=utf-8").result(out.toString());
  }

  // ---- Agents

  private void agents(Context ctx, Caller caller, WebSessions.Web w) {
    Predicate<String> visible = caller.owners(Role.VIEWER);
    Map<String, InventoryStore.Revision> pending = new HashMap<>();
    store.inventory().pendingOfKind("Agent").forEach(p -> pending.put(p.name(), p));
    Map<String, Long> waiting = new HashMap<>();
    api.approvals().list(caller, Optional.of(Approval.Status.PENDING), Optional.empty(), MAX_APPROVALS)
        .forEach(a -> waiting.merge(a.agent(), 1L, Long::sum));
    List<AgentRow> rows = new ArrayList<>();
    for (InventoryStore.Revision r : store.inventory().latestOfKind("Agent")) {
      if (visible.test(r.owner())) {
        rows.add(agentRow(r, Optional.ofNullable(pending.get(r.name())), waiting.getOrDefault(r.name(), 0L)));
      }
    }
    render(ctx, 200, "agents.jte", new AgentsPage(frame(caller, w, "Agents", "agents"), rows));
  }

  private AgentRow agentRow(InventoryStore.Revision r, Optional<InventoryStore.Revision> pending, long approvals) {
    AgentDescriptor a = sessions.catalog().revision(r.name(), r.number());
    List<Count> counts = new ArrayList<>();
    new TreeMap<>(store.events().countByStatus(r.name())).forEach((k, v) -> counts.add(new Count(k.wireName(), v)));
    String spend;
    String limit = "";
    int percent = 0;
    Optional<keel.control.Budgets.Status> perDay = sessions.budgets().status(r.name()).stream()
        .filter(b -> b.kind() == BudgetKind.USD_PER_DAY).findFirst();
    if (perDay.isPresent()) {
      spend = Views.usd(perDay.get().used());
      limit = Views.usd(perDay.get().limit());
      percent = perDay.get().percent().min(BigDecimal.valueOf(100)).intValue();
    } else {
      Instant dayStart = LocalDate.now(clock.withZone(ZoneOffset.UTC)).atStartOfDay().toInstant(ZoneOffset.UTC);
      BigDecimal today = store.ledger().totals(new CostLedger.Query(dayStart, clock.instant(), EnumSet.noneOf(CostLedger.Dimension.class),
          Optional.of(r.name()), Optional.empty()), owner -> true).stream().map(CostLedger.Row::usd).reduce(BigDecimal.ZERO, BigDecimal::add);
      spend = Views.usd(today);
    }
    String last = sessions.list(new SessionQuery(Optional.of(r.name()), Optional.empty(), 50, Optional.empty())).stream()
        .map(SessionRecord::updatedAt).max(Instant::compareTo).map(SHOWN::format).orElse("never");
    return new AgentRow(r.name(), r.owner(), a.spec().mode().name().toLowerCase(java.util.Locale.ROOT), r.number(),
        pending.map(InventoryStore.Revision::number).orElse(0),
        a.spec().model().provider() + "/" + a.spec().model().name(), a.spec().model().pinnedRevision().orElse(""),
        counts, spend, limit, percent, last, approvals);
  }

  // ---- Agent

  private void agent(Context ctx, Caller caller, WebSessions.Web w) {
    String name = ctx.pathParam("name");
    InventoryStore.Revision latest = store.inventory().latest("Agent", name)
        .orElseThrow(() -> new KeelException.NotFound("there is no agent named \"" + name + "\""));
    AgentRow row = agentRow(latest, store.inventory().pending("Agent", name),
        api.approvals().list(caller, Optional.of(Approval.Status.PENDING), Optional.of(name), MAX_APPROVALS).size());
    List<InventoryStore.Revision> history = inventory.revisions().history(name);
    List<RevisionRow> revisions = new ArrayList<>();
    for (InventoryStore.Revision r : history) {
      String diff = r.number() == 1 ? "" : String.join("\n", inventory.revisions().diff(name, r.number() - 1, r.number()).unified());
      String decision = r.decision().map(d -> d.by() + " at " + SHOWN.format(d.at()) + (d.reason().isEmpty() ? "" : ": " + d.reason())).orElse("");
      revisions.add(new RevisionRow(r.number(), r.status().wireName(), r.appliedBy(), SHOWN.format(r.appliedAt()), decision, r.review().widens(), diff));
    }
    revisions.sort((x, y) -> Integer.compare(y.number(), x.number()));
    List<SessionRow> recent = sessions.list(new SessionQuery(Optional.of(name), Optional.empty(), 50, Optional.empty())).stream()
        .map(r -> sessionRow(r, r.effectiveStatus())).toList();
    Instant to = clock.instant();
    Instant from = LocalDate.now(clock.withZone(ZoneOffset.UTC)).minusDays(COST_DAYS - 1L).atStartOfDay().toInstant(ZoneOffset.UTC);
    List<CostLedger.Row> costs = store.ledger().totals(new CostLedger.Query(from, to, EnumSet.of(CostLedger.Dimension.DAY, CostLedger.Dimension.KIND),
        Optional.of(name), Optional.empty()), owner -> true);
    String total = Views.usd(costs.stream().map(CostLedger.Row::usd).reduce(BigDecimal.ZERO, BigDecimal::add));
    render(ctx, 200, "agent.jte", new AgentPage(frame(caller, w, "Agent " + name, "agents"), row, revisions, recent,
        stacked(costs, CostLedger.Dimension.DAY), total));
  }

  private static SessionRow sessionRow(SessionRecord r, SessionStatus status) {
    return new SessionRow(r.id(), r.agent(), r.owner(), status.wireName(), SHOWN.format(r.createdAt()), SHOWN.format(r.updatedAt()));
  }

  /**
   * A chart.js bar chart's data as JSON: one label per value of {@code x}, one stacked dataset per
   * cost kind. The kinds are grouped as the issue names them (tokens, external actions, compute)
   * but kept apart so cache reads stay visible.
   */
  static String stacked(List<CostLedger.Row> rows, CostLedger.Dimension x) {
    TreeSet<String> labels = new TreeSet<>();
    Map<String, Map<String, BigDecimal>> byKind = new TreeMap<>();
    for (CostLedger.Row r : rows) {
      String label = r.group().get(x);
      String kind = r.group().get(CostLedger.Dimension.KIND);
      labels.add(label);
      byKind.computeIfAbsent(kind, k -> new HashMap<>()).merge(label, r.usd(), BigDecimal::add);
    }
    ObjectNode chart = Views.JSON.createObjectNode();
    ArrayNode l = chart.putArray("labels");
    labels.forEach(l::add);
    ArrayNode sets = chart.putArray("datasets");
    byKind.forEach((kind, values) -> {
      ObjectNode d = sets.addObject();
      d.put("label", kind);
      ArrayNode data = d.putArray("data");
      labels.forEach(label -> data.add(values.getOrDefault(label, BigDecimal.ZERO).doubleValue()));
    });
    return chart.toString();
  }

  // ---- Session

  private void session(Context ctx, Caller caller, WebSessions.Web w) {
    String id = ctx.pathParam("id");
    SessionBody body = sessionBody(id, caller);
    render(ctx, 200, "session.jte", new SessionPage(frame(caller, w, "Session " + id, "agents"), body, sessions.record(id).lastSeq()));
  }

  private void sessionBody(Context ctx, Caller caller, WebSessions.Web w) {
    secureHeaders(ctx);
    render(ctx, 200, "session_body.jte", sessionBody(ctx.pathParam("id"), caller));
  }

  private SessionBody sessionBody(String id, Caller caller) {
    SessionView v = sessions.view(id);
    List<MessageRow> conversation = new ArrayList<>();
    for (Message m : v.conversation()) {
      ObjectNode o = Views.message(m);
      StringBuilder text = new StringBuilder(o.path("text").asString(""));
      for (var call : o.path("tool_calls")) {
        text.append(text.isEmpty() ? "" : "\n").append("→ ").append(call.path("name").asString()).append(' ').append(call.path("arguments").asString());
      }
      String role = o.path("role").asString();
      conversation.add(new MessageRow(role.equals("tool") ? "tool " + o.path("name").asString() : role, text.toString()));
    }
    Trace.Span root = api.traceOf(id, caller.owners(Role.VIEWER));
    List<SpanRow> spans = new ArrayList<>();
    Instant start = root.start();
    Instant end = latestEnd(root, start);
    double total = Math.max(1, Duration.between(start, end).toMillis());
    flatten(root, 0, start, end, total, spans);
    List<DecisionRow> decisions = new ArrayList<>();
    for (SpanRow s : spans) {
      decision(s).ifPresent(decisions::add);
    }
    return new SessionBody(sessionRow(v.record(), v.status()), Views.usd(v.costUsd()), v.modelCalls(),
        v.usage().inputTokens() + " in / " + v.usage().outputTokens() + " out", v.failure(), conversation, spans,
        Duration.between(start, end).toMillis() + " ms", decisions);
  }

  private Instant latestEnd(Trace.Span s, Instant max) {
    Instant e = s.end().orElse(clock.instant());
    Instant m = e.isAfter(max) ? e : max;
    for (Trace.Span c : s.children()) {
      m = latestEnd(c, m);
    }
    return m;
  }

  private void flatten(Trace.Span s, int depth, Instant start, Instant end, double total, List<SpanRow> out) {
    Instant se = s.end().orElse(end);
    double left = Duration.between(start, s.start()).toMillis() / total * 100;
    double width = Math.max(0.5, Duration.between(s.start(), se).toMillis() / total * 100);
    List<Attr> attrs = new TreeMap<>(s.attributes()).entrySet().stream().map(e -> new Attr(e.getKey(), e.getValue())).toList();
    out.add(new SpanRow(s.id(), s.name(), s.kind(), depth, Math.min(99.5, left), Math.min(width, 100 - Math.min(99.5, left)),
        s.duration().map(d -> d.toMillis() + " ms").orElse("running"), s.error(), s.end().isEmpty(), attrs, note(s)));
    for (Trace.Span c : s.children()) {
      flatten(c, depth + 1, start, end, total, out);
    }
  }

  /**
   * Tells the session page when to fetch its body again: {@code changed} after each stored event,
   * and at once when events were stored after the page was rendered ({@code ?after=}).
   */
  private void live(Context ctx, Caller caller, WebSessions.Web w) throws IOException {
    String id = ctx.pathParam("id");
    long after = Optional.ofNullable(ctx.queryParam("after")).filter(s -> s.matches("[0-9]{1,18}")).map(Long::parseLong).orElse(0L);
    BlockingQueue<Long> queue = new ArrayBlockingQueue<>(SSE_QUEUE);
    ctx.res().setStatus(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setCharacterEncoding("UTF-8");
    ctx.res().setHeader("Cache-Control", "no-cache");
    ctx.res().setHeader("X-Accel-Buffering", "no");
    OutputStream out = ctx.res().getOutputStream();
    try (AutoCloseable sub = sessions.subscribe(id, f -> {
      if (f instanceof SessionFrame.Event e) {
        // a full queue already holds a "changed" the page has not seen: dropping more loses nothing
        queue.offer(e.event().seq());
      }
    })) {
      write(out, ": live updates of session " + id + "\n\n");
      long last = sessions.record(id).lastSeq();
      if (last > after) {
        write(out, "event: changed\ndata: " + last + "\n\n");
      }
      while (true) {
        Long seq = queue.poll(SSE_HEARTBEAT_SECONDS, TimeUnit.SECONDS);
        if (seq == null) {
          write(out, ": keep-alive\n\n");
          continue;
        }
        long newest = seq;
        for (Long more; (more = queue.poll()) != null; ) {
          newest = Math.max(newest, more);
        }
        write(out, "event: changed\ndata: " + newest + "\n\n");
      }
    } catch (IOException gone) {
      // the browser went away
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static void write(OutputStream out, String s) throws IOException {
    out.write(s.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }


  /**
   * What a span says about a decision, in one line for its row in the waterfall: who decided an
   * approval, the decision and the reason; the rule that denied a call; a shadow-mode proposal.
   * Empty for every other span. Read from the trace's attributes, so it is as durable as the events.
   */
  static String note(Trace.Span s) {
    Map<String, String> a = s.attributes();
    if (s.kind().equals("approval")) {
      String decision = a.getOrDefault("keel.human.decision", "");
      if (!decision.isEmpty()) {
        String reason = a.getOrDefault("keel.human.reason", "");
        String edited = a.getOrDefault("keel.approval.edited_arguments", "");
        return decision + (reason.isEmpty() ? "" : ": " + reason) + (edited.isEmpty() ? "" : " (arguments edited to " + edited + ")");
      }
      if (s.end().isPresent()) {
        return "ended without a decision: the session stopped waiting";
      }
      return "waiting for a human ($" + a.getOrDefault("keel.approval.value_usd", "0") + "; " + a.getOrDefault("keel.approval.reasons", "")
          + "); expires " + a.getOrDefault("keel.approval.expires_at", "");
    }
    if (s.kind().equals("tool")) {
      String decision = a.getOrDefault("keel.decision", "");
      if (decision.startsWith("denied: ")) {
        return decision.substring("denied: ".length());
      }
      if (decision.startsWith("proposed")) {
        return "proposed in shadow mode, not executed (value $" + a.getOrDefault("keel.shadow.value_usd", "0") + ")";
      }
    }
    return "";
  }

  private static Optional<DecisionRow> decision(SpanRow s) {
    if (s.note().isEmpty()) {
      return Optional.empty();
    }
    String approvalId = s.attributes().stream().filter(a -> a.key().equals("keel.approval.id")).map(Attr::value).findFirst().orElse("");
    if (s.kind().equals("approval")) {
      return Optional.of(new DecisionRow("human", "human decision", s.id(), s.name(), s.note(), approvalId));
    }
    boolean proposed = s.note().startsWith("proposed");
    String call = s.name() + s.attributes().stream().filter(a -> a.key().equals("keel.tool.arguments")).map(a -> " " + a.value()).findFirst().orElse("");
    return Optional.of(new DecisionRow(proposed ? "proposed" : "denied", proposed ? "shadow proposal" : "denied", s.id(), call, s.note(), ""));
  }

  // ---- Approvals

  private static final List<String> FILTERS = List.of("pending", "approved", "denied", "expired", "withdrawn", "all");

  private void approvals(Context ctx, Caller caller, WebSessions.Web w) {
    showApprovals(ctx, caller, w, 200, Optional.empty(), "");
  }

  /** The inbox page; {@code refused} replaces its approval's row with one that shows the API's reason. */
  private void showApprovals(Context ctx, Caller caller, WebSessions.Web w, int status, Optional<ApprovalRow> refused, String notice) {
    ApprovalsBody body = approvalsBody(ctx, caller, w);
    if (refused.isPresent()) {
      List<ApprovalRow> rows = new ArrayList<>(body.approvals().stream().map(r -> r.id().equals(refused.get().id()) ? refused.get() : r).toList());
      if (rows.stream().noneMatch(r -> r.id().equals(refused.get().id()))) {
        rows.addFirst(refused.get());
      }
      body = new ApprovalsBody(body.status(), body.agent(), rows);
    }
    String agent = body.agent();
    String active = body.status();
    List<Filter> filters = FILTERS.stream()
        .map(f -> new Filter(f, "/approvals?status=" + f + (agent.isEmpty() ? "" : "&agent=" + urlEncode(agent)), f.equals(active))).toList();
    render(ctx, status, "approvals.jte", new ApprovalsPage(frame(caller, w, "Approvals", "approvals"), filters, body, notice));
  }

  private void approvalsList(Context ctx, Caller caller, WebSessions.Web w) {
    render(ctx, 200, "approvals_list.jte", approvalsBody(ctx, caller, w));
  }

  private ApprovalsBody approvalsBody(Context ctx, Caller caller, WebSessions.Web w) {
    String status = Optional.ofNullable(ctx.queryParam("status")).filter(v -> !v.isBlank()).orElse("pending");
    Optional<Approval.Status> wanted = status.equals("all") ? Optional.empty() : Optional.of(Approval.Status.fromWire(status));
    String agent = Optional.ofNullable(ctx.queryParam("agent")).map(String::strip).orElse("");
    List<ApprovalRow> rows = api.approvals().list(caller, wanted, Optional.of(agent).filter(x -> !x.isEmpty()), APPROVALS_SHOWN).stream()
        .map(a -> approvalRow(a, caller, w, "")).toList();
    return new ApprovalsBody(status, agent, rows);
  }

  private ApprovalRow approvalRow(Approval a, Caller caller, WebSessions.Web w, String error) {
    boolean pending = a.status() == Approval.Status.PENDING;
    Optional<String> refusal = pending ? api.approvals().refusal(caller, a) : Optional.empty();
    Optional<Approval.Decision> d = a.decision();
    Instant now = clock.instant();
    String expires = SHOWN.format(a.expiresAt()) + (pending && a.expiresAt().isAfter(now) ? " (in " + shortDuration(Duration.between(now, a.expiresAt())) + ")" : "");
    return new ApprovalRow(a.id(), a.status().wireName(), a.sessionId(), a.agent(), a.owner(), a.tool(), prettyJson(a.arguments()),
        Views.usd(a.valueUsd()), a.reasons().stream().map(r -> new ReasonRow(r.rule(), r.reason())).toList(), a.reasoning(), a.requester(),
        SHOWN.format(a.requestedAt()), expires, d.map(Approval.Decision::by).orElse(""), d.map(x -> SHOWN.format(x.at())).orElse(""),
        d.map(Approval.Decision::reason).orElse(""), d.map(x -> x.arguments().isEmpty() ? "" : prettyJson(x.arguments())).orElse(""),
        pending && refusal.isEmpty(), refusal.orElse(""), error, w.csrf());
  }

  /** {@code 23 h 59 min}, {@code 4 min}, {@code 12 s}: how long until an approval expires. */
  static String shortDuration(Duration d) {
    long s = Math.max(0, d.toSeconds());
    if (s >= 3600) {
      return (s / 3600) + " h " + (s % 3600 / 60) + " min";
    }
    return s >= 60 ? (s / 60) + " min" : s + " s";
  }

  private static String prettyJson(String json) {
    try {
      return Views.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(Views.JSON.readTree(json));
    } catch (RuntimeException e) {
      return json;
    }
  }

  /**
   * A decision posted from an approval's form: the same checks and the same store path as {@code
   * POST /v1/approvals/{id}/approve|deny} (through {@link ApprovalsApi#decide}), after the browser's
   * session, its CSRF token and the form's origin. From htmx it answers the approval's card, decided
   * or with the API's reason for refusing; from a plain form post, the inbox page.
   */
  private Handler decision(boolean approve) {
    return ctx -> {
      secureHeaders(ctx);
      Optional<WebSessions.Web> w = web.find(ctx.cookie(SESSION_COOKIE));
      Optional<Caller> signedIn = w.flatMap(s -> operators.authenticate(s.token()));
      if (signedIn.isEmpty()) {
        w.ifPresent(s -> web.close(s.id()));
        toLogin(ctx);
        return;
      }
      if (!sameOrigin(ctx) || !WebSessions.same(w.get().csrf(), ctx.formParam("csrf"))) {
        ctx.status(403).contentType("text/plain; charset=utf-8")
            .result("decision refused: the form's CSRF token does not match this browser's session, or it came from another site; reload the page");
        return;
      }
      Caller caller = signedIn.get();
      Api.attachCaller(ctx, caller);
      boolean htmx = ctx.header("HX-Request") != null;
      String id = ctx.pathParam("id");
      Approval a;
      try {
        api.authorize(ctx, Access.listed(Role.VIEWER));
        a = api.approvals().visible(caller, id);
      } catch (KeelException e) {
        int status = Problems.status(e);
        if (htmx) {
          ctx.status(status).contentType("text/html; charset=utf-8").result("<p class=\"error\">" + escape(e.getMessage()) + "</p>");
        } else {
          render(ctx, status, "error.jte", new ErrorPage(frame(caller, w.get(), "Error", "approvals"), status, e.getMessage()));
        }
        return;
      }
      int status = 200;
      String error = "";
      try {
        Optional<JsonNode> reason = Optional.ofNullable(ctx.formParam("reason")).map(String::strip).filter(r -> !r.isEmpty()).map(StringNode::valueOf);
        Optional<JsonNode> args = approve ? editedArguments(a, ctx.formParam("arguments")) : Optional.empty();
        a = api.approvals().decide(caller, a, approve, reason, args);
      } catch (KeelException e) {
        status = Problems.status(e);
        error = e.getMessage();
        a = api.approvals().visible(caller, id);
      }
      ApprovalRow row = approvalRow(a, caller, w.get(), error);
      if (htmx) {
        render(ctx, status, "approval_card.jte", row);
      } else if (error.isEmpty()) {
        ctx.status(303).header("Location", "/approvals?status=" + a.status().wireName());
      } else {
        showApprovals(ctx, caller, w.get(), status, Optional.of(row), "");
      }
    };
  }

  /**
   * The arguments the approver set in the form, when they differ from the model's: the form shows
   * the model's arguments, so an untouched or emptied field approves the call as the model wrote it.
   */
  private static Optional<JsonNode> editedArguments(Approval a, String text) {
    if (text == null || text.isBlank()) {
      return Optional.empty();
    }
    JsonNode edited;
    try {
      edited = Views.JSON.readTree(text);
    } catch (RuntimeException e) {
      throw new KeelException.Invalid("arguments: not valid JSON (" + firstLine(e.getMessage()) + "); write a JSON object such as {\"amount\": 900}, or leave the field as it was");
    }
    try {
      if (edited.equals(Views.JSON.readTree(a.arguments()))) {
        return Optional.empty();
      }
    } catch (RuntimeException e) {
      // the model's arguments are not JSON: anything the approver wrote is an edit
    }
    return Optional.of(edited);
  }

  private static String firstLine(String s) {
    String m = s == null ? "" : s.strip();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  private static String urlEncode(String s) {
    return java.net.URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  // ---- Costs

  private void costs(Context ctx, Caller caller, WebSessions.Web w) {
    LocalDate today = LocalDate.now(clock.withZone(ZoneOffset.UTC));
    String from = Optional.ofNullable(ctx.queryParam("from")).filter(s -> !s.isBlank()).orElse(today.minusDays(COST_DAYS - 1L).toString());
    String to = Optional.ofNullable(ctx.queryParam("to")).filter(s -> !s.isBlank()).orElse(today.toString());
    Predicate<String> visible = caller.owners(Role.VIEWER);
    CostsQuery byAgent = CostsQuery.parse(from, to, "agent,day,kind", null, null, clock.instant());
    CostsQuery byOwner = CostsQuery.parse(from, to, "owner,day,kind", null, null, clock.instant());
    List<CostLedger.Row> agentRows = store.ledger().totals(byAgent.query(), visible);
    List<CostLedger.Row> ownerRows = store.ledger().totals(byOwner.query(), visible);
    String total = Views.usd(agentRows.stream().map(CostLedger.Row::usd).reduce(BigDecimal.ZERO, BigDecimal::add));
    render(ctx, 200, "costs.jte", new CostsPage(frame(caller, w, "Costs", "costs"), from, to, total,
        stacked(agentRows, CostLedger.Dimension.DAY), stacked(agentRows, CostLedger.Dimension.AGENT), stacked(ownerRows, CostLedger.Dimension.OWNER),
        costRows(agentRows, CostLedger.Dimension.AGENT), costRows(ownerRows, CostLedger.Dimension.OWNER)));
  }

  private static List<CostRow> costRows(List<CostLedger.Row> rows, CostLedger.Dimension group) {
    List<CostRow> out = new ArrayList<>();
    for (CostLedger.Row r : rows) {
      out.add(new CostRow(r.group().get(CostLedger.Dimension.DAY), r.group().get(group), r.group().get(CostLedger.Dimension.KIND), Views.usd(r.usd())));
    }
    out.sort((a, b) -> a.day().equals(b.day()) ? (a.group() + a.kind()).compareTo(b.group() + b.kind()) : b.day().compareTo(a.day()));
    return out;
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
