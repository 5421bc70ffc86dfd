package keel.testkit.mcp;

import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.URI;
import java.net.http.HttpRequest;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/** MCP SDK clients for the demo servers' tests. */
final class Clients {

  private Clients() {}

  /** A client that starts the server of {@code params} as a child process and speaks stdio. */
  static McpSyncClient stdio(ServerParameters params) {
    McpSyncClient c =
        McpClient.sync(new StdioClientTransport(params, McpJsonDefaults.getMapper()))
            .requestTimeout(Duration.ofSeconds(30))
            .initializationTimeout(Duration.ofSeconds(30))
            .build();
    c.initialize();
    return c;
  }

  /** A Streamable HTTP client of {@code url}, sending {@code Authorization: Bearer <token>} when given. */
  static McpSyncClient http(String url, Optional<String> bearerToken) {
    URI uri = URI.create(url);
    HttpRequest.Builder request = HttpRequest.newBuilder();
    bearerToken.ifPresent(t -> request.header("Authorization", "Bearer " + t));
    McpSyncClient c =
        McpClient.sync(
                HttpClientStreamableHttpTransport.builder(uri.getScheme() + "://" + uri.getAuthority())
                    .endpoint(uri.getPath())
                    .requestBuilder(request)
                    .build())
            .requestTimeout(Duration.ofSeconds(10))
            .initializationTimeout(Duration.ofSeconds(10))
            .build();
    c.initialize();
    return c;
  }

  /** A {@code tools/call} request. */
  static McpSchema.CallToolRequest call(String tool, Map<String, Object> arguments, Map<String, Object> meta) {
    return McpSchema.CallToolRequest.builder(tool).arguments(arguments).meta(meta).build();
  }

  /** A result's structured content as a map. */
  @SuppressWarnings("unchecked")
  static Map<String, Object> structured(McpSchema.CallToolResult result) {
    return (Map<String, Object>) result.structuredContent();
  }

  /** A result's first text content. */
  static String text(McpSchema.CallToolResult result) {
    return ((McpSchema.TextContent) result.content().getFirst()).text();
  }
}
