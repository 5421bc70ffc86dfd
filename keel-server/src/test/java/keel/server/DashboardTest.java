package keel.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import keel.core.EventCodec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The dashboard's sign-in, cookies and CSRF checks over real HTTP (no browser): what the browser
 * tests cannot easily show, such as a forged form, a revoked operator, or the cookie's flags.
 */
class DashboardTest {

  @TempDir Path dir;
  TestServer api;
  final HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build();

  @BeforeEach
  void start() throws Exception {
    api = TestServer.start(dir);
  }

  @AfterEach
  void stop() {
    api.close();
  }

  HttpResponse<String> get(String path, String cookie) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(api.server().url() + path));
    if (cookie != null) {
      b.header("Cookie", cookie);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<String> post(String path, String cookie, String form, String... headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(api.server().url() + path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .POST(HttpRequest.BodyPublishers.ofString(form));
    if (cookie != null) {
      b.header("Cookie", cookie);
    }
    for (int i = 0; i < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  static Optional<String> cookie(HttpResponse<?> r, String name) {
    return r.headers().allValues("Set-Cookie").stream().filter(c -> c.startsWith(name + "=")).findFirst();
  }

  static String value(String setCookie) {
    return setCookie.substring(setCookie.indexOf('=') + 1, setCookie.indexOf(';'));
  }

  static String csrfOf(String html) {
    Matcher m = Pattern.compile("name=\"csrf\" value=\"([^\"]+)\"").matcher(html);
    assertThat(m.find()).as(html).isTrue();
    return m.group(1);
  }

  /** Signs in with {@code token} as a browser would; returns the session cookie header value. */
  String signIn(String token) throws Exception {
    HttpResponse<String> form = get("/login", null);
    String loginCsrf = value(cookie(form, Dashboard.LOGIN_CSRF_COOKIE).orElseThrow());
    HttpResponse<String> r = post("/login", Dashboard.LOGIN_CSRF_COOKIE + "=" + loginCsrf,
        "csrf=" + enc(csrfOf(form.body())) + "&token=" + enc(token));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(302);
    assertThat(r.headers().firstValue("Location")).hasValue("/agents");
    return Dashboard.SESSION_COOKIE + "=" + value(cookie(r, Dashboard.SESSION_COOKIE).orElseThrow());
  }

  @Test
  void pages_withoutASession_redirectToTheSignInForm() throws Exception {
    for (String path : List.of("/", "/agents", "/costs", "/agents/x", "/sessions/x", "/approvals", "/approvals/list", "/approvals/live")) {
      HttpResponse<String> r = get(path, null);
      assertThat(r.statusCode()).as(path).isEqualTo(302);
      assertThat(r.headers().firstValue("Location").orElseThrow()).as(path).endsWith(path.equals("/") ? "/agents" : "/login");
    }
    assertThat(get("/agents", Dashboard.SESSION_COOKIE + "=forged").headers().firstValue("Location")).hasValue("/login");
  }

  @Test
  void signIn_setsAnHttpOnlyStrictCookie_andNeverPutsTheTokenInThePage() throws Exception {
    HttpResponse<String> form = get("/login", null);
    String loginCsrf = value(cookie(form, Dashboard.LOGIN_CSRF_COOKIE).orElseThrow());
    HttpResponse<String> r = post("/login", Dashboard.LOGIN_CSRF_COOKIE + "=" + loginCsrf,
        "csrf=" + enc(csrfOf(form.body())) + "&token=" + enc(api.token()));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(302);
    String set = cookie(r, Dashboard.SESSION_COOKIE).orElseThrow();
    assertThat(set).contains("HttpOnly").contains("SameSite=Strict").contains("Path=/").doesNotContain(api.token());
    String session = Dashboard.SESSION_COOKIE + "=" + value(set);
    HttpResponse<String> agents = get("/agents", session);
    assertThat(agents.statusCode()).isEqualTo(200);
    assertThat(agents.body()).contains("operator:admin").doesNotContain(api.token());
    assertThat(agents.headers().firstValue("Content-Security-Policy").orElseThrow()).contains("script-src 'self'");
  }

  @Test
  void signIn_withAWrongToken_isRefusedWithAMessage() throws Exception {
    HttpResponse<String> form = get("/login", null);
    String loginCsrf = value(cookie(form, Dashboard.LOGIN_CSRF_COOKIE).orElseThrow());
    HttpResponse<String> r = post("/login", Dashboard.LOGIN_CSRF_COOKIE + "=" + loginCsrf,
        "csrf=" + enc(csrfOf(form.body())) + "&token=keel_nottherealtoken");
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.body()).contains("not valid for this server");
    assertThat(cookie(r, Dashboard.SESSION_COOKIE)).isEmpty();
  }

  @Test
  void signIn_withoutTheFormsCsrfToken_orFromAnotherOrigin_isRefused() throws Exception {
    HttpResponse<String> form = get("/login", null);
    String loginCsrf = value(cookie(form, Dashboard.LOGIN_CSRF_COOKIE).orElseThrow());
    // a forged form on another site cannot read the cookie, so it cannot send the matching field
    HttpResponse<String> forged = post("/login", Dashboard.LOGIN_CSRF_COOKIE + "=" + loginCsrf, "csrf=guess&token=" + enc(api.token()));
    assertThat(forged.statusCode()).isEqualTo(403);
    assertThat(cookie(forged, Dashboard.SESSION_COOKIE)).isEmpty();
    HttpResponse<String> noCookie = post("/login", null, "csrf=" + enc(csrfOf(form.body())) + "&token=" + enc(api.token()));
    assertThat(noCookie.statusCode()).isEqualTo(403);
    HttpResponse<String> otherOrigin = post("/login", Dashboard.LOGIN_CSRF_COOKIE + "=" + loginCsrf,
        "csrf=" + enc(csrfOf(form.body())) + "&token=" + enc(api.token()), "Origin", "https://evil.example");
    assertThat(otherOrigin.statusCode()).isEqualTo(403);
  }

  @Test
  void signOut_needsTheSessionsCsrfToken_andEndsTheSession() throws Exception {
    String session = signIn(api.token());
    String csrf = csrfOf(get("/agents", session).body());
    assertThat(post("/logout", session, "csrf=wrong").statusCode()).isEqualTo(403);
    assertThat(get("/agents", session).statusCode()).isEqualTo(200);
    HttpResponse<String> out = post("/logout", session, "csrf=" + enc(csrf));
    assertThat(out.statusCode()).isEqualTo(302);
    assertThat(cookie(out, Dashboard.SESSION_COOKIE).orElseThrow()).contains("Max-Age=0");
    assertThat(get("/agents", session).headers().firstValue("Location")).hasValue("/login");
  }

  @Test
  void revokingAnOperator_signsItsBrowsersOutOnTheNextRequest() throws Exception {
    HttpResponse<String> created = api.call("POST", "/v1/operators",
        EventCodec.mapper().createObjectNode().put("name", "bob").set("roles", EventCodec.mapper().createArrayNode().add("viewer")).toString());
    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
    String session = signIn(TestServer.json(created).get("token").asString());
    assertThat(get("/agents", session).statusCode()).isEqualTo(200);
    assertThat(api.call("POST", "/v1/operators/bob/revoke", null).statusCode()).isEqualTo(200);
    HttpResponse<String> after = get("/agents", session);
    assertThat(after.statusCode()).isEqualTo(302);
    assertThat(after.headers().firstValue("Location")).hasValue("/login");
  }

  /** Starts a session of an agent that waits for approval; returns the approval's id. */
  String pendingApproval(String agent) throws Exception {
    HttpResponse<String> s = api.call("POST", "/v1/sessions", "{\"agent\":\"" + agent + "\",\"message\":\"pay\"}");
    assertThat(s.statusCode()).as(s.body()).isEqualTo(201);
    String session = TestServer.json(s).get("id").asString();
    for (int i = 0; i < 200; i++) {
      for (var a : TestServer.json(api.call("GET", "/v1/approvals?agent=" + agent, null)).get("approvals")) {
        if (a.get("session_id").asString().equals(session)) {
          return a.get("id").asString();
        }
      }
      Thread.sleep(50);
    }
    throw new AssertionError("no approval for session " + session);
  }

  String approvalStatus(String id) throws Exception {
    return TestServer.json(api.call("GET", "/v1/approvals/" + id, null)).get("status").asString();
  }

  @Test
  void approvalDecisions_needTheSessionsCsrfToken_andTheSameOrigin_andFollowTheApisRules() throws Exception {
    HttpResponse<String> applied = api.call("POST", "/v1/apply", TestServer.applyBody(ApprovalsApiTest.agent("payer", "finance", "")));
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);
    String id = pendingApproval("payer");
    HttpResponse<String> created = api.call("POST", "/v1/operators",
        EventCodec.mapper().createObjectNode().put("name", "ann").set("roles", EventCodec.mapper().createArrayNode().add("approver@finance")).toString());
    String session = signIn(TestServer.json(created).get("token").asString());
    HttpResponse<String> inbox = get("/approvals", session);
    assertThat(inbox.statusCode()).isEqualTo(200);
    assertThat(inbox.body()).contains("data-approval-id=\"" + id + "\"").contains("/approvals/" + id + "/approve");
    String csrf = csrfOf(inbox.body());

    // forged: no token, a wrong token, another origin, no session; nothing is decided
    assertThat(post("/approvals/" + id + "/approve", session, "reason=x").statusCode()).isEqualTo(403);
    assertThat(post("/approvals/" + id + "/approve", session, "csrf=wrong&reason=x").statusCode()).isEqualTo(403);
    assertThat(post("/approvals/" + id + "/approve", session, "csrf=" + enc(csrf) + "&reason=x", "Origin", "https://evil.example").statusCode())
        .isEqualTo(403);
    HttpResponse<String> anonymous = post("/approvals/" + id + "/approve", null, "csrf=" + enc(csrf));
    assertThat(anonymous.statusCode()).isEqualTo(302);
    assertThat(anonymous.headers().firstValue("Location")).hasValue("/login");
    assertThat(approvalStatus(id)).isEqualTo("pending");

    // the API's rules: a deny needs a reason (400 with the API's message, on the page); unknown ids are 404
    HttpResponse<String> noReason = post("/approvals/" + id + "/deny", session, "csrf=" + enc(csrf) + "&reason=+");
    assertThat(noReason.statusCode()).isEqualTo(400);
    assertThat(noReason.body()).contains("reason: required: a string saying why approval " + id + " is denied");
    assertThat(post("/approvals/apr_nope/deny", session, "csrf=" + enc(csrf) + "&reason=no").statusCode()).isEqualTo(404);
    assertThat(approvalStatus(id)).isEqualTo("pending");

    // a plain form post (no JavaScript) decides and goes back to the inbox; edited arguments are kept
    HttpResponse<String> ok = post("/approvals/" + id + "/approve", session,
        "csrf=" + enc(csrf) + "&reason=" + enc("half now") + "&arguments=" + enc("{\"amount\": 1000}"));
    assertThat(ok.statusCode()).as(ok.body()).isEqualTo(303);
    assertThat(ok.headers().firstValue("Location")).hasValue("/approvals?status=approved");
    JsonNode decided = TestServer.json(api.call("GET", "/v1/approvals/" + id, null));
    assertThat(decided.get("status").asString()).isEqualTo("approved");
    assertThat(decided.get("decision").get("by").asString()).isEqualTo("operator:ann");
    assertThat(decided.get("decision").get("reason").asString()).isEqualTo("half now");
    assertThat(decided.get("decision").get("arguments").get("amount").asInt()).isEqualTo(1000);

    // a second decision is a conflict, shown on the card that htmx swaps in
    HttpResponse<String> again = post("/approvals/" + id + "/deny", session, "csrf=" + enc(csrf) + "&reason=late", "HX-Request", "true");
    assertThat(again.statusCode()).isEqualTo(409);
    assertThat(again.body()).contains("data-status=\"approved\"").contains("class=\"error decision-error\"");
    HttpResponse<String> approved = get("/approvals?status=approved", session);
    assertThat(approved.body()).contains("operator:ann").contains("half now");
    assertThat(get("/approvals?status=maybe", session).statusCode()).isEqualTo(400);
  }

  @Test
  void assets_andWebjars_areServedFromTheJar() throws Exception {
    assertThat(get("/webjars/htmx.org/2.0.10/dist/htmx.min.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/webjars/htmx.org/2.0.10/dist/ext/sse.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/webjars/chart.js/4.5.1/dist/chart.umd.min.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/assets/dashboard.js", null).body()).contains("data-chart");
    assertThat(get("/assets/dashboard.css", null).statusCode()).isEqualTo(200);
  }
}
