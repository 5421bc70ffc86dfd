package keel.execution;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import keel.control.Caller;
import keel.control.Grants;
import keel.control.Policies;
import keel.control.Role;
import keel.control.SessionToken;
import keel.core.AgentDescriptor;
import keel.core.EventCodec;
import keel.core.KeelException;
import keel.core.PolicyReason;
import keel.data.Approval;
import keel.data.AuditRecord;
import keel.data.McpCallStore;
import keel.data.Store;
import keel.gateway.CallMeta;
import keel.gateway.CallResult;
import keel.gateway.CatalogEntry;
import keel.gateway.Gateway;
import keel.gateway.SideEffects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The policy enforcement point for calls that outside MCP clients make through the gateway's MCP
 * server ({@code /mcp}), with an operator's API token or an agent's session token. A call passes
 * the same checks as a session's external call, in the same order: the caller's access to the tool
 * (an agent token's grants with their pins; an operator's role {@code operator} for the MCP server's
 * owner), the arguments against the tool's schema, the {@link Policies} decision (active {@code
 * Policy} descriptors, and for an agent token the agent's approval rules, threshold and mode), then
 * the gateway's rate limit when it runs.
 *
 * <p>A call is identified by its caller and idempotency key, in the {@link McpCallStore}: it runs
 * only for the request that moves it to started, so repeating a key never runs the upstream tool
 * twice; a completed call's result is answered again. A call that needs approval creates a
 * sessionless approval in the same inbox as sessions' ({@code GET /v1/approvals}) and waits for the
 * decision up to {@code approvalWait}, reporting progress; past it the client gets an error naming
 * the approval, and calling again with the same key after the decision runs (or refuses) the call
 * exactly once. Every decision, call and result is in the audit log with the caller as actor,
 * written in the same transaction as the call's state.
 *
 * <p>Thread-safe: state is in the store; calls run on their callers' threads (waits block them).
 */
public final class OutsideCalls {

  private static final Logger LOG = LoggerFactory.getLogger(OutsideCalls.class);
  private static final Duration DEFAULT_EXPIRY = Duration.ofHours(24);
  private static final Duration POLL = Duration.ofMillis(200);
  private static final Pattern KEY = Pattern.compile("[\\x21-\\x7e]{1,200}");
  private static final Pattern TRACEPARENT = Pattern.compile("[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");

  /** Who calls: the holder of an operator's API token or of an agent's session token. */
  public sealed interface Principal {
    /** {@code operator:<name>} or {@code agent:<name>}. */
    String name();

    /** An operator, with its roles. */
    record Operator(Caller caller) implements Principal {
      public Operator {
        Objects.requireNonNull(caller, "caller");
      }

      @Override
      public String name() {
        return caller.principal();
      }
    }

    /** An agent, by a verified session token (its grants, with pins, are what it may call). */
    record Agent(SessionToken token) implements Principal {
      public Agent {
        Objects.requireNonNull(token, "token");
      }

      @Override
      public String name() {
        return token.principal();
      }
    }
  }

  /**
   * What the client gets.
   *
   * @param text the result's text (for an error, what went wrong and where)
   * @param structured the tool's structured content as JSON text, when it has some
   */
  public record Result(String text, boolean error, Optional<String> structured) {
    public Result {
      Objects.requireNonNull(text, "text");
      Objects.requireNonNull(structured, "structured");
    }

    static Result error(String text) {
      return new Result(text, true, Optional.empty());
    }
  }

  private final Gateway gateway;
  private final Store store;
  private final AgentCatalog catalog;
  private final Policies policies;
  private final Clock clock;
  private final Duration approvalWait;
  private final Consumer<Approval> requested;
  private final SecureRandom random = new SecureRandom();

  /**
   * @param approvalWait how long a call that needs approval waits for the decision before the
   *     client is told to call again
   * @param requested told of each approval requested here (the inbox's notifications); must not block
   */
  public OutsideCalls(
      Gateway gateway, Store store, AgentCatalog catalog, Policies policies, Clock clock, Duration approvalWait,
      Consumer<Approval> requested) {
    this.gateway = Objects.requireNonNull(gateway, "gateway");
    this.store = Objects.requireNonNull(store, "store");
    this.catalog = Objects.requireNonNull(catalog, "catalog");
    this.policies = Objects.requireNonNull(policies, "policies");
    this.clock = Objects.requireNonNull(clock, "clock");
    if (approvalWait.isNegative()) {
      throw new IllegalArgumentException("approvalWait: expected zero or more, got " + approvalWait);
    }
    this.approvalWait = approvalWait;
    this.requested = Objects.requireNonNull(requested, "requested");
  }

  /** How long a call waits for its approval's decision. */
  public Duration approvalWait() {
    return approvalWait;
  }

  /**
   * The tools the principal may call, sorted by catalog name: for an agent token, those its grants
   * cover at their current version; for an operator, those of MCP servers whose owner it holds the
   * role {@code operator} for.
   */
  public List<CatalogEntry> tools(Principal principal) {
    Optional<String> agentOwner = Optional.empty();
    if (principal instanceof Principal.Agent a) {
      if (ended(a).isPresent()) {
        return List.of();
      }
      try {
        agentOwner = Optional.of(catalog.revision(a.token().agent(), a.token().revision()).metadata().owner());
      } catch (KeelException.NotFound gone) {
        return List.of();
      }
    }
    Optional<String> own = agentOwner;
    return gateway.catalog().stream()
        .filter(e -> allowed(principal, e) && own.map(o -> o.equals(e.owner())).orElse(true))
        .toList();
  }

  /**
   * Why an agent token no longer acts: its session ended (cancelled, failed, completed).
   * A token outlives its session by up to its lifetime; a session an operator stopped must stop
   * acting through {@code /mcp} too.
   */
  private Optional<String> ended(Principal.Agent a) {
    // a token is issued only for a session; one whose session is not in this store (a token minted
    // for a client outside any session) is judged by its signature, expiry and grants alone
    Optional<keel.data.SessionRecord> s = store.events().session(a.token().sessionId());
    if (s.isPresent() && s.get().status().terminal()) {
      return Optional.of("the session " + a.token().sessionId() + " of this token is " + s.get().status().wireName()
          + "; its token no longer acts");
    }
    return Optional.empty();
  }

  private static boolean allowed(Principal principal, CatalogEntry e) {
    return switch (principal) {
      case Principal.Operator o -> o.caller().may(Role.OPERATOR, e.owner());
      case Principal.Agent a -> Grants.allows(a.token().grants(), e.capability());
    };
  }

  /**
   * Calls a tool by the name the catalog gives models ({@code <server>__<tool>}). Never throws for
   * what the caller, the policies or the upstream did: each refusal or failure is an error result.
   *
   * @param arguments the arguments as a JSON object text
   * @param idempotencyKey the client's key, or empty for a call that is never repeated
   * @param traceparent the W3C trace context the client sent, or empty; passed on upstream
   * @param progress told, about once a second, what the call waits for (while it waits for approval)
   */
  public Result call(
      Principal principal, String modelName, String arguments, String idempotencyKey, String traceparent,
      Consumer<String> progress) {
    String who = principal.name();
    if (!idempotencyKey.isEmpty() && !KEY.matcher(idempotencyKey).matches()) {
      return Result.error("_meta " + CallMeta.IDEMPOTENCY_KEY + ": expected 1 to 200 printable ASCII characters without"
          + " spaces, got \"" + abbreviate(idempotencyKey) + "\"");
    }
    String key = idempotencyKey.isEmpty() ? "k_" + HexFormat.of().formatHex(randomBytes()) : idempotencyKey;
    String trace = TRACEPARENT.matcher(traceparent).matches() ? traceparent : "";
    Optional<CatalogEntry> found = gateway.byModelName(modelName).or(() -> {
      gateway.catalog();
      return gateway.byModelName(modelName);
    });
    Optional<AgentDescriptor> agent = Optional.empty();
    if (principal instanceof Principal.Agent a) {
      try {
        agent = Optional.of(catalog.revision(a.token().agent(), a.token().revision()));
      } catch (KeelException.NotFound gone) {
        return refuse(principal, Optional.empty(), found.map(CatalogEntry::catalogName).orElse(""), key,
            who + "'s revision " + a.token().revision() + " no longer exists: " + gone.getMessage(), Map.of());
      }
    }
    if (principal instanceof Principal.Agent a && ended(a).isPresent()) {
      return refuse(principal, agent, found.map(CatalogEntry::catalogName).orElse(""), key, ended(a).get(), Map.of());
    }
    if (agent.isPresent() && found.isPresent() && !found.get().owner().equals(agent.get().metadata().owner())) {
      // roles are scoped to owners: an agent using another owner's server would use that owner's
      // credentials, with approvals and audit under its own owner
      return refuse(principal, agent, found.get().catalogName(), key,
          "the MCP server \"" + found.get().server() + "\" belongs to owner \"" + found.get().owner() + "\", not \""
              + agent.get().metadata().owner() + "\"; an agent calls only the MCP servers of its own owner", Map.of());
    }
    if (found.isEmpty() || !allowed(principal, found.get())) {
      String reason = found.isEmpty()
          ? "there is no tool named \"" + modelName + "\"; call only the tools tools/list gives you"
          : notAllowed(principal, found.get());
      return refuse(principal, agent, found.map(CatalogEntry::catalogName).orElse(""), key, reason,
          found.isEmpty() ? Map.of("unknown_tool", true, "name", modelName) : Map.of());
    }
    CatalogEntry entry = found.get();
    Optional<McpCallStore.McpCall> existing = store.mcpCalls().find(who, key);
    if (existing.isPresent()) {
      return again(principal, agent, entry, existing.get(), trace, progress);
    }
    List<String> problems = ToolArguments.of(spec(entry)).problems(arguments);
    if (!problems.isEmpty()) {
      return refuse(principal, agent, entry.catalogName(), key,
          "invalid arguments for " + entry.catalogName() + ": " + String.join("; ", problems), Map.of());
    }
    Instant now = clock.instant();
    String owner = owner(agent, entry);
    String agentName = agent.map(d -> d.metadata().name()).orElse("");
    Policies.Decision decision = decide(principal, agent, entry, arguments, false);
    switch (decision) {
      case Policies.Decision.Deny d -> {
        return refuse(principal, agent, entry.catalogName(), key, denial(d), Map.of("rule", d.reason().rule()));
      }
      case Policies.Decision.Propose p -> {
        String text = "recorded as a proposed action and not executed: " + agentName + " is in shadow mode";
        Map<String, Object> detail = detail(key, Map.of("arguments", json(arguments), "value_usd", p.valueUsd().toPlainString()));
        boolean inserted = store.mcpCalls().insert(
            new McpCallStore.McpCall(who, key, entry.catalogName(), arguments, "", McpCallStore.Status.COMPLETED, text, false, "",
                now, now),
            Optional.empty(), List.of(record("action_proposed", who, owner, agentName, entry.catalogName(), detail)));
        return inserted ? new Result(text, false, Optional.empty()) : repeat(principal, agent, entry, key, trace, progress);
      }
      case Policies.Decision.RequireApproval ra -> {
        String id = approvalId(who, key);
        Instant expires = now.plus(agent.flatMap(d -> d.spec().approval()).flatMap(AgentDescriptor.ApprovalSpec::expiresAfter)
            .orElse(DEFAULT_EXPIRY));
        String requester = switch (principal) {
          case Principal.Operator o -> who;
          case Principal.Agent a -> a.token().chain().isEmpty() ? "" : a.token().chain().getFirst();
        };
        Approval approval = Approval.pending(id, "", key, agentName, owner, entry.catalogName(), arguments, ra.valueUsd(),
            ra.reasons(), who, requester, "", now, expires);
        Map<String, Object> asked = detail(key, Map.of("decision", "require_approval", "approval_id", id,
            "reasons", ra.reasons().stream().map(r -> r.rule() + ": " + r.reason()).toList(),
            "capability", entry.capability()));
        Map<String, Object> request = detail(key, Map.of("approval_id", id, "arguments", json(arguments),
            "value_usd", ra.valueUsd().toPlainString(), "expires_at", expires.toString(), "requester", requester));
        boolean inserted = store.mcpCalls().insert(
            new McpCallStore.McpCall(who, key, entry.catalogName(), arguments, id, McpCallStore.Status.AWAITING_APPROVAL, "",
                false, "", now, now),
            Optional.of(approval),
            List.of(record("policy_decision", who, owner, agentName, entry.catalogName(), asked),
                record("approval_requested", who, owner, agentName, entry.catalogName(), request)));
        if (!inserted) {
          return repeat(principal, agent, entry, key, trace, progress);
        }
        try {
          requested.accept(approval);
        } catch (RuntimeException e) {
          LOG.warn("approval {}: a listener failed: {}", id, e.toString());
        }
        return await(principal, agent, entry, store.mcpCalls().find(who, key).orElseThrow(), trace, progress);
      }
      case Policies.Decision.Allow a -> {
        Map<String, Object> allowed = detail(key, Map.of("decision", "allow", "capability", entry.capability()));
        boolean inserted = store.mcpCalls().insert(
            new McpCallStore.McpCall(who, key, entry.catalogName(), arguments, "", McpCallStore.Status.STARTED, "", false, "",
                now, now),
            Optional.empty(),
            List.of(record("policy_decision", who, owner, agentName, entry.catalogName(), allowed),
                record("tool_call", who, owner, agentName, entry.catalogName(),
                    detail(key, Map.of("arguments", json(arguments), "attempt", 1)))));
        if (!inserted) {
          return repeat(principal, agent, entry, key, trace, progress);
        }
        return run(principal, agent, entry, key, arguments, trace);
      }
    }
  }

  /** Another request inserted the key between our read and our insert: answer as for a repeat. */
  private Result repeat(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, String key, String trace,
      Consumer<String> progress) {
    return store.mcpCalls().find(principal.name(), key)
        .map(c -> again(principal, agent, entry, c, trace, progress))
        .orElseGet(() -> Result.error("the call with idempotency key " + key + " could not be recorded; try again"));
  }

  /** A key the principal used before. */
  private Result again(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, McpCallStore.McpCall call, String trace,
      Consumer<String> progress) {
    if (!call.tool().equals(entry.catalogName())) {
      return Result.error("the idempotency key " + call.idempotencyKey() + " was already used for a call of " + call.tool()
          + "; use a new key for a new call");
    }
    return switch (call.status()) {
      case COMPLETED -> new Result(call.result(), call.error(),
          call.structured().isEmpty() ? Optional.empty() : Optional.of(call.structured()));
      case STARTED -> Result.error("the call of " + call.tool() + " with idempotency key " + call.idempotencyKey()
          + " started at " + call.updatedAt() + " and has not completed: it is running, or it was interrupted and its outcome"
          + " is unknown; it is not run again");
      case AWAITING_APPROVAL -> await(principal, agent, entry, call, trace, progress);
    };
  }

  /** Waits for a call's approval, then runs or refuses it; past the wait, tells the client to call again. */
  private Result await(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, McpCallStore.McpCall call, String trace,
      Consumer<String> progress) {
    String id = call.approvalId();
    long deadline = System.nanoTime() + approvalWait.toNanos();
    long nextProgress = 0;
    while (true) {
      Approval a = store.approvals().find(id)
          .orElseThrow(() -> new IllegalStateException("approval " + id + " of an MCP call is missing from the inbox"));
      switch (a.status()) {
        case PENDING -> {
          long now = System.nanoTime();
          if (now - deadline >= 0) {
            return Result.error("approval " + id + " is still pending after " + approvalWait.toSeconds() + " s (it expires at "
                + a.expiresAt() + "): the call of " + call.tool() + " has not run. Once an approver decides it (keel approve "
                + id + "), call again with the same " + CallMeta.IDEMPOTENCY_KEY + " \"" + call.idempotencyKey()
                + "\" to get its result");
          }
          if (now - nextProgress >= 0) {
            try {
              progress.accept("waiting for approval " + id + " of " + call.tool() + " ("
                  + a.reasons().stream().map(PolicyReason::rule).toList() + ")");
            } catch (RuntimeException e) {
              LOG.debug("approval {}: progress could not be sent: {}", id, e.toString());
            }
            nextProgress = now + Duration.ofSeconds(1).toNanos();
          }
          try {
            Thread.sleep(POLL);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Result.error("the wait for approval " + id + " was interrupted; call again with the same "
                + CallMeta.IDEMPOTENCY_KEY + " \"" + call.idempotencyKey() + "\"");
          }
        }
        case APPROVED -> {
          return runApproved(principal, agent, entry, call, a, trace);
        }
        case DENIED, EXPIRED, WITHDRAWN -> {
          Approval.Decision d = a.decision().orElseThrow();
          String text = "not run: " + (a.status() == Approval.Status.DENIED ? "denied by " + d.by() : a.status().wireName())
              + (d.reason().isEmpty() ? "" : ": " + d.reason());
          store.mcpCalls().complete(principal.name(), call.idempotencyKey(), text, true, "", clock.instant(), List.of());
          return store.mcpCalls().find(principal.name(), call.idempotencyKey())
              .map(c -> new Result(c.result(), c.error(), Optional.empty()))
              .orElse(Result.error(text));
        }
      }
    }
  }

  /**
   * An approved call, with the arguments the approver left: checked again (access, arguments, deny
   * rules) so an edit never bypasses a rule, then run by whichever request moves it to started.
   */
  private Result runApproved(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, McpCallStore.McpCall call, Approval a,
      String trace) {
    String who = principal.name();
    String key = call.idempotencyKey();
    Approval.Decision d = a.decision().orElseThrow();
    String arguments = d.arguments().isEmpty() ? call.arguments() : d.arguments();
    Optional<String> refusal = Optional.empty();
    if (!allowed(principal, entry)) {
      refusal = Optional.of("approved, but " + notAllowed(principal, entry));
    } else {
      List<String> problems = ToolArguments.of(spec(entry)).problems(arguments);
      if (!problems.isEmpty()) {
        refusal = Optional.of("invalid arguments for " + entry.catalogName() + " as approved: " + String.join("; ", problems));
      } else if (decide(principal, agent, entry, arguments, true) instanceof Policies.Decision.Deny deny) {
        refusal = Optional.of("approved, but the call as approved is " + denial(deny));
      }
    }
    String owner = owner(agent, entry);
    String agentName = agent.map(x -> x.metadata().name()).orElse("");
    Instant now = clock.instant();
    if (refusal.isPresent()) {
      store.mcpCalls().complete(who, key, refusal.get(), true, "", now,
          List.of(record("policy_decision", who, owner, agentName, entry.catalogName(),
              detail(key, Map.of("decision", "deny", "reason", refusal.get(), "approval_id", a.id())))));
      return again(principal, agent, entry, store.mcpCalls().find(who, key).orElseThrow(), trace, s -> {});
    }
    boolean started = store.mcpCalls().start(who, key, arguments, now,
        List.of(record("policy_decision", who, owner, agentName, entry.catalogName(),
                detail(key, Map.of("decision", "allow", "capability", entry.capability(), "approval_id", a.id(),
                    "approved_by", d.by()))),
            record("tool_call", who, owner, agentName, entry.catalogName(),
                detail(key, Map.of("arguments", json(arguments), "attempt", 1, "approval_id", a.id())))));
    if (!started) {
      // another request of this key took it: answer what it got, or that it runs
      return again(principal, agent, entry, store.mcpCalls().find(who, key).orElseThrow(), trace, s -> {});
    }
    return run(principal, agent, entry, key, arguments, trace);
  }

  private Result run(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, String key, String arguments, String trace) {
    String who = principal.name();
    long began = System.nanoTime();
    CallResult r;
    try {
      r = gateway.call(entry.catalogName(), arguments, new CallMeta("", who, upstreamKey(who, key), trace));
    } catch (RuntimeException e) {
      LOG.warn("the MCP call {} of {} failed unexpectedly", entry.catalogName(), who, e);
      r = new CallResult("the call of " + entry.catalogName() + " failed: " + e.getMessage(), true, Optional.empty());
    }
    long ms = Duration.ofNanos(System.nanoTime() - began).toMillis();
    byte[] bytes = r.text().getBytes(StandardCharsets.UTF_8);
    Map<String, Object> detail = new LinkedHashMap<>(Map.of("error", r.error(), "duration_ms", ms,
        "result_sha256", HexFormat.of().formatHex(sha256(bytes)), "result_bytes", bytes.length));
    if (r.error()) {
      detail.put("error_message", r.text().length() > 500 ? r.text().substring(0, 500) : r.text());
    }
    store.mcpCalls().complete(who, key, r.text(), r.error(), r.structuredContent().orElse(""), clock.instant(),
        List.of(record("tool_result", who, owner(agent, entry), agent.map(x -> x.metadata().name()).orElse(""),
            entry.catalogName(), detail(key, detail))));
    return new Result(r.text(), r.error(), r.structuredContent());
  }

  private Policies.Decision decide(
      Principal principal, Optional<AgentDescriptor> agent, CatalogEntry entry, String arguments, boolean recheck) {
    boolean readOnly = entry.sideEffects() == SideEffects.READ_ONLY;
    Instant now = clock.instant();
    return switch (principal) {
      case Principal.Operator o -> {
        Policies.OperatorCall c = new Policies.OperatorCall(o.name(), entry.owner(), entry.catalogName(), readOnly, arguments,
            entry.valueUsd(), now, catalog.policies());
        yield recheck ? policies.recheck(c) : policies.decide(c);
      }
      case Principal.Agent a -> {
        SessionToken t = a.token();
        Policies.Call c = new Policies.Call(agent.orElseThrow(), entry.catalogName(), readOnly, arguments, entry.valueUsd(),
            new Policies.SessionInfo(t.sessionId(), t.rootSessionId(), "", t.chain().isEmpty() ? "" : t.chain().getFirst(), 0),
            now, catalog.policies());
        yield recheck ? policies.recheck(c) : policies.decide(c);
      }
    };
  }

  /** Refuses a call before it is recorded as a call: the refusal is audited on its own. */
  private Result refuse(
      Principal principal, Optional<AgentDescriptor> agent, String tool, String key, String reason, Map<String, Object> extra) {
    Map<String, Object> detail = new LinkedHashMap<>(extra);
    detail.put("decision", "deny");
    detail.put("reason", reason);
    if (principal instanceof Principal.Agent a) {
      detail.put("token_id", a.token().tokenId());
    }
    String owner = agent.map(d -> d.metadata().owner()).orElse("");
    try {
      store.audit().append(List.of(record("policy_decision", principal.name(), owner,
          agent.map(d -> d.metadata().name()).orElse(""), tool, detail(key, detail))));
    } catch (KeelException e) {
      LOG.warn("the refusal of an MCP call of {} by {} could not be audited: {}", tool, principal.name(), e.getMessage());
      return Result.error("the call was refused and the refusal could not be recorded: " + e.getMessage());
    }
    return Result.error(reason);
  }

  private static String notAllowed(Principal principal, CatalogEntry e) {
    return switch (principal) {
      case Principal.Operator o -> o.name() + " may not call " + e.catalogName() + ": it needs the role operator for owner \""
          + e.owner() + "\"";
      case Principal.Agent a -> a.name() + " is not granted " + e.capability() + " (its token grants "
          + (a.token().grants().isEmpty() ? "nothing" : String.join(", ", a.token().grants())) + ")";
    };
  }

  /** The owner an approval and the audit name: the agent's for an agent token, the MCP server's for an operator. */
  private static String owner(Optional<AgentDescriptor> agent, CatalogEntry entry) {
    return agent.map(d -> d.metadata().owner()).orElse(entry.owner());
  }

  private static ToolSpec spec(CatalogEntry e) {
    return new ToolSpec(e.modelName(), e.description(), e.inputSchema());
  }

  private static String denial(Policies.Decision.Deny d) {
    return "denied by " + d.reason().rule() + ": " + d.reason().reason();
  }

  private static Map<String, Object> detail(String key, Map<String, Object> fields) {
    Map<String, Object> out = new LinkedHashMap<>(fields);
    out.put("via", "mcp");
    out.put("idempotency_key", key);
    return out;
  }

  private static AuditRecord record(
      String kind, String actor, String owner, String agent, String tool, Map<String, Object> detail) {
    return new AuditRecord(kind, actor, owner, agent, "", tool, EventCodec.mapper().writeValueAsString(detail));
  }

  /** Arguments as a JSON value for an audit detail (they were checked to be a JSON object). */
  private static Object json(String arguments) {
    try {
      return EventCodec.mapper().readTree(arguments.isBlank() ? "{}" : arguments);
    } catch (RuntimeException e) {
      return arguments;
    }
  }

  /** The approval of a caller's key: derived from both, so a repeat finds the same one. */
  static String approvalId(String principal, String key) {
    return "apr_" + HexFormat.of().formatHex(sha256(("mcp\n" + principal + "\n" + key).getBytes(StandardCharsets.UTF_8)), 0, 12);
  }

  /** The key sent upstream: the same for every request of the caller's key, and unguessable across callers. */
  private static String upstreamKey(String principal, String key) {
    return "mcp_" + HexFormat.of().formatHex(sha256((principal + "\n" + key).getBytes(StandardCharsets.UTF_8)), 0, 16);
  }

  private byte[] randomBytes() {
    byte[] b = new byte[16];
    random.nextBytes(b);
    return b;
  }

  private static byte[] sha256(byte[] in) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(in);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String abbreviate(String s) {
    return s.length() > 40 ? s.substring(0, 40) + "…" : s;
  }
}
