package keel.core;

import java.util.Objects;

/**
 * Why a policy decision went the way it did: the rule that decided and the reason it gives.
 *
 * @param rule where the rule is written, e.g. {@code spec.approval.on_action_value_usd_gt}, {@code
 *     spec.approval.rules[1]}, {@code policy/weekday-payments}, {@code spec.mode}
 * @param reason the reason shown to the approver and the model
 */
public record PolicyReason(String rule, String reason) {
  public PolicyReason {
    Objects.requireNonNull(rule, "rule");
    Objects.requireNonNull(reason, "reason");
  }

  @Override
  public String toString() {
    return rule + ": " + reason;
  }
}
