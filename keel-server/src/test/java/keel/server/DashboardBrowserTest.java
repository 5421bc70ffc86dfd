package keel.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.microsoft.playwright.Browser;
import com.microsoft.playwright.BrowserContext;
import com.microsoft.playwright.BrowserType;
import com.microsoft.playwright.Locator;
import com.microsoft.playwright.Page;
import com.microsoft.playwright.Playwright;
import com.microsoft.playwright.Response;
import com.microsoft.playwright.assertions.LocatorAssertions;
import com.microsoft.playwright.assertions.PlaywrightAssertions;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.testkit.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dashboard in a real browser: Debian's Chromium driven by Playwright against a real server on
 * 127.0.0.1, agents whose sessions really run against a fake OpenAI server. The browser is the
 * system's ({@code /usr/bin/chromium}, or {@code KEEL_CHROMIUM}); Playwright never downloads one.
 * Without it the tests fail, never skip. Screenshots of every page go to {@code
 * target/dashboard-screenshots}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DashboardBrowserTest {

  static final Path SCREENSHOTS = Path.of("target", "dashboard-screenshots");

  @TempDir static Path dir;
  FakeOpenAi billingModel;
  FakeOpenAi helperModel;
  TestServer api;
  Playwright playwright;
  Browser browser;
  final List<BrowserContext> contexts = new ArrayList<>();

  static Path chromium() {
    String configured = System.getenv("KEEL_CHROMIUM");
    Path p = Path.of(configured == null || configured.isBlank() ? "/usr/bin/chromium" : configured);
    assertThat(Files.isExecutable(p))
        .as("the browser tests drive the system's Chromium at %s; install it (apt-get install -y chromium) or set KEEL_CHROMIUM", p)
        .isTrue();
    return p;
  }

  @BeforeAll
  void start() throws Exception {
    Path browserPath = chromium();
    Files.createDirectories(SCREENSHOTS);
    billingModel = FakeOpenAi.start().answerToolLoop("charge_card");
    helperModel = FakeOpenAi.start();
    api = TestServer.start(dir);
    apply(CostsApiTest.agent("billing", "finance", "gpt-4o", billingModel.baseUrl(), "internal://payments", "usd_per_day: 100"));
    apply(CostsApiTest.agent("helper", "team-a", "gpt-4o-mini", helperModel.baseUrl(), "internal://time", "calls_per_hour: 100"));
    playwright = Playwright.create(new Playwright.CreateOptions().setEnv(Map.of("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")));
    browser = playwright.chromium().launch(new BrowserType.LaunchOptions().setExecutablePath(browserPath).setHeadless(true));
  }

  @AfterAll
  void stop() {
    contexts.forEach(BrowserContext::close);
    if (browser != null) {
      browser.close();
    }
    if (playwright != null) {
      playwright.close();
    }
    if (api != null) {
      api.close();
    }
    billingModel.close();
    helperModel.close();
  }

  void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  String start(String agent, String message) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/sessions",
        EventCodec.mapper().createObjectNode().put("agent", agent).put("message", message).put("task", true).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("id").asString();
  }

  String operatorToken(String name, String role) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/operators",
        EventCodec.mapper().createObjectNode().put("name", name).set("roles", EventCodec.mapper().createArrayNode().add(role)).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("token").asString();
  }

  Page newPage() {
    BrowserContext c = browser.newContext(new Browser.NewContextOptions().setViewportSize(1400, 900));
    contexts.add(c);
    return c.newPage();
  }

  Page signIn(String token) {
    Page page = newPage();
    page.navigate(api.server().url() + "/");
    PlaywrightAssertions.assertThat(page).hasURL(api.server().url() + "/login");
    page.fill("#token", token);
    page.click("#sign-in");
    page.waitForLoadState();
    assertThat(page.locator("#login-error").count()).as("sign-in error: %s", page.content()).isZero();
    PlaywrightAssertions.assertThat(page).hasURL(api.server().url() + "/agents");
    return page;
  }

  static void screenshot(Page page, String name) {
    page.screenshot(new Page.ScreenshotOptions().setPath(SCREENSHOTS.resolve(name + ".png")).setFullPage(true));
  }

  static final LocatorAssertions.HasCountOptions LONG = new LocatorAssertions.HasCountOptions().setTimeout(30_000);

  @Test
  void admin_signsIn_watchesARunningSessionsSpansAppear_andSeesEveryPage() throws Exception {
    Page login = newPage();
    login.navigate(api.server().url() + "/login");
    screenshot(login, "login");

    Page page = signIn(api.token());
    PlaywrightAssertions.assertThat(page.locator("#principal")).hasText("operator:admin");
    PlaywrightAssertions.assertThat(page.locator("#agents tr[data-agent]")).hasCount(2);
    assertThat(page.content()).doesNotContain(api.token());

    // each model call answers after a pause, so the session is still running when the page opens
    billingModel.hangNext(4, Duration.ofMillis(1500));
    String id = start("billing", "steps=3");
    page.navigate(api.server().url() + "/sessions/" + id);
    page.evaluate("window.__notReloaded = true");
    int toolsAtFirst = page.locator("#waterfall details[data-kind=tool]").count();
    assertThat(toolsAtFirst).as("the page opened while the session ran").isLessThan(3);
    PlaywrightAssertions.assertThat(page.locator("#session-status")).not().hasText("completed");
    // the spans arrive over server-sent events, without reloading the page
    PlaywrightAssertions.assertThat(page.locator("#waterfall details[data-kind=tool]")).hasCount(3, LONG);
    PlaywrightAssertions.assertThat(page.locator("#session-status")).hasText("completed",
        new LocatorAssertions.HasTextOptions().setTimeout(30_000));
    assertThat(page.evaluate("window.__notReloaded === true")).isEqualTo(true);
    PlaywrightAssertions.assertThat(page.locator("#waterfall details[data-kind=model]")).hasCount(4);

    // a span opens to its detail: the tool's arguments and result, the decision that allowed it
    Locator tool = page.locator("#waterfall details[data-kind=tool]").first();
    tool.locator("summary").click();
    PlaywrightAssertions.assertThat(tool.locator("table.attrs")).containsText("keel.decision");
    PlaywrightAssertions.assertThat(tool.locator("table.attrs")).containsText("keel.tool.result");
    Locator model = page.locator("#waterfall details[data-kind=model]").first();
    model.locator("summary").click();
    PlaywrightAssertions.assertThat(model.locator("table.attrs")).containsText("gen_ai.usage.input_tokens");
    PlaywrightAssertions.assertThat(model.locator("table.attrs")).containsText("keel.cost.usd");
    PlaywrightAssertions.assertThat(page.locator(".conversation .msg")).not().hasCount(0);
    screenshot(page, "session");

    // a second revision, so the agent page has a diff to show
    apply(CostsApiTest.agent("billing", "finance", "gpt-4o", billingModel.baseUrl(), "internal://payments", "usd_per_day: 50"));
    page.navigate(api.server().url() + "/agents");
    PlaywrightAssertions.assertThat(page.locator("tr[data-agent=billing] .meter")).hasCount(1);
    screenshot(page, "agents");

    page.navigate(api.server().url() + "/agents/billing");
    PlaywrightAssertions.assertThat(page.locator("#agent-name")).hasText("billing");
    PlaywrightAssertions.assertThat(page.locator("#revisions tbody tr")).hasCount(2);
    page.locator("#revisions details summary").first().click();
    PlaywrightAssertions.assertThat(page.locator("#revisions pre.diff").first()).containsText("usd_per_day");
    PlaywrightAssertions.assertThat(page.locator("#sessions a[href='/sessions/" + id + "']")).hasCount(1);
    PlaywrightAssertions.assertThat(page.locator("#agent-cost-chart[data-drawn=true]")).hasCount(1);
    screenshot(page, "agent");

    page.navigate(api.server().url() + "/costs");
    PlaywrightAssertions.assertThat(page.locator("#costs-by-agent tbody tr:has-text('billing')")).not().hasCount(0);
    PlaywrightAssertions.assertThat(page.locator("#costs-by-owner tbody tr:has-text('finance')")).not().hasCount(0);
    PlaywrightAssertions.assertThat(page.locator("canvas[data-drawn=true]")).hasCount(3);
    assertThat(page.locator("#costs-total").textContent()).isNotEqualTo("$0");
    screenshot(page, "costs");

    page.click("#sign-out");
    PlaywrightAssertions.assertThat(page).hasURL(api.server().url() + "/login");
    page.navigate(api.server().url() + "/agents");
    PlaywrightAssertions.assertThat(page).hasURL(api.server().url() + "/login");
  }

  @Test
  void viewerScopedToOneOwner_seesNeitherTheListingNorTheDirectUrlOfAnotherOwnersAgent() throws Exception {
    String helperSession = start("helper", "hello");
    String viewer = operatorToken("fin-viewer", "viewer@finance");
    Page page = signIn(viewer);
    PlaywrightAssertions.assertThat(page.locator("#principal")).hasText("operator:fin-viewer");
    PlaywrightAssertions.assertThat(page.locator("#agents tr[data-agent]")).hasCount(1);
    PlaywrightAssertions.assertThat(page.locator("#agents tr[data-agent=billing]")).hasCount(1);
    PlaywrightAssertions.assertThat(page.locator("#agents tr[data-agent=helper]")).hasCount(0);
    screenshot(page, "agents-viewer-finance");

    Response agent = page.navigate(api.server().url() + "/agents/helper");
    assertThat(agent.status()).isEqualTo(403);
    PlaywrightAssertions.assertThat(page.locator("#error-message")).containsText("operator:fin-viewer may not GET /agents/helper");
    assertThat(page.content()).doesNotContain("team-a").doesNotContain("gpt-4o-mini");
    screenshot(page, "forbidden");

    Response session = page.navigate(api.server().url() + "/sessions/" + helperSession);
    assertThat(session.status()).isEqualTo(403);
    assertThat(page.content()).doesNotContain("hello");

    page.navigate(api.server().url() + "/costs");
    PlaywrightAssertions.assertThat(page.locator("#costs-by-owner tbody tr:has-text('team-a')")).hasCount(0);
  }
}
