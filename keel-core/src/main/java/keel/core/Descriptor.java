package keel.core;

/** A declared object: an agent, an upstream MCP server, or a cluster policy. */
public sealed interface Descriptor
    permits AgentDescriptor, McpServerDescriptor, PolicyDescriptor {

  /** The API version every descriptor declares. */
  String API_VERSION = "agent.os/v1";

  /** {@code Agent}, {@code McpServer} or {@code Policy}. */
  String kind();

  Metadata metadata();

  default String name() {
    return metadata().name();
  }
}
