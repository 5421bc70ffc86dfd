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
    for (String path : List.of("/", "/agents", "/costs", "/agents/x", "/sessions/x")) {
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

  @Test
  void assets_andWebjars_areServedFromTheJar() throws Exception {
    assertThat(get("/webjars/htmx.org/2.0.10/dist/htmx.min.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/webjars/htmx.org/2.0.10/dist/ext/sse.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/webjars/chart.js/4.5.1/dist/chart.umd.min.js", null).statusCode()).isEqualTo(200);
    assertThat(get("/assets/dashboard.js", null).body()).contains("data-chart");
    assertThat(get("/assets/dashboard.css", null).statusCode()).isEqualTo(200);
  }
}
