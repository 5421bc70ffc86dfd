package keel.execution;

import java.util.List;
import java.util.Objects;
import keel.core.Message;
import keel.core.PendingCall;
import keel.core.SessionStatus;
import keel.core.Usage;
import keel.data.SessionRecord;

/**
 * A session as the API describes it: its row and what its folded events say.
 *
 * @param status the effective status (idle with pending inputs is runnable)
 * @param conversation the conversation (large tool results show their preview)
 * @param pending tool calls of the current step not completed
 * @param lastAnswer the last answer given without tool calls
 * @param failure why it failed or was cancelled, or empty
 * @param costUsd what its model calls cost, escalated small-model calls included
 * @param driftPending the model version the session waits on a human to accept, or empty
 * @param grants the capability URIs the session's tokens carry
 * @param chain the delegation chain: who started the root session, then each delegating agent
 * @param budgetBlock the budget the session waits for, when it is budget-blocked
 */
public record SessionView(
    SessionRecord record,
    SessionStatus status,
    List<Message> conversation,
    List<PendingCall> pending,
    Usage usage,
    long modelCalls,
    String lastAnswer,
    String failure,
    java.math.BigDecimal costUsd,
    String driftPending,
    List<String> grants,
    List<String> chain,

    java.util.Optional<keel.core.SessionEvent.BudgetBlocked> budgetBlock) {
  public SessionView {
    Objects.requireNonNull(record, "record");
    Objects.requireNonNull(status, "status");
    conversation = List.copyOf(conversation);
    pending = List.copyOf(pending);
    Objects.requireNonNull(usage, "usage");
    Objects.requireNonNull(lastAnswer, "lastAnswer");
    Objects.requireNonNull(failure, "failure");
    Objects.requireNonNull(costUsd, "costUsd");
    Objects.requireNonNull(driftPending, "driftPending");
    grants = List.copyOf(grants);
    chain = List.copyOf(chain);
    Objects.requireNonNull(budgetBlock, "budgetBlock");
  }
}
