package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.Map;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Operators, logins and contexts through the real CLI, in this process, against a real server over
 * HTTP. The environment names no server and no token, so every command finds them the way a user's
 * shell would: from flags, from the config file, or from the local data directory.
 */
class OperatorsCliTest {

  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  KeelServer server;
  String adminToken;
  Path config;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    adminToken = Files.readString(server.adminTokenFile()).strip();
    config = dir.resolve("home").resolve("keel").resolve("config.yaml");
    env = new HashMap<>();
    env.put("KEEL_CONFIG", config.toString());
    // a data directory without a token: only what a test gives explicitly authenticates
    env.put("KEEL_DATA_DIR", dir.resolve("elsewhere").toString());
    env.put("KEEL_PORT", "1");
  }

  @AfterEach
  void stop() {
    server.close();
  }

  Result cli(String... args) {
    return cliWithInput("", args);
  }

  Result cliWithInput(String stdin, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(
        args,
        new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8),
        env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** Creates an operator with the admin token and returns its token (what stdout holds alone). */
  String createOperator(String name, String... roles) {
    java.util.List<String> args = new java.util.ArrayList<>(
        java.util.List.of("operators", "create", name, "--server", server.url(), "--token", adminToken));
    for (String role : roles) {
      args.add("--role");
      args.add(role);
    }
    Result r = cli(args.toArray(String[]::new));
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out().lines()).as("the token alone on stdout").hasSize(1);
    assertThat(r.err()).contains("shown only this once", "keel login --server " + server.url());
    return r.out().strip();
  }

  @Test
  void login_checksTheToken_savesAPrivateContext_andCommandsUseIt() throws Exception {
    String alice = createOperator("alice", "viewer@team-a", "operator@team-a");
    Result login = cliWithInput(alice + "\n", "login", "--server", server.url() + "/", "--token", "-");
    assertThat(login.code()).as(login.err()).isZero();
    assertThat(login.out()).contains("Logged in to " + server.url() + " as operator:alice (viewer@team-a, operator@team-a)");
    String name = "127.0.0.1:" + server.port();
    assertThat(login.out()).contains("Context \"" + name + "\"", config.toString());

    assertThat(Files.getPosixFilePermissions(config)).containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
    assertThat(Files.getPosixFilePermissions(config.getParent()))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE);
    assertThat(Files.readString(config)).contains("current-context: \"" + name + "\"").contains(alice);
    try (var files = Files.list(config.getParent())) {
      assertThat(files.map(p -> p.getFileName().toString())).as("no temporary file is left").containsExactly("config.yaml");
    }

    Result me = cli("whoami");
    assertThat(me.code()).as(me.err()).isZero();
    assertThat(me.out()).startsWith("operator:alice").contains("roles:  viewer@team-a, operator@team-a", "server: " + server.url());
    Result agents = cli("get", "agents");
    assertThat(agents.code()).as(agents.err()).isZero();

    Result apply = cliWithInput(CliTest.NOTES, "apply", "-f", "-");
    assertThat(apply.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(apply.err()).contains("operator:alice may not POST /v1/apply", "admin for at least one owner", "it has [viewer@team-a, operator@team-a]");
  }

  @Test
  void login_withARefusedToken_savesNothing() {
    Result r = cli("login", "--server", server.url(), "--token", "keel_wrong");
    assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(r.err()).contains("not valid for this server", "keel login");
    assertThat(config).doesNotExist();
    Result empty = cliWithInput("\n", "login", "--server", server.url(), "--token", "-");
    assertThat(empty.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(empty.err()).contains("the token is empty");
  }

  @Test
  void contexts_areListedChosenAndRemoved() {
    String alice = createOperator("alice", "viewer");
    assertThat(cli("login", "--server", server.url(), "--token", adminToken, "--context", "root").code()).isZero();
    assertThat(cli("login", "--server", server.url(), "--token", alice, "--context", "alice").code()).isZero();

    Result list = cli("config", "get-contexts");
    assertThat(list.code()).as(list.err()).isZero();
    assertThat(list.out().lines()).containsExactly(
        "CURRENT  NAME   SERVER" + " ".repeat(server.url().length() - 6 + 2) + "PRINCIPAL",
        "*        alice  " + server.url() + "  operator:alice",
        "         root   " + server.url() + "  operator:admin");
    assertThat(list.out()).doesNotContain(alice).doesNotContain(adminToken);
    assertThat(cli("config", "get-contexts", "-o", "json").out()).contains("\"current_context\" : \"alice\"").doesNotContain(alice);

    assertThat(cli("config", "current-context").out().strip()).isEqualTo("alice");
    assertThat(cli("whoami").out()).startsWith("operator:alice");
    assertThat(cli("whoami", "--context", "root").out()).as("--context beats the current context").startsWith("operator:admin");

    Result use = cli("config", "use-context", "root");
    assertThat(use.code()).isZero();
    assertThat(cli("config", "current-context").out().strip()).isEqualTo("root");
    assertThat(cli("whoami").out()).startsWith("operator:admin");

    Result unknown = cli("config", "use-context", "nope");
    assertThat(unknown.code()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(unknown.err()).contains("no context named \"nope\"", "(it has alice, root)");
    assertThat(cli("whoami", "--context", "nope").code()).isEqualTo(ExitCodes.NOT_FOUND);

    Result logout = cli("logout");
    assertThat(logout.code()).as(logout.err()).isZero();
    assertThat(logout.out()).contains("Context \"root\"", "No context is current now");
    assertThat(cli("config", "current-context").code()).isEqualTo(ExitCodes.FAILED);
    assertThat(cli("logout").code()).isEqualTo(ExitCodes.USAGE);
    assertThat(cli("logout", "alice").code()).isZero();
    assertThat(cli("config", "get-contexts").err()).contains("No contexts");
    Result none = cli("whoami");
    assertThat(none.code()).as("no context, no env, no local token").isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(none.err()).contains("keel login --server URL --token TOKEN");
  }

  @Test
  void precedence_flagsThenEnvironmentThenContextThenTheLocalTokenFile() throws Exception {
    String alice = createOperator("alice", "viewer");
    String bob = createOperator("bob", "viewer");
    assertThat(cli("login", "--server", server.url(), "--token", alice).code()).isZero();
    assertThat(cli("whoami").out()).startsWith("operator:alice");

    env.put("KEEL_TOKEN", bob);
    assertThat(cli("whoami").out()).as("KEEL_TOKEN beats the context").startsWith("operator:bob");
    assertThat(cli("whoami", "--token", adminToken).out()).as("--token beats KEEL_TOKEN").startsWith("operator:admin");
    env.remove("KEEL_TOKEN");

    // another server, named by the environment: the context's token is not sent to it
    try (KeelServer other = KeelServer.start(ServerConfig.of(0, dir.resolve("other")).withEnvironment(Map.of()))) {
      env.put("KEEL_SERVER", other.url());
      env.put("KEEL_DATA_DIR", dir.resolve("other").toString());
      Result r = cli("whoami");
      assertThat(r.code()).as(r.err()).isZero();
      assertThat(r.out()).as("the other server's own admin token").startsWith("operator:admin").contains(other.url());
      env.remove("KEEL_SERVER");
      env.put("KEEL_DATA_DIR", dir.resolve("elsewhere").toString());
    }

    // no context at all: the local server and its data directory's token, as before
    assertThat(cli("logout").code()).isZero();
    env.put("KEEL_PORT", Integer.toString(server.port()));
    env.put("KEEL_DATA_DIR", dir.resolve("data").toString());
    assertThat(cli("whoami").out()).startsWith("operator:admin");
  }

  @Test
  void operators_createListRotateRevoke() {
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", adminToken);
    Result created = cli("operators", "create", "alice", "--role", "approver@finance", "--role", "viewer");
    assertThat(created.code()).as(created.err()).isZero();
    String first = created.out().strip();
    assertThat(first).startsWith("keel_");
    assertThat(created.err()).contains("Operator alice is created with the roles approver@finance, viewer.");

    Result list = cli("operators", "list");
    assertThat(list.code()).isZero();
    assertThat(list.out().lines().findFirst().orElseThrow()).startsWith("NAME").contains("ROLES", "STATUS", "CREATED BY");
    assertThat(list.out()).contains("admin", "active (admin token file)").containsPattern("alice +approver@finance, viewer +active +operator:admin");
    assertThat(list.out()).doesNotContain(first);

    Result rotated = cli("operators", "rotate", "alice");
    assertThat(rotated.code()).as(rotated.err()).isZero();
    String second = rotated.out().strip();
    assertThat(second).startsWith("keel_").isNotEqualTo(first);
    assertThat(cli("whoami", "--token", first).code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(cli("whoami", "--token", second).out()).startsWith("operator:alice");

    Result revoked = cli("operators", "revoke", "alice");
    assertThat(revoked.code()).as(revoked.err()).isZero();
    assertThat(revoked.out()).contains("Operator alice is revoked");
    assertThat(cli("whoami", "--token", second).code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(cli("operators", "list").out()).containsPattern("alice .* revoked");

    Result json = cli("operators", "create", "ci", "--role", "operator", "-o", "json");
    assertThat(json.code()).isZero();
    assertThat(EventCodec.mapper().readTree(json.out()).get("token").asString()).startsWith("keel_");
  }

  @Test
  void operators_badInputAndEscalation_areClearErrors() {
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", adminToken);
    Result bad = cli("operators", "create", "Bad Name", "--role", "viewr");
    assertThat(bad.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(bad.err()).contains("  - name: expected", "  - role \"viewr\"");
    assertThat(cli("operators", "create", "x").code()).as("--role is required").isEqualTo(ExitCodes.USAGE);
    assertThat(cli("operators", "revoke", "ghost").code()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(cli("operators", "revoke", "admin").code()).isEqualTo(ExitCodes.CONFLICT);

    String finAdmin = createOperator("fin-admin", "admin@finance");
    env.put("KEEL_TOKEN", finAdmin);
    Result escalate = cli("operators", "create", "sneaky", "--role", "admin");
    assertThat(escalate.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(escalate.err()).contains("operator:fin-admin may not create an operator with the role admin");
    assertThat(cli("operators", "create", "fin-viewer", "--role", "viewer@finance").code()).isZero();
  }

  @Test
  void aBrokenConfigFile_isAClearError_thatNeverEchoesATokenValue() throws Exception {
    Files.createDirectories(config.getParent());
    Files.writeString(config, "current-context: a\ncontexts:\n  - {name: a, server: 'http://x', token: 987123654, colour: blue}\nextra: 1\n");
    Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-r--r--"));
    Result r = cli("whoami");
    assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).contains("warning: " + config + " holds API tokens but others may read it", "chmod 600")
        .contains("is not valid; fix or delete it", "  - extra: unknown field", "  - contexts[0].colour: unknown field",
            "  - contexts[0].token: expected a non-empty string")
        .doesNotContain("987123654"); // (a short value could appear by chance in the temporary path)
    Files.writeString(config, "contexts: [\n");
    assertThat(cli("config", "get-contexts").err()).contains("not valid YAML");
  }
}
