package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import keel.core.KeelException;
import keel.core.Usage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PriceTableTest {

  private static BigDecimal d(String s) {
    return new BigDecimal(s);
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
    "openai, gpt-4o", "openai, gpt-4o-mini", "openai, gpt-4.1", "openai, gpt-4.1-mini",
    "openai, gpt-5", "openai, gpt-5-mini", "openai, o4-mini",
    "anthropic, claude-opus-4", "anthropic, claude-sonnet-4", "anthropic, claude-haiku-4-5",
    "anthropic, claude-3-5-haiku",
    "gemini, gemini-2.5-pro", "gemini, gemini-2.5-flash", "gemini, gemini-2.0-flash"
  })
  void builtIn_hasCommonModels(String provider, String model) {
    assertThat(PriceTable.builtIn().known(provider, model)).isTrue();
    PriceTable.Price p = PriceTable.builtIn().price(provider, model).orElseThrow();
    assertThat(p.inputPerMillion()).isPositive();
    assertThat(p.outputPerMillion()).isGreaterThan(p.inputPerMillion());
  }

  @Test
  void builtIn_followsEachProvidersCacheRules() {
    PriceTable t = PriceTable.builtIn();
    PriceTable.Price sonnet = t.price("anthropic", "claude-sonnet-4").orElseThrow();
    assertThat(sonnet.cacheWritePerMillion()).isEqualByComparingTo(sonnet.inputPerMillion().multiply(d("1.25")));
    assertThat(sonnet.cacheReadPerMillion()).isEqualByComparingTo(sonnet.inputPerMillion().multiply(d("0.1")));
    PriceTable.Price gpt4o = t.price("openai", "gpt-4o").orElseThrow();
    assertThat(gpt4o.cacheReadPerMillion()).isEqualByComparingTo(gpt4o.inputPerMillion().multiply(d("0.5")));
    PriceTable.Price flash = t.price("gemini", "gemini-2.5-flash").orElseThrow();
    assertThat(flash.cacheReadPerMillion()).isEqualByComparingTo(flash.inputPerMillion().multiply(d("0.25")));
  }

  @Test
  void cost_isExactDecimalArithmetic_includingCacheTokens() {
    // claude-sonnet-4: 3.00 in, 15.00 out, 3.75 cache write, 0.30 cache read
    BigDecimal cost =
        PriceTable.builtIn().cost("anthropic", "claude-sonnet-4", new Usage(1234, 567, 2000, 10_000));
    // (1234*3 + 567*15 + 2000*3.75 + 10000*0.30) / 1e6 = (3702 + 8505 + 7500 + 3000) / 1e6
    assertThat(cost).isEqualByComparingTo(d("0.022707"));
    assertThat(cost.scale()).isEqualTo(PriceTable.COST_SCALE);
  }

  @Test
  void cost_ofTinyUsage_keepsTenDecimalPlaces_roundingHalfEven() {
    PriceTable t = PriceTable.parse("prices: {p: {m: {input: 0.00015, output: 0.000025}}}", "t.yaml");
    // 1 * 0.00015 / 1e6 = 1.5e-10 -> 2e-10 (half-even rounds 1.5 up to 2)
    assertThat(t.cost("p", "m", new Usage(1, 0, 0, 0))).isEqualTo(d("0.0000000002"));
    // 1 * 0.000025 / 1e6 = 2.5e-11 -> 0 at scale 10
    assertThat(t.cost("p", "m", new Usage(0, 1, 0, 0))).isEqualTo(d("0.0000000000"));
    // 0.1 + 0.2 style sums stay exact: 3 * 0.1 + 0 = 0.3 per million tokens
    PriceTable u = PriceTable.parse("prices: {p: {m: {input: 0.1, output: 0.2}}}", "u.yaml");
    assertThat(u.cost("p", "m", new Usage(1_000_000, 1_000_000, 0, 0))).isEqualByComparingTo(d("0.3"));
  }

  @Test
  void price_ofDatedVersion_findsItsFamily_longestNameWins() {
    PriceTable t = PriceTable.builtIn();
    assertThat(t.price("openai", "gpt-4o-2024-08-06")).isEqualTo(t.price("openai", "gpt-4o"));
    assertThat(t.price("openai", "gpt-4o-mini-2024-07-18")).isEqualTo(t.price("openai", "gpt-4o-mini"));
    assertThat(t.price("anthropic", "claude-sonnet-4-20250514")).isEqualTo(t.price("anthropic", "claude-sonnet-4"));
    assertThat(t.price("anthropic", "claude-3-5-haiku-20241022")).isEqualTo(t.price("anthropic", "claude-3-5-haiku"));
  }

  @Test
  void price_withoutDashAfterTheFamilyName_isUnknown() {
    PriceTable t = PriceTable.builtIn();
    assertThat(t.known("openai", "gpt-4ox")).isFalse();
    assertThat(t.known("openai", "gpt-4")).isFalse();
    assertThat(t.known("nobody", "gpt-4o")).isFalse();
  }

  @Test
  void openAiResponsesProvider_usesOpenAiPrices() {
    assertThat(PriceTable.builtIn().price("openai-responses", "gpt-5-2025-08-07"))
        .isEqualTo(PriceTable.builtIn().price("openai", "gpt-5"));
  }

  @Test
  void unknownModel_costsZero_andIsNotKnown() {
    PriceTable t = PriceTable.builtIn();
    assertThat(t.known("openai", "some-new-model")).isFalse();
    assertThat(t.cost("openai", "some-new-model", new Usage(1000, 1000, 0, 0))).isZero();
  }

  @Test
  void scriptedAndReplay_costZero_andAreKnown() {
    for (String provider : new String[] {"scripted", "replay"}) {
      assertThat(PriceTable.empty().known(provider, "anything")).isTrue();
      assertThat(PriceTable.empty().price(provider, "anything")).contains(PriceTable.Price.ZERO);
      assertThat(PriceTable.builtIn().cost(provider, "x", new Usage(10, 10, 10, 10))).isZero();
    }
  }

  @Test
  void overriddenBy_letsOtherEntriesWin_andKeepsTheRest(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("contract.yaml");
    Files.writeString(
        file,
        """
        prices:
          openai:
            gpt-4o: {input: 2.00, output: 8.00}
          mycloud:
            llama-3-70b: {input: 0.5, output: 0.5, cache_write: 0, cache_read: 0}
        """);
    PriceTable t = PriceTable.builtIn().overriddenBy(PriceTable.load(file));
    PriceTable.Price gpt4o = t.price("openai", "gpt-4o").orElseThrow();
    assertThat(gpt4o.inputPerMillion()).isEqualByComparingTo("2.00");
    // cache prices absent from the override default to its input price, never below it
    assertThat(gpt4o.cacheReadPerMillion()).isEqualByComparingTo("2.00");
    assertThat(t.price("openai", "gpt-4o-mini")).isEqualTo(PriceTable.builtIn().price("openai", "gpt-4o-mini"));
    assertThat(t.known("mycloud", "llama-3-70b")).isTrue();
    assertThat(t.known("anthropic", "claude-sonnet-4")).isTrue();
  }

  @Test
  void load_withWordForAPrice_namesFilePathAndValue(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("prices.yaml");
    Files.writeString(file, "prices:\n  openai:\n    gpt-4o: {input: cheap, output: 10}\n");
    assertThatThrownBy(() -> PriceTable.load(file))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessage(file + ": prices.openai.gpt-4o.input: expected a non-negative number, got \"cheap\"");
  }

  @Test
  void parse_listsEveryProblem_withItsPath() {
    String yaml =
        """
        prices:
          openai:
            gpt-4o: {input: -1, output: 10, cahce_read: 1}
            gpt-5: {output: 10}
            o4-mini: 3
          anthropic: [claude]
        extra: 1
        """;
    assertThatThrownBy(() -> PriceTable.parse(yaml, "prices.yaml"))
        .isInstanceOfSatisfying(
            KeelException.Invalid.class,
            e ->
                assertThat(e.problems())
                    .containsExactlyInAnyOrder(
                        "prices.yaml: extra: unknown field; expected \"prices\"",
                        "prices.yaml: prices.openai.gpt-4o.cahce_read: unknown field; expected input, output, cache_write or cache_read",
                        "prices.yaml: prices.openai.gpt-4o.input: expected a non-negative number, got -1",
                        "prices.yaml: prices.openai.gpt-5.input: missing; expected a non-negative number of US dollars per million tokens",
                        "prices.yaml: prices.openai.o4-mini: expected a mapping with input, output, cache_write and cache_read, got 3",
                        "prices.yaml: prices.anthropic: expected a mapping of model to prices, got a list"));
  }

  @Test
  void parse_ofBrokenYaml_orMissingFile_isInvalid(@TempDir Path dir) {
    assertThatThrownBy(() -> PriceTable.parse("prices: {openai: [", "p.yaml"))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageStartingWith("p.yaml: cannot read the text as YAML");
    assertThatThrownBy(() -> PriceTable.parse("", "p.yaml"))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("p.yaml: the file is empty");
    assertThatThrownBy(() -> PriceTable.load(dir.resolve("nope.yaml")))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("nope.yaml: the price file does not exist");
  }

  @Test
  void parse_ofDuplicateModel_isInvalid() {
    assertThatThrownBy(
            () -> PriceTable.parse("prices:\n  openai:\n    gpt-4o: {input: 1, output: 2}\n    gpt-4o: {input: 1, output: 2}\n", "p.yaml"))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("gpt-4o");
  }
}
