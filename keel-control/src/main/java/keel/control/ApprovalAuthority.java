package keel.control;

import java.util.List;
import keel.core.KeelException;

/**
 * Who may decide an approval: an operator holding the approver role (or admin) for the agent's
 * owner; never an agent; never the operator who started the session (its requester); and, when the
 * agent lists {@code spec.approval.approvers}, one of them. An entry of that list is an operator
 * name ({@code alice} or {@code operator:alice}) or an owner, which admits whoever holds the approver
 * (or admin) role bound to that very owner; a role for every owner does not match such an entry.
 *
 * <p>Stateless and thread-safe.
 */
public final class ApprovalAuthority {

  private ApprovalAuthority() {}

  private static boolean scopedApprover(Caller caller, String owner) {
    return caller.bindings().stream()
        .anyMatch(b -> b.owner().equals(java.util.Optional.of(owner)) && b.role().includes(Role.APPROVER));
  }

  /**
   * @param owner the agent's owner
   * @param requester who started the session
   * @param approvers the agent's {@code spec.approval.approvers}; empty: any approver of the owner
   * @throws KeelException.Forbidden saying which rule refuses the caller
   */
  public static void check(Caller caller, String approvalId, String owner, String requester, List<String> approvers) {
    String who = caller.principal();
    if (who.startsWith("agent:")) {
      throw new KeelException.Forbidden(who + " may not decide approval " + approvalId + ": agents never decide approvals");
    }
    if (!caller.may(Role.APPROVER, owner)) {
      throw new KeelException.Forbidden(who + " may not decide approval " + approvalId + ": it needs the role approver for owner \""
          + owner + "\"; it has " + (caller.bindings().isEmpty() ? "no roles" : caller.bindings()));
    }
    if (who.equals(requester)) {
      throw new KeelException.Forbidden(who + " may not decide approval " + approvalId
          + ": it started the session that asks for it; another approver must decide");
    }
    if (!approvers.isEmpty()
        && approvers.stream().noneMatch(a -> a.equals(who) || ("operator:" + a).equals(who) || scopedApprover(caller, a))) {
      throw new KeelException.Forbidden(who + " may not decide approval " + approvalId
          + ": the agent's spec.approval.approvers lists only " + approvers);
    }
  }
}
