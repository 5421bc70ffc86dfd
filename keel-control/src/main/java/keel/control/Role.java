package keel.control;

import java.util.Arrays;
import java.util.Locale;
import keel.core.KeelException;

/**
 * What an operator may do. Roles are ordered: each includes the ones before it, except that
 * {@link #APPROVER} does not include {@link #OPERATOR} (deciding is not running).
 */
public enum Role {
  /** Reads agents, sessions, traces and costs. */
  VIEWER,
  /** Runs sessions: starts them, sends messages, cancels, resumes. */
  OPERATOR,
  /** Decides approvals: tool calls waiting for a human, pending revisions. */
  APPROVER,
  /** Applies descriptors and manages operators; includes every other role. */
  ADMIN;

  /** The name used in descriptors, tokens and the API: lower case. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** True when a holder of this role may act where {@code required} is asked for. */
  public boolean includes(Role required) {
    return switch (this) {
      case ADMIN -> true;
      case APPROVER -> required == APPROVER || required == VIEWER;
      case OPERATOR -> required == OPERATOR || required == VIEWER;
      case VIEWER -> required == VIEWER;
    };
  }

  public static Role fromWire(String s) {
    for (Role r : values()) {
      if (r.wireName().equals(s)) {
        return r;
      }
    }
    throw new KeelException.Invalid(
        "role: expected one of " + Arrays.stream(values()).map(Role::wireName).toList() + ", got \"" + s + "\"");
  }
}
