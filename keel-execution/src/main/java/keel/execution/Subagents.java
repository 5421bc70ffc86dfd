package keel.execution;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * Sub-agents as a model sees them and as the step executor keeps track of them. A granted {@code
 * agent://<name>} is offered to the model as the tool {@code agent_<name>} taking {@code {task}};
 * calling it starts a child session of that agent. Ids of children and of their results are
 * derived from the parent, so redoing a step after a crash finds what it already did.
 *
 * <p>Stateless and thread-safe.
 */
final class Subagents {

  static final String PREFIX = "agent://";
  static final String TOOL_PREFIX = "agent_";
  /** The inbox input that carries a child's result to its parent. */
  static final String RESULT_KIND = "subagent_result";
  /** The longest task a parent may hand a child. */
  static final int MAX_TASK_CHARS = 64 * 1024;

  private Subagents() {}

  /** The tool name of a sub-agent; agent names too long for a tool name are shortened with a digest. */
  static String toolName(String agent) {
    String name = TOOL_PREFIX + agent;
    return name.length() <= 64 ? name : name.substring(0, 47) + "_" + digest(agent, 16);
  }

  /** The tool a model sees for a sub-agent. */
  static ToolSpec spec(String agent) {
    return new ToolSpec(
        toolName(agent),
        "Delegates a task to the agent \"" + agent + "\", which works on it in its own session with its own tools,"
            + " and returns its answer. Say everything it needs to know in the task.",
        "{\"type\":\"object\",\"properties\":{\"task\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":"
            + MAX_TASK_CHARS + ",\"description\":\"what the agent should do, with everything it needs\"}},"
            + "\"required\":[\"task\"],\"additionalProperties\":false}");
  }

  /** The agent names of the {@code agent://} grants, in order. */
  static List<String> agents(List<String> grants) {
    return grants.stream().filter(g -> g.startsWith(PREFIX)).map(g -> g.substring(PREFIX.length())).toList();
  }

  /**
   * The capability a sub-agent tool name stands for: looked up among the granted agents first, then
   * read from the name itself, so that a call of a sub-agent the session is not granted is refused
   * as such (not as an unknown tool).
   */
  static Optional<String> capability(String toolName, List<String> grants) {
    for (String agent : agents(grants)) {
      if (toolName(agent).equals(toolName)) {
        return Optional.of(PREFIX + agent);
      }
    }
    if (toolName.startsWith(TOOL_PREFIX) && toolName.length() > TOOL_PREFIX.length()) {
      String agent = toolName.substring(TOOL_PREFIX.length());
      if (agent.matches("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")) {
        return Optional.of(PREFIX + agent);
      }
    }
    return Optional.empty();
  }

  /** The child session a call spawns: the same for every attempt of the call, and for no other. */
  static String childSessionId(String parentId, String callKey) {
    return "s_" + digest(parentId + "\n" + callKey, 20);
  }

  /** The id of the child's first input, the task. */
  static String taskInputId(String childId) {
    return "in_task_" + digest(childId, 12);
  }

  /** The id of the input that carries a child's result to its parent; one per child. */
  static String resultInputId(String childId) {
    return "in_result_" + childId;
  }

  /** The id of the input that cancels a child because its parent ended; one per child. */
  static String cancelInputId(String childId) {
    return "in_cancel_" + childId;
  }

  private static String digest(String text, int chars) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d).substring(0, chars);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
