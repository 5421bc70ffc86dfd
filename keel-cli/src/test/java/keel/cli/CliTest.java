package keel.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import keel.core.EventCodec;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** Drives the real CLI, in this process, against a real server over HTTP. */
class CliTest {

  static final String NOTES =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: notes, owner: team-a}
      spec:
        instructions: Keep notes.
        model:
          provider: scripted
          name: notes-script
          script:
            - when: "remember"
              turns:
                - say: "Saving it."
                  call: [{tool: memory_put, args: {key: note, value: "{{input}}"}}]
                - say: "Saved: {{result}}."
            - when: "recall"
              turns:
                - call: [{tool: memory_get, args: {key: note}}]
                - say: "You said: {{result}}"
            - turns:
                - say: "Hello."
        memory: {type: persistent}
        tools: [internal://memory]
      """;

  static final String GREETER =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: greeter, owner: team-b}
      spec:
        instructions: Greet.
        model: {provider: scripted, name: g, script: [{turns: [{say: "Hi there."}]}]}
      """;

  /** What one command printed and its exit code. */
  record Result(int code, String out, String err) {}

  @TempDir Path dir;
  @TempDir Path files;
  KeelServer server;
  Map<String, String> env;

  @BeforeEach
  void start() throws Exception {
    server = KeelServer.start(ServerConfig.of(0, dir.resolve("data")).withEnvironment(Map.of()));
    env = new HashMap<>();
    env.put("KEEL_SERVER", server.url());
    env.put("KEEL_TOKEN", Files.readString(server.adminTokenFile()).strip());
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
    InputStream in = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
    int code =
        Main.run(
            args,
            in,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            env);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  Path write(String name, String content) throws Exception {
    Path p = files.resolve(name);
    Files.createDirectories(p.getParent());
    Files.writeString(p, content);
    return p;
  }

  String applyNotes() throws Exception {
    Result r = cli("apply", "-f", write("notes.yaml", NOTES).toString());
    assertThat(r.code()).as(r.err()).isZero();
    return r.out();
  }

  String startIdle(String message) {
    Result r = cli("run", "notes", message, "--follow");
    assertThat(r.code()).as(r.err()).isZero();
    String id = r.out().lines().filter(l -> l.startsWith("session ")).findFirst().orElseThrow().split(" ")[1];
    await().atMost(Duration.ofSeconds(10)).until(() -> cli("get", "sessions", "-o", "json").out().contains("\"idle\""));
    return id;
  }

  static JsonNode json(String s) {
    return EventCodec.mapper().readTree(s);
  }

  @Test
  void apply_file_printsOneLinePerDescriptor_thenUnchanged() throws Exception {
    Path f = write("both.yaml", NOTES + "---\n" + GREETER);
    Result first = cli("apply", "-f", f.toString());
    assertThat(first.code()).as(first.err()).isZero();
    assertThat(first.out().lines()).containsExactly("agent/notes created (revision 1)", "agent/greeter created (revision 1)");

    Result again = cli("apply", "-f", f.toString());
    assertThat(again.out().lines()).containsExactly("agent/notes unchanged (revision 1)", "agent/greeter unchanged (revision 1)");

    Result changed = cli("apply", "-f", write("g.yaml", GREETER.replace("Greet.", "Greet warmly.")).toString());
    assertThat(changed.out()).contains("agent/greeter changed (revision 2)");
  }

  @Test
  void apply_directory_appliesEveryYamlFile_sorted() throws Exception {
    write("agents/b.yml", GREETER);
    write("agents/a.yaml", NOTES);
    write("agents/readme.txt", "not yaml");
    Result r = cli("apply", "-f", files.resolve("agents").toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out().lines()).containsExactly("agent/notes created (revision 1)", "agent/greeter created (revision 1)");
  }

  @Test
  void apply_stdin_andDryRun() {
    Result dry = cliWithInput(GREETER, "apply", "-f", "-", "--dry-run");
    assertThat(dry.code()).as(dry.err()).isZero();
    assertThat(dry.out()).contains("agent/greeter created (revision 1) (dry run)");
    assertThat(cli("get", "agents").err()).contains("No agents yet");

    Result r = cliWithInput(GREETER, "apply", "-f", "-");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("agent/greeter created (revision 1)");
  }

  @Test
  void apply_warnings_arePrintedUnderTheirDescriptor() throws Exception {
    Result r = cli("apply", "-f", Path.of("..", "examples", "finance.yaml").toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("agent/invoice-reconciler created (revision 1)", "  warning: ", "policy/no-weekend-payments created");
  }

  @Test
  void apply_invalidFile_printsEveryProblem_exits1_andStoresNothing() throws Exception {
    write("set/a.yaml", GREETER);
    write("set/b.yaml", NOTES.replace("memory: {type: persistent}", "memory: {type: forever}\n  budgets: {usd_per_day: forty}"));
    Result r = cli("apply", "-f", files.resolve("set").toString());
    assertThat(r.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(r.err()).contains("nothing was applied", "b.yaml", "spec.budgets.usd_per_day: expected a positive number, got \"forty\"", "spec.memory.type");
    assertThat(r.err().lines().filter(l -> l.startsWith("  - "))).hasSizeGreaterThanOrEqualTo(2);
    assertThat(json(cli("get", "agents", "-o", "json").out()).get("agents")).isEmpty();

    Result single = cli("apply", "-f", files.resolve("set/b.yaml").toString());
    assertThat(single.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(single.err()).contains("forty").contains("forever");
  }

  @Test
  void apply_missingFile_isAUsageError() {
    Result r = cli("apply", "-f", files.resolve("nope.yaml").toString());
    assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).contains("nope.yaml: no such file or directory");
  }

  @Test
  void getAgents_tableAndJson() throws Exception {
    applyNotes();
    Result table = cli("get", "agents");
    assertThat(table.code()).isZero();
    assertThat(table.out().lines().findFirst().orElseThrow()).startsWith("NAME").contains("OWNER", "REVISION", "MODEL", "MODE");
    assertThat(table.out()).contains("notes").contains("scripted/notes-script").contains("autonomous");

    Result json = cli("get", "agents", "-o", "json");
    assertThat(json(json.out()).get("agents").get(0).get("name").asString()).isEqualTo("notes");
  }

  @Test
  void getSessions_filtersAndPrintsTableOrJson() throws Exception {
    applyNotes();
    cliWithInput(GREETER, "apply", "-f", "-");
    String id = startIdle("hello");
    Result table = cli("get", "sessions", "--agent", "notes");
    assertThat(table.out()).startsWith("ID").contains(id).contains("idle");
    assertThat(cli("get", "sessions", "--agent", "greeter").err()).contains("No sessions match");
    JsonNode json = json(cli("get", "sessions", "--status", "idle", "--limit", "5", "-o", "json").out());
    assertThat(json.get("sessions").get(0).get("id").asString()).isEqualTo(id);

    Result bad = cli("get", "sessions", "--status", "sleepy");
    assertThat(bad.code()).isEqualTo(ExitCodes.FAILED);
    assertThat(bad.err()).contains("unknown session status \"sleepy\"");
  }

  @Test
  void describe_agentAndSession() throws Exception {
    applyNotes();
    Result agent = cli("describe", "agent", "notes");
    assertThat(agent.code()).isZero();
    assertThat(agent.out()).contains("Name:", "notes", "Tools:", "internal://memory", "Instructions:", "Keep notes.", "Revisions:");

    String id = startIdle("remember milk");
    Result session = cli("describe", "session", id);
    assertThat(session.out()).contains("Status:", "idle", "Conversation:", "user: remember milk", "→ memory_put", "← memory_put: saved \"note\"");
    assertThat(json(cli("describe", "session", id, "-o", "json").out()).get("last_answer").asString()).isEqualTo("Saved: saved \"note\".");
  }

  @Test
  void runFollow_printsToolCallsAndTheAnswer_inOrder() throws Exception {
    applyNotes();
    Result r = cli("run", "notes", "remember milk", "--follow");
    assertThat(r.code()).as(r.err()).isZero();
    String out = r.out();
    int you = out.indexOf("you: remember milk");
    int call = out.indexOf("→ memory_put {\"key\":\"note\",\"value\":\"remember milk\"}");
    int result = out.indexOf("← memory_put: saved \"note\"");
    int answer = out.indexOf("assistant: Saved: saved \"note\".");
    assertThat(you).isNotNegative();
    assertThat(call).isGreaterThan(you);
    assertThat(result).isGreaterThan(call);
    assertThat(answer).isGreaterThan(result);
  }

  @Test
  void run_withoutFollow_printsTheIdAndHowToFollow() throws Exception {
    applyNotes();
    Result r = cli("run", "notes", "hello");
    assertThat(r.code()).isZero();
    assertThat(r.out().strip()).startsWith("s_");
    assertThat(r.err()).contains("keel events " + r.out().strip() + " --follow");
  }

  @Test
  void run_task_completes() throws Exception {
    applyNotes();
    Result r = cli("run", "notes", "hello", "--task", "--follow");
    assertThat(r.code()).isZero();
    assertThat(r.out()).contains("assistant: Hello.");
  }

  @Test
  void run_unknownAgent_isNotFound() {
    Result r = cli("run", "ghost", "hello");
    assertThat(r.code()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(r.err()).contains("ghost");
  }

  @Test
  void sendFollow_printsOnlyTheNewTurn() throws Exception {
    applyNotes();
    String id = startIdle("remember milk");
    Result r = cli("send", id, "recall please", "--follow");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).doesNotContain("remember milk\"}").contains("you: recall please", "→ memory_get", "assistant: You said: remember milk");

    Result plain = cli("send", id, "hello");
    assertThat(plain.code()).isZero();
    assertThat(plain.out()).contains("stored for session " + id);
  }

  @Test
  void trace_printsAnIndentedTree() throws Exception {
    applyNotes();
    String id = startIdle("remember milk");
    Result r = cli("trace", id);
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out().lines().findFirst().orElseThrow()).startsWith("session " + id).contains("agent notes r1");
    assertThat(r.out()).contains("└─ turn: remember milk", "   ├─ model scripted/notes-script", "tokens ", " ms", "result saved \"note\"",
        "decision granted by internal://memory");
    assertThat(json(cli("trace", id, "-o", "json").out()).get("kind").asString()).isEqualTo("session");
  }

  @Test
  void events_listsTheLog() throws Exception {
    applyNotes();
    String id = startIdle("remember milk");
    Result r = cli("events", id, "--after", "1");
    assertThat(r.out()).startsWith("SEQ").contains("InputReceived", "ToolCallCompleted").doesNotContain("SessionStarted");
    assertThat(json(cli("events", id, "-o", "json").out()).get("events").get(0).get("type").asString()).isEqualTo("SessionStarted");
  }

  @Test
  void cancel_thenCancelAgain_isAConflict() throws Exception {
    applyNotes();
    String id = startIdle("hello");
    Result r = cli("cancel", id, "--reason", "done testing");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("is cancelling");
    await().atMost(Duration.ofSeconds(10)).until(() -> cli("describe", "session", id).out().contains("cancelled"));
    Result again = cli("cancel", id);
    assertThat(again.code()).isEqualTo(ExitCodes.CONFLICT);
    assertThat(again.err()).contains("already cancelled");
  }

  @Test
  void resolve_callNotWaiting_isAConflict() throws Exception {
    applyNotes();
    String id = startIdle("remember milk");
    Result r = cli("resolve", id, "call_9_9", "succeeded", "--result", "done");
    assertThat(r.code()).isEqualTo(ExitCodes.CONFLICT);
    assertThat(r.err()).contains("has no tool call \"call_9_9\" waiting for a decision");

    Result bad = cli("resolve", id, "call_0_0", "maybe");
    assertThat(bad.code()).isEqualTo(ExitCodes.USAGE);
  }

  @Test
  void missingToken_exits3_andSaysWhatToDo() {
    env.remove("KEEL_TOKEN");
    Result r = cli("get", "agents", "--data-dir", files.resolve("nowhere").toString());
    assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(r.err()).contains("no API token found", "--token", "KEEL_TOKEN", "--data-dir", "admin.token");
  }

  @Test
  void tokenFromTheDataDirectory_isUsed() {
    env.remove("KEEL_TOKEN");
    Result r = cli("get", "agents", "--data-dir", dir.resolve("data").toString());
    assertThat(r.code()).as(r.err()).isZero();
  }

  @Test
  void wrongToken_exits3() {
    Result r = cli("get", "agents", "--token", "keel_wrong");
    assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(r.err()).contains("not valid for this server", "--token");
  }

  @Test
  void unreachableOrMalformedServer_exits3() {
    Result refused = cli("get", "agents", "--server", "http://127.0.0.1:1");
    assertThat(refused.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(refused.err()).contains("cannot reach the Keel server at http://127.0.0.1:1", "keel serve");

    Result malformed = cli("get", "agents", "--server", "localhost 8420");
    assertThat(malformed.code()).isEqualTo(ExitCodes.UNREACHABLE);
    assertThat(malformed.err()).contains("is not an http:// or https:// URL");
  }

  @Test
  void unknownSession_exits4() {
    for (String[] args : new String[][] {
        {"describe", "session", "s_nope"}, {"trace", "s_nope"}, {"events", "s_nope"}, {"send", "s_nope", "hi"}, {"cancel", "s_nope"}}) {
      Result r = cli(args);
      assertThat(r.code()).as(String.join(" ", args) + ": " + r.err()).isEqualTo(ExitCodes.NOT_FOUND);
      assertThat(r.err()).contains("s_nope");
    }
  }

  @Test
  void help_listsCommands_andUsageErrorsExit2() {
    Result help = cli("--help");
    assertThat(help.code()).isZero();
    assertThat(help.out()).contains("serve", "apply", "get", "describe", "run", "send", "trace", "cancel", "resolve", "events", "demo", "Exit codes");
    Result runHelp = cli("run", "--help");
    assertThat(runHelp.out()).contains("--follow", "Examples:");
    assertThat(cli("get", "agents", "--bogus").code()).isEqualTo(ExitCodes.USAGE);
    assertThat(cli().code()).isEqualTo(ExitCodes.USAGE);
    assertThat(cli("get", "widgets").code()).isEqualTo(ExitCodes.USAGE);
  }

  @Test
  void demo_inProcess_remembersAndRecalls() {
    Result r = cli("demo", "--data-dir", files.resolve("demo").toString(), "--examples", Path.of("..", "examples").toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("agent/demo-assistant created", "→ memory_put", "→ time_now", "→ memory_search",
        "Here is what I remember:", "invoice run is on Fridays", "== keel trace", "What to try next", "./keel serve");
  }

  @Test
  void serve_listens_printsWhereTheTokenIs_andStopsCleanly() throws Exception {
    Path data = files.resolve("served");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int[] code = {-1};
    Thread serving = Thread.ofVirtual().start(() -> code[0] = Main.run(
        new String[] {"serve", "--port", "0", "--data-dir", data.toString(), "--no-fsync"},
        new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), Map.of()));
    await().atMost(Duration.ofSeconds(20)).until(() -> out.toString(StandardCharsets.UTF_8).contains("Stop it with Ctrl+C"));
    String printed = out.toString(StandardCharsets.UTF_8);
    assertThat(printed).contains("admin token:    " + data.resolve("admin.token"), "export KEEL_SERVER=", "export KEEL_DATA_DIR=" + data);
    String url = printed.lines().filter(l -> l.startsWith("Keel is listening on ")).findFirst().orElseThrow().substring(21);

    env.remove("KEEL_TOKEN");
    Result r = cli("get", "agents", "--server", url, "--data-dir", data.toString());
    assertThat(r.code()).as(r.err()).isZero();

    serving.interrupt();
    serving.join(20_000);
    assertThat(code[0]).isZero();
    assertThat(cli("get", "agents", "--server", url, "--data-dir", data.toString()).code()).isEqualTo(ExitCodes.UNREACHABLE);
  }
}
