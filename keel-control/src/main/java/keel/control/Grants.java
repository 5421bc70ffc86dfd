package keel.control;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Capability URIs and the grants that allow them.
 *
 * <p>A grant <em>covers</em> a capability when they are equal, or when the grant names a whole
 * MCP server ({@code mcp://gateway/<server>}) and the capability one of its tools ({@code
 * mcp://gateway/<server>/<tool>}). Nothing else is hierarchical: {@code internal://<name>} and
 * {@code agent://<name>} cover only themselves.
 *
 * <p>Tool versions: the MCP gateway names each external tool's capability with its current
 * catalog version, {@code mcp://gateway/<server>/<tool>@<version>}. A grant without a version
 * ({@code mcp://gateway/<server>} or {@code mcp://gateway/<server>/<tool>}) covers every version;
 * a pinned grant ({@code mcp://gateway/<server>/<tool>@2}) covers only that version, so when the
 * tool's schema changes (a new version) the pinned grant no longer covers it.
 *
 * <p>The grants of a sub-agent are the <em>intersection</em> of its parent's grants and its own
 * {@code spec.tools}: exactly the capabilities both cover. For each of the child's URIs:
 *
 * <ul>
 *   <li>if a parent grant covers it, the child keeps it as it is (possibly narrower than the
 *       parent's: parent {@code mcp://gateway/crm}, child {@code mcp://gateway/crm/read} gives
 *       {@code mcp://gateway/crm/read});
 *   <li>else, if it names a whole server and the parent holds only some of that server's tools,
 *       the child gets those tools (parent {@code mcp://gateway/crm/read}, child {@code
 *       mcp://gateway/crm} gives {@code mcp://gateway/crm/read});
 *   <li>else it is dropped.
 * </ul>
 *
 * So a capability is covered by the intersection if and only if both the parent's grants and the
 * child's tools cover it; a sub-agent can never do what its parent may not.
 *
 * <p>Stateless and thread-safe.
 */
public final class Grants {

  private static final String MCP = "mcp://gateway/";

  private Grants() {}

  /** Whether one grant covers a capability. */
  public static boolean covers(String grant, String capability) {
    if (grant.equals(capability)) {
      return true;
    }
    if (!capability.startsWith(MCP)) {
      return false;
    }
    String tool = unversioned(capability);
    if (isMcpServer(grant)) {
      return tool.startsWith(grant + "/") && tool.indexOf('/', grant.length() + 1) < 0;
    }
    // an unpinned tool grant covers each version of the tool
    return grant.startsWith(MCP) && grant.indexOf('@') < 0 && !tool.equals(capability) && grant.equals(tool);
  }

  /** A capability without its version: {@code mcp://gateway/s/t@2} gives {@code mcp://gateway/s/t}. */
  public static String unversioned(String capability) {
    int at = capability.lastIndexOf('@');
    return capability.startsWith(MCP) && at > 0 ? capability.substring(0, at) : capability;
  }

  /** Whether any of the grants covers the capability. */
  public static boolean allows(List<String> grants, String capability) {
    for (String g : grants) {
      if (covers(g, capability)) {
        return true;
      }
    }
    return false;
  }

  /** The grants of a sub-agent: what both its parent's grants and its own tools cover. */
  public static List<String> intersect(List<String> parent, List<String> child) {
    Set<String> out = new LinkedHashSet<>();
    for (String c : child) {
      if (allows(parent, c)) {
        out.add(c);
      } else if (isMcpServer(c) || (c.startsWith(MCP) && c.indexOf('@') < 0)) {
        // the child names a whole server or an unpinned tool: it gets what of it the parent holds
        for (String p : parent) {
          if (covers(c, p)) {
            out.add(p);
          }
        }
      }
    }
    return List.copyOf(dropCovered(new ArrayList<>(out)));
  }

  /** Removes tool-level grants a server-level grant in the same list already covers. */
  private static List<String> dropCovered(List<String> grants) {
    List<String> out = new ArrayList<>();
    for (String g : grants) {
      boolean coveredByAnother = false;
      for (String other : grants) {
        if (!other.equals(g) && covers(other, g)) {
          coveredByAnother = true;
          break;
        }
      }
      if (!coveredByAnother) {
        out.add(g);
      }
    }
    return out;
  }

  /** Whether a URI names a whole MCP server: {@code mcp://gateway/<server>} without a tool. */
  static boolean isMcpServer(String uri) {
    return uri.startsWith(MCP) && uri.length() > MCP.length() && uri.indexOf('/', MCP.length()) < 0;
  }
}
