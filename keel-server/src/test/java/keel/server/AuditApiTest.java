package keel.server;

import static keel.server.TestServer.json;
import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import keel.data.AuditRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * {@code GET /v1/audit} and {@code GET /v1/audit/verify} over real HTTP on a real SQLite file:
 * filters and paging, owner scoping (an owner-scoped viewer sees only its owners' entries), bad
 * parameters answered 400 naming the parameter, and verification that turns from intact to broken
 * when a row of the file is edited.
 */
class AuditApiTest {

  @TempDir Path dir;
  TestServer api;
  String root;

  @BeforeEach
  void start() throws Exception {
    api = TestServer.start(dir);
    root = api.token();
    List<AuditRecord> records = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      records.add(new AuditRecord("tool_call", "agent:billing", "finance", "billing", "s" + i, "ledger/post", "{\"i\":" + i + "}"));
    }
    records.add(new AuditRecord("policy_decision", "agent:helper", "team-a", "helper", "s9", "mail/send", "{\"decision\":\"deny\"}"));
    records.add(new AuditRecord("catalog_change", "system", "", "", "", "mail/send", "{\"version\":2}"));
    api.server().store().audit().append(records);
  }

  @AfterEach
  void stop() {
    api.close();
  }

  JsonNode get(String token, String path) throws Exception {
    HttpResponse<String> r = api.callAs(token, "GET", path, null);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return json(r);
  }

  String operator(String name, String role) throws Exception {
    HttpResponse<String> r = api.call("POST", "/v1/operators", "{\"name\":\"" + name + "\",\"roles\":[\"" + role + "\"]}");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
    return json(r).get("token").asString();
  }

  static List<Long> seqs(JsonNode page) {
    List<Long> out = new ArrayList<>();
    page.get("entries").forEach(e -> out.add(e.get("seq").asLong()));
    return out;
  }

  @Test
  void audit_listsEntriesWithTheirChain_filtersAndPages() throws Exception {
    JsonNode all = get(root, "/v1/audit");
    assertThat(seqs(all)).containsExactly(1L, 2L, 3L, 4L, 5L, 6L, 7L);
    JsonNode first = all.get("entries").get(0);
    assertThat(first.get("kind").asString()).isEqualTo("tool_call");
    assertThat(first.get("detail").get("i").asInt()).isEqualTo(1);
    assertThat(first.get("prev_hash").asString()).isEqualTo("0".repeat(64));
    assertThat(all.get("entries").get(1).get("prev_hash").asString()).isEqualTo(first.get("hash").asString());
    assertThat(all.has("next_after")).isFalse();

    assertThat(seqs(get(root, "/v1/audit?kind=policy_decision"))).containsExactly(6L);
    assertThat(seqs(get(root, "/v1/audit?agent=billing&session=s3"))).containsExactly(3L);
    assertThat(seqs(get(root, "/v1/audit?tool=mail/send"))).containsExactly(6L, 7L);
    assertThat(seqs(get(root, "/v1/audit?owner=team-a"))).containsExactly(6L);
    assertThat(seqs(get(root, "/v1/audit?until=2000-01-01"))).isEmpty();
    assertThat(seqs(get(root, "/v1/audit?since=2000-01-01T00:00:00Z"))).hasSize(7);
    JsonNode page = get(root, "/v1/audit?limit=3&after=2");
    assertThat(seqs(page)).containsExactly(3L, 4L, 5L);
    assertThat(page.get("next_after").asLong()).isEqualTo(5);
  }

  @Test
  void audit_forAnOwnerScopedViewer_showsOnlyItsOwnersEntries() throws Exception {
    String viewer = operator("vic", "viewer@team-a");

    assertThat(seqs(get(viewer, "/v1/audit"))).containsExactly(6L);
    assertThat(seqs(get(viewer, "/v1/audit?owner=finance"))).isEmpty();
    assertThat(api.callAs(viewer, "GET", "/v1/audit/verify", null).statusCode()).isEqualTo(403);
  }

  @Test
  void audit_withBadParameters_isA400NamingTheParameter() throws Exception {
    for (String[] c : new String[][] {
        {"/v1/audit?limit=0", "limit"},
        {"/v1/audit?after=x", "after"},
        {"/v1/audit?since=yesterday", "since"},
        {"/v1/audit/verify?expect_head=abc", "expect_head"}}) {
      HttpResponse<String> r = api.call("GET", c[0], null);
      assertThat(r.statusCode()).as(c[0]).isEqualTo(400);
      assertThat(r.headers().firstValue("Content-Type")).get().asString().contains("problem+json");
      assertThat(json(r).get("detail").asString()).as(c[0]).contains(c[1]);
    }
  }

  @Test
  void verify_isIntact_thenBrokenAfterARowOfTheFileIsEdited() throws Exception {
    JsonNode ok = get(root, "/v1/audit/verify");
    assertThat(ok.get("ok").asBoolean()).isTrue();
    assertThat(ok.get("checked").asLong()).isEqualTo(7);
    String head = ok.get("head_hash").asString();
    assertThat(head).isEqualTo(get(root, "/v1/audit").get("entries").get(6).get("hash").asString());
    assertThat(get(root, "/v1/audit/verify?expect_head=" + head).get("anchor_seq").asLong()).isEqualTo(7);

    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("keel.db"));
        Statement st = c.createStatement()) {
      st.execute("PRAGMA busy_timeout=10000");
      st.executeUpdate("UPDATE audit_log SET actor = 'agent:someone-else' WHERE seq = 4");
    }

    JsonNode broken = get(root, "/v1/audit/verify");
    assertThat(broken.get("ok").asBoolean()).isFalse();
    assertThat(broken.get("seq").asLong()).isEqualTo(4);
    assertThat(broken.get("problem").asString()).isEqualTo("hash_mismatch");
    assertThat(broken.get("reason").asString()).contains("entry 4");
  }
}
