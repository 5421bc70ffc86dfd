package keel.core;

import java.util.List;
import java.util.Objects;

/**
 * Everything that happens to a session, as an append-only log. Each event holds only what is new:
 * the conversation is the fold of the log, never re-serialised per step. The closed set is consumed
 * by exhaustive switches (no default), so adding an event is a compile error wherever it matters.
 *
 * <p>A tool call's lifecycle is: requested (inside {@link ModelResponded}), then {@link
 * ToolCallAuthorized} or {@link ToolCallDenied}, {@link ToolCallStarted}, and {@link
 * ToolCallCompleted}. After a crash, a started call that never completed is re-run only when its
 * tool is idempotent; otherwise it becomes {@link ToolOutcomeUnknown} and waits for a human, who
 * answers with {@link ToolOutcomeResolved}. A call of a sub-agent goes from requested to {@link
 * SubagentSpawned} (the session waits) to {@link SubagentCompleted}, which holds the child's result.
 */
public sealed interface SessionEvent {

  /** The stable name of the event type, as stored and shown. */
  default String type() {
    return getClass().getSimpleName();
  }

  /**
   * The session was created for one revision of an agent.
   *
   * @param agent the agent's name
   * @param revision the agent revision the session runs with, for its whole life
   * @param owner the agent's owner at that revision
   * @param principal who started the session: an operator, or for a sub-agent the delegating
   *     agent ({@code agent:<name>})
   * @param task whether the session completes after its first answer (a task), or stays open for
   *     more messages (a conversation)
   * @param grants the capability URIs the session's tokens carry: the agent's {@code spec.tools}
   *     for a root session, their intersection with the parent's grants for a sub-agent. Empty in
   *     logs recorded before sessions had identities (their grants are the revision's {@code
   *     spec.tools})
   * @param chain the delegation chain: who started the root session, then each delegating agent
   *     (the session's own agent is not in it). Empty in logs recorded before sessions had
   *     identities, which read as {@code [principal]}
   * @param parentSessionId the session that spawned this one, or empty for a root session
   */
  record SessionStarted(
      String agent,
      int revision,
      String owner,
      String principal,
      boolean task,
      List<String> grants,
      List<String> chain,
      String parentSessionId)
      implements SessionEvent {
    public SessionStarted {
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(principal, "principal");
      // logs recorded before identities lack these
      grants = grants == null ? List.of() : List.copyOf(grants);
      chain = chain == null ? List.of() : List.copyOf(chain);
      parentSessionId = parentSessionId == null ? "" : parentSessionId;
    }

    /** A start without recorded grants or chain (old logs, tests of the fold). */
    public SessionStarted(String agent, int revision, String owner, String principal, boolean task) {
      this(agent, revision, owner, principal, task, List.of(), List.of(), "");
    }
  }

  /** A message from the inbox became part of the conversation. */
  record InputReceived(String inputId, String text, String sender) implements SessionEvent {
    public InputReceived {
      Objects.requireNonNull(inputId, "inputId");
      Objects.requireNonNull(text, "text");
      Objects.requireNonNull(sender, "sender");
    }
  }

  /**
   * A model call began. If the node dies before the response is recorded, the call is redone.
   *
   * @param principal who the call is made as ({@code agent:<name>}), from the session's verified
   *     token; empty in logs recorded before sessions had identities
   * @param tokenId the id ({@code jti}) of the token the call was made with, or empty
   */
  record ModelCalled(int step, String provider, String model, String principal, String tokenId)
      implements SessionEvent {
    public ModelCalled {
      Objects.requireNonNull(provider, "provider");
      Objects.requireNonNull(model, "model");
      principal = principal == null ? "" : principal;
      tokenId = tokenId == null ? "" : tokenId;
    }

    /** A model call recorded without an identity (old logs, tests of the fold). */
    public ModelCalled(int step, String provider, String model) {
      this(step, provider, model, "", "");
    }
  }

  /**
   * The model answered. Its tool calls are the requests of this step; the response is recorded
   * before anything acts on it.
   *
   * @param modelVersion the model version the provider reported
   * @param latencyMillis how long the call took
   * @param provider the provider that answered (after routing: the small or the main model's)
   * @param model the model that was asked (the pinned version when the agent pins one)
   * @param costUsd what the call cost, from the price table (zero for unknown models)
   */
  record ModelResponded(
      int step,
      String text,
      List<ToolCall> toolCalls,
      Usage usage,
      String modelVersion,
      long latencyMillis,
      String provider,
      String model,
      java.math.BigDecimal costUsd)
      implements SessionEvent {
    public ModelResponded {
      Objects.requireNonNull(text, "text");
      toolCalls = List.copyOf(toolCalls);
      Objects.requireNonNull(usage, "usage");
      Objects.requireNonNull(modelVersion, "modelVersion");
      // events recorded before the model gateway carry no provider, model or cost
      provider = provider == null ? "" : provider;
      model = model == null ? "" : model;
      costUsd = costUsd == null ? java.math.BigDecimal.ZERO : costUsd;
    }

    /** A response without routing or cost information (scripted tests, old logs). */
    public ModelResponded(
        int step, String text, List<ToolCall> toolCalls, Usage usage, String modelVersion, long latencyMillis) {
      this(step, text, toolCalls, usage, modelVersion, latencyMillis, "", "", java.math.BigDecimal.ZERO);
    }
  }

  /**
   * The small model tried first did not do: the step goes to the agent's main model. The small
   * model's call is recorded with what it cost, because it was paid for.
   *
   * @param reason the condition from {@code spec.model.routing.escalate_on} that held, e.g. {@code
   *     invalid_tool_arguments}, with detail
   */
  record ModelEscalated(
      int step,
      String fromProvider,
      String fromModel,
      String toProvider,
      String toModel,
      String reason,
      Usage usage,
      java.math.BigDecimal costUsd)
      implements SessionEvent {
    public ModelEscalated {
      Objects.requireNonNull(fromProvider, "fromProvider");
      Objects.requireNonNull(fromModel, "fromModel");
      Objects.requireNonNull(toProvider, "toProvider");
      Objects.requireNonNull(toModel, "toModel");
      Objects.requireNonNull(reason, "reason");
      Objects.requireNonNull(usage, "usage");
      costUsd = costUsd == null ? java.math.BigDecimal.ZERO : costUsd;
    }
  }

  /**
   * A response came from another model version than the pinned one. What happens is the agent's
   * {@code spec.model.on_drift}: {@code warn} (the response is used), {@code fail} (the session
   * fails), or {@code suspend} (the response is not used and the session waits for a human).
   */
  record ModelDrifted(int step, String model, String pinned, String reported, String action)
      implements SessionEvent {
    public ModelDrifted {
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(pinned, "pinned");
      Objects.requireNonNull(reported, "reported");
      Objects.requireNonNull(action, "action");
    }
  }

  /**
   * A human let a session that was suspended on a model drift go on, accepting the reported
   * version for this session.
   */
  record SessionResumed(String by, String acceptedVersion) implements SessionEvent {
    public SessionResumed {
      Objects.requireNonNull(by, "by");
      Objects.requireNonNull(acceptedVersion, "acceptedVersion");
    }
  }

  /**
   * A requested tool call is allowed.
   *
   * @param capability the granted capability URI that allows it, e.g. {@code internal://memory}
   * @param idempotent whether the tool may safely run twice with the same idempotency key
   * @param principal who the call is made as, from the verified token that carries the grant;
   *     empty in logs recorded before sessions had identities
   * @param tokenId the id ({@code jti}) of that token, or empty
   */
  record ToolCallAuthorized(
      String callId, String capability, boolean idempotent, String principal, String tokenId)
      implements SessionEvent {
    public ToolCallAuthorized {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(capability, "capability");
      principal = principal == null ? "" : principal;
      tokenId = tokenId == null ? "" : tokenId;
    }

    /** An authorization recorded without an identity (old logs, tests of the fold). */
    public ToolCallAuthorized(String callId, String capability, boolean idempotent) {
      this(callId, capability, idempotent, "", "");
    }
  }

  /**
   * A requested tool call is refused; the reason goes back to the model as the call's result.
   *
   * @param principal who asked, as the session's token names it; empty when no token was verified
   *     (a refused token names nobody it can be trusted about) and in old logs
   * @param tokenId the id ({@code jti}) of the token presented, when it could be read, or empty
   */
  record ToolCallDenied(String callId, String reason, String principal, String tokenId)
      implements SessionEvent {
    public ToolCallDenied {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(reason, "reason");
      principal = principal == null ? "" : principal;
      tokenId = tokenId == null ? "" : tokenId;
    }

    /** A denial recorded without an identity (old logs, tests of the fold). */
    public ToolCallDenied(String callId, String reason) {
      this(callId, reason, "", "");
    }
  }

  /**
   * A requested call of a sub-agent ({@code agent://<name>}) was allowed and its child session
   * created: this session waits for it ({@code awaiting_subagent}). The child session's id is
   * derived from this session's id and the call's key, so a step redone after a crash finds the
   * child it created instead of creating a second one.
   *
   * @param capability the granted capability, {@code agent://<name>}
   * @param childSessionId the child session
   * @param agent the child's agent
   * @param revision the child's agent revision (the latest when it was spawned)
   * @param principal who spawned it ({@code agent:<name>} of this session)
   * @param tokenId the id ({@code jti}) of the token the spawn was authorized with
   */
  record SubagentSpawned(
      String callId,
      String capability,
      String childSessionId,
      String agent,
      int revision,
      String principal,
      String tokenId)
      implements SessionEvent {
    public SubagentSpawned {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(capability, "capability");
      Objects.requireNonNull(childSessionId, "childSessionId");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(tokenId, "tokenId");
    }
  }

  /**
   * A sub-agent's session ended and its result became the result of the call that spawned it,
   * which is what the model sees next.
   *
   * @param outcome how the child ended: {@code completed}, {@code failed} or {@code cancelled}
   * @param result the child's answer, or why it failed or was cancelled
   * @param error true unless the child completed
   */
  record SubagentCompleted(
      String callId, String childSessionId, String outcome, Content result, boolean error)
      implements SessionEvent {
    public SubagentCompleted {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(childSessionId, "childSessionId");
      Objects.requireNonNull(outcome, "outcome");
      Objects.requireNonNull(result, "result");
      if (!outcome.equals("completed") && !outcome.equals("failed") && !outcome.equals("cancelled")) {
        throw new IllegalArgumentException(
            "sub-agent call " + callId + ": outcome must be completed, failed or cancelled, got \""
                + outcome + "\"");
      }
    }
  }

  /**
   * A requested external call needs a human's decision before it may run: its value is over the
   * agent's threshold, a rule or a policy says so, or the agent is supervised. The call waits
   * ({@code awaiting_approval} once it is the next call to run); the request is in the approvals
   * inbox, written in the same append as this event.
   *
   * @param approvalId the approval's id in the inbox
   * @param tool the tool as policies name it, {@code <server>/<tool>}
   * @param arguments the call's arguments as the model wrote them (JSON object text)
   * @param valueUsd the action's value, from the tool's value expression; zero when it has none
   * @param reasons why it needs approval, each naming the rule that said so
   * @param expiresAt when the request counts as denied if nobody decided it
   * @param principal who the call would be made as ({@code agent:<name>})
   * @param requester who started the (root) session; never allowed to decide it
   */
  record ApprovalRequested(
      String callId,
      String approvalId,
      String tool,
      String arguments,
      java.math.BigDecimal valueUsd,
      List<PolicyReason> reasons,
      java.time.Instant expiresAt,
      String principal,
      String requester)
      implements SessionEvent {
    public ApprovalRequested {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(approvalId, "approvalId");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
      valueUsd = valueUsd == null ? java.math.BigDecimal.ZERO : valueUsd;
      reasons = List.copyOf(reasons);
      Objects.requireNonNull(expiresAt, "expiresAt");
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(requester, "requester");
    }
  }

  /**
   * A human (or the expiry of the request) decided a call that waited for approval. An approved
   * call is checked again and then runs, with the edited arguments when the approver gave some; a
   * denied or expired one is not run, and the model reads the decision and its reason as the call's
   * result.
   *
   * @param decision {@code approved}, {@code denied} or {@code expired}
   * @param by the operator who decided, or {@code keel:expiry}
   * @param arguments the arguments the approver set instead of the model's; empty when unchanged
   */
  record ApprovalDecided(
      String callId, String approvalId, String decision, String by, String reason, String arguments)
      implements SessionEvent {
    public ApprovalDecided {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(approvalId, "approvalId");
      Objects.requireNonNull(decision, "decision");
      Objects.requireNonNull(by, "by");
      Objects.requireNonNull(reason, "reason");
      arguments = arguments == null ? "" : arguments;
      if (!decision.equals("approved") && !decision.equals("denied") && !decision.equals("expired")) {
        throw new IllegalArgumentException(
            "approval " + approvalId + ": decision must be approved, denied or expired, got \"" + decision + "\"");
      }
    }

    /** Whether the call may run. */
    public boolean approved() {
      return decision.equals("approved");
    }
  }

  /**
   * A shadow-mode agent asked for an external call that changes something: it was recorded as a
   * proposed action and not executed. The model is told so as the call's result.
   *
   * @param tool the tool as policies name it, {@code <server>/<tool>}
   * @param valueUsd the action's value, from the tool's value expression; zero when it has none
   * @param principal who the call would have been made as
   */
  record ActionProposed(
      String callId, String tool, String arguments, java.math.BigDecimal valueUsd, String principal)
      implements SessionEvent {
    public ActionProposed {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
      valueUsd = valueUsd == null ? java.math.BigDecimal.ZERO : valueUsd;
      Objects.requireNonNull(principal, "principal");
    }

    /** What the model reads as the call's result. */
    public String told() {
      return "not executed: the agent runs in shadow mode, so \"" + tool
          + "\" was recorded as a proposed action for a human to review; nothing happened";
    }
  }

  /**
   * A tool call is about to run. Recorded durably before the tool is invoked.
   *
   * @param attempt 1 for the first run, higher when an idempotent call is re-run after a crash
   * @param idempotencyKey the same on every attempt of the call
   */
  record ToolCallStarted(String callId, int attempt, String idempotencyKey) implements SessionEvent {
    public ToolCallStarted {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(idempotencyKey, "idempotencyKey");
    }
  }

  /** A tool call ended, with its result or its error, which is what the model sees next. */
  record ToolCallCompleted(String callId, Content result, boolean error, long durationMillis)
      implements SessionEvent {
    public ToolCallCompleted {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(result, "result");
    }
  }

  /**
   * A non-idempotent tool call started before a crash and never completed: whether it happened is
   * unknown, so it is not re-run. The session waits for a human.
   */
  record ToolOutcomeUnknown(String callId, String reason) implements SessionEvent {
    public ToolOutcomeUnknown {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /**
   * A human said what became of a call whose outcome was unknown.
   *
   * @param resolution {@code succeeded}, {@code failed} or {@code retry}
   * @param result what the model is told, for {@code succeeded} and {@code failed}
   * @param decidedBy the operator who decided
   */
  record ToolOutcomeResolved(String callId, String resolution, String result, String decidedBy)
      implements SessionEvent {
    public ToolOutcomeResolved {
      Objects.requireNonNull(callId, "callId");
      Objects.requireNonNull(resolution, "resolution");
      Objects.requireNonNull(result, "result");
      Objects.requireNonNull(decidedBy, "decidedBy");
      if (!resolution.equals("succeeded") && !resolution.equals("failed") && !resolution.equals("retry")) {
        throw new IllegalArgumentException(
            "tool call " + callId + ": resolution must be succeeded, failed or retry, got \""
                + resolution + "\"");
      }
    }
  }

  /**
   * The running step stopped at a safe point because a new message arrived for an agent whose
   * {@code on_busy} policy is {@code interrupt}. Pending tool calls of the step are abandoned.
   */
  record StepInterrupted(String reason) implements SessionEvent {
    public StepInterrupted {
      Objects.requireNonNull(reason, "reason");
    }
  }

  /** The session answered its task and is finished. */
  record SessionCompleted(String answer) implements SessionEvent {
    public SessionCompleted {
      Objects.requireNonNull(answer, "answer");
    }
  }

  /**
   * The session failed. Failures are data: what happened and whether retrying could help.
   *
   * @param code a stable machine-readable code, for example {@code step_limit}
   */
  record SessionFailed(String code, String message, boolean retryable) implements SessionEvent {
    public SessionFailed {
      Objects.requireNonNull(code, "code");
      Objects.requireNonNull(message, "message");
    }
  }

  /**
   * An input was taken from the inbox without being acted on, for example a resolution for a call
   * that is no longer waiting, or a message to a session that has ended. The reason is recorded.
   */
  record InputRejected(String inputId, String reason) implements SessionEvent {
    public InputRejected {
      Objects.requireNonNull(inputId, "inputId");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /** An operator cancelled the session. */
  record SessionCancelled(String by, String reason) implements SessionEvent {
    public SessionCancelled {
      Objects.requireNonNull(by, "by");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /**
   * The next call (a model call, or the first pending tool call) would take one of the agent's
   * budgets over its limit, so the session suspends instead of failing. Nothing of the call was
   * done. The session resumes by itself with {@link BudgetUnblocked} when the window ends or the
   * agent's limit is raised.
   *
   * @param kind the budget, as {@link BudgetKind#wireName()}, e.g. {@code usd_per_day}
   * @param limit the agent's limit for it when the call was refused
   * @param used what the agent had spent in the window (settled calls)
   * @param reserved what calls in flight had reserved in the window
   * @param requested what this call would have reserved
   * @param windowEnd when the window ends and the budget starts again from zero
   */
  record BudgetBlocked(
      String kind,
      java.math.BigDecimal limit,
      java.math.BigDecimal used,
      java.math.BigDecimal reserved,
      java.math.BigDecimal requested,
      java.time.Instant windowEnd)
      implements SessionEvent {
    public BudgetBlocked {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(limit, "limit");
      Objects.requireNonNull(used, "used");
      Objects.requireNonNull(reserved, "reserved");
      Objects.requireNonNull(requested, "requested");
      Objects.requireNonNull(windowEnd, "windowEnd");
    }
  }

  /**
   * A budget-blocked session may go on: the call it waits for is tried again (and may block again).
   *
   * @param kind the budget that had blocked it
   * @param reason {@code window_ended}, {@code limit_raised} or {@code limit_removed}, with detail
   */
  record BudgetUnblocked(String kind, String reason) implements SessionEvent {
    public BudgetUnblocked {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(reason, "reason");
    }
  }

  /**
   * The agent's spending in a budget's window crossed 80 % of its limit with a call of this session.
   * Recorded once per budget and window in each session.
   *
   * @param used what was spent and reserved in the window, this call's reservation included
   */
  record BudgetWarning(
      String kind, java.math.BigDecimal limit, java.math.BigDecimal used, java.time.Instant windowEnd)
      implements SessionEvent {
    public BudgetWarning {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(limit, "limit");
      Objects.requireNonNull(used, "used");
      Objects.requireNonNull(windowEnd, "windowEnd");
    }
  }
}
