package keel.core;

import java.util.List;
import java.util.Objects;

/**
 * A {@code kind: Policy} descriptor: a cluster rule in CEL. Parsed, validated and stored now; the
 * policy enforcement point has its own issue.
 */
public record PolicyDescriptor(Metadata metadata, Spec spec) implements Descriptor {

  public PolicyDescriptor {
    Objects.requireNonNull(metadata, "metadata");
    Objects.requireNonNull(spec, "spec");
  }

  @Override
  public String kind() {
    return "Policy";
  }

  /**
   * @param tools the tools ({@code server/tool}) the policy applies to; empty: every tool
   * @param agents the agents it applies to; empty: every agent
   * @param denyWhen a CEL condition that denies the call
   * @param requireApprovalWhen a CEL condition that makes the call wait for a human
   * @param reason shown to the agent and the approver
   */
  public record Spec(
      List<String> tools,
      List<String> agents,
      String denyWhen,
      String requireApprovalWhen,
      String reason) {
    public Spec {
      tools = List.copyOf(tools);
      agents = List.copyOf(agents);
      Objects.requireNonNull(denyWhen, "denyWhen");
      Objects.requireNonNull(requireApprovalWhen, "requireApprovalWhen");
      Objects.requireNonNull(reason, "reason");
    }
  }
}
