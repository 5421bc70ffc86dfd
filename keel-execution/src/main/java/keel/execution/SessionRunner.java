package keel.execution;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import keel.control.Grants;
import keel.control.Identity;
import keel.control.SessionToken;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.KeelException;
import keel.core.Message;
import keel.core.PendingCall;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.core.ToolCall;
import keel.data.Append;
import keel.data.BlobStore;
import keel.data.Input;
import keel.data.NewSession;
import keel.data.PendingEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.JsonNode;

/**
 * The step executor: runs one session from its stored state until it has nothing to do, then lets
 * it go. It builds the model's context from the folded state, calls the model, records the
 * response, runs each requested tool call as a recorded activity, and repeats.
 *
 * <p>Durability rules, in one place:
 *
 * <ul>
 *   <li>Events are staged (folded into the local state at once) and flushed to the store in one
 *       append before anything acts on them: before a tool runs, after a non-idempotent tool
 *       completes, and before the run returns. A model's response is therefore durable, with the
 *       {@code ToolCallStarted} of the call it asks for, before that call runs.
 *   <li>After a crash, a call found started and not completed runs again only if its tool is
 *       idempotent (same idempotency key); otherwise it becomes {@code ToolOutcomeUnknown}.
 *   <li>An append that finds another writer ahead of it abandons the run.
 * </ul>
 *
 * <p>Identity rules: the run acts with a token the control plane issued for its session (a fresh
 * one when the one it holds is near expiry), and presents it to {@link Identity} before every
 * model call and every tool call, which checks it and that it grants the call's capability. The
 * model is offered only the tools the verified token grants. A refused tool call is recorded as
 * {@code ToolCallDenied} with the reason and the model reads it; the session goes on.
 *
 * <p>Sub-agent rules: a call of {@code agent_<name>} is checked like any tool call, then the
 * control plane decides the child's grants and chain ({@link Identity#delegate}). The call is
 * durable before the child session exists, the child's id is derived from the call, and the child
 * is created before {@code SubagentSpawned} is recorded, so a step redone after a crash finds its
 * child instead of making a second one. The child's result reaches the parent's inbox in the same
 * append as the child's last event; a parent that ends cancels the children it waits for in the
 * same way.
 *
 * <p>Thread-safe: one instance serves every session; each {@link #run} call keeps its state on its
 * own stack. The scheduler guarantees one run per session at a time on a node; the expected
 * sequence number of each append guarantees it across nodes.
 */
final class SessionRunner implements Scheduler.Runner {

  private static final Logger LOG = LoggerFactory.getLogger(SessionRunner.class);
  /**
   * A snapshot is taken once the events since the last one number at least this many and at least
   * as many as the messages in the conversation. A snapshot holds the whole conversation, so taking
   * one every fixed number of events would make the bytes written grow with the square of a
   * session's length; tying the interval to the state's size keeps snapshot writes proportional to
   * event writes, and replay bounded by the state's size.
   */
  private static final int SNAPSHOT_MIN_EVENTS = 64;
  private static final int MAX_TOOL_OUTPUT_CHARS = 1 << 20;
  private static final int MODEL_ATTEMPTS = 3;
  private static final Duration MAX_INLINE_RETRY_WAIT = Duration.ofSeconds(10);
  /** How long an approval waits when the agent does not say ({@code spec.approval.expires_after}). */
  static final Duration DEFAULT_APPROVAL_EXPIRY = Duration.ofHours(24);

  /** What the scheduler should do after a run. */
  sealed interface Outcome {
    /** Nothing left to do until a new input arrives. */
    record Suspended() implements Outcome {}

    /** Work remains that failed transiently (a provider outage, the store): run again later. */
    record RetryAfter(Duration delay, String reason) implements Outcome {}
  }

  /** What the scheduler tells a run while it goes on. */
  interface Signals {
    /** True once after new input arrived for the session; the run re-reads the inbox. */
    boolean takeInboxChanged();

    /**
     * The lease this run writes under, when sessions run under leases: every append carries it, so
     * the store refuses the run's writes once another node took the session over.
     */
    default Optional<keel.data.LeaseStore.Lease> lease() {
      return Optional.empty();
    }

    /**
     * Called before the run does something an append's fencing cannot undo (a tool call, a model
     * call): throws {@link KeelException.Conflict} when this node may no longer hold the lease.
     */
    default void checkLease() {}
  }

  private final Store store;
  private final AgentCatalog catalog;
  private final ModelGateway gateway;
  private final ToolRegistry tools;
  private final EventBus bus;
  private final Clock clock;
  private final String node;
  private final Identity identity;
  private final TokenPresenter presenter;
  private final Consumer<String> wake;
  private final Metering metering;
  private final keel.control.Policies policies;
  /** Told of approvals this node requested ({@code requested}) or withdrew ({@code withdrawn}). */
  private final java.util.function.BiConsumer<String, keel.data.Approval> approvalChanged;
  /** Told when a run has rehydrated its session ({@link RunListener#rehydrated}); must not throw. */
  private final RunListener listener;

  /**
   * @param identity issues and checks the sessions' tokens
   * @param presenter what is presented to the check before each use ({@link TokenPresenter#HELD})
   * @param wake makes another session run soon: a child just created, a parent with a result
   * @param listener told when a run has rehydrated its session; must not throw ({@link RunListeners} does not)
   */
  SessionRunner(
      Store store,
      AgentCatalog catalog,
      ModelGateway gateway,
      ToolRegistry tools,
      EventBus bus,
      Clock clock,
      String node,
      Identity identity,
      TokenPresenter presenter,
      Consumer<String> wake,
      Metering metering,
      keel.control.Policies policies,
      java.util.function.BiConsumer<String, keel.data.Approval> approvalChanged,
      RunListener listener) {
    this.store = store;
    this.catalog = catalog;
    this.gateway = gateway;
    this.tools = tools;
    this.bus = bus;
    this.clock = clock;
    this.node = node;
    this.identity = identity;
    this.presenter = presenter;
    this.wake = wake;
    this.metering = metering;
    this.policies = policies;
    this.approvalChanged = approvalChanged;
    this.listener = listener;
  }

  @Override
  public Outcome run(String sessionId, Signals signals) {
    long began = System.nanoTime();
    Optional<SessionRecord> record = store.events().session(sessionId);
    if (record.isEmpty()) {
      return new Outcome.Suspended();
    }
    SessionLoader.Loaded loaded = SessionLoader.loadWithSnapshot(store.events(), sessionId);
    Run run = new Run(record.get(), loaded.state(), loaded.snapshotSeq(), signals);
    try {
      return run.loop(began);
    } catch (KeelException.Conflict e) {
      LOG.info("session {}: another writer appended first; this run stops: {}", sessionId, e.getMessage());
      return new Outcome.Suspended();
    } catch (KeelException.Unavailable e) {
      LOG.warn("session {}: the store failed; retrying later: {}", sessionId, e.getMessage());
      return new Outcome.RetryAfter(Duration.ofSeconds(5), e.getMessage());
    }
  }

  /** One run of one session: its state, its staged events, its view of the inbox. */
  private final class Run {
    private final SessionRecord record;
    private final SessionState state;
    private final Signals signals;
    private final List<PendingEvent> staged = new ArrayList<>();
    private final List<StoredEvent> stagedStored = new ArrayList<>();
    private final List<String> consumed = new ArrayList<>();
    /** Inputs for other sessions, written with the next flush. */
    private final List<Input> deliveries = new ArrayList<>();
    /** Audit records of the staged events, written with them. */
    private final List<keel.data.AuditRecord> audit = new ArrayList<>();
    /** Approvals inbox rows requested by staged events, written with the next flush. */
    private final List<keel.data.Approval> approvals = new ArrayList<>();
    /** Pending approvals whose calls no longer wait (an interruption, the end), closed after the next flush. */
    private final java.util.Set<String> withdrawn = new java.util.LinkedHashSet<>();
    /** Calls of this step whose approvals were already looked at in this run. */
    private final java.util.Set<String> prechecked = new java.util.HashSet<>();
    /** The session's token; replaced when near expiry. */
    private SessionToken token;
    private long flushedSeq;
    private long snapshotSeq;
    private Deque<Input> inbox;
    private AgentDescriptor agent;
    private final Metering.Meter meter;

    Run(SessionRecord record, SessionState state, long snapshotSeq, Signals signals) {
      this.record = record;
      this.meter = metering.open(record);
      this.state = state;
      this.signals = signals;
      this.flushedSeq = state.lastSeq();
      this.snapshotSeq = snapshotSeq;
    }

    /** Runs the session until it suspends; {@code began} is when the run took its slot ({@link System#nanoTime}). */
    Outcome loop(long began) {
      agent = catalog.revision(state.agent(), state.revision());
      readInbox();
      listener.rehydrated(record.id(), record.agent(), Duration.ofNanos(System.nanoTime() - began));
      while (true) {
        if (signals.takeInboxChanged()) {
          flush();
          readInbox();
        }
        SessionStatus status = state.status().orElseThrow();
        Optional<Input> cancel = take("cancel");
        if (cancel.isPresent()) {
          if (status.terminal()) {
            stage(new SessionEvent.InputRejected(cancel.get().inputId(), "the session is already " + status.wireName()), cancel.get());
          } else {
            stage(new SessionEvent.SessionCancelled(cancel.get().sender(), cancel.get().body()), cancel.get());
            ended();
          }
          continue;
        }
        if (status.terminal()) {
          Input in = inbox.pollFirst();
          if (in == null) {
            return suspend();
          }
          stage(new SessionEvent.InputRejected(in.inputId(), "the session is " + status.wireName()), in);
          continue;
        }
        if ((status == SessionStatus.RUNNING || status == SessionStatus.AWAITING_APPROVAL
                || status == SessionStatus.AWAITING_SUBAGENT) && decideIfAnswered()) {
          continue;
        }
        Outcome outcome =
            switch (status) {
              case IDLE -> idle();
              case RUNNABLE -> runnable();
              case RUNNING -> running();
              case AWAITING_APPROVAL -> awaitingHuman();
              case AWAITING_SUBAGENT -> awaitingSubagent();
              case BUDGET_BLOCKED -> budgetBlocked();
              case COMPLETED, FAILED, CANCELLED -> throw new IllegalStateException("terminal handled above");
            };
        if (outcome != null) {
          return outcome;
        }
      }
    }

    private Outcome idle() {
      Input in = inbox.pollFirst();
      if (in == null) {
        return suspend();
      }
      if (in.kind().equals("message")) {
        stage(new SessionEvent.InputReceived(in.inputId(), in.body(), in.sender()), in);
      } else if (in.kind().equals(Subagents.RESULT_KIND)) {
        stage(new SessionEvent.InputRejected(in.inputId(), "no sub-agent call is waiting for this result"), in);
      } else {
        stage(new SessionEvent.InputRejected(in.inputId(), "no tool call is waiting for a decision"), in);
      }
      return null;
    }

    private Outcome runnable() {
      if (interruptIfAsked()) {
        return null;
      }
      if (state.stepsSinceInput() >= agent.spec().maxSteps()) {
        stage(
            new SessionEvent.SessionFailed(
                "step_limit",
                "the agent made "
                    + state.stepsSinceInput()
                    + " model calls for one input without answering (spec.max_steps is "
                    + agent.spec().maxSteps()
                    + ")",
                false));
        ended();
        return null;
      }
      stageModelCalled();
      return callModel();
    }

    private Outcome running() {
      List<PendingCall> pending = state.pending();
      if (pending.isEmpty()) {
        // A model call is due: staged with the last tool result, or cut off by a crash. A message
        // for an agent that interrupts is handled first; otherwise call (again).
        if (interruptIfAsked()) {
          return null;
        }
        return callModel();
      }
      if (interruptIfAsked()) {
        return null;
      }
      if (requestApprovalsAhead()) {
        return null;
      }
      PendingCall p = pending.getFirst();
      String span = toolSpan(p.call().id());
      switch (p.state()) {
        case REQUESTED -> authorizeAndRun(p, span);
        case APPROVED -> runApproved(p, span);
        case AWAITING_APPROVAL -> throw new IllegalStateException("a call waiting for approval keeps the session awaiting it");
        case AUTHORIZED -> {
          Optional<Tool> tool = tools.tool(p.call().name());
          if (tool.isEmpty()) {
            stage(new SessionEvent.ToolCallDenied(p.call().id(), "the tool \"" + p.call().name() + "\" is no longer available"), span);
          } else {
            Optional<SessionToken> verified = reauthorize(p, tool.get(), span);
            if (verified.isPresent() && !blockedByBudget(meter.beforeToolCall(agent, state, tool.get(), p.call().id()), span)) {
              // a retry a human asked for keeps the call's key, so the tool can recognise it
              String key = p.idempotencyKey().isEmpty() ? idempotencyKey(p.call()) : p.idempotencyKey();
              stage(new SessionEvent.ToolCallStarted(p.call().id(), p.attempt() + 1, key), span);
              execute(tool.get(), p.call(), span, key, verified.get());
            }
          }
        }
        case STARTED -> {
          // Found started and never completed: the node running it died.
          Optional<Tool> tool = tools.tool(p.call().name());
          if (p.idempotent() && tool.isPresent()) {
            Optional<SessionToken> verified = reauthorize(p, tool.get(), span);
            if (verified.isPresent() && !blockedByBudget(meter.beforeToolCall(agent, state, tool.get(), p.call().id()), span)) {
              stage(new SessionEvent.ToolCallStarted(p.call().id(), p.attempt() + 1, p.idempotencyKey()), span);
              execute(tool.get(), p.call(), span, p.idempotencyKey(), verified.get());
            }
          } else {
            stage(
                new SessionEvent.ToolOutcomeUnknown(
                    p.call().id(),
                    "\""
                        + p.call().name()
                        + "\" started (attempt "
                        + p.attempt()
                        + ") but its node stopped before it completed; it is not idempotent, so it"
                        + " is not run again. Decide whether it succeeded."),
                span);
          }
        }
        case OUTCOME_UNKNOWN -> throw new IllegalStateException("an unknown outcome keeps the session awaiting approval");
        case SPAWNED -> throw new IllegalStateException("a spawned sub-agent keeps the session awaiting it");
      }
      return null;
    }

    /**
     * A requested call: the token presented for the call's capability is checked (signature,
     * expiry, session, grant), then the arguments; the call then runs, or spawns its sub-agent.
     */
    private void authorizeAndRun(PendingCall p, String span) {
      ToolCall call = p.call();
      Optional<Tool> tool = tools.tool(call.name());
      Optional<String> capability =
          tool.map(Tool::capability).or(() -> Subagents.capability(call.name(), token().grants()));
      Identity.Verdict verdict =
          capability.isPresent()
              ? identity.authorize(presenter.present(capability.get(), token()), record.id(), capability.get())
              : identity.verify(presenter.present("tool " + call.name(), token()), record.id());
      switch (verdict) {
        case Identity.Verdict.Refused r -> deny(call, r.reason(), r.token(), span);
        case Identity.Verdict.Verified v -> {
          if (capability.isEmpty()) {
            deny(call, "there is no tool named \"" + call.name() + "\"; call only the tools you were given", Optional.of(v.token()), span);
          } else if (tool.isEmpty()) {
            spawn(p, capability.get(), v.token(), span);
          } else if (!ownTool(tool.get())) {
            // roles are scoped to owners: another owner's server would be used with its credentials,
            // and its calls approved and audited under this agent's owner
            deny(call, "the tool " + tool.get().catalogName() + " belongs to an MCP server of owner \"" + tool.get().owner()
                + "\", not \"" + record.owner() + "\"; an agent calls only the MCP servers of its own owner", Optional.of(v.token()), span);
          } else {
            List<String> problems = ToolArguments.of(tool.get().spec()).problems(call.arguments());
            if (!problems.isEmpty()) {
              // nothing runs; the model reads what was wrong and can correct the call
              deny(call, "invalid arguments for " + call.name() + ": " + String.join("; ", problems), Optional.of(v.token()), span);
              return;
            }
            if (tool.get().external()) {
              switch (policies.decide(policyCall(tool.get(), call.arguments()))) {
                case keel.control.Policies.Decision.Deny d -> {
                  deny(call, denial(d), Optional.of(v.token()), span);
                  return;
                }
                case keel.control.Policies.Decision.Propose pr -> {
                  stage(new SessionEvent.ActionProposed(call.id(), tool.get().catalogName(), call.arguments(), pr.valueUsd(),
                      v.token().principal()), span);
                  return;
                }
                case keel.control.Policies.Decision.RequireApproval ra -> {
                  requestApproval(call, tool.get(), ra, v.token(), span);
                  return;
                }
                case keel.control.Policies.Decision.Allow a -> {}
              }
            }
            if (blockedByBudget(meter.beforeToolCall(agent, state, tool.get(), call.id()), span)) {
              return;
            }
            stage(new SessionEvent.ToolCallAuthorized(
                call.id(), tool.get().capability(), tool.get().idempotent(), v.token().principal(), v.token().tokenId()), span);
            String key = idempotencyKey(call);
            stage(new SessionEvent.ToolCallStarted(call.id(), 1, key), span);
            execute(tool.get(), call, span, key, v.token());
          }
        }
      }
    }

    /**
     * Asks for every approval the step's calls need at once, so approvers see them together; the
     * calls still run in the model's order. A call that fails its token, argument or deny checks is
     * left alone here: it is refused when its turn comes. Returns true when something was staged.
     */
    private boolean requestApprovalsAhead() {
      boolean staged = false;
      for (PendingCall p : List.copyOf(state.pending())) {
        if (p.state() != PendingCall.CallState.REQUESTED || !prechecked.add(p.call().id())) {
          continue;
        }
        Optional<Tool> tool = tools.tool(p.call().name());
        if (tool.isEmpty() || !tool.get().external()) {
          continue;
        }
        if (!(identity.authorize(presenter.present(tool.get().capability(), token()), record.id(), tool.get().capability())
            instanceof Identity.Verdict.Verified v)) {
          continue;
        }
        if (!ToolArguments.of(tool.get().spec()).problems(p.call().arguments()).isEmpty()) {
          continue;
        }
        if (policies.decide(policyCall(tool.get(), p.call().arguments())) instanceof keel.control.Policies.Decision.RequireApproval ra) {
          requestApproval(p.call(), tool.get(), ra, v.token(), toolSpan(p.call().id()));
          staged = true;
        }
      }
      return staged;
    }

    /** Records that a call waits for a human, with its inbox row in the same append. */
    private void requestApproval(
        ToolCall call, Tool tool, keel.control.Policies.Decision.RequireApproval ra, SessionToken who, String span) {
      String id = approvalId(call);
      java.time.Instant now = clock.instant();
      java.time.Instant expires = now.plus(agent.spec().approval().flatMap(AgentDescriptor.ApprovalSpec::expiresAfter)
          .orElse(DEFAULT_APPROVAL_EXPIRY));
      String requester = state.chain().isEmpty() ? "" : state.chain().getFirst();
      stage(new SessionEvent.ApprovalRequested(call.id(), id, tool.catalogName(), call.arguments(), ra.valueUsd(),
          ra.reasons(), expires, who.principal(), requester), span);
      approvals.add(keel.data.Approval.pending(id, record.id(), call.id(), agent.name(), record.owner(), tool.catalogName(),
          call.arguments(), ra.valueUsd(), ra.reasons(), who.principal(), requester, reasoning(call), now, expires));
    }

    /** The model's text of the step that asked for {@code call}: why it wants the action. */
    private String reasoning(ToolCall call) {
      List<Message> conversation = state.conversation();
      for (int i = conversation.size() - 1; i >= 0; i--) {
        if (conversation.get(i) instanceof Message.Assistant a && a.toolCalls().stream().anyMatch(c -> c.id().equals(call.id()))) {
          return a.text();
        }
      }
      return "";
    }

    /** The id of a call's approval: derived from its key, so a step redone after a crash asks under the same id. */
    private String approvalId(ToolCall call) {
      try {
        byte[] h = java.security.MessageDigest.getInstance("SHA-256")
            .digest(idempotencyKey(call).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return "apr_" + java.util.HexFormat.of().formatHex(h, 0, 12);
      } catch (java.security.NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }

    private keel.control.Policies.Call policyCall(Tool tool, String arguments) {
      String principal = state.chain().isEmpty() ? "" : state.chain().getFirst();
      return new keel.control.Policies.Call(agent, tool.catalogName(), tool.sideEffects() == Tool.SideEffects.READ_ONLY,
          arguments, tool.valueUsdExpression(),
          new keel.control.Policies.SessionInfo(record.id(), record.rootId(), state.parentSessionId(), principal,
              state.stepsSinceInput()),
          clock.instant(), catalog.policies());
    }

    private static String denial(keel.control.Policies.Decision.Deny d) {
      return "denied by " + d.reason().rule() + ": " + d.reason().reason();
    }

    /**
     * A call a human approved, with the arguments the human left: it is checked again (token and
     * grant, arguments, deny rules) before it runs, so an edit never bypasses a rule.
     */
    private void runApproved(PendingCall p, String span) {
      ToolCall call = p.call();
      Optional<Tool> tool = tools.tool(call.name());
      if (tool.isEmpty()) {
        stage(new SessionEvent.ToolCallDenied(call.id(), "the tool \"" + call.name() + "\" is no longer available"), span);
        return;
      }
      Optional<SessionToken> verified = reauthorize(p, tool.get(), span);
      if (verified.isEmpty()) {
        return;
      }
      List<String> problems = ToolArguments.of(tool.get().spec()).problems(call.arguments());
      if (!problems.isEmpty()) {
        deny(call, "invalid arguments for " + call.name() + " as approved: " + String.join("; ", problems), verified, span);
        return;
      }
      if (policies.recheck(policyCall(tool.get(), call.arguments())) instanceof keel.control.Policies.Decision.Deny d) {
        deny(call, "approved, but the call as approved is " + denial(d), verified, span);
        return;
      }
      if (blockedByBudget(meter.beforeToolCall(agent, state, tool.get(), call.id()), span)) {
        return;
      }
      stage(new SessionEvent.ToolCallAuthorized(
          call.id(), tool.get().capability(), tool.get().idempotent(), verified.get().principal(), verified.get().tokenId()), span);
      String key = idempotencyKey(call);
      stage(new SessionEvent.ToolCallStarted(call.id(), 1, key), span);
      execute(tool.get(), call, span, key, verified.get());
    }

    /**
     * Takes a decision from the inbox, if one arrived, and records it for the call that waits for
     * it; a decision nothing waits for is rejected. Returns true when something was staged.
     */
    private boolean decideIfAnswered() {
      Optional<Input> in = take(keel.data.ApprovalStore.DECISION_KIND);
      if (in.isEmpty()) {
        return false;
      }
      Input input = in.get();
      Optional<JsonNode> parsed = jsonBody(input, "the approval decision");
      if (parsed.isEmpty()) {
        return true;
      }
      JsonNode body = parsed.get();
      String approvalId = body.path("approval_id").asString("");
      String decision = body.path("decision").asString("");
      Optional<PendingCall> waiting = state.pending().stream()
          .filter(p -> p.state() == PendingCall.CallState.AWAITING_APPROVAL && p.approvalId().equals(approvalId))
          .findFirst();
      if (waiting.isEmpty() || !List.of("approved", "denied", "expired").contains(decision)) {
        stage(new SessionEvent.InputRejected(input.inputId(), "no tool call is waiting for approval " + approvalId), input);
        return true;
      }
      String callId = waiting.get().call().id();
      stage(new SessionEvent.ApprovalDecided(callId, approvalId, decision, input.sender(), body.path("reason").asString(""),
          body.path("arguments").asString("")), input, toolSpan(callId));
      return true;
    }

    /** A call authorized before (a retry, a re-run after a crash) is checked again before it runs. */
    private Optional<SessionToken> reauthorize(PendingCall p, Tool tool, String span) {
      switch (identity.authorize(presenter.present(tool.capability(), token()), record.id(), tool.capability())) {
        case Identity.Verdict.Verified v -> {
          return Optional.of(v.token());
        }
        case Identity.Verdict.Refused r -> {
          deny(p.call(), "not run again: " + r.reason(), r.token(), span);
          return Optional.empty();
        }
      }
    }

    private void deny(ToolCall call, String reason, Optional<SessionToken> who, String span) {
      stage(new SessionEvent.ToolCallDenied(
          call.id(), reason, who.map(SessionToken::principal).orElse(""), who.map(SessionToken::tokenId).orElse("")), span);
    }

    /**
     * Starts the child session of a sub-agent call. The call is made durable first, so that its
     * key, and with it the child's id, never changes; the child is created (or found, after a
     * crash) before {@code SubagentSpawned} is recorded.
     */
    private void spawn(PendingCall p, String capability, SessionToken parent, String span) {
      ToolCall call = p.call();
      String childAgent = capability.substring(Subagents.PREFIX.length());
      List<String> problems = ToolArguments.of(Subagents.spec(childAgent)).problems(call.arguments());
      if (!problems.isEmpty()) {
        deny(call, "invalid arguments for " + call.name() + ": " + String.join("; ", problems), Optional.of(parent), span);
        return;
      }
      String task = Json.string(Json.arguments(call.arguments()), "task");
      Optional<AgentCatalog.Versioned> child = catalog.find(childAgent);
      if (child.isEmpty()) {
        deny(call, "there is no agent named \"" + childAgent + "\" to delegate to", Optional.of(parent), span);
        return;
      }
      String childOwner = child.get().agent().metadata().owner();
      if (!childOwner.equals(record.owner())) {
        // roles are scoped to owners: delegating across owners would let one team run another's agent
        deny(call, "agent \"" + childAgent + "\" belongs to owner \"" + childOwner + "\", not \"" + record.owner()
            + "\"; an agent delegates only to agents of its own owner", Optional.of(parent), span);
        return;
      }
      // the fan-out bound counts every earlier sub-agent call of this session (each has its result in
      // the conversation: calls run one at a time, so none is still in flight)
      int delegatedBefore = (int) state.conversation().stream()
          .filter(m -> m instanceof keel.core.Message.ToolResult r && r.toolName().startsWith(Subagents.TOOL_PREFIX))
          .count();
      switch (identity.delegate(parent, childAgent, child.get().agent().spec().tools(), delegatedBefore)) {
        case Identity.Delegation.Refused r -> deny(call, r.reason(), Optional.of(parent), span);
        case Identity.Delegation.Allowed a -> {
          flush();
          String childId = Subagents.childSessionId(record.id(), idempotencyKey(call));
          SessionRecord created = createChild(childId, child.get(), a, task, parent);
          stage(new SessionEvent.SubagentSpawned(
              call.id(), capability, childId, created.agent(), created.revision(), parent.principal(), parent.tokenId()), span);
          flush();
          wake.accept(childId);
        }
      }
    }

    private SessionRecord createChild(
        String childId, AgentCatalog.Versioned child, Identity.Delegation.Allowed delegation, String task, SessionToken parent) {
      String name = child.agent().name();
      String owner = child.agent().metadata().owner();
      SessionEvent.SessionStarted started = new SessionEvent.SessionStarted(
          name, child.revision(), owner, parent.principal(), true, delegation.grants(), delegation.chain(), record.id());
      Input first = new Input(childId, Subagents.taskInputId(childId), "message", task, parent.principal(), clock.instant());
      try {
        store.events().create(new NewSession(
            childId, name, child.revision(), owner, record.traceId(), Optional.of(record.id()), record.rootId(),
            List.of(new PendingEvent(started, Spans.session(childId))), SessionStatus.IDLE, Optional.of(first)));
      } catch (KeelException.Conflict e) {
        // created by this call before a crash: it is the child, whatever it has done since
      }
      SessionRecord r = store.events().session(childId).orElseThrow(
          () -> new KeelException.Unavailable("child session " + childId + " was created but cannot be read", null));
      if (!r.parentId().equals(Optional.of(record.id()))) {
        throw new IllegalStateException(
            "session " + childId + " exists but is not a child of " + record.id() + "; refusing to adopt it");
      }
      return r;
    }

    /** Waits for a child's result; when it is in the inbox, it becomes the result of the call. */
    private Outcome awaitingSubagent() {
      Optional<Input> in = take(Subagents.RESULT_KIND);
      if (in.isEmpty()) {
        return suspend();
      }
      Input input = in.get();
      Optional<JsonNode> parsed = jsonBody(input, "the sub-agent result");
      if (parsed.isEmpty()) {
        return null;
      }
      JsonNode body = parsed.get();
      String child = body.path("child_session_id").asString("");
      String outcome = body.path("outcome").asString("");
      Optional<PendingCall> waiting = state.pending().stream()
          .filter(p -> p.state() == PendingCall.CallState.SPAWNED && p.subagentSessionId().equals(child))
          .findFirst();
      if (waiting.isEmpty() || !List.of("completed", "failed", "cancelled").contains(outcome)) {
        stage(new SessionEvent.InputRejected(input.inputId(), "no sub-agent call is waiting for session " + child), input);
        return null;
      }
      String callId = waiting.get().call().id();
      Content result = store.blobs().store(body.path("result").asString(""));
      stage(new SessionEvent.SubagentCompleted(callId, child, outcome, result, !outcome.equals("completed")),
          input, toolSpan(callId));
      return null;
    }

    private Outcome awaitingHuman() {
      Optional<Input> resume = take("resume");
      if (resume.isPresent()) {
        if (state.driftPending().isEmpty()) {
          stage(new SessionEvent.InputRejected(resume.get().inputId(), "the session is not suspended on a model drift"), resume.get());
        } else {
          stage(new SessionEvent.SessionResumed(resume.get().sender(), state.driftPending()), resume.get());
        }
        return null;
      }
      Optional<Input> in = take("resolve");
      if (in.isEmpty()) {
        return suspend();
      }
      Input input = in.get();
      Optional<JsonNode> parsed = jsonBody(input, "the resolution");
      if (parsed.isEmpty()) {
        return null;
      }
      JsonNode body = parsed.get();
      String callId = body.path("call_id").asString("");
      String resolution = body.path("resolution").asString("");
      String result = body.path("result").asString("");
      boolean waiting =
          state.pending().stream()
              .anyMatch(p -> p.call().id().equals(callId) && p.state() == PendingCall.CallState.OUTCOME_UNKNOWN);
      if (!waiting) {
        stage(new SessionEvent.InputRejected(input.inputId(), "tool call \"" + callId + "\" is not waiting for a decision"), input);
      } else {
        String told =
            !result.isEmpty()
                ? result
                : resolution.equals("succeeded")
                    ? "an operator confirmed that the call succeeded"
                    : "an operator recorded that the call failed";
        stage(new SessionEvent.ToolOutcomeResolved(callId, resolution, told, input.sender()), input, toolSpan(callId));
      }
      return null;
    }

    private boolean interruptIfAsked() {
      if (agent.spec().concurrency().onBusy() != AgentDescriptor.OnBusy.INTERRUPT) {
        return false;
      }
      Optional<Input> msg = take("message");
      if (msg.isEmpty()) {
        return false;
      }
      Input in = msg.get();
      stage(new SessionEvent.StepInterrupted("a new message arrived (on_busy: interrupt)"));
      stage(new SessionEvent.InputReceived(in.inputId(), in.body(), in.sender()), in);
      return true;
    }

    /** A model call, once the agent's budgets allow it; the reservation ends with the call. */
    private Outcome callModel() {
      Optional<SessionToken> caller = verifiedForModel();
      if (caller.isEmpty()) {
        return null;
      }
      List<ToolSpec> offered = offeredTools(caller.get());
      if (blockedByBudget(meter.beforeModelCall(agent, state, offered), Spans.model(record.id(), state.modelCalls() + 1))) {
        return null;
      }
      long started = System.nanoTime();
      try {
        return callGateway(offered);
      } finally {
        meter.modelCallEnded(System.nanoTime() - started);
      }
    }

    /**
     * Stages what a budget check says: its warnings, or the block that suspends the session.
     *
     * @return true when the session is now budget-blocked and the call must not be made
     */
    private boolean blockedByBudget(Metering.Check check, String span) {
      switch (check) {
        case Metering.Check.Stop s -> {
          stage(s.blocked(), span);
          return true;
        }
        case Metering.Check.Go g -> {
          for (SessionEvent.BudgetWarning w : g.warnings()) {
            stage(w, span);
          }
          return false;
        }
      }
    }

    /** Goes on once the budget that blocks the session allows the call; until then it waits, suspended. */
    private Outcome budgetBlocked() {
      SessionEvent.BudgetBlocked block = state.budgetBlock().orElseThrow();
      Optional<String> reason = meter.unblocked(block);
      if (reason.isPresent()) {
        stage(new SessionEvent.BudgetUnblocked(block.kind(), reason.get()));
        return null;
      }
      return suspend();
    }

    /** Calls the model through the gateway, offering {@code offered}, and stages what it answered. */
    private Outcome callGateway(List<ToolSpec> offered) {
      String span = Spans.model(record.id(), state.modelCalls() + 1);
      ModelRequest request =
          new ModelRequest(
              agent.name(),
              record.id(),
              agent.spec().model(),
              agent.spec().instructions(),
              resolve(state.conversation()),
              offered,
              state.stepsSinceInput());
      // checked per piece, so a client that subscribes during a long call sees the rest of its text
      ModelStream stream =
          text -> {
            if (bus.hasListeners(record.id())) {
              bus.publish(record.id(), new SessionFrame.Delta(record.id(), text));
            }
          };
      ModelFailure last = null;
      for (int attempt = 1; attempt <= MODEL_ATTEMPTS; attempt++) {
        // no model call for a session another node has taken over
        signals.checkLease();
        long started = System.nanoTime();
        try {
          ModelGateway.Call call =
              TraceContext.with(TraceContext.traceparent(record.traceId(), span), () -> gateway.call(agent, request, state, stream, tools));
          long latency = (System.nanoTime() - started) / 1_000_000;
          meter.modelCallMade(call);
          for (SessionEvent.ModelEscalated e : call.escalations()) {
            stage(e, span);
          }
          if (call.drift().isPresent()) {
            SessionEvent.ModelDrifted d = call.drift().get();
            stage(d, span);
            if (d.action().equals("suspend")) {
              // the response is not used: the session waits for a human to accept the version
              return null;
            }
            if (d.action().equals("fail")) {
              stage(
                  new SessionEvent.SessionFailed(
                      "model_drift",
                      "the provider answered with " + d.reported() + " instead of the pinned " + d.pinned()
                          + " (spec.model.on_drift: fail)",
                      false),
                  span);
              ended();
              return null;
            }
          }
          ModelResponse r = call.response();
          stage(
              new SessionEvent.ModelResponded(
                  state.stepsSinceInput(), r.text(), r.toolCalls(), r.usage(), r.modelVersion(), latency,
                  call.provider(), call.model(), call.costUsd()),
              span);
          if (r.toolCalls().isEmpty() && state.task()) {
            stage(new SessionEvent.SessionCompleted(r.text()));
            ended();
          }
          return null;
        } catch (KeelException.Invalid e) {
          stage(new SessionEvent.SessionFailed("model_unavailable", e.getMessage(), false), span);
          ended();
          return null;
        } catch (ModelFailure f) {
          last = f;
          if (!f.retryable()) {
            break;
          }
          // exponential backoff with full jitter, unless the provider said how long to wait
          Duration wait = f.retryAfter().orElse(Duration.ofMillis(
              100 + java.util.concurrent.ThreadLocalRandom.current().nextLong(200L << attempt)));
          if (attempt == MODEL_ATTEMPTS || wait.compareTo(MAX_INLINE_RETRY_WAIT) > 0) {
            flush();
            return new Outcome.RetryAfter(wait.compareTo(Duration.ofSeconds(5)) < 0 ? Duration.ofSeconds(5) : wait, f.getMessage());
          }
          sleep(wait);
        } catch (RuntimeException e) {
          last = new ModelFailure(ModelFailure.Kind.INVALID_RESPONSE,
              "model provider \"" + agent.spec().model().provider() + "\" failed: " + e, null, e);
          break;
        }
      }
      stage(new SessionEvent.SessionFailed("model_error", last.getMessage(), false), span);
      ended();
      return null;
    }

    /**
     * The session's token, checked before a model call. If the held token is refused, a fresh one
     * is tried once; if that is refused too, the session fails: it never acts without an identity.
     */
    private Optional<SessionToken> verifiedForModel() {
      String reason = "";
      for (int attempt = 0; attempt < 2; attempt++) {
        switch (identity.verify(presenter.present("model", token()), record.id())) {
          case Identity.Verdict.Verified v -> {
            return Optional.of(v.token());
          }
          case Identity.Verdict.Refused r -> {
            LOG.warn("session {}: its token was refused for a model call: {}", record.id(), r.reason());
            reason = r.reason();
            token = null;
          }
        }
      }
      stage(new SessionEvent.SessionFailed("identity_refused",
          "the session's token was refused for a model call: " + reason, false));
      ended();
      return Optional.empty();
    }

    /** The tools the verified token grants, and a tool for each granted sub-agent that exists. */
    /** Whether the tool is internal or of an MCP server of the session's own owner. */
    private boolean ownTool(Tool t) {
      return t.owner().isEmpty() || t.owner().equals(record.owner());
    }

    private List<ToolSpec> offeredTools(SessionToken caller) {
      List<ToolSpec> out = new ArrayList<>(tools.granted(caller.grants()).stream().filter(this::ownTool).map(Tool::spec).toList());
      for (String a : Subagents.agents(caller.grants())) {
        if (catalog.find(a).isPresent()) {
          out.add(Subagents.spec(a));
        }
      }
      return out;
    }

    /** The token the session acts with: issued at its first use in a run, renewed near expiry. */
    private SessionToken token() {
      List<String> grants = grants();
      if (token == null || identity.dueForRefresh(token) || !token.grants().equals(grants)) {
        // a narrowing revision activated since the token was issued takes effect at once
        token = identity.issue(subject(grants));
      }
      return token;
    }

    /**
     * What the session's token grants. A root session's grants are its revision's {@code
     * spec.tools}; a sub-agent's are the intersection recorded when it was spawned. Either is
     * narrowed to the agent's active revision's {@code spec.tools}, so a tool removed by a newer
     * revision is no longer usable by sessions already running; a tool added by one is not granted
     * to them (they keep their revision).
     */
    private List<String> grants() {
      List<String> own = state.parentSessionId().isEmpty() ? agent.spec().tools() : state.grants();
      return catalog.active(agent.name())
          .map(active -> Grants.intersect(own, active.agent().spec().tools()))
          .orElse(List.of());
    }

    /** Who the session's token is for, with {@code grants}. */
    private Identity.Subject subject(List<String> grants) {
      List<String> chain = state.chain();
      if (chain.isEmpty()) {
        // restored from a snapshot taken before identities: the first event says who started it
        chain = store.events().events(record.id(), 0, 1).stream()
            .map(e -> e.event() instanceof SessionEvent.SessionStarted st ? st.principal() : "")
            .filter(x -> !x.isEmpty()).toList();
      }
      return new Identity.Subject(agent.name(), state.revision(), record.id(), record.rootId(), grants, chain);
    }

    private void stageModelCalled() {
      SessionToken t = token();
      stage(new SessionEvent.ModelCalled(
          state.stepsSinceInput(), agent.spec().model().provider(), agent.spec().model().name(), t.principal(), t.tokenId()));
    }

    private void execute(Tool tool, ToolCall call, String span, String key, SessionToken verified) {
      // checked before the start is recorded too: a run that stops here leaves the call to the next
      // owner to run, rather than a started call whose outcome nobody knows
      signals.checkLease();
      flush();
      // a node paused past its lease must not call the tool: the new owner treats the call as started
      signals.checkLease();
      long started = System.nanoTime();
      ToolOutput out;
      try {
        out = tool.call(new ToolContext(agent, record.id(), call.id(), key, verified, TraceContext.traceparent(record.traceId(), span)), call.arguments());
      } catch (RuntimeException e) {
        LOG.warn("session {}: tool {} threw: {}", record.id(), call.name(), e.toString());
        out = ToolOutput.error("the tool \"" + call.name() + "\" failed: " + e.getMessage());
      }
      String text = out.text();
      if (text.length() > MAX_TOOL_OUTPUT_CHARS) {
        text = text.substring(0, MAX_TOOL_OUTPUT_CHARS) + "\n[truncated: the result was " + out.text().length() + " characters]";
      }
      Content content = store.blobs().store(text);
      long duration = (System.nanoTime() - started) / 1_000_000;
      stage(new SessionEvent.ToolCallCompleted(call.id(), content, out.error(), duration), span);
      if (state.pending().isEmpty() && state.stepsSinceInput() < agent.spec().maxSteps() && !wantsInterrupt()) {
        // Stage the next model call with this completion: one append instead of two.
        stageModelCalled();
      }
      if (!tool.idempotent()) {
        flush();
      }
    }

    private boolean wantsInterrupt() {
      return agent.spec().concurrency().onBusy() == AgentDescriptor.OnBusy.INTERRUPT
          && inbox.stream().anyMatch(i -> i.kind().equals("message"));
    }

    private List<Message> resolve(List<Message> conversation) {
      BlobStore blobs = store.blobs();
      List<Message> out = new ArrayList<>(conversation.size());
      for (Message m : conversation) {
        if (m instanceof Message.ToolResult r && r.content() instanceof Content.Blob) {
          out.add(new Message.ToolResult(r.callId(), r.toolName(), Content.inline(blobs.text(r.content())), r.error()));
        } else {
          out.add(m);
        }
      }
      return out;
    }

    /**
     * The key a call keeps on every attempt. Call ids are unique only within one model response
     * (models reuse them across steps), so the key also names the response: its model call number.
     */
    private String idempotencyKey(ToolCall call) {
      return record.id() + "/" + state.modelCalls() + "/" + call.id();
    }

    private String toolSpan(String callId) {
      return Spans.tool(record.id(), state.modelCalls() + "/" + callId);
    }

    /** Called right after a terminal event is staged. */
    private void ended() {
      deliverOnEnd();
      if (agent.spec().memory().type() == AgentDescriptor.MemoryType.SESSION) {
        flush();
        store.memory().deleteScope(agent.name(), record.id());
      }
    }

    /**
     * What an ended session owes others, written in the same append as its end: a sub-agent's
     * result goes to its parent's inbox; the children a parent still waits for are cancelled.
     */
    private void deliverOnEnd() {
      SessionStatus status = state.status().orElseThrow();
      String me = "agent:" + agent.name();
      if (!state.parentSessionId().isEmpty()) {
        String outcome = switch (status) {
          case COMPLETED -> "completed";
          case FAILED -> "failed";
          case CANCELLED -> "cancelled";
          default -> throw new IllegalStateException("deliverOnEnd while " + status.wireName());
        };
        String result = switch (status) {
          case COMPLETED -> state.lastAnswer();
          case FAILED -> "the agent \"" + agent.name() + "\" failed: " + state.failure();
          default -> "the agent \"" + agent.name() + "\" was " + state.failure();
        };
        String body = keel.core.EventCodec.mapper().writeValueAsString(java.util.Map.of(
            "child_session_id", record.id(), "agent", agent.name(), "outcome", outcome, "result", result));
        deliveries.add(new Input(
            state.parentSessionId(), Subagents.resultInputId(record.id()), Subagents.RESULT_KIND, body, me, clock.instant()));
      }
      for (PendingCall p : state.pending()) {
        String child =
            p.state() == PendingCall.CallState.SPAWNED ? p.subagentSessionId()
                : p.state() == PendingCall.CallState.REQUESTED && tools.tool(p.call().name()).isEmpty()
                        && p.call().name().startsWith(Subagents.TOOL_PREFIX)
                    // a call that may have created its child before a crash cut it short
                    ? Subagents.childSessionId(record.id(), idempotencyKey(p.call()))
                    : "";
        if (!child.isEmpty()) {
          deliveries.add(new Input(child, Subagents.cancelInputId(child), "cancel",
              "its parent session " + record.id() + " is " + status.wireName(), me, clock.instant()));
        }
      }
    }

    private Outcome suspend() {
      flush();
      return new Outcome.Suspended();
    }

    /**
     * Parses an input's JSON body; when it is not JSON, stages the input's rejection (saying
     * {@code what} was invalid) and returns empty.
     */
    private Optional<JsonNode> jsonBody(Input input, String what) {
      try {
        return Optional.of(keel.core.EventCodec.mapper().readTree(input.body()));
      } catch (RuntimeException e) {
        stage(new SessionEvent.InputRejected(input.inputId(), what + " is not valid JSON"), input);
        return Optional.empty();
      }
    }

    private Optional<Input> take(String kind) {
      for (Iterator<Input> it = inbox.iterator(); it.hasNext(); ) {
        Input in = it.next();
        if (in.kind().equals(kind)) {
          it.remove();
          return Optional.of(in);
        }
      }
      return Optional.empty();
    }

    private void readInbox() {
      inbox = new ArrayDeque<>(store.events().pendingInputs(record.id()));
      inbox.removeIf(i -> consumed.contains(i.inputId()));
    }

    private void stage(SessionEvent event) {
      stage(event, Spans.session(record.id()));
    }

    private void stage(SessionEvent event, Input consumes) {
      stage(event, consumes, Spans.input(record.id(), consumes.inputId()));
    }

    private void stage(SessionEvent event, Input consumes, String span) {
      consumed.add(consumes.inputId());
      stage(event, span);
    }

    private void stage(SessionEvent event, String span) {
      if (event instanceof SessionEvent.StepInterrupted || event instanceof SessionEvent.SessionCancelled
          || event instanceof SessionEvent.SessionFailed) {
        for (PendingCall p : state.pending()) {
          if (p.state() == PendingCall.CallState.AWAITING_APPROVAL) {
            withdrawn.add(p.approvalId());
          }
        }
      }
      StoredEvent stored =
          new StoredEvent(record.id(), state.lastSeq() + 1, clock.instant(), node, record.traceId(), span, event);
      audit.addAll(AuditTrail.of(state, record.id(), event, tools::tool));
      state.apply(stored);
      meter.staged(stored);
      staged.add(new PendingEvent(event, span));
      stagedStored.add(stored);
    }

    private void flush() {
      if (staged.isEmpty()) {
        return;
      }
      long sinceSnapshot = state.lastSeq() - snapshotSeq;
      boolean snapshotDue =
          sinceSnapshot >= SNAPSHOT_MIN_EVENTS && sinceSnapshot >= state.conversation().size();
      List<String> consumedNow = List.copyOf(consumed);
      List<Input> deliveredNow = List.copyOf(deliveries);
      List<keel.data.Approval> requestedNow = List.copyOf(approvals);
      Append append =
              new Append(
                  record.id(),
                  flushedSeq,
                  staged,
                  state.status().orElseThrow(),
                  consumedNow,
                  snapshotDue ? Optional.of(state.snapshot()) : Optional.empty(),
                  deliveredNow,

                  meter.costs(state.lastSeq()),
                  meter.settlements(),
                  requestedNow).withAudit(List.copyOf(audit));
      Optional<keel.data.LeaseStore.Lease> lease = signals.lease();
      store.events().append(lease.isPresent() ? append.withLease(lease.get()) : append);
      meter.flushed();
      flushedSeq = state.lastSeq();
      if (snapshotDue) {
        snapshotSeq = flushedSeq;
      }
      for (StoredEvent e : stagedStored) {
        bus.publish(record.id(), new SessionFrame.Event(e));
      }
      staged.clear();
      stagedStored.clear();
      consumed.clear();
      deliveries.clear();
      audit.clear();
      approvals.clear();
      for (Input d : deliveredNow) {
        wake.accept(d.sessionId());
      }
      for (keel.data.Approval a : requestedNow) {
        try {
          approvalChanged.accept("requested", a);
        } catch (RuntimeException e) {
          LOG.warn("session {}: an approval listener failed: {}", record.id(), e.toString());
        }
      }
      if (!withdrawn.isEmpty()) {
        java.util.Set<String> ids = java.util.Set.copyOf(withdrawn);
        withdrawn.clear();
        try {
          int n = store.approvals().withdraw(record.id(), ids, "the call no longer waits: the session is "
              + state.status().orElseThrow().wireName(), clock.instant());
          if (n > 0) {
            // the approvals inbox and the dashboard drop them from the pending list live
            for (String id : ids.stream().sorted().toList()) {
              store.approvals().find(id).filter(a -> a.status() == keel.data.Approval.Status.WITHDRAWN).ifPresent(a -> {
                try {
                  approvalChanged.accept("withdrawn", a);
                } catch (RuntimeException e) {
                  LOG.warn("session {}: an approval listener failed: {}", record.id(), e.toString());
                }
              });
            }
          }
        } catch (KeelException e) {
          // the calls no longer wait whatever the inbox says; a decision for them is rejected
          LOG.warn("session {}: could not withdraw approvals {}: {}", record.id(), ids, e.getMessage());
        }
      }
    }
  }

  private static void sleep(Duration d) {
    try {
      Thread.sleep(d);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KeelException.Unavailable("interrupted while waiting to retry a model call", e);
    }
  }
}
