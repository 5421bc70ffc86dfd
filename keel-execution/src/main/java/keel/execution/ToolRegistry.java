package keel.execution;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import keel.control.Grants;

/**
 * Every internal tool the runtime can run, by the name models call it. Which of them a session
 * may see and call is decided by the grants of its verified token ({@link keel.control.Identity}),
 * not here.
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

  /**
   * The tools a session's grants allow, in a stable order: those whose capability one of the
   * grants covers (see {@link Grants}). The grants come from the session's verified token.
   */
  public List<Tool> granted(List<String> grants) {
    return byName.values().stream().filter(t -> Grants.allows(grants, t.capability())).toList();
  }

  /** The tool models call by this name, if there is one. */
  public Optional<Tool> tool(String name) {
    return Optional.ofNullable(byName.get(name));
  }
}
