package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import keel.data.PostgresConfig;
import keel.data.TestPostgres;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.MappingIterator;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * The container recipe and the Kubernetes manifests in {@code deploy/}, checked against the code so
 * that they cannot drift from it: every manifest parses, the kinds the docs promise are there, the
 * ports agree, the probes name routes a real server answers, the image's command and the
 * Deployment's arguments parse as real {@code keel} options, every environment variable they set is
 * one {@code keel serve} reads, the grace period outlasts the lease TTL, and a server started with
 * exactly that command line and environment (on a real PostgreSQL, the password apart from the URL,
 * the admin token at the Secret's mount path) becomes ready and accepts the Secret's admin token.
 * And every {@code keel serve} option docs/deployment.md mentions exists.
 */
class DeploymentManifestsTest {

  static final Path ROOT = repositoryRoot();
  static final Path DEPLOY = ROOT.resolve("deploy");
  static final YAMLMapper YAML = YAMLMapper.builder().build();

  static Map<String, JsonNode> byKind;
  static JsonNode deployment;
  static JsonNode container;
  static Map<String, String> configMap;
  static Containerfile image;

  @TempDir Path dir;

  record Containerfile(List<String> entrypoint, List<String> cmd, Map<String, String> env, List<String> copies, List<String> runs, String user, List<String> expose) {}

  @BeforeAll
  static void load() throws Exception {
    byKind = new LinkedHashMap<>();
    List<Path> files;
    try (Stream<Path> s = Files.list(DEPLOY.resolve("kubernetes"))) {
      files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertThat(files).isNotEmpty();
    for (Path f : files) {
      try (MappingIterator<JsonNode> docs = YAML.readerFor(JsonNode.class).readValues(f.toFile())) {
        for (JsonNode doc : docs.readAll()) {
          assertThat(doc.path("apiVersion").asString("")).as(f + ": apiVersion").isNotBlank();
          String kind = doc.path("kind").asString("");
          assertThat(kind).as(f + ": kind").isNotBlank();
          if (!kind.equals("Kustomization")) {
            assertThat(doc.path("metadata").path("name").asString("")).as(f + ": metadata.name").isNotBlank();
          }
          assertThat(byKind.put(kind, doc)).as(f + ": a second " + kind).isNull();
        }
      }
    }
    deployment = byKind.get("Deployment");
    container = deployment.path("spec").path("template").path("spec").path("containers").get(0);
    configMap = new LinkedHashMap<>();
    byKind.get("ConfigMap").path("data").properties().forEach(e -> configMap.put(e.getKey(), e.getValue().asString()));
    image = parseContainerfile(Files.readString(DEPLOY.resolve("Containerfile")));
  }

  @Test
  void theManifests_holdEveryKindTheDocsPromise_andTheKustomizationListsEveryFile() throws Exception {
    assertThat(byKind.keySet()).containsExactlyInAnyOrder(
        "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "Kustomization");
    List<String> listed = new ArrayList<>();
    byKind.get("Kustomization").path("resources").forEach(r -> listed.add(r.asString()));
    try (Stream<Path> s = Files.list(DEPLOY.resolve("kubernetes"))) {
      assertThat(listed).containsExactlyInAnyOrderElementsOf(
          s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".yaml") && !n.equals("kustomization.yaml")).toList());
    }
    assertThat(deployment.path("spec").path("replicas").asInt()).as("replicas: N nodes").isGreaterThanOrEqualTo(2);
    JsonNode labels = deployment.path("spec").path("template").path("metadata").path("labels");
    for (String kind : List.of("Service", "PodDisruptionBudget")) {
      JsonNode selector = kind.equals("Service")
          ? byKind.get(kind).path("spec").path("selector")
          : byKind.get(kind).path("spec").path("selector").path("matchLabels");
      selector.properties().forEach(e ->
          assertThat(labels.path(e.getKey()).asString()).as(kind + " selects the Deployment's pods").isEqualTo(e.getValue().asString()));
    }
    assertThat(byKind.get("PodDisruptionBudget").path("spec").path("maxUnavailable").asInt())
        .as("the budget leaves nodes up").isLessThan(deployment.path("spec").path("replicas").asInt());
  }

  @Test
  void portsAgree_andTheProbesUseTheNamedPort_onHealthzAndReadyz() {
    int containerPort = -1;
    String portName = null;
    for (JsonNode p : container.path("ports")) {
      containerPort = p.path("containerPort").asInt();
      portName = p.path("name").asString();
    }
    assertThat(containerPort).isPositive();
    assertThat(configMap.get("KEEL_PORT")).isEqualTo(Integer.toString(containerPort));
    assertThat(image.env().get("KEEL_PORT")).isEqualTo(Integer.toString(containerPort));
    assertThat(image.expose()).containsExactly(Integer.toString(containerPort));
    assertThat(configMap.get("KEEL_HOST")).as("reachable from outside the pod").isEqualTo("0.0.0.0");
    assertThat(byKind.get("Service").path("spec").path("ports").get(0).path("targetPort").asString()).isEqualTo(portName);

    assertThat(probe("livenessProbe").path("path").asString()).isEqualTo("/healthz");
    assertThat(probe("readinessProbe").path("path").asString()).isEqualTo("/readyz");
    for (String p : List.of("livenessProbe", "readinessProbe", "startupProbe")) {
      assertThat(probe(p).path("port").asString()).as(p + " port").isEqualTo(portName);
    }
  }

  @Test
  void theImage_runsTheCliAsNonRoot_fromTheDistributionTheBuildMakes() throws Exception {
    // ENTRYPOINT: java … -cp <dir>/* keel.cli.Main; the dir is what the runtime stage copies the
    // build's keel-cli/target/dist/lib to, which keel-cli/pom.xml fills.
    List<String> entry = image.entrypoint();
    assertThat(entry.getFirst()).isEqualTo("java");
    assertThat(entry.getLast()).isEqualTo(Main.class.getName());
    assertThat(entry).contains("--enable-native-access=ALL-UNNAMED");
    String classpath = entry.get(entry.indexOf("-cp") + 1);
    assertThat(classpath).endsWith("/*");
    String libDir = classpath.substring(0, classpath.length() - 2);
    assertThat(image.copies()).anySatisfy(c -> assertThat(c).matches("--from=build /src/keel-cli/target/dist/lib " + Pattern.quote(libDir)));
    assertThat(Files.readString(ROOT.resolve("keel-cli/pom.xml"))).contains("<outputDirectory>${project.build.directory}/dist/lib</outputDirectory>");
    assertThat(image.runs()).anySatisfy(r -> assertThat(r).contains("./mvnw").contains("package -pl keel-cli -am"));
    assertThat(image.user()).doesNotStartWith("0").isNotEqualTo("root");
    JsonNode pod = deployment.path("spec").path("template").path("spec");
    assertThat(pod.path("securityContext").path("runAsNonRoot").asBoolean()).isTrue();
    assertThat(pod.path("securityContext").path("runAsUser").asString()).isEqualTo(image.user().split(":")[0]);

    // CMD and the Deployment's args: real options of the real command line
    assertThat(image.cmd()).containsExactly("serve");
    List<String> args = args();
    assertThat(args.getFirst()).isEqualTo("serve");
    CommandLine.ParseResult parsed = keelCommandLine().parseArgs(args.toArray(String[]::new));
    assertThat(parsed.subcommand().commandSpec().name()).isEqualTo("serve");
    assertThat(parsed.subcommand().unmatched()).isEmpty();
  }

  @Test
  void everyEnvironmentVariable_isOneKeelServeReads() {
    Set<String> names = new TreeSet<>(configMap.keySet());
    names.addAll(image.env().keySet());
    container.path("env").forEach(e -> names.add(e.path("name").asString()));
    String help = serveHelp();
    assertThat(names).contains("KEEL_STORE", "KEEL_STORE_PASSWORD", "KEEL_DATA_DIR", "KEEL_LEASE_TTL");
    for (String n : names) {
      assertThat(help).as("keel serve --help names " + n).containsPattern("\\b" + n + "\\b");
    }
    // the store URL and password come from the Secret, never from the ConfigMap
    assertThat(configMap).doesNotContainKeys("KEEL_STORE", "KEEL_STORE_PASSWORD");
    JsonNode secret = byKind.get("Secret").path("stringData");
    for (JsonNode e : container.path("env")) {
      JsonNode ref = e.path("valueFrom").path("secretKeyRef");
      assertThat(ref.path("name").asString()).isEqualTo(byKind.get("Secret").path("metadata").path("name").asString());
      assertThat(secret.has(ref.path("key").asString())).as("the Secret has " + ref.path("key").asString()).isTrue();
    }
    PostgresConfig url = PostgresConfig.parse(secret.path("store-url").asString());
    assertThat(url.password()).as("the password stays out of the URL").isEmpty();
  }

  @Test
  void theGracePeriod_outlastsThePreStopAndTheLeaseTtl_andTheDataDirIsTheMountedVolume() {
    Duration ttl = ServeCommand.duration("KEEL_LEASE_TTL", configMap.get("KEEL_LEASE_TTL"));
    long grace = deployment.path("spec").path("template").path("spec").path("terminationGracePeriodSeconds").asLong();
    List<String> preStop = new ArrayList<>();
    container.path("lifecycle").path("preStop").path("exec").path("command").forEach(c -> preStop.add(c.asString()));
    assertThat(preStop).hasSize(2).first().isEqualTo("sleep");
    long preStopSeconds = Long.parseLong(preStop.get(1));
    assertThat(Duration.ofSeconds(grace)).isGreaterThan(ttl.plusSeconds(preStopSeconds));

    String dataDir = configMap.get("KEEL_DATA_DIR");
    assertThat(image.env().get("KEEL_DATA_DIR")).isEqualTo(dataDir);
    Map<String, String> mounts = new HashMap<>();
    container.path("volumeMounts").forEach(m -> mounts.put(m.path("mountPath").asString(), m.path("name").asString()));
    assertThat(mounts).containsKey(dataDir).containsKey(dataDir + "/admin.token");
    assertThat(container.path("securityContext").path("readOnlyRootFilesystem").asBoolean()).isTrue();
    assertThat(mounts).as("a writable /tmp with a read-only root").containsKey("/tmp");
  }

  @Test
  @Timeout(120)
  void aServerStartedAsThePodStartsIt_isLiveAndReady_andTakesTheSecretsAdminToken() throws Exception {
    PostgresConfig login = TestPostgres.newDatabaseWithPasswordLogin("deploy", "pod-secret");
    PostgresConfig noPassword = new PostgresConfig(login.hosts(), login.database(), login.parameters(), login.user(),
        Optional.empty(), login.poolSize(), login.poolTimeout(), login.durable());
    // the Secret mounted at <data dir>/admin.token; the ConfigMap and Secret as the environment,
    // but this machine's loopback, a free port and a temporary data directory
    Path data = Files.createDirectories(dir.resolve("var-lib-keel"));
    String adminToken = byKind.get("Secret").path("stringData").path("admin.token").asString();
    Files.writeString(data.resolve("admin.token"), adminToken + "\n");
    Map<String, String> env = new HashMap<>(image.env());
    env.putAll(configMap);
    env.put("KEEL_STORE", TestPostgres.url(noPassword));
    env.put("KEEL_STORE_PASSWORD", "pod-secret");
    env.put("KEEL_HOST", "127.0.0.1");
    env.put("KEEL_PORT", "0");
    env.put("KEEL_DATA_DIR", data.toString());

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int[] code = {-1};
    Thread serving = Thread.ofVirtual().start(() -> code[0] = Main.run(
        args().toArray(String[]::new), new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), env));
    try (HttpClient http = HttpClient.newHttpClient()) {
      await().atMost(Duration.ofSeconds(90)).until(() -> out.toString(StandardCharsets.UTF_8).contains("Stop it with Ctrl+C") || !serving.isAlive());
      String printed = out.toString(StandardCharsets.UTF_8);
      assertThat(printed).as(err.toString(StandardCharsets.UTF_8)).contains("store:          " + noPassword.describe());
      String url = printed.lines().filter(l -> l.startsWith("Keel is listening on ")).findFirst().orElseThrow().substring(21);
      for (String p : List.of("livenessProbe", "readinessProbe", "startupProbe")) {
        String path = probe(p).path("path").asString();
        await().atMost(Duration.ofSeconds(30)).until(() -> get(http, url + path, null).statusCode() == 200);
      }
      assertThat(get(http, url + "/v1/agents", adminToken).statusCode()).isEqualTo(200);
      assertThat(get(http, url + "/v1/agents", adminToken + "x").statusCode()).isEqualTo(401);
    } finally {
      serving.interrupt();
      serving.join(20_000);
    }
    assertThat(code[0]).isZero();
  }

  @Test
  void theDeploymentDoc_namesOnlyRealServeOptions_andTheFilesItDescribes() throws Exception {
    String doc = Files.readString(ROOT.resolve("docs/deployment.md"));
    Set<String> options = new CommandLine(new ServeCommand(io())).getCommandSpec().optionsMap().keySet();
    Matcher m = Pattern.compile("(?<![\\w-])--[a-z][a-z-]+").matcher(doc);
    Set<String> named = new TreeSet<>();
    Set<String> notServe = Set.of("--build-arg", "--from-literal", "--from-file", "--from", "--enable-native-access", "--release", "--replicas", "--rm");
    while (m.find()) {
      if (!notServe.contains(m.group())) {
        named.add(m.group());
      }
    }
    assertThat(named).isNotEmpty();
    assertThat(options).containsAll(named);
    for (String f : List.of("deploy/Containerfile", "deploy/kubernetes/deployment.yaml", "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/configmap.yaml", "deploy/kubernetes/secret.yaml", "deploy/kubernetes/poddisruptionbudget.yaml")) {
      assertThat(doc).contains(f);
      assertThat(ROOT.resolve(f)).exists();
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  static JsonNode probe(String name) {
    return container.path(name).path("httpGet");
  }

  static List<String> args() {
    List<String> args = new ArrayList<>();
    container.path("args").forEach(a -> args.add(a.asString()));
    return args;
  }

  static Io io() {
    return new Io(new ByteArrayInputStream(new byte[0]), new PrintStream(new ByteArrayOutputStream()),
        new PrintStream(new ByteArrayOutputStream()), Map.of());
  }

  /** The keel command line with its serve subcommand, as Main builds it, for parsing only. */
  static CommandLine keelCommandLine() {
    CommandLine keel = new CommandLine(new Root());
    keel.addSubcommand(new ServeCommand(io()));
    return keel;
  }

  @CommandLine.Command(name = "keel")
  static final class Root {}

  static String serveHelp() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code = Main.run(new String[] {"serve", "--help"}, new ByteArrayInputStream(new byte[0]),
        new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(new ByteArrayOutputStream()), Map.of());
    assertThat(code).isZero();
    return out.toString(StandardCharsets.UTF_8);
  }

  static HttpResponse<String> get(HttpClient http, String url, String token) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5));
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** The instructions of a Containerfile that the checks need, continuation lines joined. */
  static Containerfile parseContainerfile(String text) {
    String joined = text.replaceAll("\\\\\\r?\\n", " ");
    List<String> entry = List.of();
    List<String> cmd = List.of();
    Map<String, String> env = new LinkedHashMap<>();
    List<String> copies = new ArrayList<>();
    List<String> runs = new ArrayList<>();
    List<String> expose = new ArrayList<>();
    String user = "root";
    boolean runtimeStage = false;
    for (String raw : joined.lines().toList()) {
      String line = raw.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String word = line.split("\\s+", 2)[0].toUpperCase(java.util.Locale.ROOT);
      String rest = line.substring(word.length()).strip();
      switch (word) {
        case "FROM" -> {
          runtimeStage = !rest.contains(" AS ");
          env.clear();
        }
        case "ENTRYPOINT" -> entry = jsonArray(rest);
        case "CMD" -> cmd = jsonArray(rest);
        case "ENV" -> {
          Matcher m = Pattern.compile("([A-Z_][A-Z0-9_]*)=(\\S+)").matcher(rest);
          while (m.find()) {
            env.put(m.group(1), m.group(2));
          }
        }
        case "COPY" -> copies.add(rest.replaceAll("\\s+", " "));
        case "RUN" -> runs.add(rest.replaceAll("\\s+", " "));
        case "USER" -> user = rest;
        case "EXPOSE" -> expose.addAll(List.of(rest.split("\\s+")));
        default -> { }
      }
    }
    assertThat(runtimeStage).as("the last stage is the runtime one").isTrue();
    return new Containerfile(entry, cmd, env, copies, runs, user, expose);
  }

  private static List<String> jsonArray(String text) {
    List<String> list = new ArrayList<>();
    YAML.readTree(text).forEach(n -> list.add(n.asString()));
    return list;
  }

  private static Path repositoryRoot() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("mvnw")) && Files.isDirectory(p.resolve("keel-cli"))) {
        return p;
      }
    }
    throw new IllegalStateException("cannot find the repository root above " + Path.of("").toAbsolutePath());
  }
}
