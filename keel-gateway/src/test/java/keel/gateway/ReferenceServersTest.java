package keel.gateway;

import static keel.gateway.ReferenceServers.literal;
import static keel.gateway.ReferenceServers.secret;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.McpServerDescriptor;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The gateway against the reference MCP servers from npm, over real transports: server-everything
 * over stdio and over Streamable HTTP, server-filesystem over stdio.
 */
class ReferenceServersTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final CallMeta META = new CallMeta("s-1", "agent:test", "s-1/c-1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

  @TempDir Path dataDir;
  private Store store;
  private Gateway gateway;
  private final List<CatalogChange> changes = Collections.synchronizedList(new ArrayList<>());

  @BeforeEach
  void open() {
    store = Store.sqlite(dataDir, "node-a", Clock.systemUTC(), false);
    gateway = new Gateway(store.toolCatalog(), dataDir, Map.of("PATH", System.getenv("PATH"), "API_TOKEN", "t0ps3cret",
        "HOME", "/root-of-keel"), Clock.systemUTC(), GatewaySettings.defaults(), changes::add);
  }

  @AfterEach
  void close() {
    gateway.close();
    store.close();
  }

  private McpServerDescriptor everythingStdio(Map<String, McpServerDescriptor.ValueSource> env) {
    return ReferenceServers.stdio("everything", List.of(ReferenceServers.node(), ReferenceServers.everything().toString(), "stdio"),
        env, Map.of());
  }

  @Test
  void everything_overStdio_listsItsToolsWithSchemasAndVersions() {
    gateway.configure(List.of(everythingStdio(Map.of())));

    List<CatalogEntry> catalog = gateway.catalog();

    assertThat(catalog).extracting(CatalogEntry::catalogName)
        .contains("everything/echo", "everything/get-sum", "everything/get-structured-content", "everything/get-env");
    CatalogEntry structured = find(catalog, "everything/get-structured-content");
    assertThat(structured.modelName()).isEqualTo("everything__get-structured-content");
    assertThat(structured.outputSchema()).isPresent();
    assertThat(structured.outputSchema().orElseThrow()).contains("\"temperature\"");
    assertThat(structured.version()).isEqualTo(1);
    assertThat(structured.hash()).startsWith("sha256:").hasSize(71);
    assertThat(structured.capability()).isEqualTo("mcp://gateway/everything/get-structured-content@1");
    assertThat(structured.changed()).isFalse();
    // undeclared tools are side-effecting, free, of no value
    assertThat(structured.sideEffects()).isEqualTo(SideEffects.SIDE_EFFECTING);
    assertThat(changes).filteredOn(c -> c instanceof CatalogChange.Added).hasSize(catalog.size());
    assertThat(store.toolCatalog().versions("everything", "echo")).hasSize(1);
    assertThat(Files.isDirectory(dataDir.resolve("mcp/everything"))).isTrue();
  }

  @Test
  void everything_overStdio_callsATool_andReturnsStructuredOutput() {
    gateway.configure(List.of(everythingStdio(Map.of())));
    gateway.catalog();

    CallResult echo = gateway.call("everything/echo", "{\"message\":\"hello gateway\"}", META);
    CallResult weather = gateway.call("everything/get-structured-content", "{\"location\":\"Chicago\"}", META);

    assertThat(echo.error()).isFalse();
    assertThat(echo.text()).contains("hello gateway");
    assertThat(weather.error()).isFalse();
    JsonNode structured = JSON.readTree(weather.structuredContent().orElseThrow());
    assertThat(structured.get("temperature").asInt()).isEqualTo(36);
    assertThat(JSON.readTree(weather.text())).isEqualTo(structured);
  }

  @Test
  void everything_overStdio_badArguments_areAnErrorResult_andTheServerGoesOn() {
    gateway.configure(List.of(everythingStdio(Map.of())));
    gateway.catalog();

    CallResult bad = gateway.call("everything/get-sum", "{\"a\":\"one\",\"b\":2}", META);
    CallResult notJson = gateway.call("everything/get-sum", "{\"a\":", META);
    CallResult unknown = gateway.call("everything/no-such-tool", "{}", META);
    CallResult good = gateway.call("everything/get-sum", "{\"a\":1,\"b\":2}", META);

    assertThat(bad.error()).isTrue();
    assertThat(bad.text()).containsIgnoringCase("a");
    assertThat(notJson.error()).isTrue();
    assertThat(notJson.text()).contains("not valid JSON");
    assertThat(unknown.error()).isTrue();
    assertThat(unknown.text()).contains("everything/no-such-tool").contains("not in the catalog");
    assertThat(good.error()).isFalse();
    assertThat(good.text()).contains("3");
    assertThat(gateway.servers().getFirst().starts()).isEqualTo(1);
  }

  @Test
  void stdio_environmentIsScrubbed_onlyPathAndWhatTheDescriptorPasses() throws Exception {
    gateway.configure(List.of(everythingStdio(Map.of("GREETING", literal("hello"), "TOKEN", secret("API_TOKEN")))));
    gateway.catalog();

    CallResult env = gateway.call("everything/get-env", "{}", META);

    assertThat(env.error()).isFalse();
    JsonNode vars = JSON.readTree(env.text());
    List<String> names = new ArrayList<>();
    vars.propertyNames().forEach(names::add);
    assertThat(names).containsExactlyInAnyOrder("PATH", "GREETING", "TOKEN");
    // the server had the secret's value (the mask replaces exactly that value); it never comes back
    // out of the gateway
    assertThat(vars.get("TOKEN").asString()).isEqualTo("[redacted]");
    assertThat(env.text()).doesNotContain("t0ps3cret");
    assertThat(vars.get("PATH").asString()).isEqualTo(System.getenv("PATH"));
  }

  @Test
  void everything_overStreamableHttp_listsAndCalls() throws Exception {
    try (ReferenceServers.HttpEverything http = new ReferenceServers.HttpEverything()) {
      gateway.configure(List.of(ReferenceServers.http("web", http.url(), Map.of("Authorization", secret("API_TOKEN")))));

      List<CatalogEntry> catalog = gateway.catalog();
      CallResult echo = gateway.call("web/echo", "{\"message\":\"over http\"}", META);
      CallResult weather = gateway.call("web/get-structured-content", "{\"location\":\"New York\"}", META);

      assertThat(catalog).extracting(CatalogEntry::catalogName).contains("web/echo", "web/get-structured-content");
      assertThat(echo.error()).isFalse();
      assertThat(echo.text()).contains("over http");
      assertThat(JSON.readTree(weather.structuredContent().orElseThrow()).get("temperature").asInt()).isEqualTo(33);
      assertThat(gateway.servers().getFirst().connected()).isTrue();
    }
  }

  @Test
  void filesystem_overStdio_readsAndWritesInItsDirectory(@TempDir Path files) throws Exception {
    Files.writeString(files.resolve("note.txt"), "the invoice total is 42");
    Path root = files.toRealPath();
    gateway.configure(List.of(ReferenceServers.stdio("fs",
        List.of(ReferenceServers.node(), ReferenceServers.filesystem().toString(), root.toString()), Map.of(),
        Map.of("read_text_file", new McpServerDescriptor.ToolSettings("read-only", Optional.empty(), Optional.empty()),
            "write_file", new McpServerDescriptor.ToolSettings("idempotent", Optional.empty(), Optional.of(new java.math.BigDecimal("0.01")))))));

    List<CatalogEntry> catalog = gateway.catalog();
    CallResult read = gateway.call("fs/read_text_file", JSON.writeValueAsString(Map.of("path", root.resolve("note.txt").toString())), META);
    CallResult write = gateway.call("fs/write_file",
        JSON.writeValueAsString(Map.of("path", root.resolve("out.txt").toString(), "content", "drafted")), META);
    CallResult outside = gateway.call("fs/read_text_file", "{\"path\":\"/etc/passwd\"}", META);

    // only the declared tools are exposed, with their declared classes and prices
    assertThat(catalog).extracting(CatalogEntry::catalogName).containsExactly("fs/read_text_file", "fs/write_file");
    assertThat(find(catalog, "fs/read_text_file").sideEffects()).isEqualTo(SideEffects.READ_ONLY);
    assertThat(find(catalog, "fs/write_file").priceUsdPerCall()).isEqualByComparingTo("0.01");
    assertThat(read.error()).isFalse();
    assertThat(read.text()).contains("the invoice total is 42");
    assertThat(write.error()).isFalse();
    assertThat(Files.readString(root.resolve("out.txt"))).isEqualTo("drafted");
    assertThat(outside.error()).isTrue();
    assertThat(outside.text()).containsIgnoringCase("denied");
    assertThat(gateway.servers().getFirst().problems()).isEmpty();
  }

  private static CatalogEntry find(List<CatalogEntry> catalog, String name) {
    return catalog.stream().filter(e -> e.catalogName().equals(name)).findFirst().orElseThrow();
  }
}
