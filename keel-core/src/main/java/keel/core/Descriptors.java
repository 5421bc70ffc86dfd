package keel.core;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import keel.core.AgentDescriptor.ApprovalRule;
import keel.core.AgentDescriptor.ApprovalSpec;
import keel.core.AgentDescriptor.Budgets;
import keel.core.AgentDescriptor.ConcurrencySpec;
import keel.core.AgentDescriptor.ModelRef;
import keel.core.AgentDescriptor.ModelSpec;
import keel.core.AgentDescriptor.Routing;
import keel.core.AgentDescriptor.ScriptCall;
import keel.core.AgentDescriptor.ScriptRule;
import keel.core.AgentDescriptor.ScriptTurn;
import keel.core.McpServerDescriptor.ToolSettings;
import keel.core.McpServerDescriptor.ValueSource;
import tools.jackson.core.StreamWriteFeature;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Reads descriptors from YAML, validating every field, and writes them in a canonical JSON form.
 *
 * <p>The canonical form has the shape of the YAML ({@code apiVersion}, {@code kind}, {@code
 * metadata}, {@code spec}, snake_case field names, enum values as written), with every default
 * applied, every object's keys sorted and decimals without insignificant zeros. Two descriptors
 * that mean the same thing therefore have the same canonical JSON, which is what makes {@code
 * apply} idempotent; revisions are stored in it, and it is itself a valid descriptor.
 *
 * <p>Thread-safe: every method is a pure function of its arguments.
 */
public final class Descriptors {

  private static final JsonMapper CANONICAL =
      JsonMapper.builder().enable(StreamWriteFeature.WRITE_BIGDECIMAL_AS_PLAIN).build();

  private Descriptors() {}

  /**
   * Parses descriptors from YAML text holding any number of documents separated by {@code ---}.
   * Empty documents are skipped; text without any document gives an empty list.
   *
   * @param yaml the text
   * @param source where the text came from, a file name or {@code -} for standard input; it begins
   *     every problem message
   * @return the descriptors in the order they appear
   * @throws KeelException.Invalid listing every problem of every document, each as {@code <source>:
   *     document <n>: <kind> "<name>": <field path>: expected <what>, got <what>}
   */
  public static List<Descriptor> parse(String yaml, String source) {
    Objects.requireNonNull(yaml, "yaml");
    Objects.requireNonNull(source, "source");
    return new DescriptorParser(source).parseYaml(yaml);
  }

  /**
   * Writes a descriptor's canonical JSON: sorted keys, defaults applied, no whitespace. Equal
   * descriptors give equal strings, and {@link #fromCanonicalJson} reads the string back to an
   * equal descriptor. That round trip is exact for every descriptor {@link #parse} returns; a record
   * built by hand round-trips only if it is in the parser's normal form (decimals without trailing
   * zeros, a budgets or approval section present only when it declares something).
   */
  public static String canonicalJson(Descriptor descriptor) {
    Objects.requireNonNull(descriptor, "descriptor");
    ObjectNode root = CANONICAL.createObjectNode();
    root.put("apiVersion", Descriptor.API_VERSION);
    root.put("kind", descriptor.kind());
    root.set("metadata", metadata(descriptor.metadata()));
    root.set(
        "spec",
        switch (descriptor) {
          case AgentDescriptor a -> agentSpec(a.spec());
          case McpServerDescriptor m -> mcpServerSpec(m.spec());
          case PolicyDescriptor p -> policySpec(p.spec());
        });
    return CANONICAL.writeValueAsString(DescriptorParser.sorted(root));
  }

  /**
   * Reads a descriptor back from its canonical JSON, validating it as {@link #parse} does.
   *
   * @param kind the kind the JSON must hold: {@code Agent}, {@code McpServer} or {@code Policy}
   * @param json text written by {@link #canonicalJson}
   * @throws KeelException.Invalid if the JSON is not a valid descriptor of that kind
   */
  public static Descriptor fromCanonicalJson(String kind, String json) {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(json, "json");
    List<Descriptor> parsed = new DescriptorParser("canonical " + kind).parseJson(json);
    if (parsed.size() != 1 || !parsed.get(0).kind().equals(kind)) {
      throw new KeelException.Invalid(
          "canonical "
              + kind
              + ": expected one "
              + kind
              + " descriptor, got "
              + (parsed.isEmpty() ? "none" : "a " + parsed.get(0).kind()));
    }
    return parsed.get(0);
  }

  /** An enum constant as descriptors write it: lowercase, dashes for underscores. */
  static String enumText(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  private static ObjectNode metadata(Metadata m) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("name", m.name());
    if (!m.owner().isEmpty()) {
      out.put("owner", m.owner());
    }
    if (!m.labels().isEmpty()) {
      ObjectNode labels = out.putObject("labels");
      m.labels().forEach(labels::put);
    }
    return out;
  }

  private static ObjectNode agentSpec(AgentDescriptor.Spec s) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("instructions", s.instructions());
    out.set("model", model(s.model()));
    ObjectNode memory = out.putObject("memory");
    memory.put("type", enumText(s.memory().type()));
    s.memory().retentionDays().ifPresent(d -> memory.put("retention_days", d));
    strings(out.putArray("tools"), s.tools());
    s.budgets().ifPresent(b -> out.set("budgets", budgets(b)));
    s.approval().ifPresent(a -> out.set("approval", approval(a)));
    out.set("concurrency", concurrency(s.concurrency()));
    out.put("mode", enumText(s.mode()));
    out.put("max_steps", s.maxSteps());
    return out;
  }

  private static ObjectNode model(ModelSpec m) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("provider", m.provider());
    out.put("name", m.name());
    m.pinnedRevision().ifPresent(v -> out.put("pinned_revision", v));
    m.baseUrl().ifPresent(v -> out.put("base_url", v));
    m.temperature().ifPresent(v -> out.put("temperature", v));
    out.put("on_drift", enumText(m.onDrift()));
    m.routing().ifPresent(r -> out.set("routing", routing(r)));
    m.responseCacheTtl().ifPresent(d -> out.put("response_cache_ttl", duration(d)));
    if (!m.fallbacks().isEmpty()) {
      ArrayNode fallbacks = out.putArray("fallbacks");
      for (AgentDescriptor.ModelRef f : m.fallbacks()) {
        fallbacks.addObject().put("provider", f.provider()).put("name", f.name());
      }
    }
    if (!m.script().isEmpty()) {
      ArrayNode script = out.putArray("script");
      for (ScriptRule rule : m.script()) {
        ObjectNode r = script.addObject();
        rule.when().ifPresent(w -> r.put("when", w));
        ArrayNode turns = r.putArray("turns");
        for (ScriptTurn turn : rule.turns()) {
          ObjectNode t = turns.addObject();
          t.put("say", turn.say());
          if (!turn.calls().isEmpty()) {
            ArrayNode calls = t.putArray("call");
            for (ScriptCall call : turn.calls()) {
              ObjectNode c = calls.addObject();
              c.put("tool", call.tool());
              c.set("args", DescriptorParser.JSON.readTree(call.arguments()));
            }
          }
        }
      }
    }
    return out;
  }

  private static ObjectNode routing(Routing r) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.set("small", modelRef(r.small()));
    strings(out.putArray("escalate_on"), r.escalateOn());
    r.contextOverTokens().ifPresent(v -> out.put("context_over_tokens", v));
    return out;
  }

  private static ObjectNode modelRef(ModelRef m) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("provider", m.provider());
    out.put("name", m.name());
    return out;
  }

  private static ObjectNode budgets(Budgets b) {
    ObjectNode out = CANONICAL.createObjectNode();
    b.callsPerHour().ifPresent(v -> out.put("calls_per_hour", v));
    b.usdPerDay().ifPresent(v -> out.put("usd_per_day", decimal(v)));
    b.tokensPerDay().ifPresent(v -> out.put("tokens_per_day", v));
    b.toolCallsPerHour().ifPresent(v -> out.put("tool_calls_per_hour", v));
    return out;
  }

  private static ObjectNode approval(ApprovalSpec a) {
    ObjectNode out = CANONICAL.createObjectNode();
    a.onActionValueUsdGt().ifPresent(v -> out.put("on_action_value_usd_gt", decimal(v)));
    if (!a.rules().isEmpty()) {
      ArrayNode rules = out.putArray("rules");
      for (ApprovalRule rule : a.rules()) {
        ObjectNode r = rules.addObject();
        r.put("when", rule.when());
        r.put("reason", rule.reason());
      }
    }
    if (!a.approvers().isEmpty()) {
      strings(out.putArray("approvers"), a.approvers());
    }
    a.expiresAfter().ifPresent(d -> out.put("expires_after", duration(d)));
    return out;
  }

  private static ObjectNode concurrency(ConcurrencySpec c) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("mode", enumText(c.mode()));
    c.partitionKey().ifPresent(v -> out.put("partition_key", v));
    c.maxActiveSessions().ifPresent(v -> out.put("max_active_sessions", v));
    out.put("on_busy", enumText(c.onBusy()));
    return out;
  }

  private static ObjectNode mcpServerSpec(McpServerDescriptor.Spec s) {
    ObjectNode out = CANONICAL.createObjectNode();
    out.put("transport", s.transport());
    if (!s.command().isEmpty()) {
      strings(out.putArray("command"), s.command());
    }
    s.url().ifPresent(v -> out.put("url", v));
    valueSources(out, "env", s.env());
    valueSources(out, "headers", s.headers());
    if (!s.tools().isEmpty()) {
      ObjectNode tools = out.putObject("tools");
      for (Map.Entry<String, ToolSettings> e : s.tools().entrySet()) {
        ObjectNode t = tools.putObject(e.getKey());
        t.put("side_effects", e.getValue().sideEffects());
        e.getValue().valueUsd().ifPresent(v -> t.put("value_usd", v));
        e.getValue().priceUsdPerCall().ifPresent(v -> t.put("price_usd_per_call", decimal(v)));
      }
    }
    s.callsPerMinute().ifPresent(v -> out.putObject("rate_limit").put("calls_per_minute", v));
    s.timeout().ifPresent(d -> out.put("timeout", duration(d)));
    return out;
  }

  private static void valueSources(ObjectNode out, String field, Map<String, ValueSource> map) {
    if (map.isEmpty()) {
      return;
    }
    ObjectNode node = out.putObject(field);
    for (Map.Entry<String, ValueSource> e : map.entrySet()) {
      Optional<String> secret = e.getValue().secret();
      if (secret.isPresent()) {
        node.putObject(e.getKey()).put("secret", secret.get());
      } else {
        node.put(e.getKey(), e.getValue().value().orElse(""));
      }
    }
  }

  private static ObjectNode policySpec(PolicyDescriptor.Spec s) {
    ObjectNode out = CANONICAL.createObjectNode();
    if (!s.tools().isEmpty() || !s.agents().isEmpty()) {
      ObjectNode appliesTo = out.putObject("applies_to");
      if (!s.tools().isEmpty()) {
        strings(appliesTo.putArray("tools"), s.tools());
      }
      if (!s.agents().isEmpty()) {
        strings(appliesTo.putArray("agents"), s.agents());
      }
    }
    if (!s.denyWhen().isEmpty()) {
      out.put("deny_when", s.denyWhen());
    }
    if (!s.requireApprovalWhen().isEmpty()) {
      out.put("require_approval_when", s.requireApprovalWhen());
    }
    out.put("reason", s.reason());
    return out;
  }

  private static void strings(ArrayNode array, List<String> values) {
    values.forEach(array::add);
  }

  private static BigDecimal decimal(BigDecimal d) {
    return DescriptorParser.normalize(d);
  }

  private static String duration(Duration d) {
    return d.toString();
  }
}
