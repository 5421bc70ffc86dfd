package keel.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The descriptor fields the MCP gateway added: max_output_bytes and pinned tool versions. */
class GatewayDescriptorTest {

  private static final String SERVER = """
      apiVersion: agent.os/v1
      kind: McpServer
      metadata: {name: fs, owner: team-a}
      spec:
        transport: stdio
        command: [node, server.js]
        max_output_bytes: %s
      """;

  @Test
  void maxOutputBytes_isParsed() {
    McpServerDescriptor d = (McpServerDescriptor) Descriptors.parse(SERVER.formatted("2048"), "fs.yaml").getFirst();
    assertThat(d.spec().maxOutputBytes()).contains(2048);
  }

  @Test
  void maxOutputBytes_mustBePositive() {
    assertThatThrownBy(() -> Descriptors.parse(SERVER.formatted("-1"), "fs.yaml"))
        .hasMessageContaining("spec.max_output_bytes");
  }

  private static String agent(String tool) {
    return """
        apiVersion: agent.os/v1
        kind: Agent
        metadata: {name: a, owner: team-a}
        spec:
          instructions: x
          model: {provider: openai, name: gpt-4o}
          tools: ["%s"]
        """.formatted(tool);
  }

  @Test
  void aPinnedToolVersion_isACapabilityUri() {
    AgentDescriptor a = (AgentDescriptor) Descriptors.parse(agent("mcp://gateway/fs/read_file@2"), "a.yaml").getFirst();
    assertThat(a.spec().tools()).isEqualTo(List.of("mcp://gateway/fs/read_file@2"));
  }

  @Test
  void aPinOnAWholeServer_orVersionZero_isRejected() {
    assertThatThrownBy(() -> Descriptors.parse(agent("mcp://gateway/fs@2"), "a.yaml"))
        .hasMessageContaining("spec.tools[0]").hasMessageContaining("mcp://gateway/<server>/<tool>@<version>");
    assertThatThrownBy(() -> Descriptors.parse(agent("mcp://gateway/fs/read_file@0"), "a.yaml"))
        .hasMessageContaining("spec.tools[0]");
  }
}
