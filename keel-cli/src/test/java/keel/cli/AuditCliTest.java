package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keel.core.EventCodec;
import keel.data.AuditRecord;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * {@code keel audit} and {@code keel audit verify} against a real server over a real SQLite file:
 * the table and JSON listings with filters, and verification that exits 0 with the head hash, then
 * 1 naming the entry and the reason once a row of the file is deleted.
 */
class AuditCliTest {

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", Files.readString(server.adminTokenFile()).strip());
    server.store().audit().append(List.of(
        new AuditRecord("tool_call", "agent:billing", "finance", "billing", "s1", "ledger/post", "{\"amount\":12}"),
        new AuditRecord("tool_result", "agent:billing", "finance", "billing", "s1", "ledger/post", "{\"error\":false}"),
        new AuditRecord("policy_decision", "agent:mailer", "sales", "mailer", "s2", "mail/send", "{\"decision\":\"deny\"}")));
  }

  @AfterEach
  void stop() {
    server.close();
  }

  Result cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new java.io.ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void audit_printsATable_filtered_andJson() {
    Result all = cli("audit");
    assertThat(all.code()).as(all.err()).isZero();
    assertThat(all.out()).contains("SEQ").contains("KIND").contains("tool_call").contains("ledger/post")
        .contains("{\"amount\":12}").contains("policy_decision");

    Result filtered = cli("audit", "--agent", "mailer");
    assertThat(filtered.out()).contains("mail/send").doesNotContain("ledger/post");

    Result paged = cli("audit", "--limit", "2");
    assertThat(paged.err()).contains("--after 2");

    Result json = cli("audit", "--kind", "tool_result", "-o", "json");
    JsonNode entries = EventCodec.mapper().readTree(json.out()).get("entries");
    assertThat(entries).hasSize(1);
    assertThat(entries.get(0).get("seq").asLong()).isEqualTo(2);
    assertThat(entries.get(0).get("hash").asString()).hasSize(64);

    Result none = cli("audit", "--session", "nope");
    assertThat(none.code()).isZero();
    assertThat(none.err()).contains("No audit entries match");
  }

  @Test
  void verify_exitsZeroWithTheHead_thenOneNamingTheDeletedEntry() throws Exception {
    Result ok = cli("audit", "verify");
    assertThat(ok.code()).as(ok.err()).isZero();
    String head = server.store().audit().head().hash();
    assertThat(ok.out()).contains("intact: 3 entries").contains(head);

    Result anchored = cli("audit", "verify", "--expect-head", head);
    assertThat(anchored.code()).isZero();
    assertThat(anchored.out()).contains("entry 3 of the chain");

    Result bad = cli("audit", "verify", "--expect-head", "not-a-hash");
    assertThat(bad.code()).isNotZero();
    assertThat(bad.err()).contains("expect_head").contains("64 lowercase hex digits");

    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("data").resolve("keel.db"));
        Statement st = c.createStatement()) {
      st.execute("PRAGMA busy_timeout=10000");
      st.executeUpdate("DELETE FROM audit_log WHERE seq = 2");
    }

    Result broken = cli("audit", "verify");
    assertThat(broken.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(broken.err()).contains("broken at entry 2 (sequence_gap)").contains("deleted");

    Result brokenJson = cli("audit", "verify", "-o", "json");
    assertThat(brokenJson.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(EventCodec.mapper().readTree(brokenJson.out()).get("seq").asLong()).isEqualTo(2);
  }
}
