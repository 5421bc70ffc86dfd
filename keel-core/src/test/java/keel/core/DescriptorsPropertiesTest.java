package keel.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.List;
import java.util.Optional;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Builders;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import tools.jackson.databind.json.JsonMapper;

class DescriptorsPropertiesTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  /** The few fields the generator varies; the YAML it writes is always valid. */
  record AgentFields(
      String name,
      String instructions,
      String provider,
      Optional<Double> temperature,
      Optional<BigDecimal> usdPerDay,
      Optional<Integer> callsPerHour,
      String mode,
      String memory,
      List<String> tools,
      int maxSteps,
      boolean shuffleKeys) {

    String yaml() {
      StringBuilder spec = new StringBuilder();
      spec.append("  instructions: ").append(JSON.writeValueAsString(instructions)).append('\n');
      spec.append("  model:\n    provider: ").append(provider).append("\n    name: m\n");
      temperature.ifPresent(t -> spec.append("    temperature: ").append(t).append('\n'));
      if (provider.equals("scripted")) {
        spec.append(
            "    script:\n      - when: 'a+'\n        turns:\n          - say: hi\n"
                + "            call: [{tool: memory_put, args: {k: 'v', n: 2, l: [1, {z: x}]}}]\n");
      }
      if (usdPerDay.isPresent() || callsPerHour.isPresent()) {
        spec.append("  budgets:\n");
        usdPerDay.ifPresent(
            u -> spec.append("    usd_per_day: ").append(u.toPlainString()).append('\n'));
        callsPerHour.ifPresent(c -> spec.append("    calls_per_hour: ").append(c).append('\n'));
      }
      spec.append("  mode: ").append(mode).append('\n');
      spec.append("  memory: {type: ").append(memory).append("}\n");
      spec.append("  tools: ").append(JSON.writeValueAsString(tools)).append('\n');
      spec.append("  max_steps: ").append(maxSteps).append('\n');
      String head =
          "apiVersion: agent.os/v1\nkind: Agent\nmetadata: {name: " + name + ", owner: team}\n";
      return shuffleKeys ? "spec:\n" + spec + head : head + "spec:\n" + spec;
    }
  }

  @Provide
  Arbitrary<AgentFields> agents() {
    Arbitrary<String> names =
        Arbitraries.strings()
            .withCharRange('a', 'z')
            .numeric()
            .ofMaxLength(30)
            .map(s -> "a" + s); // all digits would be a YAML number, not a name
    Arbitrary<String> texts =
        Arbitraries.strings()
            .withCharRange(' ', '~')
            .withChars('é', '\n', '\t', '中')
            .ofMinLength(1)
            .ofMaxLength(80)
            .filter(s -> !s.isBlank());
    Arbitrary<BigDecimal> money =
        Arbitraries.bigDecimals()
            .between(new BigDecimal("0.0001"), new BigDecimal("100000"))
            .ofScale(4);
    return Builders.withBuilder(() -> new Object[11])
        .use(names)
        .in((a, v) -> set(a, 0, v))
        .use(texts)
        .in((a, v) -> set(a, 1, v))
        .use(Arbitraries.of("openai", "anthropic", "scripted", "gemini"))
        .in((a, v) -> set(a, 2, v))
        .use(Arbitraries.doubles().between(0, 2).optional())
        .in((a, v) -> set(a, 3, v))
        .use(money.optional())
        .in((a, v) -> set(a, 4, v))
        .use(Arbitraries.integers().between(1, 1_000_000).optional())
        .in((a, v) -> set(a, 5, v))
        .use(Arbitraries.of("autonomous", "supervised", "shadow"))
        .in((a, v) -> set(a, 6, v))
        .use(Arbitraries.of("none", "session", "persistent"))
        .in((a, v) -> set(a, 7, v))
        .use(
            Arbitraries.of(
                    "internal://memory",
                    "internal://time",
                    "mcp://gateway/invoices",
                    "mcp://gateway/ledger/read-entries",
                    "agent://helper")
                .list()
                .uniqueElements()
                .ofMaxSize(5))
        .in((a, v) -> set(a, 8, v))
        .use(Arbitraries.integers().between(1, 1000))
        .in((a, v) -> set(a, 9, v))
        .use(Arbitraries.of(true, false))
        .in((a, v) -> set(a, 10, v))
        .build(DescriptorsPropertiesTest::fields);
  }

  private static Object[] set(Object[] a, int i, Object v) {
    a[i] = v;
    return a;
  }

  @SuppressWarnings("unchecked")
  private static AgentFields fields(Object[] a) {
    return new AgentFields(
        (String) a[0],
        (String) a[1],
        (String) a[2],
        (Optional<Double>) a[3],
        (Optional<BigDecimal>) a[4],
        (Optional<Integer>) a[5],
        (String) a[6],
        (String) a[7],
        (List<String>) a[8],
        (Integer) a[9],
        (Boolean) a[10]);
  }

  @Property(tries = 300)
  void validAgent_roundTripsThroughCanonicalJson(@ForAll("agents") AgentFields fields) {
    List<Descriptor> parsed = Descriptors.parse(fields.yaml(), "gen.yaml");
    assertThat(parsed).hasSize(1);
    AgentDescriptor d = (AgentDescriptor) parsed.get(0);
    assertThat(d.name()).isEqualTo(fields.name());
    assertThat(d.spec().instructions()).isEqualTo(fields.instructions());
    assertThat(d.spec().model().temperature()).isEqualTo(fields.temperature());
    assertThat(d.spec().maxSteps()).isEqualTo(fields.maxSteps());

    String json = Descriptors.canonicalJson(d);
    Descriptor back = Descriptors.fromCanonicalJson(d.kind(), json);
    assertThat(back).isEqualTo(d);
    assertThat(Descriptors.canonicalJson(back)).isEqualTo(json);
  }

  @Property(tries = 500)
  void arbitraryText_neverThrowsAnythingButInvalid(@ForAll String text) {
    parseExpectingOnlyInvalid(text);
  }

  @Provide
  Arbitrary<String> yamlish() {
    Arbitrary<String> token =
        Arbitraries.of(
            "apiVersion: agent.os/v1",
            "kind: Agent",
            "kind: McpServer",
            "kind: Policy",
            "metadata: {name: a, owner: b}",
            "metadata:",
            "  name: a",
            "spec:",
            "  model: {provider: scripted, name: s}",
            "  script: [{when: '(', turns: [{call: [{tool: t, args: {a: .nan}}]}]}]",
            "  budgets: {usd_per_day: 1e400}",
            "  tools: [",
            "  max_steps: 99999999999999999999",
            "  temperature: .inf",
            "---",
            "...",
            "- a",
            "{",
            "}",
            "]",
            "&x a",
            "*x",
            "!!binary aGk=",
            "!custom tag",
            "\"unterminated",
            "'",
            "\t",
            "%YAML 1.2",
            "? complex key",
            ": value",
            "key: |",
            "  text",
            "deny_when: ''",
            "  transport: stdio",
            "  env: {A: {secret: }}",
            "  tools: {x: }");
    return token.list().ofMaxSize(25).map(l -> String.join("\n", l));
  }

  @Property(tries = 1000)
  void yamlLikeGarbage_neverThrowsAnythingButInvalid(@ForAll("yamlish") String text) {
    parseExpectingOnlyInvalid(text);
  }

  private static void parseExpectingOnlyInvalid(String text) {
    try {
      for (Descriptor d : Descriptors.parse(text, "fuzz")) {
        assertThat(Descriptors.fromCanonicalJson(d.kind(), Descriptors.canonicalJson(d)))
            .isEqualTo(d);
      }
    } catch (KeelException.Invalid e) {
      assertThat(e.problems()).isNotEmpty().allSatisfy(p -> assertThat(p).startsWith("fuzz: "));
    }
  }
}
