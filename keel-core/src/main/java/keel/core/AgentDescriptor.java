package keel.core;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A {@code kind: Agent} descriptor, with every field of DESIGN.md's table. Absent optional sections
 * are {@link Optional#empty()}; absent scalars take the documented defaults.
 */
public record AgentDescriptor(Metadata metadata, Spec spec) implements Descriptor {

  public AgentDescriptor {
    Objects.requireNonNull(metadata, "metadata");
    Objects.requireNonNull(spec, "spec");
  }

  @Override
  public String kind() {
    return "Agent";
  }

  /**
   * @param maxSteps model calls allowed for one input before the session fails (default 50)
   */
  public record Spec(
      String instructions,
      ModelSpec model,
      MemorySpec memory,
      List<String> tools,
      Optional<Budgets> budgets,
      Optional<ApprovalSpec> approval,
      ConcurrencySpec concurrency,
      Mode mode,
      int maxSteps) {
    public Spec {
      Objects.requireNonNull(instructions, "instructions");
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(memory, "memory");
      tools = List.copyOf(tools);
      Objects.requireNonNull(budgets, "budgets");
      Objects.requireNonNull(approval, "approval");
      Objects.requireNonNull(concurrency, "concurrency");
      Objects.requireNonNull(mode, "mode");
    }
  }

  /**
   * The agent's model.
   *
   * @param provider {@code openai}, {@code scripted}, {@code anthropic}, …
   * @param name the model name
   * @param pinnedRevision the exact model version, when pinned
   * @param baseUrl an OpenAI-compatible server's base URL, when not the provider's default
   * @param temperature sampling temperature, when set
   * @param onDrift what a response from another version than the pinned one does
   * @param routing small-model-first routing, when declared
   * @param script the turns of a {@code scripted} model (empty for other providers)
   * @param responseCacheTtl declares the agent's calls insensitive: an identical request at
   *     temperature 0 with only read-only tools is answered from the response cache for this long
   * @param fallbacks models tried in order when the main model fails and retrying it cannot help
   *     now (it keeps failing, or its circuit is open)
   */
  public record ModelSpec(
      String provider,
      String name,
      Optional<String> pinnedRevision,
      Optional<String> baseUrl,
      Optional<Double> temperature,
      OnDrift onDrift,
      Optional<Routing> routing,
      List<ScriptRule> script,
      Optional<Duration> responseCacheTtl,
      List<ModelRef> fallbacks) {

    /** Model settings without a response cache. */
    public ModelSpec(
        String provider,
        String name,
        Optional<String> pinnedRevision,
        Optional<String> baseUrl,
        Optional<Double> temperature,
        OnDrift onDrift,
        Optional<Routing> routing,
        List<ScriptRule> script) {
      this(provider, name, pinnedRevision, baseUrl, temperature, onDrift, routing, script, Optional.empty(), List.of());
    }

    public ModelSpec {
      Objects.requireNonNull(provider, "provider");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(pinnedRevision, "pinnedRevision");
      Objects.requireNonNull(baseUrl, "baseUrl");
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(onDrift, "onDrift");
      Objects.requireNonNull(routing, "routing");
      script = List.copyOf(script);
      Objects.requireNonNull(responseCacheTtl, "responseCacheTtl");
      fallbacks = List.copyOf(fallbacks);
    }
  }

  public enum OnDrift {
    WARN,
    FAIL,
    SUSPEND
  }

  /**
   * Small-model-first routing.
   *
   * @param small the model tried first
   * @param escalateOn the conditions that send a call to the main model, as written
   *     ({@code invalid_tool_arguments}, {@code model_error}, {@code empty_answer}, {@code
   *     context_over_tokens}, {@code refusal}, {@code escalated_step})
   * @param contextOverTokens the threshold for {@code context_over_tokens}
   */
  public record Routing(ModelRef small, List<String> escalateOn, Optional<Integer> contextOverTokens) {
    public Routing {
      Objects.requireNonNull(small, "small");
      escalateOn = List.copyOf(escalateOn);
      Objects.requireNonNull(contextOverTokens, "contextOverTokens");
    }
  }

  /** A model named by provider and name. */
  public record ModelRef(String provider, String name) {
    public ModelRef {
      Objects.requireNonNull(provider, "provider");
      Objects.requireNonNull(name, "name");
    }
  }

  /**
   * One rule of a scripted model: when the latest user message matches {@code when} (a regular
   * expression, found anywhere in the message; absent matches everything), the model answers with
   * {@code turns}, one per model call since that message. The first matching rule wins.
   */
  public record ScriptRule(Optional<String> when, List<ScriptTurn> turns) {
    public ScriptRule {
      Objects.requireNonNull(when, "when");
      turns = List.copyOf(turns);
    }
  }

  /**
   * One answer of a scripted model: text, tool calls, or both. Text and string arguments may use
   * {@code {{input}}} (the latest user message) and {@code {{result}}} (the latest tool result).
   */
  public record ScriptTurn(String say, List<ScriptCall> calls) {
    public ScriptTurn {
      Objects.requireNonNull(say, "say");
      calls = List.copyOf(calls);
    }
  }

  /**
   * A tool call in a scripted turn.
   *
   * @param tool the tool's name as the model sees it, e.g. {@code memory_put}
   * @param arguments the arguments object as JSON text
   */
  public record ScriptCall(String tool, String arguments) {
    public ScriptCall {
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
    }
  }

  /** {@code none}, {@code session} or {@code persistent}, and how long persistent notes live. */
  public record MemorySpec(MemoryType type, Optional<Integer> retentionDays) {
    public MemorySpec {
      Objects.requireNonNull(type, "type");
      Objects.requireNonNull(retentionDays, "retentionDays");
    }
  }

  public enum MemoryType {
    NONE,
    SESSION,
    PERSISTENT
  }

  /** Hard limits; each is absent when not declared. */
  public record Budgets(
      Optional<Integer> callsPerHour,
      Optional<BigDecimal> usdPerDay,
      Optional<Long> tokensPerDay,
      Optional<Integer> toolCallsPerHour) {
    public Budgets {
      Objects.requireNonNull(callsPerHour, "callsPerHour");
      Objects.requireNonNull(usdPerDay, "usdPerDay");
      Objects.requireNonNull(tokensPerDay, "tokensPerDay");
      Objects.requireNonNull(toolCallsPerHour, "toolCallsPerHour");
    }
  }

  /**
   * When external actions wait for a human.
   *
   * @param onActionValueUsdGt actions worth more than this wait for approval
   * @param rules CEL conditions that require approval
   * @param approvers who may approve (owners or operator groups)
   * @param expiresAfter how long an approval waits before it counts as denied
   */
  public record ApprovalSpec(
      Optional<BigDecimal> onActionValueUsdGt,
      List<ApprovalRule> rules,
      List<String> approvers,
      Optional<Duration> expiresAfter) {
    public ApprovalSpec {
      Objects.requireNonNull(onActionValueUsdGt, "onActionValueUsdGt");
      rules = List.copyOf(rules);
      approvers = List.copyOf(approvers);
      Objects.requireNonNull(expiresAfter, "expiresAfter");
    }
  }

  /** A CEL condition ({@code when}) and the reason shown to the approver. */
  public record ApprovalRule(String when, String reason) {
    public ApprovalRule {
      Objects.requireNonNull(when, "when");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /**
   * @param partitionKey for {@code per-partition}: the input field that names the partition
   * @param maxActiveSessions the most sessions of this agent that run steps at once
   * @param onBusy what a message to a session that is running does
   */
  public record ConcurrencySpec(
      ConcurrencyMode mode,
      Optional<String> partitionKey,
      Optional<Integer> maxActiveSessions,
      OnBusy onBusy) {
    public ConcurrencySpec {
      Objects.requireNonNull(mode, "mode");
      Objects.requireNonNull(partitionKey, "partitionKey");
      Objects.requireNonNull(maxActiveSessions, "maxActiveSessions");
      Objects.requireNonNull(onBusy, "onBusy");
    }

    public static final ConcurrencySpec DEFAULT =
        new ConcurrencySpec(ConcurrencyMode.PER_SESSION, Optional.empty(), Optional.empty(), OnBusy.ENQUEUE);
  }

  public enum ConcurrencyMode {
    PER_SESSION,
    PER_PARTITION
  }

  public enum OnBusy {
    ENQUEUE,
    REJECT,
    INTERRUPT
  }

  public enum Mode {
    AUTONOMOUS,
    SUPERVISED,
    SHADOW
  }

  /** Labels as an unmodifiable map, for convenience. */
  public Map<String, String> labels() {
    return metadata.labels();
  }
}
