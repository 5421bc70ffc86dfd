package keel.core;

import java.util.Locale;

/** A session's status, derived from its events (and, for {@link #RUNNABLE}, its inbox). */
public enum SessionStatus {
  /** Waiting for a message; holds no memory and no thread. */
  IDLE,
  /** Has work to do and is waiting for a scheduler slot. */
  RUNNABLE,
  /** A step is in progress: a model call or a tool call is in flight. */
  RUNNING,
  /** Waiting for a human decision. */
  AWAITING_APPROVAL,
  /** Waiting for a sub-agent session to finish. */
  AWAITING_SUBAGENT,
  /** Suspended until a budget allows it to go on. */
  BUDGET_BLOCKED,
  COMPLETED,
  FAILED,
  CANCELLED;

  /** The lowercase name used in the API, the CLI and the store. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public boolean terminal() {
    return this == COMPLETED || this == FAILED || this == CANCELLED;
  }

  /** Parses a wire name such as {@code awaiting_approval}. */
  public static SessionStatus fromWire(String name) {
    for (SessionStatus s : values()) {
      if (s.wireName().equals(name)) {
        return s;
      }
    }
    throw new KeelException.Invalid(
        "unknown session status \"" + name + "\"; expected one of " + wireNames());
  }

  public static String wireNames() {
    StringBuilder sb = new StringBuilder();
    for (SessionStatus s : values()) {
      if (!sb.isEmpty()) {
        sb.append(", ");
      }
      sb.append(s.wireName());
    }
    return sb.toString();
  }
}
