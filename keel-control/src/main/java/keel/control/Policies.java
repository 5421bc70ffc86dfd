package keel.control;

import com.google.protobuf.Timestamp;
import dev.cel.common.CelAbstractSyntaxTree;
import dev.cel.common.CelIssue;
import dev.cel.common.CelOptions;
import dev.cel.common.CelValidationException;
import dev.cel.common.types.MapType;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.runtime.CelEvaluationException;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;
import keel.core.AgentDescriptor;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.PolicyDescriptor;
import keel.core.PolicyReason;
import tools.jackson.databind.JsonNode;

/**
 * The policy decision point for external tool calls: it evaluates, for one call, the active {@code
 * kind: Policy} descriptors, the agent's {@code spec.approval} (its value threshold and its CEL
 * rules) and the agent's {@code spec.mode}, and says whether the call is denied, only proposed
 * (shadow mode), needs a human's approval, or may run. The step executor asks and obeys; it decides
 * nothing itself.
 *
 * <p>Expressions are CEL over these variables: {@code agent} ({@code name}, {@code owner}, {@code
 * labels}, {@code mode}), {@code tool} ({@code "<server>/<tool>"}), {@code args} (the call's
 * arguments), {@code session} ({@code id}, {@code root_id}, {@code parent_id}, {@code principal},
 * {@code steps}), {@code value_usd} (a double) and {@code now} (a timestamp, so {@code
 * now.getDayOfWeek()} is 0 on Sundays, in UTC). Rules are boolean; a value expression gives a
 * number. An expression that fails while it runs (a missing field, a wrong type) fails closed: the
 * call is denied, and the denial says which rule failed and why.
 *
 * <p>Thread-safe: compiled programs are cached (bounded, least recently used) under a lock; a
 * program itself is immutable.
 */
public final class Policies {

  /** The rule name under which supervised mode requires approval. */
  public static final String MODE_RULE = "spec.mode";
  /** The rule name of the value threshold. */
  public static final String THRESHOLD_RULE = "spec.approval.on_action_value_usd_gt";

  private static final int MAX_CACHED = 2048;
  private static final CelOptions OPTIONS =
      CelOptions.current().enableHeterogeneousNumericComparisons(true).build();
  private static final MapType STRING_DYN = MapType.create(SimpleType.STRING, SimpleType.DYN);

  private static final CelCompiler RULES = compiler(SimpleType.BOOL);
  private static final CelCompiler VALUES = compiler(SimpleType.DYN);
  private static final CelRuntime RUNTIME = CelRuntimeFactory.standardCelRuntimeBuilder().setOptions(OPTIONS).build();

  /** Guards {@link #cache}. */
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<String, CelRuntime.Program> cache =
      new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, CelRuntime.Program> eldest) {
          return size() > MAX_CACHED;
        }
      };

  private static CelCompiler compiler(dev.cel.common.types.CelType result) {
    return CelCompilerFactory.standardCelCompilerBuilder()
        .setOptions(OPTIONS)
        .setStandardMacros(dev.cel.parser.CelStandardMacro.STANDARD_MACROS)
        .addVar("agent", STRING_DYN)
        .addVar("tool", SimpleType.STRING)
        .addVar("args", STRING_DYN)
        .addVar("session", STRING_DYN)
        .addVar("value_usd", SimpleType.DOUBLE)
        .addVar("now", SimpleType.TIMESTAMP)
        .setResultType(result)
        .build();
  }

  /**
   * The session a call is made in, as rules see it.
   *
   * @param principal who started the root session (an operator), or the delegating agent
   * @param steps model calls since the latest input
   */
  public record SessionInfo(String id, String rootId, String parentId, String principal, int steps) {
    public SessionInfo {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(rootId, "rootId");
      Objects.requireNonNull(parentId, "parentId");
      Objects.requireNonNull(principal, "principal");
    }
  }

  /**
   * One external call to decide.
   *
   * @param tool the catalog name, {@code <server>/<tool>}
   * @param readOnly whether the tool changes nothing (read-only calls need no approval in
   *     supervised mode and run in shadow mode)
   * @param arguments the call's arguments as JSON object text
   * @param valueExpression the tool's CEL value expression over {@code args}, if it has one
   * @param policies the active {@code Policy} descriptors
   */
  public record Call(
      AgentDescriptor agent,
      String tool,
      boolean readOnly,
      String arguments,
      Optional<String> valueExpression,
      SessionInfo session,
      Instant now,
      List<PolicyDescriptor> policies) {
    public Call {
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
      Objects.requireNonNull(valueExpression, "valueExpression");
      Objects.requireNonNull(session, "session");
      Objects.requireNonNull(now, "now");
      policies = List.copyOf(policies);
    }
  }

  /** What the decision point says about a call. Each names the rules that decided it. */
  public sealed interface Decision {
    /** The action's value in USD (zero when the tool has no value expression). */
    BigDecimal valueUsd();

    /** The call may run. */
    record Allow(BigDecimal valueUsd) implements Decision {}

    /** The call must not run; {@code reason} names the rule. */
    record Deny(PolicyReason reason, BigDecimal valueUsd) implements Decision {}

    /** Shadow mode: the call is recorded as a proposed action and not executed. */
    record Propose(BigDecimal valueUsd) implements Decision {}

    /** The call waits for a human; every rule that asked is listed. */
    record RequireApproval(List<PolicyReason> reasons, BigDecimal valueUsd) implements Decision {
      public RequireApproval {
        reasons = List.copyOf(reasons);
      }
    }
  }

  /**
   * Decides a call: a deny (from a policy's {@code deny_when}, or a rule that fails) wins over
   * everything; then shadow mode proposes a call that changes something; then every rule that
   * requires approval is collected (policies' {@code require_approval_when}, the value threshold,
   * {@code spec.approval.rules}, supervised mode for calls that change something).
   */
  public Decision decide(Call call) {
    return decide(call, false);
  }

  /**
   * Checks only the deny rules, for a call a human approved (with the arguments as the human left
   * them): an edit never bypasses a deny rule; the approval itself answers the approval rules.
   */
  public Decision recheck(Call call) {
    return decide(call, true);
  }

  /**
   * A call an operator makes directly, through the gateway's MCP server ({@code /mcp}), outside any
   * agent and session. Rules see {@code agent} as {@code {name: "", owner: <the MCP server's
   * owner>, labels: {}, mode: "autonomous"}} and {@code session} as {@code {id: "", root_id: "",
   * parent_id: "", principal: <the operator>, steps: 0}}; policies that name agents in {@code
   * applies_to.agents} do not apply, and no agent approval settings exist, so only policies ask
   * for approval.
   *
   * @param principal {@code operator:<name>}
   * @param owner the MCP server's owner
   */
  public record OperatorCall(
      String principal,
      String owner,
      String tool,
      boolean readOnly,
      String arguments,
      Optional<String> valueExpression,
      Instant now,
      List<PolicyDescriptor> policies) {
    public OperatorCall {
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
      Objects.requireNonNull(valueExpression, "valueExpression");
      Objects.requireNonNull(now, "now");
      policies = List.copyOf(policies);
    }
  }

  /** Decides an operator's call as {@link #decide(Call)} does an agent's. */
  public Decision decide(OperatorCall call) {
    return decide(operatorSubject(call), call.tool(), call.readOnly(), call.arguments(), call.valueExpression(),
        operatorSession(call), call.now(), call.policies(), false);
  }

  /** Checks only the deny rules for an operator's call a human approved, as {@link #recheck(Call)} does. */
  public Decision recheck(OperatorCall call) {
    return decide(operatorSubject(call), call.tool(), call.readOnly(), call.arguments(), call.valueExpression(),
        operatorSession(call), call.now(), call.policies(), true);
  }

  private static Subject operatorSubject(OperatorCall call) {
    return new Subject(Optional.empty(),
        Map.of("name", "", "owner", call.owner(), "labels", Map.of(), "mode", "autonomous"),
        AgentDescriptor.Mode.AUTONOMOUS, Optional.empty());
  }

  private static Map<String, Object> operatorSession(OperatorCall call) {
    return Map.of("id", "", "root_id", "", "parent_id", "", "principal", call.principal(), "steps", 0L);
  }

  /** Who makes a call, as rules see it: an agent, or (no agent name) an operator. */
  private record Subject(
      Optional<String> agentName, Map<String, Object> var, AgentDescriptor.Mode mode,
      Optional<AgentDescriptor.ApprovalSpec> approval) {}

  private Decision decide(Call call, boolean denyOnly) {
    SessionInfo s = call.session();
    Subject subject = new Subject(Optional.of(call.agent().metadata().name()), agentVar(call.agent()),
        call.agent().spec().mode(), call.agent().spec().approval());
    return decide(subject, call.tool(), call.readOnly(), call.arguments(), call.valueExpression(),
        Map.of("id", s.id(), "root_id", s.rootId(), "parent_id", s.parentId(), "principal", s.principal(),
            "steps", (long) s.steps()),
        call.now(), call.policies(), denyOnly);
  }

  private Decision decide(
      Subject subject, String tool, boolean readOnly, String arguments, Optional<String> valueExpression,
      Map<String, Object> session, Instant now, List<PolicyDescriptor> policies, boolean denyOnly) {
    Map<String, Object> vars = new LinkedHashMap<>();
    vars.put("agent", subject.var());
    vars.put("tool", tool);
    Object args;
    try {
      args = toCel(EventCodec.mapper().readTree(arguments));
    } catch (RuntimeException e) {
      return new Decision.Deny(new PolicyReason("arguments", "the arguments are not a JSON object"), BigDecimal.ZERO);
    }
    if (!(args instanceof Map<?, ?>)) {
      return new Decision.Deny(new PolicyReason("arguments", "the arguments are not a JSON object"), BigDecimal.ZERO);
    }
    vars.put("args", args);
    vars.put("session", session);
    vars.put("now", Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()).build());
    BigDecimal value = BigDecimal.ZERO;
    if (valueExpression.isPresent()) {
      String rule = "value_usd of " + tool;
      try {
        value = number(evaluate(VALUES, valueExpression.get(), withValue(vars, 0)), rule);
      } catch (RuleFailed f) {
        return new Decision.Deny(new PolicyReason(rule, f.getMessage()), BigDecimal.ZERO);
      }
    }
    vars = withValue(vars, value.doubleValue());
    List<PolicyReason> approvals = new ArrayList<>();
    for (PolicyDescriptor p : policies) {
      if (!applies(p, tool, subject.agentName())) {
        continue;
      }
      String rule = "policy/" + p.metadata().name();
      String reason = p.spec().reason().isEmpty() ? "the policy " + p.metadata().name() + " says so" : p.spec().reason();
      try {
        if (!p.spec().denyWhen().isEmpty() && truth(evaluate(RULES, p.spec().denyWhen(), vars))) {
          return new Decision.Deny(new PolicyReason(rule, reason), value);
        }
        if (!denyOnly && !p.spec().requireApprovalWhen().isEmpty()
            && truth(evaluate(RULES, p.spec().requireApprovalWhen(), vars))) {
          approvals.add(new PolicyReason(rule, reason));
        }
      } catch (RuleFailed f) {
        return new Decision.Deny(new PolicyReason(rule, "the rule failed, so the call is denied: " + f.getMessage()), value);
      }
    }
    if (denyOnly) {
      return new Decision.Allow(value);
    }
    AgentDescriptor.Mode mode = subject.mode();
    if (mode == AgentDescriptor.Mode.SHADOW && !readOnly) {
      return new Decision.Propose(value);
    }
    Optional<AgentDescriptor.ApprovalSpec> spec = subject.approval();
    if (spec.isPresent()) {
      Optional<BigDecimal> threshold = spec.get().onActionValueUsdGt();
      if (threshold.isPresent() && value.compareTo(threshold.get()) > 0) {
        approvals.add(new PolicyReason(THRESHOLD_RULE,
            "the action is worth " + value.toPlainString() + " USD, over the agent's threshold of "
                + threshold.get().toPlainString() + " USD"));
      }
      List<AgentDescriptor.ApprovalRule> rules = spec.get().rules();
      for (int i = 0; i < rules.size(); i++) {
        String rule = "spec.approval.rules[" + i + "]";
        try {
          if (truth(evaluate(RULES, rules.get(i).when(), vars))) {
            approvals.add(new PolicyReason(rule, rules.get(i).reason().isEmpty() ? rules.get(i).when() : rules.get(i).reason()));
          }
        } catch (RuleFailed f) {
          return new Decision.Deny(new PolicyReason(rule, "the rule failed, so the call is denied: " + f.getMessage()), value);
        }
      }
    }
    if (mode == AgentDescriptor.Mode.SUPERVISED && !readOnly) {
      approvals.add(new PolicyReason(MODE_RULE, "the agent is supervised: every external action that changes something is approved by a human"));
    }
    return approvals.isEmpty() ? new Decision.Allow(value) : new Decision.RequireApproval(approvals, value);
  }

  private static boolean applies(PolicyDescriptor p, String tool, Optional<String> agent) {
    return (p.spec().tools().isEmpty() || p.spec().tools().stream().anyMatch(t -> toolMatches(t, tool)))
        && (p.spec().agents().isEmpty() || agent.filter(a -> p.spec().agents().contains(a)).isPresent());
  }

  /** {@code server/tool} matches itself; {@code server} or {@code server/*} matches every tool of the server. */
  private static boolean toolMatches(String pattern, String tool) {
    if (pattern.equals(tool) || pattern.equals("*")) {
      return true;
    }
    String server = pattern.endsWith("/*") ? pattern.substring(0, pattern.length() - 2) : pattern;
    return !server.contains("/") && tool.startsWith(server + "/");
  }

  private static Map<String, Object> withValue(Map<String, Object> vars, double value) {
    Map<String, Object> out = new LinkedHashMap<>(vars);
    out.put("value_usd", value);
    return out;
  }

  private static Map<String, Object> agentVar(AgentDescriptor a) {
    return Map.of(
        "name", a.metadata().name(),
        "owner", a.metadata().owner(),
        "labels", Map.copyOf(a.metadata().labels()),
        "mode", a.spec().mode().name().toLowerCase(java.util.Locale.ROOT));
  }

  /**
   * Problems with a rule (a boolean CEL condition) as written: empty when it compiles. Each names
   * the line and column of the error.
   */
  public static List<String> validateRule(String expression) {
    return problems(RULES, expression);
  }

  /** Problems with a value expression (CEL over {@code args} giving a number): empty when it compiles. */
  public static List<String> validateValue(String expression) {
    return problems(VALUES, expression);
  }

  private static List<String> problems(CelCompiler compiler, String expression) {
    try {
      compiler.compile(expression).getAst();
      return List.of();
    } catch (CelValidationException e) {
      List<String> out = new ArrayList<>();
      for (CelIssue issue : e.getErrors()) {
        out.add("line " + issue.getSourceLocation().getLine() + ", column " + (issue.getSourceLocation().getColumn() + 1)
            + ": " + issue.getMessage());
      }
      return out;
    } catch (RuntimeException e) {
      return List.of(String.valueOf(e.getMessage()));
    }
  }

  /** A rule that failed to compile or to run; its message says why. */
  private static final class RuleFailed extends Exception {
    RuleFailed(String message) {
      super(message, null, false, false);
    }
  }

  private Object evaluate(CelCompiler compiler, String expression, Map<String, Object> vars) throws RuleFailed {
    CelRuntime.Program program;
    String key = (compiler == RULES ? "r:" : "v:") + expression;
    lock.lock();
    try {
      program = cache.get(key);
    } finally {
      lock.unlock();
    }
    if (program == null) {
      try {
        CelAbstractSyntaxTree ast = compiler.compile(expression).getAst();
        program = RUNTIME.createProgram(ast);
      } catch (CelValidationException e) {
        throw new RuleFailed("\"" + expression + "\" does not compile: " + String.join("; ", problems(compiler, expression)));
      } catch (CelEvaluationException e) {
        throw new RuleFailed("\"" + expression + "\" cannot be planned: " + e.getMessage());
      }
      lock.lock();
      try {
        cache.put(key, program);
      } finally {
        lock.unlock();
      }
    }
    try {
      return program.eval(vars);
    } catch (CelEvaluationException | RuntimeException e) {
      throw new RuleFailed("\"" + expression + "\" failed: " + e.getMessage());
    }
  }

  private static boolean truth(Object o) throws RuleFailed {
    if (o instanceof Boolean b) {
      return b;
    }
    throw new RuleFailed("expected true or false, got " + o);
  }

  private static BigDecimal number(Object o, String what) throws RuleFailed {
    return switch (o) {
      case Long l -> BigDecimal.valueOf(l);
      case Double d when !d.isNaN() && !d.isInfinite() -> BigDecimal.valueOf(d);
      case com.google.common.primitives.UnsignedLong u -> new BigDecimal(u.bigIntegerValue());
      case String t -> {
        try {
          yield new BigDecimal(t);
        } catch (NumberFormatException e) {
          throw new RuleFailed(what + ": expected a number, got \"" + t + "\"");
        }
      }
      default -> throw new RuleFailed(what + ": expected a number, got " + o);
    };
  }

  /** JSON as CEL values: objects as maps, arrays as lists, integers as longs, other numbers as doubles. */
  private static Object toCel(JsonNode n) {
    if (n.isObject()) {
      Map<String, Object> m = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : n.properties()) {
        m.put(e.getKey(), toCel(e.getValue()));
      }
      return m;
    }
    if (n.isArray()) {
      List<Object> l = new ArrayList<>();
      for (JsonNode e : n) {
        l.add(toCel(e));
      }
      return l;
    }
    if (n.isIntegralNumber() && n.canConvertToLong()) {
      return n.asLong();
    }
    if (n.isNumber()) {
      return n.asDouble();
    }
    if (n.isBoolean()) {
      return n.asBoolean();
    }
    if (n.isNull()) {
      return dev.cel.common.values.NullValue.NULL_VALUE;
    }
    return n.asString();
  }

  /**
   * Throws {@link KeelException.Invalid} when a descriptor's CEL does not compile, naming {@code path}
   * and the error's position.
   */
  public static void requireValidRule(String path, String expression) {
    List<String> p = validateRule(expression);
    if (!p.isEmpty()) {
      throw new KeelException.Invalid(path + ": invalid CEL \"" + expression + "\": " + String.join("; ", p));
    }
  }
}
