package keel.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.McpServerDescriptor;
import keel.core.Metadata;
import keel.data.Store;
import keel.testkit.mcp.BrokenServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Upstreams that misbehave (testkit's {@link BrokenServer} as a real child process): each gives a
 * clear error result for the call, the gateway goes on, and the server is restarted with backoff.
 */
class BrokenUpstreamsTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final GatewaySettings FAST =
      new GatewaySettings(Duration.ofSeconds(10), 1 << 20, Duration.ofMillis(300), Duration.ofSeconds(2));

  @TempDir Path dataDir;
  private Store store;
  private Gateway gateway;
  private final List<CatalogChange> changes = Collections.synchronizedList(new ArrayList<>());

  @BeforeEach
  void open() {
    store = Store.sqlite(dataDir, "node-a", Clock.systemUTC(), false);
    gateway = new Gateway(store.toolCatalog(), dataDir, Map.of("PATH", System.getenv("PATH"), "DB_PASSWORD", "hunter2"),
        Clock.systemUTC(), FAST, changes::add);
  }

  @AfterEach
  void close() {
    gateway.close();
    store.close();
  }

  private static McpServerDescriptor broken(String name, String mode, Duration timeout,
      Map<String, McpServerDescriptor.ValueSource> env, Optional<Integer> callsPerMinute) {
    return new McpServerDescriptor(new Metadata(name, "team-a", Map.of()),
        new McpServerDescriptor.Spec("stdio", BrokenServer.command(mode), Optional.empty(), env, Map.of(), Map.of(),
            callsPerMinute, Optional.of(timeout), Optional.empty()));
  }

  private static McpServerDescriptor broken(String name, String mode) {
    return broken(name, mode, Duration.ofSeconds(10), Map.of(), Optional.empty());
  }

  private static CallMeta meta(String call) {
    return new CallMeta("s-1", "agent:test", "s-1/" + call, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  }

  @Test
  void invalidJsonRpc_isAClearErrorResult_andTheServerIsRestartedWithBackoff() {
    gateway.configure(List.of(broken("garbage", "garbage"), broken("fine", "ok")));
    gateway.catalog();

    CallResult r = gateway.call("garbage/echo", "{\"message\":\"hi\"}", meta("c1"));
    CallResult during = gateway.call("garbage/echo", "{\"message\":\"hi\"}", meta("c2"));
    CallResult other = gateway.call("fine/echo", "{\"message\":\"unaffected\"}", meta("c3"));

    assertThat(r.error()).isTrue();
    assertThat(r.text()).contains("MCP server \"garbage\"").contains("not JSON-RPC").contains("502 Bad Gateway");
    assertThat(during.error()).isTrue();
    assertThat(during.text()).contains("restarted with backoff").contains("next start in");
    assertThat(other.error()).isFalse();
    ServerStatus s = status("garbage");
    assertThat(s.failuresInARow()).isEqualTo(1);
    assertThat(s.retryAt()).isPresent();
    // after the backoff it is started again (and fails again: the backoff doubles)
    await().atMost(Duration.ofSeconds(5)).until(() -> !gateway.call("garbage/echo", "{\"message\":\"x\"}", meta("c4"))
        .text().contains("backoff"));
    assertThat(status("garbage").starts()).isEqualTo(2);
    assertThat(status("garbage").failuresInARow()).isEqualTo(2);
  }

  @Test
  void aFiftyMegabyteResult_isCutOffAtTheCap_asAClearErrorResult() {
    gateway.configure(List.of(broken("huge", "huge")));
    gateway.catalog();

    CallResult r = gateway.call("huge/echo", "{\"message\":\"hi\"}", meta("c1"));

    assertThat(r.error()).isTrue();
    assertThat(r.text()).contains("max_output_bytes (1048576 bytes)");
    assertThat(r.text().length()).isLessThan(1000);
  }

  @Test
  void aServerThatNeverAnswers_timesOut_isKilled_andRestarted() {
    gateway.configure(List.of(broken("silent", "silent", Duration.ofMillis(1500), Map.of(), Optional.empty())));
    gateway.catalog();

    long start = System.nanoTime();
    CallResult r = gateway.call("silent/echo", "{\"message\":\"hi\"}", meta("c1"));
    long ms = (System.nanoTime() - start) / 1_000_000;

    assertThat(r.error()).isTrue();
    assertThat(r.text()).isEqualTo("MCP server \"silent\" did not answer the call of echo within 1500 ms");
    assertThat(ms).isBetween(1400L, 6000L);
    assertThat(status("silent").connected()).isFalse();
    await().atMost(Duration.ofSeconds(5)).until(() -> {
      gateway.refresh("silent");
      return status("silent").starts() == 2 && status("silent").connected();
    });
  }

  @Test
  void aServerThatPrintsItsSecretAsItCrashes_neverPutsItInTheResultOrTheStatus() {
    gateway.configure(List.of(broken("leaky", "crash", Duration.ofSeconds(10),
        Map.of("DB_PASSWORD", ReferenceServers.secret("DB_PASSWORD")), Optional.empty())));
    gateway.catalog();

    CallResult r = gateway.call("leaky/echo", "{\"message\":\"hi\"}", meta("c1"));

    assertThat(r.error()).isTrue();
    assertThat(r.text()).contains("crashing in the middle of call 1").contains("DB_PASSWORD=[redacted]").doesNotContain("hunter2");
    assertThat(status("leaky").lastError()).hasValueSatisfying(e -> assertThat(e).doesNotContain("hunter2"));
  }

  @Test
  void aServerThatCrashesMidCall_failsThatCall_withItsExitCodeAndErrorOutput_andComesBack() {
    gateway.configure(List.of(broken("crashy", "crash")));
    gateway.catalog();

    CallResult r = gateway.call("crashy/echo", "{\"message\":\"hi\"}", meta("c1"));

    assertThat(r.error()).isTrue();
    assertThat(r.text()).contains("exited with code 3").contains("crashing in the middle of call 1");
    assertThat(status("crashy").connected()).isFalse();
    // it is started again on its next use after the backoff, and lists its tools again
    await().atMost(Duration.ofSeconds(5)).until(() -> {
      gateway.refresh("crashy");
      return status("crashy").connected();
    });
    assertThat(status("crashy").starts()).isEqualTo(2);
    assertThat(gateway.current()).extracting(CatalogEntry::catalogName).contains("crashy/echo");
  }

  @Test
  void aToolListThatChangesMidSession_refreshesTheCatalog_withANewVersion_andAGoneToolIsAClearError() {
    gateway.configure(List.of(broken("shifty", "changing")));
    List<CatalogEntry> before = gateway.catalog();
    assertThat(before).extracting(CatalogEntry::catalogName).containsExactly("shifty/echo", "shifty/vanishing", "shifty/whoami");
    CatalogEntry echo1 = before.getFirst();

    assertThat(gateway.call("shifty/echo", "{\"message\":\"hi\"}", meta("c1")).error()).isFalse();

    await().atMost(Duration.ofSeconds(5)).until(() -> gateway.current().stream().noneMatch(e -> e.tool().equals("vanishing")));
    CatalogEntry echo2 = gateway.current().getFirst();
    assertThat(echo2.version()).isEqualTo(2);
    assertThat(echo2.hash()).isNotEqualTo(echo1.hash());
    assertThat(echo2.changed()).isTrue();
    assertThat(echo2.versions()).containsExactly(1, 2);
    assertThat(echo2.capability()).isEqualTo("mcp://gateway/shifty/echo@2");
    assertThat(echo2.inputSchema()).contains("loud");
    CallResult gone = gateway.call("shifty/vanishing", "{}", meta("c2"));
    assertThat(gone.error()).isTrue();
    assertThat(gone.text()).contains("\"shifty/vanishing\" is not in the catalog");
    assertThat(changes).anySatisfy(c -> {
      assertThat(c).isInstanceOf(CatalogChange.Changed.class);
      CatalogChange.Changed ch = (CatalogChange.Changed) c;
      assertThat(ch.catalogName()).isEqualTo("shifty/echo");
      assertThat(ch.previousVersion()).isEqualTo(1);
      assertThat(ch.previousHash()).isEqualTo(echo1.hash());
    });
    assertThat(changes).contains(new CatalogChange.Removed("shifty", "vanishing", 1));
    assertThat(store.toolCatalog().versions("shifty", "echo")).hasSize(2);
  }

  @Test
  void aRestartedGateway_keepsTheVersions_andReportsAToolChangedSince() {
    gateway.configure(List.of(broken("shifty", "changing")));
    gateway.catalog();
    gateway.call("shifty/echo", "{\"message\":\"hi\"}", meta("c1"));
    await().atMost(Duration.ofSeconds(5)).until(() -> gateway.current().getFirst().version() == 2);
    gateway.close();

    gateway = new Gateway(store.toolCatalog(), dataDir, Map.of(), Clock.systemUTC(), FAST, changes::add);
    gateway.configure(List.of(broken("shifty", "changing")));
    CatalogEntry echo = gateway.catalog().getFirst();

    // a fresh server lists its first schema again: that is version 1, which has been seen before
    assertThat(echo.version()).isEqualTo(1);
    assertThat(echo.versions()).containsExactly(1, 2);
    assertThat(echo.changed()).isTrue();
    // the change since this gateway last saw it (version 2) is reported
    assertThat(changes).contains(new CatalogChange.Changed(echo, 2, store.toolCatalog().versions("shifty", "echo").get(1).hash()));
  }

  @Test
  void callsCarryTraceparentAndIdempotencyKeyInMeta_andTheEnvironmentIsOnlyWhatIsDeclared() throws Exception {
    Path record = dataDir.resolve("meta.jsonl");
    gateway.configure(List.of(broken("rec", "ok", Duration.ofSeconds(10),
        Map.of("BROKEN_RECORD", ReferenceServers.literal(record.toString()), "DB_PASSWORD", ReferenceServers.secret("DB_PASSWORD")),
        Optional.empty())));
    gateway.catalog();

    CallResult who = gateway.call("rec/whoami", "{}", new CallMeta("s-9", "agent:billing", "s-9/call-3",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));

    JsonNode meta = JSON.readTree(Files.readAllLines(record).getFirst());
    assertThat(meta.get("traceparent").asString()).isEqualTo("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assertThat(meta.get("dev.keel/idempotency-key").asString()).isEqualTo("s-9/call-3");
    assertThat(meta.get("dev.keel/session").asString()).isEqualTo("s-9");
    assertThat(meta.get("dev.keel/principal").asString()).isEqualTo("agent:billing");
    JsonNode structured = JSON.readTree(who.structuredContent().orElseThrow());
    List<String> names = new ArrayList<>();
    structured.get("env").propertyNames().forEach(names::add);
    assertThat(names).containsExactlyInAnyOrder("PATH", "BROKEN_RECORD", "DB_PASSWORD");
    // the server was given the secret's value; what comes back out of the gateway has it masked
    // (the mask replaces exactly that value, so seeing it proves the server had it)
    assertThat(structured.get("env").get("DB_PASSWORD").asString()).isEqualTo("[redacted]");
    assertThat(who.text()).doesNotContain("hunter2");
    assertThat(Path.of(structured.get("cwd").asString())).isEqualTo(dataDir.resolve("mcp/rec").toRealPath());
  }

  @Test
  void theRateLimit_refusesCallsOverItsCallsPerMinute_withWhenToRetry() {
    gateway.configure(List.of(broken("limited", "ok", Duration.ofSeconds(10), Map.of(), Optional.of(2))));
    gateway.catalog();

    assertThat(gateway.call("limited/echo", "{\"message\":\"1\"}", meta("c1")).error()).isFalse();
    assertThat(gateway.call("limited/echo", "{\"message\":\"2\"}", meta("c2")).error()).isFalse();
    CallResult third = gateway.call("limited/echo", "{\"message\":\"3\"}", meta("c3"));

    assertThat(third.error()).isTrue();
    assertThat(third.text()).contains("allows 2 calls per minute").contains("try again in");
  }

  @Test
  void aServerThatCannotStart_isSkippedInTheCatalog_andItsCallsSayWhy() {
    McpServerDescriptor missing = new McpServerDescriptor(new Metadata("ghost", "team-a", Map.of()),
        new McpServerDescriptor.Spec("stdio", List.of("/nonexistent/mcp-server"), Optional.empty(), Map.of(), Map.of(), Map.of(),
            Optional.empty(), Optional.of(Duration.ofSeconds(5)), Optional.empty()));
    gateway.configure(List.of(missing, broken("fine", "ok")));

    List<CatalogEntry> catalog = gateway.catalog();

    assertThat(catalog).extracting(CatalogEntry::server).containsOnly("fine");
    assertThat(status("ghost").lastError().orElseThrow()).contains("could not be started").contains("/nonexistent/mcp-server");
  }

  private ServerStatus status(String name) {
    return gateway.servers().stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow();
  }
}
