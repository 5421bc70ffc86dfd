package keel.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import keel.core.AgentDescriptor.ConcurrencyMode;
import keel.core.AgentDescriptor.ConcurrencySpec;
import keel.core.AgentDescriptor.MemoryType;
import keel.core.AgentDescriptor.Mode;
import keel.core.AgentDescriptor.OnBusy;
import keel.core.AgentDescriptor.OnDrift;
import keel.core.AgentDescriptor.ScriptCall;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class DescriptorsTest {

  private static final String AGENT_HEAD =
      """
      apiVersion: agent.os/v1
      kind: Agent
      metadata: {name: x, owner: team}
      spec:
        instructions: hi
      """;

  private static final String DEFAULT_MODEL = "  model: {provider: openai, name: gpt}\n";

  /** A minimal valid agent with the given lines added to its spec (and a model unless given). */
  private static String agent(String specLines) {
    String lines = specLines.isEmpty() ? "" : specLines.indent(2);
    return AGENT_HEAD + (specLines.contains("model:") ? "" : DEFAULT_MODEL) + lines;
  }

  private static List<String> problems(String yaml) {
    KeelException.Invalid e =
        catchThrowableOfType(KeelException.Invalid.class, () -> Descriptors.parse(yaml, "x.yaml"));
    assertThat(e).as("expected problems for:\n%s", yaml).isNotNull();
    return e.problems();
  }

  private static String finance() throws IOException {
    try (InputStream in = DescriptorsTest.class.getResourceAsStream("/finance.yaml")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  // --- the reference example -------------------------------------------------------------------

  @Test
  void parse_financeExample_givesSixDescriptorsWithExpectedValues() throws IOException {
    List<Descriptor> all = Descriptors.parse(finance(), "finance.yaml");

    assertThat(all)
        .extracting(Descriptor::kind, Descriptor::name)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("Agent", "invoice-reconciler"),
            org.assertj.core.groups.Tuple.tuple("Agent", "supplier-lookup"),
            org.assertj.core.groups.Tuple.tuple("McpServer", "invoices"),
            org.assertj.core.groups.Tuple.tuple("McpServer", "ledger"),
            org.assertj.core.groups.Tuple.tuple("McpServer", "email"),
            org.assertj.core.groups.Tuple.tuple("Policy", "no-weekend-payments"));

    AgentDescriptor reconciler = (AgentDescriptor) all.get(0);
    assertThat(reconciler.metadata().owner()).isEqualTo("finance-platform");
    assertThat(reconciler.labels()).containsExactly(Map.entry("domain", "finance"));
    AgentDescriptor.Spec spec = reconciler.spec();
    assertThat(spec.instructions()).startsWith("Reconcile open supplier invoices");
    assertThat(spec.model().provider()).isEqualTo("anthropic");
    assertThat(spec.model().name()).isEqualTo("claude-opus-4-7");
    assertThat(spec.model().pinnedRevision()).contains("2026-02-14");
    assertThat(spec.model().onDrift()).isEqualTo(OnDrift.SUSPEND);
    AgentDescriptor.Routing routing = spec.model().routing().orElseThrow();
    assertThat(routing.small())
        .isEqualTo(new AgentDescriptor.ModelRef("anthropic", "claude-haiku-4-5"));
    assertThat(routing.escalateOn())
        .containsExactly(
            "invalid_tool_arguments", "model_error", "empty_answer", "context_over_tokens");
    assertThat(routing.contextOverTokens()).contains(60000);
    assertThat(spec.memory())
        .isEqualTo(new AgentDescriptor.MemorySpec(MemoryType.PERSISTENT, Optional.of(90)));
    assertThat(spec.tools())
        .containsExactly(
            "mcp://gateway/invoices",
            "mcp://gateway/ledger/read-entries",
            "mcp://gateway/email/draft",
            "internal://memory",
            "agent://supplier-lookup");
    assertThat(spec.budgets())
        .contains(
            new AgentDescriptor.Budgets(
                Optional.of(200),
                Optional.of(new BigDecimal("40")),
                Optional.empty(),
                Optional.of(500)));
    AgentDescriptor.ApprovalSpec approval = spec.approval().orElseThrow();
    assertThat(approval.onActionValueUsdGt()).contains(new BigDecimal("1000"));
    assertThat(approval.rules()).hasSize(1);
    assertThat(approval.rules().get(0).reason())
        .isEqualTo("email to an address outside the supplier's domain");
    assertThat(approval.approvers()).containsExactly("finance-leads");
    assertThat(approval.expiresAfter()).contains(Duration.ofHours(24));
    assertThat(spec.concurrency())
        .isEqualTo(
            new ConcurrencySpec(
                ConcurrencyMode.PER_PARTITION,
                Optional.of("input.supplier_id"),
                Optional.of(50),
                OnBusy.ENQUEUE));
    assertThat(spec.mode()).isEqualTo(Mode.SUPERVISED);
    assertThat(spec.maxSteps()).isEqualTo(50);

    AgentDescriptor lookup = (AgentDescriptor) all.get(1);
    assertThat(lookup.spec().model().baseUrl()).contains("http://127.0.0.1:11434/v1");
    assertThat(lookup.spec().memory().type()).isEqualTo(MemoryType.SESSION);
    assertThat(lookup.spec().concurrency()).isEqualTo(ConcurrencySpec.DEFAULT);
    assertThat(lookup.spec().mode()).isEqualTo(Mode.AUTONOMOUS);
    assertThat(lookup.spec().approval()).isEmpty();

    McpServerDescriptor.Spec invoices = ((McpServerDescriptor) all.get(2)).spec();
    assertThat(invoices.transport()).isEqualTo("stdio");
    assertThat(invoices.command())
        .containsExactly("java", "-cp", "keel-testkit.jar", "keel.testkit.mcp.InvoicesServer");
    assertThat(invoices.env())
        .containsExactly(
            Map.entry(
                "INVOICES_DB",
                new McpServerDescriptor.ValueSource(
                    Optional.empty(), Optional.of("invoices-db-url"))));
    assertThat(invoices.tools()).containsOnlyKeys("list-open", "get-supplier", "schedule-payment");
    assertThat(invoices.tools().get("schedule-payment"))
        .isEqualTo(
            new McpServerDescriptor.ToolSettings(
                "side-effecting",
                Optional.of("args.amount"),
                Optional.of(new BigDecimal("0.002"))));
    assertThat(invoices.callsPerMinute()).contains(120);
    assertThat(invoices.timeout()).contains(Duration.ofSeconds(30));

    McpServerDescriptor.Spec ledger = ((McpServerDescriptor) all.get(3)).spec();
    assertThat(ledger.url()).contains("http://127.0.0.1:8930/mcp");
    assertThat(ledger.command()).isEmpty();

    McpServerDescriptor.Spec email = ((McpServerDescriptor) all.get(4)).spec();
    assertThat(email.headers().get("Authorization").secret()).contains("email-gateway-token");
    assertThat(email.tools().get("draft").sideEffects()).isEqualTo("idempotent");

    PolicyDescriptor policy = (PolicyDescriptor) all.get(5);
    assertThat(policy.metadata().owner()).isEmpty();
    assertThat(policy.spec().tools()).containsExactly("invoices/schedule-payment");
    assertThat(policy.spec().agents()).isEmpty();
    assertThat(policy.spec().denyWhen()).isEqualTo("now.getDayOfWeek() in [0, 6]");
    assertThat(policy.spec().requireApprovalWhen()).isEmpty();
    assertThat(policy.spec().reason()).isEqualTo("payments are only scheduled on weekdays");
  }

  @Test
  void canonicalJson_financeExample_roundTripsExactly() throws IOException {
    for (Descriptor d : Descriptors.parse(finance(), "finance.yaml")) {
      String json = Descriptors.canonicalJson(d);
      Descriptor back = Descriptors.fromCanonicalJson(d.kind(), json);
      assertThat(back).as(json).isEqualTo(d);
      assertThat(Descriptors.canonicalJson(back)).isEqualTo(json);
    }
  }

  // --- field errors ----------------------------------------------------------------------------

  static Stream<Arguments> agentFieldErrors() {
    return Stream.of(
        named(
            "usd_per_day not a number",
            "budgets: {usd_per_day: forty}",
            "spec.budgets.usd_per_day: expected a positive number, got \"forty\""),
        named(
            "usd_per_day zero",
            "budgets: {usd_per_day: 0}",
            "spec.budgets.usd_per_day: expected a positive number, got 0"),
        named(
            "calls_per_hour fractional",
            "budgets: {calls_per_hour: 1.5}",
            "spec.budgets.calls_per_hour: expected a positive integer, got 1.5"),
        named(
            "tokens_per_day negative",
            "budgets: {tokens_per_day: -3}",
            "spec.budgets.tokens_per_day: expected a positive integer, got -3"),
        named(
            "tool_calls_per_hour text",
            "budgets: {tool_calls_per_hour: ten}",
            "spec.budgets.tool_calls_per_hour: expected a positive integer, got \"ten\""),
        named(
            "instructions not a string",
            "instructions: [a]",
            "spec.instructions: expected a non-empty string, got a list",
            true),
        named(
            "model missing",
            "model: null",
            "spec.model: expected a mapping with provider and name (required), got nothing"),
        named(
            "provider unknown",
            "model: {provider: openia, name: gpt}",
            "spec.model.provider: expected one of openai, scripted, anthropic, gemini,"
                + " openai-responses, replay, got \"openia\""),
        named(
            "model name missing",
            "model: {provider: openai}",
            "spec.model.name: expected a non-empty string (required), got nothing"),
        named(
            "temperature too high",
            "model: {provider: openai, name: g, temperature: 2.5}",
            "spec.model.temperature: expected a number from 0 to 2, got 2.5"),
        named(
            "on_drift unknown",
            "model: {provider: openai, name: g, on_drift: ignore}",
            "spec.model.on_drift: expected one of warn, fail, suspend, got \"ignore\""),
        named(
            "base_url not http",
            "model: {provider: openai, name: g, base_url: ftp://h/x}",
            "spec.model.base_url: expected an http or https URL, got \"ftp://h/x\""),
        named(
            "pinned_revision a list",
            "model: {provider: openai, name: g, pinned_revision: [1]}",
            "spec.model.pinned_revision: expected a non-empty string, got a list"),
        named(
            "routing without small",
            "model: {provider: openai, name: g, routing: {escalate_on: []}}",
            "spec.model.routing.small: expected a mapping with provider and name (required), got"
                + " nothing"),
        named(
            "routing escalation unknown",
            "model: {provider: openai, name: g, routing: {small: {provider: openai, name: m},"
                + " escalate_on: [bored]}}",
            "spec.model.routing.escalate_on[0]: expected one of invalid_tool_arguments,"
                + " model_error, empty_answer, context_over_tokens, refusal, escalated_step, got"
                + " \"bored\""),
        named(
            "routing context_over_tokens missing",
            "model: {provider: openai, name: g, routing: {small: {provider: openai, name: m},"
                + " escalate_on: [context_over_tokens]}}",
            "spec.model.routing.context_over_tokens: expected a positive integer when escalate_on"
                + " lists context_over_tokens (required), got nothing"),
        named(
            "memory type unknown",
            "memory: {type: forever}",
            "spec.memory.type: expected one of none, session, persistent, got \"forever\""),
        named(
            "retention_days zero",
            "memory: {type: persistent, retention_days: 0}",
            "spec.memory.retention_days: expected a positive integer, got 0"),
        named(
            "retention_days without persistent",
            "memory: {type: session, retention_days: 7}",
            "spec.memory.retention_days: expected no retention_days unless type is persistent, got"
                + " retention_days with type session"),
        named(
            "tool URI unknown scheme",
            "tools: [internal://memory, 'http://example.com']",
            "spec.tools[1]: expected a capability URI: mcp://gateway/<server>,"
                + " mcp://gateway/<server>/<tool>, mcp://gateway/<server>/<tool>@<version>, internal://<name> or agent://<name>, got"
                + " \"http://example.com\""),
        named(
            "tool URI other gateway",
            "tools: ['mcp://other/x']",
            "spec.tools[0]: expected a capability URI: mcp://gateway/<server>,"
                + " mcp://gateway/<server>/<tool>, mcp://gateway/<server>/<tool>@<version>, internal://<name> or agent://<name>, got"
                + " \"mcp://other/x\""),
        named(
            "tool URI duplicate",
            "tools: [agent://a, internal://time, agent://a]",
            "spec.tools[2]: expected each entry once, got \"agent://a\" again (first at"
                + " spec.tools[0])"),
        named(
            "tools not a list",
            "tools: internal://memory",
            "spec.tools: expected a list, got \"internal://memory\""),
        named(
            "approval threshold negative",
            "approval: {on_action_value_usd_gt: -1}",
            "spec.approval.on_action_value_usd_gt: expected a number zero or greater, got -1"),
        named(
            "approval expiry unreadable",
            "approval: {expires_after: soon}",
            "spec.approval.expires_after: expected a positive duration like 30s, 15m, 24h, 7d or"
                + " PT24H, got \"soon\""),
        named(
            "approval rule without when",
            "approval: {rules: [{reason: r}]}",
            "spec.approval.rules[0].when: expected a non-empty string (required), got nothing"),
        named(
            "approver empty",
            "approval: {approvers: ['']}",
            "spec.approval.approvers[0]: expected a non-empty string, got \"\""),
        named(
            "concurrency mode unknown",
            "concurrency: {mode: global}",
            "spec.concurrency.mode: expected one of per-session, per-partition, got \"global\""),
        named(
            "concurrency partition_key missing",
            "concurrency: {mode: per-partition}",
            "spec.concurrency.partition_key: expected the input field that names the partition, for"
                + " per-partition (required), got nothing"),
        named(
            "concurrency partition_key not a path of the input",
            "concurrency: {mode: per-partition, partition_key: supplier_id}",
            "spec.concurrency.partition_key: expected the field of the first message (a JSON object) that names the"
                + " partition, as input.<field> or input.<field>.<field>, e.g. input.customer_id; got \"supplier_id\""),
        named(
            "concurrency max_active_sessions zero",
            "concurrency: {max_active_sessions: 0}",
            "spec.concurrency.max_active_sessions: expected a positive integer, got 0"),
        named(
            "concurrency on_busy unknown",
            "concurrency: {on_busy: drop}",
            "spec.concurrency.on_busy: expected one of enqueue, reject, interrupt, got \"drop\""),
        named(
            "mode unknown",
            "mode: yolo",
            "spec.mode: expected one of autonomous, supervised, shadow, got \"yolo\""),
        named(
            "max_steps zero",
            "max_steps: 0",
            "spec.max_steps: expected a positive integer no greater than 1000, got 0"),
        named(
            "max_steps over limit",
            "max_steps: 1001",
            "spec.max_steps: expected a positive integer no greater than 1000, got 1001"),
        named(
            "budgets not a mapping",
            "budgets: 40",
            "spec.budgets: expected a mapping with calls_per_hour, usd_per_day, tokens_per_day or"
                + " tool_calls_per_hour, got 40"));
  }

  private static Arguments named(String name, String specLines, String problem) {
    return named(name, specLines, problem, false);
  }

  /** With {@code replaceInstructions}, the case's lines replace the base's instructions. */
  private static Arguments named(
      String name, String specLines, String problem, boolean replaceInstructions) {
    return Arguments.argumentSet(name, specLines, problem, replaceInstructions);
  }

  @ParameterizedTest
  @MethodSource("agentFieldErrors")
  void parse_agentFieldWithWrongTypeOrRange_reportsPathExpectationAndValue(
      String specLines, String problem, boolean replaceInstructions) {
    String yaml = agent(specLines);
    if (replaceInstructions) {
      yaml = yaml.replace("  instructions: hi\n", "");
    }
    assertThat(problems(yaml)).containsExactly("x.yaml: document 1: agent \"x\": " + problem);
  }

  @Test
  void parse_usdPerDayNotANumber_reportsPathAndValue() {
    assertThat(problems(agent("budgets: {usd_per_day: forty}")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.budgets.usd_per_day: expected a positive number,"
                + " got \"forty\"");
  }

  @Test
  void parse_unknownField_listsAllowedFields() {
    assertThat(problems(agent("modle: {provider: openai}")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.modle: unknown field; expected one of"
                + " instructions, model, memory, tools, budgets, approval, concurrency, mode,"
                + " max_steps");
  }

  @Test
  void parse_unknownTopLevelAndMetadataFields_areReported() {
    String yaml =
        agent("")
            .replace("kind: Agent\n", "kind: Agent\nstatus: {}\n")
            .replace("owner: team}", "owner: team, tags: [a]}");
    assertThat(problems(yaml))
        .containsExactlyInAnyOrder(
            "x.yaml: document 1: agent \"x\": status: unknown field; expected one of apiVersion,"
                + " kind, metadata, spec",
            "x.yaml: document 1: agent \"x\": metadata.tags: unknown field; expected one of name,"
                + " owner, labels");
  }

  @Test
  void parse_unknownKind_isReportedWithoutKindInPrefix() {
    String yaml = agent("").replace("kind: Agent", "kind: Agnet");
    assertThat(problems(yaml))
        .containsExactly(
            "x.yaml: document 1: kind: expected one of Agent, McpServer, Policy, got \"Agnet\"");
  }

  @Test
  void parse_wrongApiVersion_isReported() {
    assertThat(problems(agent("").replace("agent.os/v1", "agent.os/v2")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": apiVersion: expected \"agent.os/v1\", got"
                + " \"agent.os/v2\"");
  }

  @Test
  void parse_missingApiVersion_isReported() {
    assertThat(problems(agent("").replace("apiVersion: agent.os/v1\n", "")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": apiVersion: expected \"agent.os/v1\" (required), got"
                + " nothing");
  }

  @Test
  void parse_invalidName_usesKindInPrefix() {
    assertThat(problems(agent("").replace("name: x,", "name: Bad_Name,")))
        .containsExactly(
            "x.yaml: document 1 (Agent): metadata.name: expected a name of 1 to 63 lowercase"
                + " letters, digits and dashes that starts and ends with a letter or digit, got"
                + " \"Bad_Name\"");
  }

  @Test
  void parse_missingOwnerOfAgent_isReported_butPolicyOwnerIsOptional() {
    String yaml =
        agent("").replace("{name: x, owner: team}", "{name: x}")
            + """
            ---
            apiVersion: agent.os/v1
            kind: Policy
            metadata: {name: p}
            spec: {require_approval_when: 'true', reason: r}
            """;
    assertThat(problems(yaml))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": metadata.owner: expected a non-empty string"
                + " (required), got nothing");
  }

  @Test
  void parse_problemsInSeveralDocuments_areAllReportedTogether() {
    String yaml =
        agent("budgets: {usd_per_day: forty}\nmode: yolo")
            + "---\n"
            + agent("max_steps: 0").replace("name: x,", "name: y,")
            + "---\n# only a comment\n---\n"
            + """
            apiVersion: agent.os/v1
            kind: McpServer
            metadata: {name: s, owner: team}
            spec: {transport: carrier-pigeon}
            """;
    assertThat(problems(yaml))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.budgets.usd_per_day: expected a positive"
                + " number, got \"forty\"",
            "x.yaml: document 1: agent \"x\": spec.mode: expected one of autonomous, supervised,"
                + " shadow, got \"yolo\"",
            "x.yaml: document 2: agent \"y\": spec.max_steps: expected a positive integer no"
                + " greater than 1000, got 0",
            "x.yaml: document 3: mcpserver \"s\": spec.transport: expected one of stdio,"
                + " streamable-http, got \"carrier-pigeon\"");
  }

  @Test
  void parse_sameNameTwice_isReported() {
    assertThat(problems(agent("") + "---\n" + agent("")))
        .containsExactly(
            "x.yaml: document 2: agent \"x\": metadata.name: expected each Agent name once in the"
                + " input, got \"x\" again (first in document 1)");
  }

  @Test
  void parse_yamlSyntaxError_givesLineAndColumn_andOtherDocumentsAreStillChecked() {
    String yaml =
        agent("")
            + "---\nkind: Agent\nmetadata: {name: [x\n"
            + "---\n"
            + agent("mode: yolo").replace("name: x,", "name: z,");
    List<String> problems = problems(yaml);
    assertThat(problems).hasSize(2);
    assertThat(problems.get(0))
        .matches("x\\.yaml: document 2: line 9, column \\d+: YAML syntax error: .+");
    assertThat(problems.get(1))
        .isEqualTo(
            "x.yaml: document 3: agent \"z\": spec.mode: expected one of autonomous, supervised,"
                + " shadow, got \"yolo\"");
  }

  @Test
  void parse_duplicateKey_isASyntaxErrorWithLine() {
    assertThat(problems(agent("mode: shadow\nmode: supervised")))
        .singleElement()
        .asString()
        .matches("x\\.yaml: document 1: line 8, column \\d+: duplicate key \"mode\"");
  }

  @Test
  void parse_yamlAliases_areResolved_andUnknownAliasesReported() {
    String yaml = agent("budgets: &b {usd_per_day: 5}") + "---\n" + agent("budgets: *b");
    assertThat(problems(yaml.replace("name: x,", "name: y,")))
        .containsExactly(
            "x.yaml: document 2: line 15, column 10: YAML syntax error: invalid alias: b");
    AgentDescriptor a =
        (AgentDescriptor)
            Descriptors.parse(
                    agent("tools: &t [internal://memory]\napproval: {approvers: *t}"), "x.yaml")
                .get(0);
    assertThat(a.spec().approval().orElseThrow().approvers()).containsExactly("internal://memory");
  }

  @Test
  void parse_documentThatIsNotAMapping_isReported() {
    assertThat(problems("- a\n- b\n"))
        .containsExactly(
            "x.yaml: document 1: expected a mapping with apiVersion, kind, metadata and spec, got a"
                + " list");
  }

  @Test
  void parse_emptyInput_givesNoDescriptors() {
    assertThat(Descriptors.parse("", "-")).isEmpty();
    assertThat(Descriptors.parse("---\n# nothing\n---\n", "-")).isEmpty();
  }

  @Test
  void parse_sourceStartsEveryProblem() {
    assertThat(
            catchThrowableOfType(
                    KeelException.Invalid.class, () -> Descriptors.parse(agent("mode: x"), "-"))
                .problems())
        .allSatisfy(p -> assertThat(p).startsWith("-: document 1: "));
  }

  // --- scripted models -------------------------------------------------------------------------

  @Test
  void parse_scriptedModel_readsRulesTurnsAndCallsWithArgumentsAsCompactJson() {
    String yaml =
        agent(
            """
            model:
              provider: scripted
              name: demo
              script:
                - when: '(?i)remember'
                  turns:
                    - call: [{tool: memory_put, args: {value: '{{input}}', key: note, n: 1.50}}]
                    - say: Noted.
                - turns: [{say: ''}]
            """);
    AgentDescriptor a = (AgentDescriptor) Descriptors.parse(yaml, "x.yaml").get(0);
    List<AgentDescriptor.ScriptRule> script = a.spec().model().script();
    assertThat(script).hasSize(2);
    assertThat(script.get(0).when()).contains("(?i)remember");
    assertThat(script.get(0).turns().get(0).say()).isEmpty();
    assertThat(script.get(0).turns().get(0).calls())
        .containsExactly(
            new ScriptCall("memory_put", "{\"key\":\"note\",\"n\":1.50,\"value\":\"{{input}}\"}"));
    assertThat(script.get(0).turns().get(1).say()).isEqualTo("Noted.");
    assertThat(script.get(1).when()).isEmpty();
    assertThat(script.get(1).turns().get(0).calls()).isEmpty();
    assertThat(Descriptors.fromCanonicalJson("Agent", Descriptors.canonicalJson(a))).isEqualTo(a);
  }

  @Test
  void parse_scriptedModelWithoutScript_isReported() {
    assertThat(problems(agent("model: {provider: scripted, name: demo}")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.model.script: expected a non-empty list of rules"
                + " when provider is scripted (required), got nothing");
  }

  @Test
  void parse_scriptWithOtherProvider_isReported() {
    assertThat(
            problems(agent("model: {provider: openai, name: g, script: [{turns: [{say: hi}]}]}")))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.model.script: expected no script unless"
                + " provider is scripted, got a script with provider \"openai\"");
  }

  @Test
  void parse_scriptProblems_areAllReportedWithTheirPaths() {
    String yaml =
        agent(
            """
            model:
              provider: scripted
              name: demo
              script:
                - when: '(unclosed'
                  turns: []
                - turns:
                    - call: [{tool: 'not a tool!'}, {args: {a: 1}}, {tool: ok, args: [1]}]
                    - {}
            """);
    assertThat(problems(yaml))
        .containsExactly(
            "x.yaml: document 1: agent \"x\": spec.model.script[0].when: expected a valid regular"
                + " expression (Unclosed group near index 9), got \"(unclosed\"",
            "x.yaml: document 1: agent \"x\": spec.model.script[0].turns: expected a non-empty list"
                + " of turns, got an empty list",
            "x.yaml: document 1: agent \"x\": spec.model.script[1].turns[0].call[0].tool: expected"
                + " a tool name of 1 to 64 letters, digits, underscores and dashes, got \"not a"
                + " tool!\"",
            "x.yaml: document 1: agent \"x\": spec.model.script[1].turns[0].call[1].tool: expected"
                + " a tool name (required), got nothing",
            "x.yaml: document 1: agent \"x\": spec.model.script[1].turns[0].call[2].args: expected"
                + " a mapping of arguments, got a list",
            "x.yaml: document 1: agent \"x\": spec.model.script[1].turns[1]: expected a turn with"
                + " say, call or both, got neither");
  }

  // --- McpServer and Policy --------------------------------------------------------------------

  private static String server(String spec) {
    return """
    apiVersion: agent.os/v1
    kind: McpServer
    metadata: {name: s, owner: team}
    spec:
    """
        + spec.indent(2);
  }

  @Test
  void parse_mcpServerProblems_areAllReported() {
    String yaml =
        server(
            """
            transport: stdio
            url: http://h/mcp
            env: {A: {secret: s}, 'BAD NAME': x, B: [1], C: {secret: s, extra: 1}}
            headers: {X-Token: {name: t}}
            tools:
              ok: {side_effects: read-only, price_usd_per_call: 0.01}
              bad: {side_effects: maybe, value_usd: '', price_usd_per_call: -1}
              none:
            rate_limit: {calls_per_minute: 0}
            timeout: forever
            """);
    String p = "x.yaml: document 1: mcpserver \"s\": ";
    assertThat(problems(yaml))
        .containsExactly(
            p
                + "spec.command: expected a non-empty list of strings for transport stdio"
                + " (required), got nothing",
            p
                + "spec.url: expected no url unless transport is streamable-http, got a url with"
                + " transport stdio",
            p + "spec.env[\"BAD NAME\"]: expected an environment variable name, got \"BAD NAME\"",
            p + "spec.env.B: expected a string or {secret: <name>}, got a list",
            p + "spec.env.C.extra: unknown field; expected one of secret",
            p + "spec.headers.X-Token.name: unknown field; expected one of secret",
            p
                + "spec.headers.X-Token.secret: expected the name of a secret (required), got"
                + " nothing",
            p
                + "spec.tools.bad.side_effects: expected one of read-only, idempotent,"
                + " side-effecting, got \"maybe\"",
            p + "spec.tools.bad.value_usd: expected a non-empty string, got \"\"",
            p + "spec.tools.bad.price_usd_per_call: expected a number zero or greater, got -1",
            p
                + "spec.tools.none.side_effects: expected one of read-only, idempotent,"
                + " side-effecting (required), got nothing",
            p + "spec.rate_limit.calls_per_minute: expected a positive integer, got 0",
            p
                + "spec.timeout: expected a positive duration like 30s, 15m, 24h, 7d or PT24H, got"
                + " \"forever\"");
  }

  @Test
  void parse_streamableHttpServerWithoutUrl_isReported() {
    assertThat(problems(server("transport: streamable-http\ncommand: [x]")))
        .containsExactly(
            "x.yaml: document 1: mcpserver \"s\": spec.command: expected no command unless"
                + " transport is stdio, got a command with transport streamable-http",
            "x.yaml: document 1: mcpserver \"s\": spec.url: expected an http or https URL for"
                + " transport streamable-http (required), got nothing");
  }

  @Test
  void parse_mcpServerLiteralValues_keepScalarText() {
    McpServerDescriptor s =
        (McpServerDescriptor)
            Descriptors.parse(
                    server(
                        "transport: stdio\n"
                            + "command: [srv]\n"
                            + "env: {PORT: 8080, NAME: x}\n"
                            + "timeout: PT1M"),
                    "x.yaml")
                .get(0);
    assertThat(s.spec().env().get("PORT").value()).contains("8080");
    assertThat(s.spec().timeout()).contains(Duration.ofMinutes(1));
  }

  @Test
  void parse_policyWithoutCondition_isReported() {
    String yaml =
        """
        apiVersion: agent.os/v1
        kind: Policy
        metadata: {name: p}
        spec: {applies_to: {agents: [a], teams: [b]}}
        """;
    assertThat(problems(yaml))
        .containsExactly(
            "x.yaml: document 1: policy \"p\": spec.applies_to.teams: unknown field; expected one"
                + " of tools, agents",
            "x.yaml: document 1: policy \"p\": spec.deny_when: expected a CEL condition in"
                + " deny_when, require_approval_when or both (required), got nothing",
            "x.yaml: document 1: policy \"p\": spec.reason: expected a non-empty string"
                + " (required), got nothing");
  }

  // --- canonical JSON --------------------------------------------------------------------------

  @Test
  void canonicalJson_isTheSameAcrossKeyOrderWhitespaceAndExplicitDefaults() {
    String terse =
        """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: x, owner: team, labels: {b: '2', a: '1'}}
        spec:
          instructions: hi
          model: {provider: openai, name: gpt, temperature: 1}
          budgets: {usd_per_day: 40}
        """;
    String verbose =
        """
        spec:
          max_steps:    50
          mode: autonomous
          budgets:
            usd_per_day: 40.00
          concurrency: {on_busy: enqueue, mode: per-session}
          memory: {type: none}
          tools: []
          model:
            temperature: 1.0
            on_drift: warn
            name: gpt
            provider: openai
          instructions: "hi"
          approval: {}
        metadata:
          labels: {a: '1', b: '2'}
          owner: team
          name: x
        kind: Agent
        apiVersion: agent.os/v1
        """;
    Descriptor a = Descriptors.parse(terse, "a.yaml").get(0);
    Descriptor b = Descriptors.parse(verbose, "b.yaml").get(0);
    assertThat(Descriptors.canonicalJson(a)).isEqualTo(Descriptors.canonicalJson(b));
    assertThat(a).isEqualTo(b);
  }

  @Test
  void canonicalJson_changesWhenMeaningChanges() {
    Descriptor a = Descriptors.parse(agent("budgets: {usd_per_day: 40}"), "a").get(0);
    Descriptor b = Descriptors.parse(agent("budgets: {usd_per_day: 41}"), "b").get(0);
    assertThat(Descriptors.canonicalJson(a)).isNotEqualTo(Descriptors.canonicalJson(b));
  }

  @Test
  void canonicalJson_hasSortedKeysAndAppliedDefaults() {
    String json = Descriptors.canonicalJson(Descriptors.parse(agent(""), "a").get(0));
    assertThat(json)
        .isEqualTo(
            "{\"apiVersion\":\"agent.os/v1\",\"kind\":\"Agent\",\"metadata\":{\"name\":\"x\","
                + "\"owner\":\"team\"},\"spec\":{\"concurrency\":{\"mode\":\"per-session\","
                + "\"on_busy\":\"enqueue\"},\"instructions\":\"hi\",\"max_steps\":50,"
                + "\"memory\":{\"type\":\"none\"},\"mode\":\"autonomous\",\"model\":{\"name\":"
                + "\"gpt\",\"on_drift\":\"warn\",\"provider\":\"openai\"},\"tools\":[]}}");
  }

  @Test
  void fromCanonicalJson_ofAnotherKind_isRejected() {
    String json = Descriptors.canonicalJson(Descriptors.parse(agent(""), "a").get(0));
    assertThatThrownBy(() -> Descriptors.fromCanonicalJson("Policy", json))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("expected one Policy descriptor, got a Agent");
  }

  @Test
  void fromCanonicalJson_ofGarbage_isInvalid() {
    assertThatThrownBy(() -> Descriptors.fromCanonicalJson("Agent", "{not json"))
        .isInstanceOf(KeelException.Invalid.class);
  }
}
