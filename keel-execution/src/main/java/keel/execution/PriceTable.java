package keel.execution;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import keel.core.KeelException;
import keel.core.Usage;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * Model prices, and the cost of a call's {@link Usage} at those prices, computed with exact
 * decimal arithmetic.
 *
 * <p>The server starts from {@link #builtIn()} (list prices shipped with Keel) and lays the
 * operator's own prices over it with {@link #overriddenBy(PriceTable)}. A model name also prices
 * its dated versions: {@code gpt-4o-2024-08-06} finds {@code gpt-4o}, the longest configured name
 * that the requested one starts with, followed by {@code -}. The {@code scripted} and {@code
 * replay} providers always cost zero.
 *
 * <p>Immutable and thread-safe.
 */
public final class PriceTable {

  /**
   * Prices of one model in US dollars per million tokens.
   *
   * @param inputPerMillion prompt tokens not read from a cache
   * @param outputPerMillion completion tokens
   * @param cacheWritePerMillion prompt tokens written to the provider's cache
   * @param cacheReadPerMillion prompt tokens read from the provider's cache
   */
  public record Price(
      BigDecimal inputPerMillion,
      BigDecimal outputPerMillion,
      BigDecimal cacheWritePerMillion,
      BigDecimal cacheReadPerMillion) {

    /** A price of zero for every kind of token. */
    public static final Price ZERO = new Price(BigDecimal.ZERO, BigDecimal.ZERO, BigDecimal.ZERO, BigDecimal.ZERO);

    public Price {
      requireNonNegative(inputPerMillion, "inputPerMillion");
      requireNonNegative(outputPerMillion, "outputPerMillion");
      requireNonNegative(cacheWritePerMillion, "cacheWritePerMillion");
      requireNonNegative(cacheReadPerMillion, "cacheReadPerMillion");
    }

    private static void requireNonNegative(BigDecimal value, String name) {
      Objects.requireNonNull(value, name);
      if (value.signum() < 0) {
        throw new IllegalArgumentException(name + " cannot be negative, got " + value.toPlainString());
      }
    }
  }

  /** The scale of {@link #cost} results: ten decimal places of a dollar. */
  public static final int COST_SCALE = 10;

  private static final String RESOURCE = "prices.yaml";
  private static final Set<String> FREE_PROVIDERS = Set.of("scripted", "replay");
  /** Providers that bill like another one and share its entries when they have none of their own. */
  private static final Map<String, String> ALIASES = Map.of("openai-responses", "openai");

  private static final Set<String> FIELDS = Set.of("input", "output", "cache_write", "cache_read");
  private static final BigDecimal MILLION = BigDecimal.valueOf(1_000_000);

  private static final YAMLMapper YAML =
      YAMLMapper.builder()
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .build();

  private static volatile PriceTable builtIn;

  /** provider → model → price; never mutated after construction. */
  private final Map<String, Map<String, Price>> prices;

  private PriceTable(Map<String, Map<String, Price>> prices) {
    Map<String, Map<String, Price>> copy = new HashMap<>();
    prices.forEach((provider, models) -> copy.put(provider, Map.copyOf(models)));
    this.prices = Map.copyOf(copy);
  }

  /** A table with no prices: every model is unknown (except the free providers). */
  public static PriceTable empty() {
    return new PriceTable(Map.of());
  }

  /**
   * The list prices shipped with Keel ({@code keel/execution/prices.yaml}): the common models of
   * OpenAI, Anthropic and Gemini. They must be overridden with contract prices where those differ.
   */
  public static PriceTable builtIn() {
    PriceTable table = builtIn;
    if (table == null) {
      try (InputStream in = PriceTable.class.getResourceAsStream(RESOURCE)) {
        if (in == null) {
          throw new IllegalStateException("the built-in price table " + RESOURCE + " is missing from the class path");
        }
        table = parse(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8), RESOURCE);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read the built-in price table " + RESOURCE, e);
      }
      builtIn = table;
    }
    return table;
  }

  /**
   * Reads a price file in the built-in file's format: {@code prices: {<provider>: {<model>:
   * {input: 2.50, output: 10.00, cache_write: 2.50, cache_read: 1.25}}}}. {@code input} and
   * {@code output} are required; {@code cache_write} and {@code cache_read} default to the input
   * price, so that a missing cache price never makes a call look cheaper than it was.
   *
   * @throws KeelException.Invalid listing every problem, each with the file, the path and the value;
   *     or saying that the file does not exist or cannot be read
   */
  public static PriceTable load(Path yamlFile) {
    Objects.requireNonNull(yamlFile, "yamlFile");
    String text;
    try {
      text = Files.readString(yamlFile);
    } catch (java.nio.file.NoSuchFileException e) {
      throw new KeelException.Invalid(yamlFile + ": the price file does not exist");
    } catch (IOException e) {
      throw new KeelException.Invalid(yamlFile + ": cannot read the price file: " + e.getMessage());
    }
    return parse(text, yamlFile.toString());
  }

  /**
   * Parses price YAML; {@code source} names the text in error messages.
   *
   * @throws KeelException.Invalid listing every problem
   */
  static PriceTable parse(String yaml, String source) {
    JsonNode root;
    try {
      root = YAML.readTree(yaml);
    } catch (JacksonException e) {
      throw new KeelException.Invalid(source + ": cannot read the text as YAML: " + e.getOriginalMessage());
    }
    List<String> problems = new ArrayList<>();
    Map<String, Map<String, Price>> prices = new LinkedHashMap<>();
    if (root == null || root.isMissingNode() || root.isNull()) {
      throw new KeelException.Invalid(source + ": the file is empty; expected a \"prices\" mapping");
    }
    if (!root.isObject()) {
      throw new KeelException.Invalid(source + ": expected a mapping with a \"prices\" key, got " + show(root));
    }
    for (String key : root.propertyNames()) {
      if (!key.equals("prices")) {
        problems.add(source + ": " + key + ": unknown field; expected \"prices\"");
      }
    }
    JsonNode providers = root.get("prices");
    if (providers == null) {
      problems.add(source + ": prices: missing; expected a mapping of provider to models");
    } else if (!providers.isObject()) {
      problems.add(source + ": prices: expected a mapping of provider to models, got " + show(providers));
    } else {
      for (Map.Entry<String, JsonNode> p : providers.properties()) {
        String providerPath = "prices." + p.getKey();
        if (!p.getValue().isObject()) {
          problems.add(source + ": " + providerPath + ": expected a mapping of model to prices, got " + show(p.getValue()));
          continue;
        }
        Map<String, Price> models = prices.computeIfAbsent(p.getKey(), k -> new LinkedHashMap<>());
        for (Map.Entry<String, JsonNode> m : p.getValue().properties()) {
          Price price = price(m.getValue(), source, providerPath + "." + m.getKey(), problems);
          if (price != null) {
            models.put(m.getKey(), price);
          }
        }
      }
    }
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid(problems);
    }
    return new PriceTable(prices);
  }

  private static Price price(JsonNode node, String source, String path, List<String> problems) {
    if (!node.isObject()) {
      problems.add(source + ": " + path + ": expected a mapping with input, output, cache_write and cache_read, got " + show(node));
      return null;
    }
    int before = problems.size();
    for (String key : node.propertyNames()) {
      if (!FIELDS.contains(key)) {
        problems.add(source + ": " + path + "." + key + ": unknown field; expected input, output, cache_write or cache_read");
      }
    }
    BigDecimal input = number(node, "input", true, source, path, problems);
    BigDecimal output = number(node, "output", true, source, path, problems);
    BigDecimal cacheWrite = number(node, "cache_write", false, source, path, problems);
    BigDecimal cacheRead = number(node, "cache_read", false, source, path, problems);
    if (problems.size() > before) {
      return null;
    }
    return new Price(
        input, output, cacheWrite == null ? input : cacheWrite, cacheRead == null ? input : cacheRead);
  }

  private static BigDecimal number(
      JsonNode parent, String field, boolean required, String source, String path, List<String> problems) {
    JsonNode v = parent.get(field);
    if (v == null) {
      if (required) {
        problems.add(source + ": " + path + "." + field + ": missing; expected a non-negative number of US dollars per million tokens");
      }
      return null;
    }
    if (!v.isNumber() || v.decimalValue().signum() < 0) {
      problems.add(source + ": " + path + "." + field + ": expected a non-negative number, got " + show(v));
      return null;
    }
    return v.decimalValue();
  }

  private static String show(JsonNode node) {
    if (node.isString()) {
      return "\"" + node.asString() + "\"";
    }
    if (node.isNull()) {
      return "nothing";
    }
    if (node.isObject()) {
      return "a mapping";
    }
    if (node.isArray()) {
      return "a list";
    }
    return node.toString();
  }

  /** A table with this table's entries and {@code other}'s, where {@code other}'s win. */
  public PriceTable overriddenBy(PriceTable other) {
    Objects.requireNonNull(other, "other");
    Map<String, Map<String, Price>> merged = new HashMap<>();
    prices.forEach((provider, models) -> merged.put(provider, new HashMap<>(models)));
    other.prices.forEach(
        (provider, models) -> merged.computeIfAbsent(provider, k -> new HashMap<>()).putAll(models));
    return new PriceTable(merged);
  }

  /**
   * The price of a model: its exact entry, else the entry of the longest configured name that
   * {@code model} starts with followed by {@code -} (a dated or suffixed version of that model).
   * The {@code scripted} and {@code replay} providers are always priced at zero.
   */
  public Optional<Price> price(String provider, String model) {
    Objects.requireNonNull(provider, "provider");
    Objects.requireNonNull(model, "model");
    if (FREE_PROVIDERS.contains(provider)) {
      return Optional.of(Price.ZERO);
    }
    Map<String, Price> models = prices.get(provider);
    if (models == null && ALIASES.containsKey(provider)) {
      models = prices.get(ALIASES.get(provider));
    }
    if (models == null) {
      return Optional.empty();
    }
    Price exact = models.get(model);
    if (exact != null) {
      return Optional.of(exact);
    }
    String best = null;
    for (String name : models.keySet()) {
      if (model.length() > name.length()
          && model.startsWith(name)
          && model.charAt(name.length()) == '-'
          && (best == null || name.length() > best.length())) {
        best = name;
      }
    }
    return best == null ? Optional.empty() : Optional.of(models.get(best));
  }

  /** Whether {@link #price} finds a price for this model, so that {@link #cost} means something. */
  public boolean known(String provider, String model) {
    return price(provider, model).isPresent();
  }

  /**
   * What a call cost in US dollars: {@code (input × inputPrice + output × outputPrice + cacheWrite ×
   * cacheWritePrice + cacheRead × cacheReadPrice) / 1 000 000}, at scale {@value #COST_SCALE} with
   * half-even rounding. An unknown model costs zero; ask {@link #known} to tell it apart from a
   * free one.
   */
  public BigDecimal cost(String provider, String model, Usage usage) {
    Objects.requireNonNull(usage, "usage");
    Price p = price(provider, model).orElse(Price.ZERO);
    BigDecimal total =
        p.inputPerMillion()
            .multiply(BigDecimal.valueOf(usage.inputTokens()))
            .add(p.outputPerMillion().multiply(BigDecimal.valueOf(usage.outputTokens())))
            .add(p.cacheWritePerMillion().multiply(BigDecimal.valueOf(usage.cacheWriteTokens())))
            .add(p.cacheReadPerMillion().multiply(BigDecimal.valueOf(usage.cacheReadTokens())));
    return total.divide(MILLION, COST_SCALE, RoundingMode.HALF_EVEN);
  }

  /** The configured providers and their model names, for listings; free providers are not listed. */
  public Map<String, Set<String>> models() {
    Map<String, Set<String>> out = new java.util.TreeMap<>();
    prices.forEach((provider, models) -> out.put(provider, java.util.Collections.unmodifiableSet(new java.util.TreeSet<>(models.keySet()))));
    return java.util.Collections.unmodifiableMap(out);
  }

  @Override
  public String toString() {
    return "PriceTable" + models();
  }
}
