package keel.execution;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import keel.core.AgentDescriptor;

/**
 * Every internal tool the runtime can run, by the name models call it, and the grant check: an
 * agent sees and calls only tools whose capability its {@code spec.tools} lists.
 *
 * <p>Thread-safe (immutable after construction).
 */
public final class ToolRegistry {

  private final Map<String, Tool> byName;

  private ToolRegistry(Map<String, Tool> byName) {
    this.byName = Map.copyOf(byName);
  }

  /** Builds a registry from the given tools; two tools with one name is an error. */
  public static ToolRegistry of(Collection<Tool> tools) {
    Map<String, Tool> byName = new LinkedHashMap<>();
    for (Tool t : tools) {
      Tool previous = byName.putIfAbsent(t.spec().name(), t);
      if (previous != null) {
        throw new IllegalStateException(
            "two tools are named \"" + t.spec().name() + "\": from " + previous.capability()
                + " and " + t.capability());
      }
    }
    return new ToolRegistry(byName);
  }

  /** Loads every {@link ToolProvider} on the class path (the built-in ones among them). */
  public static ToolRegistry load(ToolEnvironment env) {
    List<Tool> tools = new ArrayList<>();
    for (ToolProvider p : ServiceLoader.load(ToolProvider.class)) {
      tools.addAll(p.tools(env));
    }
    return of(tools);
  }

  /** The capabilities known to this registry, e.g. {@code internal://memory}. */
  public List<String> capabilities() {
    return byName.values().stream().map(Tool::capability).distinct().sorted().toList();
  }

  /** The tools an agent is granted, in a stable order. */
  public List<Tool> granted(AgentDescriptor agent) {
    List<String> grants = agent.spec().tools();
    return byName.values().stream().filter(t -> grants.contains(t.capability())).toList();
  }

  /** The outcome of checking a call against the agent's grants. */
  public sealed interface Decision {
    record Allowed(Tool tool) implements Decision {}

    record Denied(String reason) implements Decision {}
  }

  /** Whether an agent may call the tool of that name, and if not, why (for the model to read). */
  public Decision authorize(AgentDescriptor agent, String toolName) {
    Tool tool = byName.get(toolName);
    if (tool == null) {
      return new Decision.Denied(
          "there is no tool named \"" + toolName + "\"; call only the tools you were given");
    }
    if (!agent.spec().tools().contains(tool.capability())) {
      return new Decision.Denied(
          "agent \"" + agent.name() + "\" is not granted " + tool.capability()
              + ", so it may not call \"" + toolName + "\"");
    }
    return new Decision.Allowed(tool);
  }

  public Optional<Tool> tool(String name) {
    return Optional.ofNullable(byName.get(name));
  }
}
