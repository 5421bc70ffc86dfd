package keel.core;

import java.math.BigDecimal;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import keel.core.AgentDescriptor.ApprovalRule;
import keel.core.AgentDescriptor.ApprovalSpec;
import keel.core.AgentDescriptor.Budgets;
import keel.core.AgentDescriptor.ConcurrencyMode;
import keel.core.AgentDescriptor.ConcurrencySpec;
import keel.core.AgentDescriptor.MemorySpec;
import keel.core.AgentDescriptor.MemoryType;
import keel.core.AgentDescriptor.Mode;
import keel.core.AgentDescriptor.ModelRef;
import keel.core.AgentDescriptor.ModelSpec;
import keel.core.AgentDescriptor.OnBusy;
import keel.core.AgentDescriptor.OnDrift;
import keel.core.AgentDescriptor.Routing;
import keel.core.AgentDescriptor.ScriptCall;
import keel.core.AgentDescriptor.ScriptRule;
import keel.core.AgentDescriptor.ScriptTurn;
import keel.core.McpServerDescriptor.ToolSettings;
import keel.core.McpServerDescriptor.ValueSource;
import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonParser;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;
import tools.jackson.dataformat.yaml.YAMLAnchorReplayingFactory;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * Turns descriptor text into descriptor records, collecting every problem instead of stopping at
 * the first.
 *
 * <p>Design: the text is split into documents at {@code ---} lines, so that a syntax error in one
 * document does not hide the problems of the others; each document is read into a Jackson tree and
 * walked field by field. Every reader method returns a usable value even when the input is wrong
 * (an empty string, a default), after recording the problem with its path; a document with any
 * problem contributes no record, so the placeholders never escape. Not thread-safe: one instance
 * reads one input.
 */
final class DescriptorParser {

  // The anchor-replaying factory resolves aliases (the plain one reads "*a" as the string "a");
  // it caps replayed events, which bounds alias expansion ("billion laughs").
  static final YAMLMapper YAML =
      YAMLMapper.builder(new YAMLAnchorReplayingFactory())
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          .build();

  static final JsonMapper JSON =
      JsonMapper.builder()
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          .build();

  static final List<String> KINDS = List.of("Agent", "McpServer", "Policy");
  static final List<String> PROVIDERS =
      List.of("openai", "scripted", "anthropic", "gemini", "openai-responses", "replay");
  static final List<String> ESCALATIONS =
      List.of(
          "invalid_tool_arguments",
          "model_error",
          "empty_answer",
          "context_over_tokens",
          "refusal",
          "escalated_step");
  static final List<String> TRANSPORTS = List.of("stdio", "streamable-http");
  static final List<String> SIDE_EFFECTS = List.of("read-only", "idempotent", "side-effecting");
  static final int MAX_STEPS_LIMIT = 1000;
  static final int DEFAULT_MAX_STEPS = 50;

  private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  private static final Pattern TOOL_NAME = Pattern.compile("[a-zA-Z0-9_-]{1,64}");
  private static final Pattern MCP_NAME = Pattern.compile("[a-zA-Z0-9_.-]+");
  private static final Pattern MCP_URI =
      Pattern.compile("mcp://gateway/([a-zA-Z0-9_.-]+)(/[a-zA-Z0-9_.-]+(@[1-9][0-9]{0,8})?)?");
  private static final Pattern INTERNAL_URI = Pattern.compile("internal://[a-z][a-z0-9_-]*");
  private static final Pattern AGENT_URI =
      Pattern.compile("agent://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
  private static final Pattern SHORT_DURATION = Pattern.compile("([0-9]{1,9})([smhd])");
  private static final Pattern SIMPLE_KEY = Pattern.compile("[A-Za-z0-9_-]+");
  private static final Pattern DOCUMENT_START = Pattern.compile("---(?:[ \\t\\r].*)?");
  private static final Pattern DUPLICATE_KEY = Pattern.compile("Duplicate property \"(.*)\" for");
  private static final int MAX_SHOWN = 60;

  private final String source;
  private final List<String> problems = new ArrayList<>();
  private final List<Descriptor> descriptors = new ArrayList<>();
  private final Map<String, Integer> seen = new HashMap<>();
  private int documents;

  DescriptorParser(String source) {
    this.source = source;
  }

  /** Parses YAML text that holds any number of documents. */
  List<Descriptor> parseYaml(String text) {
    for (Chunk chunk : split(text)) {
      readChunk(YAML, chunk);
    }
    return result();
  }

  /** Parses one JSON document, as stored by {@link Descriptors#canonicalJson}. */
  List<Descriptor> parseJson(String text) {
    readChunk(JSON, new Chunk(text, 1));
    return result();
  }

  private List<Descriptor> result() {
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid(problems);
    }
    return List.copyOf(descriptors);
  }

  private record Chunk(String text, int firstLine) {}

  /**
   * Splits at lines that start a document. YAML forbids a document marker at the start of a line
   * inside any scalar, so this split agrees with the YAML parser's.
   */
  private static List<Chunk> split(String text) {
    List<Chunk> chunks = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    int firstLine = 1;
    int line = 1;
    for (String l : text.split("\n", -1)) {
      if (DOCUMENT_START.matcher(l).matches() && line > 1) {
        chunks.add(new Chunk(current.toString(), firstLine));
        current.setLength(0);
        firstLine = line;
      }
      current.append(l).append('\n');
      line++;
    }
    chunks.add(new Chunk(current.toString(), firstLine));
    return chunks;
  }

  private void readChunk(ObjectMapper mapper, Chunk chunk) {
    // A parser loop rather than readValues(), which would unwrap a document that is a list.
    try (JsonParser parser = mapper.createParser(chunk.text())) {
      while (true) {
        JsonNode node = mapper.readTree(parser);
        if (node == null || node.isMissingNode()) {
          break;
        }
        if (node.isNull()) {
          continue;
        }
        documents++;
        readDocument(node, documents);
      }
    } catch (JacksonException e) {
      documents++;
      problems.add(source + ": document " + documents + ": " + syntaxMessage(e, chunk.firstLine()));
    } catch (RuntimeException e) {
      // The YAML library may throw its own exceptions on hostile input; they are still bad input.
      documents++;
      problems.add(
          source + ": document " + documents + ": cannot read the text as YAML: " + e.getMessage());
    }
  }

  private static String syntaxMessage(JacksonException e, int firstLine) {
    StringBuilder out = new StringBuilder();
    TokenStreamLocation location = e.getLocation();
    if (location != null && location.getLineNr() > 0) {
      out.append("line ").append(location.getLineNr() + firstLine - 1);
      if (location.getColumnNr() > 0) {
        out.append(", column ").append(location.getColumnNr());
      }
      out.append(": ");
    }
    String original = e.getOriginalMessage() == null ? "" : e.getOriginalMessage();
    Matcher duplicate = DUPLICATE_KEY.matcher(original);
    if (duplicate.find()) {
      return out.append("duplicate key \"").append(duplicate.group(1)).append('"').toString();
    }
    // SnakeYAML's messages interleave the problem with "in reader" positions and source
    // excerpts; keep only the lines that say what is wrong.
    List<String> parts = new ArrayList<>();
    for (String l : original.split("\n")) {
      if (!l.isBlank() && !l.startsWith(" ") && !l.startsWith("\t")) {
        parts.add(l.strip());
      }
    }
    return out.append("YAML syntax error: ").append(String.join("; ", parts)).toString();
  }

  // ---------------------------------------------------------------------------------------------
  // Documents

  private void readDocument(JsonNode node, int number) {
    Doc doc = new Doc();
    if (!node.isObject()) {
      problems.add(
          source
              + ": document "
              + number
              + ": expected a mapping with apiVersion, kind, metadata and spec, got "
              + describe(node));
      return;
    }
    Fields root = doc.fields(node, "", "apiVersion", "kind", "metadata", "spec");
    JsonNode apiVersion = root.get("apiVersion");
    if (apiVersion == null) {
      doc.missing("apiVersion", "\"" + Descriptor.API_VERSION + "\"");
    } else if (!apiVersion.isString() || !apiVersion.stringValue().equals(Descriptor.API_VERSION)) {
      doc.expected("apiVersion", "\"" + Descriptor.API_VERSION + "\"", apiVersion);
    }
    String kind = null;
    JsonNode kindNode = root.get("kind");
    if (kindNode == null) {
      doc.missing("kind", "one of " + String.join(", ", KINDS));
    } else if (!kindNode.isString() || !KINDS.contains(kindNode.stringValue())) {
      doc.expected("kind", "one of " + String.join(", ", KINDS), kindNode);
    } else {
      kind = kindNode.stringValue();
    }
    Metadata metadata = readMetadata(doc, root.get("metadata"), kind);
    Descriptor descriptor = null;
    if (kind != null) {
      JsonNode spec = root.get("spec");
      if (spec == null) {
        doc.missing("spec", "a mapping");
      }
      descriptor =
          switch (kind) {
            case "Agent" -> new AgentDescriptor(metadata, readAgentSpec(doc, spec));
            case "McpServer" -> new McpServerDescriptor(metadata, readMcpServerSpec(doc, spec));
            default -> new PolicyDescriptor(metadata, readPolicySpec(doc, spec));
          };
    }
    if (doc.name != null && kind != null) {
      Integer earlier = seen.putIfAbsent(kind + "/" + doc.name, number);
      if (earlier != null) {
        doc.problem(
            "metadata.name",
            "expected each "
                + kind
                + " name once in the input, got \""
                + doc.name
                + "\" again (first in document "
                + earlier
                + ")");
      }
    }
    String prefix = source + ": document " + number;
    if (kind != null && doc.name != null) {
      prefix += ": " + kind.toLowerCase(Locale.ROOT) + " \"" + doc.name + "\"";
    } else if (kind != null) {
      prefix += " (" + kind + ")";
    }
    for (String p : doc.problems) {
      problems.add(prefix + ": " + p);
    }
    if (doc.problems.isEmpty() && descriptor != null) {
      descriptors.add(descriptor);
    }
  }

  private Metadata readMetadata(Doc doc, JsonNode node, String kind) {
    if (node == null) {
      doc.missing("metadata", "a mapping with name and owner");
    }
    Fields f = doc.fields(node, "metadata", "name", "owner", "labels");
    String name = "";
    JsonNode nameNode = f.get("name");
    if (node != null && nameNode == null) {
      doc.missing("metadata.name", "a name");
    } else if (nameNode != null) {
      if (nameNode.isString() && NAME.matcher(nameNode.stringValue()).matches()) {
        name = nameNode.stringValue();
        doc.name = name;
      } else {
        doc.expected(
            "metadata.name",
            "a name of 1 to 63 lowercase letters, digits and dashes that starts and ends with a"
                + " letter or digit",
            nameNode);
      }
    }
    boolean ownerRequired = "Agent".equals(kind) || "McpServer".equals(kind);
    String owner =
        ownerRequired && node != null
            ? doc.requiredString(f, "owner")
            : doc.optionalString(f, "owner").orElse("");
    Map<String, String> labels = new LinkedHashMap<>();
    JsonNode labelsNode = f.get("labels");
    if (labelsNode != null) {
      Fields lf = doc.fields(labelsNode, "metadata.labels");
      for (String key : lf.keys()) {
        JsonNode v = lf.get(key);
        if (v == null) {
          doc.expected(lf.at(key), "a string", labelsNode.get(key));
        } else {
          doc.scalarText(v, lf.at(key)).ifPresent(s -> labels.put(key, s));
        }
      }
    }
    return new Metadata(name, owner, labels);
  }

  // ---------------------------------------------------------------------------------------------
  // Agent

  private AgentDescriptor.Spec readAgentSpec(Doc doc, JsonNode node) {
    Fields f =
        doc.fields(
            node,
            "spec",
            "instructions",
            "model",
            "memory",
            "tools",
            "budgets",
            "approval",
            "concurrency",
            "mode",
            "max_steps");
    String instructions = node == null ? "" : doc.requiredString(f, "instructions");
    JsonNode modelNode = f.get("model");
    if (node != null && modelNode == null) {
      doc.missing("spec.model", "a mapping with provider and name");
    }
    ModelSpec model = readModel(doc, modelNode, "spec.model");
    MemorySpec memory = readMemory(doc, f.get("memory"), f.at("memory"));
    List<String> tools = readTools(doc, f.get("tools"), f.at("tools"));
    Optional<Budgets> budgets = readBudgets(doc, f.get("budgets"), f.at("budgets"));
    Optional<ApprovalSpec> approval = readApproval(doc, f.get("approval"), f.at("approval"));
    ConcurrencySpec concurrency = readConcurrency(doc, f.get("concurrency"), f.at("concurrency"));
    Mode mode = doc.enumValue(f.get("mode"), f.at("mode"), Mode.class).orElse(Mode.AUTONOMOUS);
    int maxSteps =
        doc.positiveInt(f.get("max_steps"), f.at("max_steps"), MAX_STEPS_LIMIT)
            .orElse(DEFAULT_MAX_STEPS);
    return new AgentDescriptor.Spec(
        instructions, model, memory, tools, budgets, approval, concurrency, mode, maxSteps);
  }

  private ModelSpec readModel(Doc doc, JsonNode node, String path) {
    Fields f =
        doc.fields(
            node,
            path,
            "provider",
            "name",
            "pinned_revision",
            "base_url",
            "temperature",
            "on_drift",
            "routing",
            "script",
            "response_cache_ttl",
            "fallbacks");
    String provider = "";
    String name = "";
    if (node != null) {
      provider = doc.requiredChoice(f, "provider", PROVIDERS);
      name = doc.requiredString(f, "name");
    }
    Optional<String> pinned = doc.scalarText(f.get("pinned_revision"), f.at("pinned_revision"));
    Optional<String> baseUrl = doc.url(f.get("base_url"), f.at("base_url"));
    Optional<Double> temperature = Optional.empty();
    JsonNode t = f.get("temperature");
    if (t != null) {
      if (t.isNumber()
          && Double.isFinite(t.doubleValue())
          && t.doubleValue() >= 0
          && t.doubleValue() <= 2) {
        temperature = Optional.of(t.doubleValue());
      } else {
        doc.expected(f.at("temperature"), "a number from 0 to 2", t);
      }
    }
    OnDrift onDrift =
        doc.enumValue(f.get("on_drift"), f.at("on_drift"), OnDrift.class).orElse(OnDrift.WARN);
    Optional<Routing> routing = Optional.empty();
    if (f.get("routing") != null) {
      routing = Optional.of(readRouting(doc, f.get("routing"), f.at("routing")));
    }
    List<ScriptRule> script = List.of();
    JsonNode scriptNode = f.get("script");
    if (provider.equals("scripted")) {
      if (scriptNode == null) {
        doc.missing(f.at("script"), "a non-empty list of rules when provider is scripted");
      } else {
        script = readScript(doc, scriptNode, f.at("script"));
      }
    } else if (scriptNode != null && !provider.isEmpty()) {
      doc.problem(
          f.at("script"),
          "expected no script unless provider is scripted, got a script with provider \""
              + provider
              + "\"");
    }
    Optional<Duration> responseCacheTtl = doc.duration(f.get("response_cache_ttl"), f.at("response_cache_ttl"));
    if (responseCacheTtl.isPresent() && (temperature.isEmpty() || temperature.get() != 0.0)) {
      doc.problem(
          f.at("response_cache_ttl"),
          "expected response_cache_ttl only with temperature: 0 (only deterministic calls can be answered from"
              + " the cache), got temperature " + temperature.map(String::valueOf).orElse("unset"));
    }
    List<ModelRef> fallbacks = new ArrayList<>();
    JsonNode fb = f.get("fallbacks");
    if (fb != null) {
      if (!fb.isArray()) {
        doc.expected(f.at("fallbacks"), "a list of {provider, name}", fb);
      } else {
        for (int i = 0; i < fb.size(); i++) {
          String at = f.at("fallbacks") + "[" + i + "]";
          Fields ff = doc.fields(fb.get(i), at, "provider", "name");
          if (fb.get(i) != null && fb.get(i).isObject()) {
            fallbacks.add(new ModelRef(doc.requiredChoice(ff, "provider", PROVIDERS), doc.requiredString(ff, "name")));
          }
        }
      }
    }
    return new ModelSpec(provider, name, pinned, baseUrl, temperature, onDrift, routing, script, responseCacheTtl, fallbacks);
  }

  private Routing readRouting(Doc doc, JsonNode node, String path) {
    Fields f = doc.fields(node, path, "small", "escalate_on", "context_over_tokens");
    ModelRef small = new ModelRef("", "");
    JsonNode smallNode = f.get("small");
    if (smallNode == null) {
      if (node.isObject()) {
        doc.missing(f.at("small"), "a mapping with provider and name");
      }
    } else {
      Fields sf = doc.fields(smallNode, f.at("small"), "provider", "name");
      if (smallNode.isObject()) {
        small =
            new ModelRef(
                doc.requiredChoice(sf, "provider", PROVIDERS), doc.requiredString(sf, "name"));
      }
    }
    List<String> escalateOn =
        doc.list(
            f.get("escalate_on"),
            f.at("escalate_on"),
            true,
            (n, p) -> doc.choice(n, p, ESCALATIONS).orElse(null));
    Optional<Integer> contextOverTokens =
        doc.positiveInt(
            f.get("context_over_tokens"), f.at("context_over_tokens"), Integer.MAX_VALUE);
    if (escalateOn.contains("context_over_tokens")
        && contextOverTokens.isEmpty()
        && f.get("context_over_tokens") == null) {
      doc.missing(
          f.at("context_over_tokens"),
          "a positive integer when escalate_on lists context_over_tokens");
    }
    return new Routing(small, escalateOn, contextOverTokens);
  }

  private List<ScriptRule> readScript(Doc doc, JsonNode node, String path) {
    if (!node.isArray() || node.isEmpty()) {
      doc.expected(path, "a non-empty list of rules", node);
      return List.of();
    }
    List<ScriptRule> rules = new ArrayList<>();
    for (int i = 0; i < node.size(); i++) {
      String rulePath = path + "[" + i + "]";
      Fields f = doc.fields(node.get(i), rulePath, "when", "turns");
      Optional<String> when = doc.optionalString(f, "when");
      when.ifPresent(
          regex -> {
            try {
              Pattern.compile(regex);
            } catch (PatternSyntaxException e) {
              doc.problem(
                  f.at("when"),
                  "expected a valid regular expression ("
                      + e.getDescription()
                      + (e.getIndex() >= 0 ? " near index " + e.getIndex() : "")
                      + "), got "
                      + quote(regex));
            }
          });
      List<ScriptTurn> turns = List.of();
      JsonNode turnsNode = f.get("turns");
      if (turnsNode == null) {
        if (node.get(i).isObject()) {
          doc.missing(f.at("turns"), "a non-empty list of turns");
        }
      } else if (!turnsNode.isArray() || turnsNode.isEmpty()) {
        doc.expected(f.at("turns"), "a non-empty list of turns", turnsNode);
      } else {
        turns = new ArrayList<>();
        for (int j = 0; j < turnsNode.size(); j++) {
          turns.add(readTurn(doc, turnsNode.get(j), f.at("turns") + "[" + j + "]"));
        }
      }
      rules.add(new ScriptRule(when, turns));
    }
    return rules;
  }

  private ScriptTurn readTurn(Doc doc, JsonNode node, String path) {
    Fields f = doc.fields(node, path, "say", "call");
    if (node.isObject() && !node.has("say") && !node.has("call")) {
      doc.problem(path, "expected a turn with say, call or both, got neither");
    }
    String say = "";
    JsonNode sayNode = f.get("say");
    if (sayNode != null) {
      if (sayNode.isString()) {
        say = sayNode.stringValue();
      } else {
        doc.expected(f.at("say"), "a string", sayNode);
      }
    }
    List<ScriptCall> calls = new ArrayList<>();
    JsonNode callNode = f.get("call");
    if (callNode != null) {
      if (!callNode.isArray()) {
        doc.expected(f.at("call"), "a list of tool calls", callNode);
      } else {
        for (int k = 0; k < callNode.size(); k++) {
          String callPath = f.at("call") + "[" + k + "]";
          Fields cf = doc.fields(callNode.get(k), callPath, "tool", "args");
          if (!callNode.get(k).isObject()) {
            continue;
          }
          String tool = "";
          JsonNode toolNode = cf.get("tool");
          if (toolNode == null) {
            doc.missing(cf.at("tool"), "a tool name");
          } else if (toolNode.isString() && TOOL_NAME.matcher(toolNode.stringValue()).matches()) {
            tool = toolNode.stringValue();
          } else {
            doc.expected(
                cf.at("tool"),
                "a tool name of 1 to 64 letters, digits, underscores and dashes",
                toolNode);
          }
          String args = "{}";
          JsonNode argsNode = cf.get("args");
          if (argsNode != null) {
            if (!argsNode.isObject()) {
              doc.expected(cf.at("args"), "a mapping of arguments", argsNode);
            } else if (doc.finiteNumbers(argsNode, cf.at("args"))) {
              args = JSON.writeValueAsString(sorted(argsNode));
            }
          }
          calls.add(new ScriptCall(tool, args));
        }
      }
    }
    return new ScriptTurn(say, calls);
  }

  private MemorySpec readMemory(Doc doc, JsonNode node, String path) {
    Fields f = doc.fields(node, path, "type", "retention_days");
    MemoryType type = MemoryType.NONE;
    if (node != null && node.isObject()) {
      JsonNode typeNode = f.get("type");
      if (typeNode == null) {
        doc.missing(f.at("type"), "one of none, session, persistent");
      } else {
        type = doc.enumValue(typeNode, f.at("type"), MemoryType.class).orElse(MemoryType.NONE);
      }
    }
    Optional<Integer> retention =
        doc.positiveInt(f.get("retention_days"), f.at("retention_days"), Integer.MAX_VALUE);
    if (retention.isPresent()
        && type != MemoryType.PERSISTENT
        && f.get("type") != null
        && doc.enumValue(f.get("type"), "", MemoryType.class, false).isPresent()) {
      doc.problem(
          f.at("retention_days"),
          "expected no retention_days unless type is persistent, got retention_days with type "
              + type.name().toLowerCase(Locale.ROOT));
    }
    return new MemorySpec(type, retention);
  }

  private List<String> readTools(Doc doc, JsonNode node, String path) {
    List<String> tools =
        doc.list(
            node,
            path,
            true,
            (n, p) -> {
              if (n.isString()) {
                String uri = n.stringValue();
                if (MCP_URI.matcher(uri).matches()
                    || INTERNAL_URI.matcher(uri).matches()
                    || AGENT_URI.matcher(uri).matches()) {
                  return uri;
                }
              }
              doc.expected(
                  p,
                  "a capability URI: mcp://gateway/<server>, mcp://gateway/<server>/<tool>,"
                      + " mcp://gateway/<server>/<tool>@<version>, internal://<name> or agent://<name>",
                  n);
              return null;
            });
    return tools;
  }

  private Optional<Budgets> readBudgets(Doc doc, JsonNode node, String path) {
    Fields f =
        doc.fields(
            node, path, "calls_per_hour", "usd_per_day", "tokens_per_day", "tool_calls_per_hour");
    Budgets budgets =
        new Budgets(
            doc.positiveInt(f.get("calls_per_hour"), f.at("calls_per_hour"), Integer.MAX_VALUE),
            doc.decimal(f.get("usd_per_day"), f.at("usd_per_day"), true),
            doc.positiveLong(f.get("tokens_per_day"), f.at("tokens_per_day")),
            doc.positiveInt(
                f.get("tool_calls_per_hour"), f.at("tool_calls_per_hour"), Integer.MAX_VALUE));
    boolean empty =
        budgets.callsPerHour().isEmpty()
            && budgets.usdPerDay().isEmpty()
            && budgets.tokensPerDay().isEmpty()
            && budgets.toolCallsPerHour().isEmpty();
    // No limit declared means the same as no budgets section, so both read the same.
    return empty ? Optional.empty() : Optional.of(budgets);
  }

  private Optional<ApprovalSpec> readApproval(Doc doc, JsonNode node, String path) {
    Fields f =
        doc.fields(node, path, "on_action_value_usd_gt", "rules", "approvers", "expires_after");
    Optional<BigDecimal> threshold =
        doc.decimal(f.get("on_action_value_usd_gt"), f.at("on_action_value_usd_gt"), false);
    List<ApprovalRule> rules =
        doc.list(
            f.get("rules"),
            f.at("rules"),
            false,
            (n, p) -> {
              Fields rf = doc.fields(n, p, "when", "reason");
              if (!n.isObject()) {
                return null;
              }
              return new ApprovalRule(
                  doc.requiredString(rf, "when"), doc.requiredString(rf, "reason"));
            });
    List<String> approvers =
        doc.list(f.get("approvers"), f.at("approvers"), true, doc::nonEmptyString);
    Optional<Duration> expires = doc.duration(f.get("expires_after"), f.at("expires_after"));
    if (threshold.isEmpty() && rules.isEmpty() && approvers.isEmpty() && expires.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new ApprovalSpec(threshold, rules, approvers, expires));
  }

  private ConcurrencySpec readConcurrency(Doc doc, JsonNode node, String path) {
    Fields f = doc.fields(node, path, "mode", "partition_key", "max_active_sessions", "on_busy");
    ConcurrencyMode mode =
        doc.enumValue(f.get("mode"), f.at("mode"), ConcurrencyMode.class)
            .orElse(ConcurrencyMode.PER_SESSION);
    Optional<String> partitionKey = doc.optionalString(f, "partition_key");
    boolean modeValid =
        f.get("mode") == null
            || doc.enumValue(f.get("mode"), "", ConcurrencyMode.class, false).isPresent();
    if (modeValid && mode == ConcurrencyMode.PER_PARTITION && f.get("partition_key") == null) {
      doc.missing(
          f.at("partition_key"), "the input field that names the partition, for per-partition");
    } else if (partitionKey.isPresent() && !partitionKey.get().matches("input(\\.[A-Za-z_][A-Za-z0-9_-]*)+")) {
      doc.problem(
          f.at("partition_key"),
          "expected the field of the first message (a JSON object) that names the partition, as"
              + " input.<field> or input.<field>.<field>, e.g. input.customer_id; got "
              + quote(partitionKey.get()));
    } else if (modeValid && mode == ConcurrencyMode.PER_SESSION && partitionKey.isPresent()) {
      doc.problem(
          f.at("partition_key"),
          "expected no partition_key unless mode is per-partition, got "
              + quote(partitionKey.get())
              + " with mode per-session");
    }
    Optional<Integer> maxActive =
        doc.positiveInt(
            f.get("max_active_sessions"), f.at("max_active_sessions"), Integer.MAX_VALUE);
    OnBusy onBusy =
        doc.enumValue(f.get("on_busy"), f.at("on_busy"), OnBusy.class).orElse(OnBusy.ENQUEUE);
    return new ConcurrencySpec(mode, partitionKey, maxActive, onBusy);
  }

  // ---------------------------------------------------------------------------------------------
  // McpServer

  private McpServerDescriptor.Spec readMcpServerSpec(Doc doc, JsonNode node) {
    Fields f =
        doc.fields(
            node,
            "spec",
            "transport",
            "command",
            "url",
            "env",
            "headers",
            "tools",
            "rate_limit",
            "timeout",
            "max_output_bytes");
    String transport = node == null ? "" : doc.requiredChoice(f, "transport", TRANSPORTS);
    List<String> command = List.of();
    JsonNode commandNode = f.get("command");
    if (transport.equals("stdio")) {
      if (commandNode == null) {
        doc.missing(f.at("command"), "a non-empty list of strings for transport stdio");
      } else if (commandNode.isArray() && commandNode.isEmpty()) {
        doc.expected(f.at("command"), "a non-empty list of strings", commandNode);
      } else {
        command = doc.list(commandNode, f.at("command"), false, doc::nonEmptyString);
      }
    } else if (commandNode != null && !transport.isEmpty()) {
      doc.problem(
          f.at("command"),
          "expected no command unless transport is stdio, got a command with transport "
              + transport);
    }
    Optional<String> url = Optional.empty();
    JsonNode urlNode = f.get("url");
    if (transport.equals("streamable-http")) {
      if (urlNode == null) {
        doc.missing(f.at("url"), "an http or https URL for transport streamable-http");
      } else {
        url = doc.url(urlNode, f.at("url"));
      }
    } else if (urlNode != null && !transport.isEmpty()) {
      doc.problem(
          f.at("url"),
          "expected no url unless transport is streamable-http, got a url with transport "
              + transport);
    }
    Map<String, ValueSource> env =
        readValueSources(doc, f.get("env"), f.at("env"), ENV_NAME, "an environment variable name");
    Map<String, ValueSource> headers =
        readValueSources(
            doc, f.get("headers"), f.at("headers"), HEADER_NAME, "an HTTP header name");
    Map<String, ToolSettings> tools = new LinkedHashMap<>();
    JsonNode toolsNode = f.get("tools");
    if (toolsNode != null) {
      Fields tf = doc.fields(toolsNode, f.at("tools"));
      for (String key : tf.keys()) {
        String p = tf.at(key);
        if (!MCP_NAME.matcher(key).matches()) {
          doc.problem(
              p,
              "expected a tool name of letters, digits, dots, underscores and dashes, got "
                  + quote(key));
        }
        JsonNode settings = toolsNode.get(key);
        if (settings == null || settings.isNull()) {
          doc.missing(p + ".side_effects", "one of " + String.join(", ", SIDE_EFFECTS));
          continue;
        }
        Fields sf = doc.fields(settings, p, "side_effects", "value_usd", "price_usd_per_call");
        if (!settings.isObject()) {
          continue;
        }
        tools.put(
            key,
            new ToolSettings(
                doc.requiredChoice(sf, "side_effects", SIDE_EFFECTS),
                doc.optionalString(sf, "value_usd"),
                doc.decimal(sf.get("price_usd_per_call"), sf.at("price_usd_per_call"), false)));
      }
    }
    Optional<Integer> callsPerMinute = Optional.empty();
    JsonNode rateLimit = f.get("rate_limit");
    if (rateLimit != null) {
      Fields rf = doc.fields(rateLimit, f.at("rate_limit"), "calls_per_minute");
      callsPerMinute =
          doc.positiveInt(rf.get("calls_per_minute"), rf.at("calls_per_minute"), Integer.MAX_VALUE);
    }
    Optional<Duration> timeout = doc.duration(f.get("timeout"), f.at("timeout"));
    Optional<Integer> maxOutputBytes =
        doc.positiveInt(f.get("max_output_bytes"), f.at("max_output_bytes"), Integer.MAX_VALUE);
    return new McpServerDescriptor.Spec(
        transport, command, url, env, headers, tools, callsPerMinute, timeout, maxOutputBytes);
  }

  private Map<String, ValueSource> readValueSources(
      Doc doc, JsonNode node, String path, Pattern keyPattern, String keyDescription) {
    Map<String, ValueSource> out = new LinkedHashMap<>();
    if (node == null) {
      return out;
    }
    Fields f = doc.fields(node, path);
    for (String key : f.keys()) {
      String p = f.at(key);
      if (!keyPattern.matcher(key).matches()) {
        doc.problem(p, "expected " + keyDescription + ", got " + quote(key));
      }
      JsonNode v = node.get(key);
      if (v.isObject()) {
        Fields sf = doc.fields(v, p, "secret");
        Optional<String> secret = Optional.empty();
        if (v.get("secret") == null) {
          doc.missing(sf.at("secret"), "the name of a secret");
        } else {
          secret = doc.optionalString(sf, "secret");
        }
        out.put(key, new ValueSource(Optional.empty(), secret));
      } else if (v.isString() || v.isNumber() || v.isBoolean()) {
        out.put(key, new ValueSource(Optional.of(v.asString()), Optional.empty()));
      } else {
        doc.expected(p, "a string or {secret: <name>}", v);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Policy

  private PolicyDescriptor.Spec readPolicySpec(Doc doc, JsonNode node) {
    Fields f =
        doc.fields(node, "spec", "applies_to", "deny_when", "require_approval_when", "reason");
    List<String> tools = List.of();
    List<String> agents = List.of();
    JsonNode appliesTo = f.get("applies_to");
    if (appliesTo != null) {
      Fields af = doc.fields(appliesTo, f.at("applies_to"), "tools", "agents");
      tools = doc.list(af.get("tools"), af.at("tools"), true, doc::nonEmptyString);
      agents = doc.list(af.get("agents"), af.at("agents"), true, doc::nonEmptyString);
    }
    String denyWhen = doc.optionalString(f, "deny_when").orElse("");
    String requireApprovalWhen = doc.optionalString(f, "require_approval_when").orElse("");
    if (node != null
        && node.isObject()
        && f.get("deny_when") == null
        && f.get("require_approval_when") == null) {
      doc.missing(f.at("deny_when"), "a CEL condition in deny_when, require_approval_when or both");
    }
    String reason = node == null ? "" : doc.requiredString(f, "reason");
    return new PolicyDescriptor.Spec(tools, agents, denyWhen, requireApprovalWhen, reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /** A copy of a tree with every object's keys in sorted order. */
  static JsonNode sorted(JsonNode node) {
    if (node.isObject()) {
      ObjectNode out = JSON.createObjectNode();
      node.propertyNames().stream().sorted().forEach(k -> out.set(k, sorted(node.get(k))));
      return out;
    }
    if (node.isArray()) {
      var out = JSON.createArrayNode();
      node.forEach(e -> out.add(sorted(e)));
      return out;
    }
    return node;
  }

  /** Removes a decimal's insignificant zeros so that 40, 40.0 and 40.00 are the same value. */
  static BigDecimal normalize(BigDecimal d) {
    BigDecimal stripped = d.stripTrailingZeros();
    return stripped.scale() < 0 ? stripped.setScale(0) : stripped;
  }

  static String quote(String s) {
    String shown = s.length() > MAX_SHOWN ? s.substring(0, MAX_SHOWN) + "…" : s;
    return JSON.writeValueAsString(shown);
  }

  static String describe(JsonNode n) {
    if (n == null || n.isMissingNode()) {
      return "nothing";
    }
    if (n.isNull()) {
      return "null";
    }
    if (n.isString()) {
      return quote(n.stringValue());
    }
    if (n.isObject()) {
      return n.isEmpty() ? "an empty mapping" : "a mapping";
    }
    if (n.isArray()) {
      return n.isEmpty() ? "an empty list" : "a list";
    }
    if (n.isNumber() || n.isBoolean()) {
      return n.asString();
    }
    return "a " + n.getNodeType().name().toLowerCase(Locale.ROOT) + " value";
  }

  static String childPath(String path, String key) {
    String k = SIMPLE_KEY.matcher(key).matches() ? key : "[" + JSON.writeValueAsString(key) + "]";
    if (path.isEmpty()) {
      return k;
    }
    return k.startsWith("[") ? path + k : path + "." + k;
  }

  /** A mapping being read. Keys whose value is null count as absent. */
  private record Fields(Doc doc, String path, JsonNode node) {
    JsonNode get(String key) {
      if (node == null || !node.isObject()) {
        return null;
      }
      JsonNode v = node.get(key);
      return v == null || v.isNull() ? null : v;
    }

    String at(String key) {
      return childPath(path, key);
    }

    List<String> keys() {
      return node == null || !node.isObject() ? List.of() : List.copyOf(node.propertyNames());
    }
  }

  /** The problems of one document and the readers that record them. */
  private static final class Doc {
    final List<String> problems = new ArrayList<>();
    String name;

    void problem(String path, String message) {
      problems.add(path.isEmpty() ? message : path + ": " + message);
    }

    void expected(String path, String expected, JsonNode got) {
      problem(path, "expected " + expected + ", got " + describe(got));
    }

    void missing(String path, String expected) {
      problem(path, "expected " + expected + " (required), got nothing");
    }

    /**
     * Opens a mapping. With allowed fields, any other key is reported; with none, any key is
     * allowed (a map of names). A value that is not a mapping is reported and reads as empty.
     */
    Fields fields(JsonNode node, String path, String... allowed) {
      if (node == null) {
        return new Fields(this, path, null);
      }
      if (!node.isObject()) {
        expected(path, allowed.length == 0 ? "a mapping" : "a mapping with " + join(allowed), node);
        return new Fields(this, path, null);
      }
      if (allowed.length > 0) {
        Set<String> known = Set.of(allowed);
        for (String key : node.propertyNames()) {
          if (!known.contains(key)) {
            problem(
                childPath(path, key),
                "unknown field; expected one of " + String.join(", ", allowed));
          }
        }
      }
      return new Fields(this, path, node);
    }

    private static String join(String[] names) {
      if (names.length == 1) {
        return names[0];
      }
      return String.join(", ", List.of(names).subList(0, names.length - 1))
          + " or "
          + names[names.length - 1];
    }

    String requiredString(Fields f, String key) {
      JsonNode n = f.get(key);
      if (n == null) {
        if (f.node() != null) {
          missing(f.at(key), "a non-empty string");
        }
        return "";
      }
      String s = nonEmptyString(n, f.at(key));
      return s == null ? "" : s;
    }

    Optional<String> optionalString(Fields f, String key) {
      JsonNode n = f.get(key);
      return n == null ? Optional.empty() : Optional.ofNullable(nonEmptyString(n, f.at(key)));
    }

    String nonEmptyString(JsonNode n, String path) {
      if (n.isString() && !n.stringValue().isBlank()) {
        return n.stringValue();
      }
      expected(path, "a non-empty string", n);
      return null;
    }

    /** A scalar's text: dates and numbers that YAML would read as such keep their written form. */
    Optional<String> scalarText(JsonNode n, String path) {
      if (n == null) {
        return Optional.empty();
      }
      if ((n.isString() || n.isNumber() || n.isBoolean()) && !n.asString().isBlank()) {
        return Optional.of(n.asString());
      }
      expected(path, "a non-empty string", n);
      return Optional.empty();
    }

    String requiredChoice(Fields f, String key, List<String> allowed) {
      JsonNode n = f.get(key);
      if (n == null) {
        if (f.node() != null) {
          missing(f.at(key), "one of " + String.join(", ", allowed));
        }
        return "";
      }
      return choice(n, f.at(key), allowed).orElse("");
    }

    Optional<String> choice(JsonNode n, String path, List<String> allowed) {
      if (n.isString() && allowed.contains(n.stringValue())) {
        return Optional.of(n.stringValue());
      }
      expected(path, "one of " + String.join(", ", allowed), n);
      return Optional.empty();
    }

    <E extends Enum<E>> Optional<E> enumValue(JsonNode n, String path, Class<E> type) {
      return enumValue(n, path, type, true);
    }

    /** Reads an enum written in lowercase with dashes, e.g. {@code per-session}. */
    <E extends Enum<E>> Optional<E> enumValue(
        JsonNode n, String path, Class<E> type, boolean report) {
      if (n == null) {
        return Optional.empty();
      }
      List<String> allowed = new ArrayList<>();
      for (E e : type.getEnumConstants()) {
        String written = Descriptors.enumText(e);
        allowed.add(written);
        if (n.isString() && n.stringValue().equals(written)) {
          return Optional.of(e);
        }
      }
      if (report) {
        expected(path, "one of " + String.join(", ", allowed), n);
      }
      return Optional.empty();
    }

    Optional<Integer> positiveInt(JsonNode n, String path, int max) {
      if (n == null) {
        return Optional.empty();
      }
      if (n.isIntegralNumber() && n.canConvertToInt() && n.intValue() > 0 && n.intValue() <= max) {
        return Optional.of(n.intValue());
      }
      expected(
          path,
          max == Integer.MAX_VALUE
              ? "a positive integer"
              : "a positive integer no greater than " + max,
          n);
      return Optional.empty();
    }

    Optional<Long> positiveLong(JsonNode n, String path) {
      if (n == null) {
        return Optional.empty();
      }
      if (n.isIntegralNumber() && n.canConvertToLong() && n.longValue() > 0) {
        return Optional.of(n.longValue());
      }
      expected(path, "a positive integer", n);
      return Optional.empty();
    }

    Optional<BigDecimal> decimal(JsonNode n, String path, boolean positive) {
      if (n == null) {
        return Optional.empty();
      }
      if (n.isNumber() && !((n.isDouble() || n.isFloat()) && !Double.isFinite(n.doubleValue()))) {
        BigDecimal d = n.decimalValue();
        if (positive ? d.signum() > 0 : d.signum() >= 0) {
          return Optional.of(normalize(d));
        }
      }
      expected(path, positive ? "a positive number" : "a number zero or greater", n);
      return Optional.empty();
    }

    Optional<Duration> duration(JsonNode n, String path) {
      if (n == null) {
        return Optional.empty();
      }
      if (n.isString()) {
        String s = n.stringValue();
        Matcher m = SHORT_DURATION.matcher(s);
        Duration d = null;
        if (m.matches()) {
          long amount = Long.parseLong(m.group(1));
          d =
              switch (m.group(2)) {
                case "s" -> Duration.ofSeconds(amount);
                case "m" -> Duration.ofMinutes(amount);
                case "h" -> Duration.ofHours(amount);
                default -> Duration.ofDays(amount);
              };
        } else if (s.startsWith("P") || s.startsWith("p")) {
          try {
            d = Duration.parse(s);
          } catch (DateTimeParseException e) {
            d = null;
          }
        }
        if (d != null && d.isPositive()) {
          return Optional.of(d);
        }
      }
      expected(path, "a positive duration like 30s, 15m, 24h, 7d or PT24H", n);
      return Optional.empty();
    }

    Optional<String> url(JsonNode n, String path) {
      if (n == null) {
        return Optional.empty();
      }
      if (n.isString()) {
        try {
          URI uri = new URI(n.stringValue());
          String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
          if ((scheme.equals("http") || scheme.equals("https"))
              && uri.getHost() != null
              && !uri.getHost().isEmpty()) {
            return Optional.of(n.stringValue());
          }
        } catch (URISyntaxException e) {
          // reported below
        }
      }
      expected(path, "an http or https URL", n);
      return Optional.empty();
    }

    /**
     * Reads a list whose elements the reader converts, skipping elements it rejects (the reader
     * reports them). With {@code unique}, a repeated element is a problem too.
     */
    <T> List<T> list(
        JsonNode n, String path, boolean unique, BiFunction<JsonNode, String, T> reader) {
      if (n == null) {
        return List.of();
      }
      if (!n.isArray()) {
        expected(path, "a list", n);
        return List.of();
      }
      List<T> out = new ArrayList<>();
      Map<T, Integer> firstIndex = new HashMap<>();
      for (int i = 0; i < n.size(); i++) {
        String p = path + "[" + i + "]";
        JsonNode e = n.get(i);
        T value = e.isNull() ? null : reader.apply(e, p);
        if (e.isNull()) {
          expected(p, "a value", e);
        }
        if (value == null) {
          continue;
        }
        Integer first = firstIndex.putIfAbsent(value, i);
        if (unique && first != null) {
          problem(
              p,
              "expected each entry once, got "
                  + describe(e)
                  + " again (first at "
                  + path
                  + "["
                  + first
                  + "])");
          continue;
        }
        out.add(value);
      }
      return out;
    }

    /** Checks that a tree holds no NaN or infinite numbers, which JSON cannot represent. */
    boolean finiteNumbers(JsonNode n, String path) {
      if ((n.isDouble() || n.isFloat()) && !Double.isFinite(n.doubleValue())) {
        expected(path, "a finite number", n);
        return false;
      }
      boolean ok = true;
      if (n.isObject()) {
        for (String key : n.propertyNames()) {
          ok &= finiteNumbers(n.get(key), childPath(path, key));
        }
      } else if (n.isArray()) {
        for (int i = 0; i < n.size(); i++) {
          ok &= finiteNumbers(n.get(i), path + "[" + i + "]");
        }
      }
      return ok;
    }
  }
}
