package keel.data;

import java.util.Objects;
import java.util.Set;

/**
 * An approval changed by another node sharing the store (see {@link Store#listenForApprovals}).
 *
 * @param what {@code requested}, {@code decided}, {@code expired} or {@code withdrawn}
 * @param approvalId the approval; read it from {@link Store#approvals()} for its current state
 */
public record ApprovalChange(String what, String approvalId) {

  /** The kinds of change. */
  public static final Set<String> KINDS = Set.of("requested", "decided", "expired", "withdrawn");

  public ApprovalChange {
    Objects.requireNonNull(what, "what");
    Objects.requireNonNull(approvalId, "approvalId");
    if (!KINDS.contains(what)) {
      throw new IllegalArgumentException("approval change: expected one of " + KINDS + ", got \"" + what + "\"");
    }
  }
}
