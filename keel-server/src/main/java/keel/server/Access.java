package keel.server;

import keel.control.Role;

/**
 * Who may call a route: the role it needs, and where the owner that scopes the check comes from.
 * Every route in {@link Api#routes()} declares one; {@link Api} checks it before the handler runs,
 * and the route-by-role test reads the same table.
 *
 * @param role the role the caller needs
 * @param scope how the owner the role must cover is found
 * @param param the path parameter or body field naming the thing whose owner counts, when the scope
 *     needs one
 */
record Access(Role role, Scope scope, String param) {

  /** Where the owner comes from. */
  enum Scope {
    /** No owner: the caller needs the role for every owner (server-wide settings). */
    GLOBAL,
    /** The owner of the agent named by a path parameter. */
    AGENT_PATH,
    /** The owner of the agent named by a string field of the JSON body. */
    AGENT_BODY,
    /** The owner of the session whose id is the path parameter. */
    SESSION_PATH,
    /**
     * The caller needs the role for at least one owner, and the handler limits what it shows or
     * changes to the owners the caller's bindings cover: listings, applying descriptors (each
     * descriptor's owner), managing operators (each binding's owner).
     */
    LISTED,
    /** Any authenticated caller, whatever its roles (who am I, the API document). */
    ANY
  }

  static Access global(Role role) {
    return new Access(role, Scope.GLOBAL, "");
  }

  static Access agentPath(Role role, String param) {
    return new Access(role, Scope.AGENT_PATH, param);
  }

  static Access agentBody(Role role, String field) {
    return new Access(role, Scope.AGENT_BODY, field);
  }

  static Access session(Role role) {
    return new Access(role, Scope.SESSION_PATH, "id");
  }

  static Access listed(Role role) {
    return new Access(role, Scope.LISTED, "");
  }

  static Access anyCaller() {
    return new Access(Role.VIEWER, Scope.ANY, "");
  }

  /** For the API document: {@code operator (owner of the session)}. */
  String describe() {
    return switch (scope) {
      case GLOBAL -> role.wireName() + " for every owner";
      case AGENT_PATH -> role.wireName() + " for the owner of agent {" + param + "}";
      case AGENT_BODY -> role.wireName() + " for the owner of the agent named in \"" + param + "\"";
      case SESSION_PATH -> role.wireName() + " for the owner of the session";
      case LISTED -> role.wireName() + " for at least one owner; only what the caller's roles cover is shown or changed";
      case ANY -> "any authenticated caller";
    };
  }
}
