package keel.execution;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;
import keel.control.Grants;
import keel.gateway.Gateway;

/**
 * Every tool the runtime can run, by the name models call it: the internal tools, and the current
 * catalog of the MCP gateway when there is one (its tools named {@code <server>__<tool>}, each at
 * its current version). Which of them a session may see and call is decided by the grants of its
 * verified token ({@link keel.control.Identity}), not here.
 *
 * <p>Thread-safe: the internal tools are fixed at construction; the gateway's catalog is read
 * when asked, so a tool that changes or disappears upstream is seen at once.
 */
public final class ToolRegistry {

  private final Map<String, Tool> byName;
  private final Optional<Gateway> gateway;

  private ToolRegistry(Map<String, Tool> byName, Optional<Gateway> gateway) {
    this.byName = Map.copyOf(byName);
    this.gateway = gateway;
  }

  /**
   * This registry's internal tools plus the gateway's catalog. An internal tool and an external
   * one of the same model name cannot both exist: names with {@code __} are the gateway's.
   */
  public ToolRegistry withGateway(Gateway gateway) {
    for (String name : byName.keySet()) {
      if (name.contains("__")) {
        throw new IllegalStateException(
            "the internal tool \"" + name + "\" has a name with \"__\", which names MCP gateway tools (<server>__<tool>)");
      }
    }
    return new ToolRegistry(byName, Optional.of(gateway));
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
    return new ToolRegistry(byName, Optional.empty());
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
    List<Tool> out = new ArrayList<>(byName.values().stream().filter(t -> Grants.allows(grants, t.capability())).toList());
    if (gateway.isPresent()) {
      Set<String> servers = mcpServers(grants);
      if (!servers.isEmpty()) {
        // starts (on first use) only the servers the grants name
        gateway.get().catalog(servers).stream()
            .filter(e -> Grants.allows(grants, e.capability()))
            .forEach(e -> out.add(new GatewayTool(gateway.get(), e)));
      }
    }
    return List.copyOf(out);
  }

  /** The tool models call by this name, if there is one: internal, or in the gateway's catalog now. */
  public Optional<Tool> tool(String name) {
    Tool internal = byName.get(name);
    if (internal != null || gateway.isEmpty()) {
      return Optional.ofNullable(internal);
    }
    return gateway.get().byModelName(name).map(e -> new GatewayTool(gateway.get(), e));
  }

  /** The MCP servers some grant names: {@code mcp://gateway/<server>[/<tool>[@<version>]]}. */
  private static Set<String> mcpServers(List<String> grants) {
    Set<String> out = new TreeSet<>();
    String prefix = "mcp://gateway/";
    for (String g : grants) {
      if (g.startsWith(prefix)) {
        String rest = g.substring(prefix.length());
        int slash = rest.indexOf('/');
        out.add(slash < 0 ? rest : rest.substring(0, slash));
      }
    }
    return out;
  }
}
