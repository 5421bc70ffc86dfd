/**
 * The MCP gateway: upstream MCP servers (stdio child processes and Streamable HTTP endpoints)
 * defined by {@code kind: McpServer} descriptors, and the versioned catalog of their tools.
 *
 * <p>{@link keel.gateway.Gateway} is the entry point; {@link keel.gateway.CatalogEntry} is one
 * tool of the catalog, {@link keel.gateway.CatalogListener} hears of catalog changes. The
 * execution plane adapts catalog entries to its own {@code Tool}s; policy, approvals and audit
 * stay with their callers.
 */
package keel.gateway;
