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
import keel.execution.ApprovalToolProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The Approvals page and the human decisions in the session view, in Debian's Chromium driven by
 * Playwright against a real server on 127.0.0.1. The agents use the scripted model and the test
 * external tools {@code bank/pay} (side-effecting, value {@code args.amount}) and {@code
 * bank/balance} of {@link ApprovalToolProvider}, so the policy enforcement point, the inbox and the
 * session's resumption are all the real ones. Screenshots go to {@code target/dashboard-screenshots}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DashboardApprovalsBrowserTest {

  static final LocatorAssertions.HasCountOptions LONG = new LocatorAssertions.HasCountOptions().setTimeout(30_000);
  static final LocatorAssertions.HasTextOptions LONG_TEXT = new LocatorAssertions.HasTextOptions().setTimeout(30_000);
  static final LocatorAssertions.ContainsTextOptions LONG_CONTAINS = new LocatorAssertions.ContainsTextOptions().setTimeout(30_000);

  /** Pays the supplier 2000 (above the 1000 threshold) and then says what the tool answered. */
  static final String PAYER = """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: payer, owner: finance}
      spec:
        instructions: Pay the invoices that are due.
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - {say: "Invoice INV-7 from Acme is due today and matches PO-19, so I am paying the supplier.", call: [{tool: bank_pay, args: {amount: 2000, to: acme}}]}
                - {say: "payment result: {{result}}"}
        tools: [mcp://gateway/bank]
        approval: {on_action_value_usd_gt: 1000, expires_after: 2h}
      """;

  /** In shadow mode: one payment proposed, one to a forbidden payee denied by the policy. */
  static final String DRYRUN = """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: dryrun, owner: finance}
      spec:
        instructions: Pay.
        mode: shadow
        model:
          provider: scripted
          name: s
          script:
            - turns:
                - {say: "two payments", call: [{tool: bank_pay, args: {amount: 50, to: acme}}, {tool: bank_pay, args: {amount: 20, to: mallory}}]}
                - {say: "recorded"}
        tools: [mcp://gateway/bank]
      ---
      apiVersion: agent.os/v1
      kind: Policy
      metadata: {name: no-mallory}
      spec:
        applies_to: {tools: ["bank/pay"]}
        deny_when: 'has(args.to) && args.to == "mallory"'
        reason: mallory is not a supplier
      """;

  /** Another owner's agent that also asks for approval. */
  static final String OPS = PAYER.replace("name: payer, owner: finance", "name: ops-payer, owner: ops");

  @TempDir static Path dir;
  TestServer api;
  Playwright playwright;
  Browser browser;
  final List<BrowserContext> contexts = new ArrayList<>();

  @BeforeAll
  void start() throws Exception {
    Path browserPath = DashboardBrowserTest.chromium();
    Files.createDirectories(DashboardBrowserTest.SCREENSHOTS);
    api = TestServer.start(dir);
    apply(PAYER + "---\n" + DRYRUN + "---\n" + OPS);
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
  }

  void apply(String yaml) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/apply", TestServer.applyBody(yaml));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  /** Starts a task session as the admin (so the admin is its requester and may not decide it). */
  String start(String agent) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/sessions",
        EventCodec.mapper().createObjectNode().put("agent", agent).put("message", "pay what is due").put("task", true).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("id").asString();
  }

  String operatorToken(String name, String role) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/operators",
        EventCodec.mapper().createObjectNode().put("name", name).set("roles", EventCodec.mapper().createArrayNode().add(role)).toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return TestServer.json(r).get("token").asString();
  }

  Page signIn(String token) {
    BrowserContext c = browser.newContext(new Browser.NewContextOptions().setViewportSize(1400, 900));
    contexts.add(c);
    Page page = c.newPage();
    page.navigate(api.server().url() + "/login");
    page.fill("#token", token);
    page.click("#sign-in");
    page.waitForLoadState();
    PlaywrightAssertions.assertThat(page).hasURL(api.server().url() + "/agents");
    return page;
  }

  /** The id of the approval that {@code session} waits for, read through the API. */
  String approvalOf(String session) throws Exception {
    for (int i = 0; i < 200; i++) {
      for (JsonNode a : TestServer.json(api.call("GET", "/v1/approvals?status=all", null)).get("approvals")) {
        if (a.get("session_id").asString().equals(session)) {
          return a.get("id").asString();
        }
      }
      Thread.sleep(50);
    }
    throw new AssertionError("session " + session + " asked for no approval");
  }

  static Locator card(Page page, String approvalId) {
    return page.locator("article[data-approval-id='" + approvalId + "']");
  }

  @Test
  void anApprover_seesANewRequestArriveLive_isRefusedWithTheApisReason_approves_andTheSessionResumesAndCompletes() throws Exception {
    int executedBefore = ApprovalToolProvider.EXECUTED.size();
    String ann = operatorToken("ann", "approver@finance");
    Page inbox = signIn(ann);
    inbox.navigate(api.server().url() + "/approvals");
    PlaywrightAssertions.assertThat(inbox.locator("nav a[href='/approvals']")).hasClass("active");
    inbox.evaluate("window.__notReloaded = true");

    // the request arrives over the approvals stream, without reloading the page
    String session = start("payer");
    String id = approvalOf(session);
    Locator card = card(inbox, id);
    PlaywrightAssertions.assertThat(card).hasCount(1, LONG);
    assertThat(inbox.evaluate("window.__notReloaded === true")).isEqualTo(true);
    PlaywrightAssertions.assertThat(card.locator(".tool")).hasText("bank/pay");
    PlaywrightAssertions.assertThat(card.locator(".value")).hasText("$2000");
    PlaywrightAssertions.assertThat(card.locator(".agent")).hasText("payer");
    PlaywrightAssertions.assertThat(card.locator(".reasoning")).containsText("Invoice INV-7 from Acme is due today and matches PO-19");
    PlaywrightAssertions.assertThat(card.locator(".reasons")).containsText("spec.approval.on_action_value_usd_gt");
    PlaywrightAssertions.assertThat(card.locator("pre.arguments")).containsText("\"amount\" : 2000");
    PlaywrightAssertions.assertThat(card.locator(".times")).containsText("requested by operator:admin");
    PlaywrightAssertions.assertThat(card.locator(".times")).containsText("(in 1 h 59 min)");

    // the agents page counts the agent's pending approvals and links to them
    Page agents = inbox.context().newPage();
    agents.navigate(api.server().url() + "/agents");
    PlaywrightAssertions.assertThat(agents.locator("tr[data-agent=payer] td.approvals")).hasText("1 pending");
    agents.navigate(api.server().url() + "/agents/payer");
    PlaywrightAssertions.assertThat(agents.locator("#agent-approvals")).containsText("1 pending");

    // the session page, opened before the decision, shows the wait
    Page sessionPage = inbox.context().newPage();
    sessionPage.navigate(api.server().url() + "/sessions/" + session);
    PlaywrightAssertions.assertThat(sessionPage.locator("#session-status")).hasText("awaiting_approval", LONG_TEXT);
    PlaywrightAssertions.assertThat(sessionPage.locator("#decisions .decision-human .note")).containsText("waiting for a human");
    sessionPage.evaluate("window.__notReloaded = true");

    // what the reader types survives a live refresh of the inbox (another request arriving)
    card.locator("textarea[name=reason]").fill("invoice checked against PO-19");
    String other = start("payer");
    String otherId = approvalOf(other);
    PlaywrightAssertions.assertThat(card(inbox, otherId)).hasCount(1, LONG);
    PlaywrightAssertions.assertThat(card.locator("textarea[name=reason]")).hasValue("invoice checked against PO-19");
    DashboardBrowserTest.screenshot(inbox, "approvals");

    // a refused decision shows the API's reason on the card, which stays pending
    card.locator("textarea[name=reason]").fill("");
    card.locator("button.deny").click();
    PlaywrightAssertions.assertThat(card.locator(".decision-error")).containsText("reason: required: a string saying why approval " + id + " is denied");
    PlaywrightAssertions.assertThat(card).hasAttribute("data-status", "pending");
    card.locator("summary:has-text('Edit the arguments')").click();
    card.locator("textarea[name=arguments]").fill("{\"amount\": ");
    card.locator("button.approve").click();
    PlaywrightAssertions.assertThat(card.locator(".decision-error")).containsText("arguments: not valid JSON");
    assertThat(ApprovalToolProvider.EXECUTED).as("nothing ran before the approval").hasSize(executedBefore);

    // approve with a reason
    card.locator("textarea[name=arguments]").fill("{\"amount\": 2000, \"to\": \"acme\"}");
    card.locator("textarea[name=reason]").fill("invoice checked against PO-19");
    card.locator("button.approve").click();
    // decided: it leaves the pending inbox (live) and is listed under the "approved" filter
    PlaywrightAssertions.assertThat(inbox.locator("article[data-approval-id='" + id + "'][data-status=pending]")).hasCount(0, LONG);
    inbox.locator("#approval-filters a[data-filter=approved]").click();
    PlaywrightAssertions.assertThat(card.locator(".decided-by")).hasText("operator:ann");
    PlaywrightAssertions.assertThat(card.locator(".decision-reason")).hasText("invoice checked against PO-19");
    PlaywrightAssertions.assertThat(card.locator("form")).hasCount(0);
    DashboardBrowserTest.screenshot(inbox, "approvals-approved");

    // the session page resumes by itself and completes; the wait is a span naming who decided and why
    PlaywrightAssertions.assertThat(sessionPage.locator("#session-status")).hasText("completed", LONG_TEXT);
    assertThat(sessionPage.evaluate("window.__notReloaded === true")).isEqualTo(true);
    PlaywrightAssertions.assertThat(sessionPage.locator("#decisions .decision-human .note"))
        .hasText("approved by operator:ann: invoice checked against PO-19");
    Locator wait = sessionPage.locator("#waterfall details[data-kind=approval]");
    PlaywrightAssertions.assertThat(wait).hasCount(1);
    PlaywrightAssertions.assertThat(wait.locator(".span-note")).hasText("approved by operator:ann: invoice checked against PO-19");
    wait.locator("summary").click();
    PlaywrightAssertions.assertThat(wait.locator("table.attrs")).containsText("keel.human.decided_by");
    PlaywrightAssertions.assertThat(sessionPage.locator(".conversation .msg-assistant").last()).containsText("payment result: bank/pay done");
    DashboardBrowserTest.screenshot(sessionPage, "session-approved");
    assertThat(List.copyOf(ApprovalToolProvider.EXECUTED).subList(executedBefore, ApprovalToolProvider.EXECUTED.size()))
        .containsExactly("bank/pay {\"amount\":2000,\"to\":\"acme\"}");

    // the other request is still waiting: the count went down to it
    agents.navigate(api.server().url() + "/agents");
    PlaywrightAssertions.assertThat(agents.locator("tr[data-agent=payer] td.approvals")).hasText("1 pending");
    api.call("POST", "/v1/approvals/" + otherId + "/deny", "{\"reason\":\"cleanup\"}");
  }

  @Test
  void aDenialsReason_isWhatTheModelReadsInItsNextStep() throws Exception {
    String bea = operatorToken("bea", "approver@finance");
    String session = start("payer");
    String id = approvalOf(session);
    int executed = ApprovalToolProvider.EXECUTED.size();
    Page inbox = signIn(bea);
    inbox.navigate(api.server().url() + "/approvals");
    Locator card = card(inbox, id);
    card.locator("textarea[name=reason]").fill("duplicate of INV-6, already paid");
    card.locator("button.deny").click();
    PlaywrightAssertions.assertThat(inbox.locator("article[data-approval-id='" + id + "'][data-status=pending]")).hasCount(0, LONG);

    inbox.navigate(api.server().url() + "/sessions/" + session);
    PlaywrightAssertions.assertThat(inbox.locator("#session-status")).hasText("completed", LONG_TEXT);
    // the scripted model's next step repeats the call's result: the reason reached the model
    PlaywrightAssertions.assertThat(inbox.locator(".conversation .msg-assistant").last())
        .containsText("payment result: not run: denied by operator:bea: duplicate of INV-6, already paid");
    PlaywrightAssertions.assertThat(inbox.locator("#decisions .decision-human .note")).hasText("denied by operator:bea: duplicate of INV-6, already paid");
    PlaywrightAssertions.assertThat(inbox.locator("#waterfall details[data-kind=approval].error")).hasCount(1);
    assertThat(ApprovalToolProvider.EXECUTED).hasSize(executed);
    DashboardBrowserTest.screenshot(inbox, "session-denied");
  }

  @Test
  void theSessionView_showsShadowProposals_andPolicyDenialsWithTheirRule() throws Exception {
    String session = start("dryrun");
    Page page = signIn(api.token());
    page.navigate(api.server().url() + "/sessions/" + session);
    PlaywrightAssertions.assertThat(page.locator("#session-status")).hasText("completed", LONG_TEXT);
    PlaywrightAssertions.assertThat(page.locator("#decisions .decision-proposed .note"))
        .hasText("proposed in shadow mode, not executed (value $50)");
    PlaywrightAssertions.assertThat(page.locator("#decisions .decision-denied .note")).containsText("denied by policy/no-mallory: mallory is not a supplier");
    PlaywrightAssertions.assertThat(page.locator("#waterfall details[data-kind=tool].error .span-note")).containsText("policy/no-mallory");
    DashboardBrowserTest.screenshot(page, "session-shadow");
  }

  @Test
  void theRequester_andAViewer_seeTheApprovalWithoutButtons_andAViewerOfAnotherOwnerSeesNone() throws Exception {
    String session = start("payer");
    String id = approvalOf(session);
    String opsSession = start("ops-payer");
    String opsId = approvalOf(opsSession);

    // the admin started the session: it may not decide it, and the card says why
    Page admin = signIn(api.token());
    admin.navigate(api.server().url() + "/approvals");
    PlaywrightAssertions.assertThat(card(admin, id).locator(".refusal")).containsText("it started the session that asks for it");
    PlaywrightAssertions.assertThat(card(admin, id).locator("button")).hasCount(0);
    PlaywrightAssertions.assertThat(card(admin, opsId)).hasCount(1);

    Page viewer = signIn(operatorToken("fin-reader", "viewer@finance"));
    viewer.navigate(api.server().url() + "/approvals");
    PlaywrightAssertions.assertThat(card(viewer, id).locator(".refusal")).containsText("it needs the role approver for owner \"finance\"");
    PlaywrightAssertions.assertThat(card(viewer, id).locator("button")).hasCount(0);
    PlaywrightAssertions.assertThat(card(viewer, opsId)).hasCount(0);
    // a decision posted anyway (with this browser's own CSRF token) is refused with the API's reason
    String csrf = viewer.locator(".who input[name=csrf]").getAttribute("value");
    var refused = viewer.request().post(api.server().url() + "/approvals/" + id + "/approve",
        com.microsoft.playwright.options.RequestOptions.create().setForm(com.microsoft.playwright.options.FormData.create()
            .set("csrf", csrf).set("reason", "let me")).setHeader("HX-Request", "true"));
    assertThat(refused.status()).isEqualTo(403);
    assertThat(refused.text()).contains("needs the role approver for owner");

    // an operator scoped to another owner sees no approvals of this owner, listed or by filter
    Page ops = signIn(operatorToken("ops-reader", "viewer@ops"));
    ops.navigate(api.server().url() + "/approvals?status=all");
    PlaywrightAssertions.assertThat(ops.locator("article[data-approval-id]")).not().hasCount(0);
    PlaywrightAssertions.assertThat(ops.locator("article.approval .agent")).hasText(new String[] {"ops-payer"});
    assertThat(ops.content()).doesNotContain(id).doesNotContain(session);
    PlaywrightAssertions.assertThat(card(ops, id)).hasCount(0);
    Response direct = ops.navigate(api.server().url() + "/approvals?status=all&agent=payer");
    assertThat(direct.status()).isEqualTo(200);
    PlaywrightAssertions.assertThat(ops.locator("#approvals-empty")).hasCount(1);
    DashboardBrowserTest.screenshot(ops, "approvals-other-owner");

    api.call("POST", "/v1/approvals/" + id + "/deny", "{\"reason\":\"cleanup\"}");
    api.call("POST", "/v1/approvals/" + opsId + "/deny", "{\"reason\":\"cleanup\"}");
  }
}
