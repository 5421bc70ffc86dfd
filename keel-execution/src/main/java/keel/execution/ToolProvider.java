package keel.execution;

import java.util.List;

/**
 * A source of internal tools, found with {@link java.util.ServiceLoader} so that a deployment can
 * add its own skills by putting a jar on the server's class path.
 */
public interface ToolProvider {

  /** The tools this provider offers, given what the runtime lends them. */
  List<Tool> tools(ToolEnvironment environment);
}
