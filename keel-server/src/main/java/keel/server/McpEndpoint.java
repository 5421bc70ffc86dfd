package keel.server;

import io.modelcontextprotocol.common.McpTransportContext;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.TypeRef;
import io.modelcontextprotocol.server.McpNotificationHandler;
import io.modelcontextprotocol.server.McpRequestHandler;
import io.modelcontextprotocol.server.transport.HttpServletStreamableServerTransportProvider;
import io.modelcontextprotocol.spec.DefaultMcpStreamableServerSessionFactory;
import io.modelcontextprotocol.spec.McpSchema;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.control.Identity;
import keel.control.Operators;
import keel.core.KeelException;
import keel.execution.OutsideCalls;
import keel.gateway.CallMeta;
import keel.gateway.CatalogEntry;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

/**
 * The MCP gateway as an MCP server at {@value #PATH} (Streamable HTTP, the MCP Java SDK's servlet
 * transport mounted on the server's Jetty), for outside MCP clients.
 *
 * <p>Every HTTP request is authenticated before MCP sees it: {@code Authorization: Bearer} with an
 * operator's API token (as the REST API takes) or an agent's session token (verified by {@link
 * Identity}); without one, or with one that is neither, the answer is 401 with a problem document.
 * The principal travels to the handlers in the request's transport context, so each request acts
 * as the token it carries (an MCP session opened with one token gives nothing to another).
 *
 * <p>The SDK's session layer is used with Keel's own request handlers rather than its {@code
 * McpServer}, whose tool list is one for every client: here {@code tools/list} answers exactly the
 * tools of the caller ({@link OutsideCalls#tools}) and {@code tools/call} goes through {@link
 * OutsideCalls#call}.
 *
 * <p>Thread-safe. Handlers run on the request's (virtual) thread and may block it while a call
 * waits for approval.
 */
final class McpEndpoint {

  private static final Logger LOG = LoggerFactory.getLogger(McpEndpoint.class);

  /** Where the endpoint is mounted. */
  static final String PATH = "/mcp";
  /** How long an MCP call waits for its approval, e.g. {@code 30s} or {@code 2m} (default 30 s). */
  static final String APPROVAL_WAIT_VARIABLE = "KEEL_MCP_APPROVAL_WAIT";
  static final Duration DEFAULT_APPROVAL_WAIT = Duration.ofSeconds(30);

  private static final String PRINCIPAL = "keel.principal";
  /** The {@code _meta} key of an MCP progress token. */
  private static final String PROGRESS_TOKEN = "progressToken";

  private final OutsideCalls calls;
  private final Operators operators;
  private final Identity identity;
  private final McpJsonMapper json = McpJsonDefaults.getMapper();
  private final HttpServletStreamableServerTransportProvider transport;

  McpEndpoint(OutsideCalls calls, Operators operators, Identity identity, String version) {
    this.calls = calls;
    this.operators = operators;
    this.identity = identity;
    this.transport = HttpServletStreamableServerTransportProvider.builder()
        .jsonMapper(json)
        .mcpEndpoint(PATH)
        .contextExtractor(request -> McpTransportContext.create(Map.of(PRINCIPAL, request.getAttribute(PRINCIPAL))))
        .build();
    Map<String, McpRequestHandler<?>> handlers = new HashMap<>();
    handlers.put(McpSchema.METHOD_PING, (exchange, params) -> Mono.just(Map.of()));
    handlers.put(McpSchema.METHOD_TOOLS_LIST, (exchange, params) -> Mono.fromCallable(() -> list(principal(exchange.transportContext()))));
    handlers.put(McpSchema.METHOD_TOOLS_CALL, (exchange, params) -> Mono.fromCallable(() -> {
      McpSchema.CallToolRequest request = json.convertValue(params, new TypeRef<McpSchema.CallToolRequest>() {});
      java.util.concurrent.atomic.AtomicInteger step = new java.util.concurrent.atomic.AtomicInteger();
      return call(principal(exchange.transportContext()), request,
          message -> progress(exchange, request, step.incrementAndGet(), message));
    }));
    Map<String, McpNotificationHandler> notifications = new HashMap<>();
    notifications.put(McpSchema.METHOD_NOTIFICATION_INITIALIZED, (exchange, params) -> Mono.empty());
    List<String> versions = transport.protocolVersions();
    McpSchema.Implementation info = new McpSchema.Implementation("keel", "Keel MCP gateway", version);
    McpSchema.ServerCapabilities capabilities = McpSchema.ServerCapabilities.builder().tools(false).build();
    String instructions = "The tools of Keel's MCP gateway that your token is granted. Calls pass Keel's policies; a call that"
        + " needs a human's approval waits for it (with progress notifications); send _meta "
        + CallMeta.IDEMPOTENCY_KEY + " to call again for the result of a call whose approval came late.";
    transport.setSessionFactory(new DefaultMcpStreamableServerSessionFactory(
        Duration.ofMinutes(1),
        init -> Mono.fromCallable(() -> new McpSchema.InitializeResult(
            versions.contains(init.protocolVersion()) ? init.protocolVersion() : versions.getLast(), capabilities, info,
            instructions)),
        handlers, notifications, sessionId -> Mono.empty()));
  }

  /** Mounts the endpoint on the server's Jetty, behind the bearer-token check. */
  void mount(ServletContextHandler handler) {
    ServletHolder holder = new ServletHolder("keel-mcp", new Authenticated());
    holder.setAsyncSupported(true);
    handler.addServlet(holder, PATH);
  }

  void close() {
    try {
      transport.closeGracefully().block(Duration.ofSeconds(5));
    } catch (RuntimeException e) {
      LOG.debug("closing the MCP endpoint: {}", e.toString());
    }
  }

  /** The bearer-token check in front of the SDK's servlet: 401 before any MCP processing. */
  private final class Authenticated extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse res) throws ServletException, IOException {
      Optional<OutsideCalls.Principal> principal;
      String header = req.getHeader("Authorization");
      if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7) || header.substring(7).isBlank()) {
        unauthorized(res, "the MCP endpoint needs an Authorization: Bearer <token> header with an operator's API token or an"
            + " agent's session token");
        return;
      }
      String token = header.substring(7).strip();
      try {
        principal = authenticate(token);
      } catch (KeelException.Unavailable e) {
        res.setStatus(503);
        res.setContentType("application/problem+json");
        res.getOutputStream().write(problem(503, "Service Unavailable", e.getMessage()));
        return;
      }
      if (principal.isEmpty()) {
        // a token shaped like an agent's session token that was refused says why (expired, wrong issuer…)
        String why = refusal(token).map(r -> ": it is not an operator API token, and as an agent session token it was"
            + " refused: " + r + "; ask for a new token").orElse("");
        unauthorized(res, "the bearer token is neither a current operator API token nor a valid agent session token" + why);
        return;
      }
      req.setAttribute(PRINCIPAL, principal.get());
      transport.service(req, res);
    }
  }

  private Optional<OutsideCalls.Principal> authenticate(String token) {
    Optional<OutsideCalls.Principal> operator = operators.authenticate(token).map(OutsideCalls.Principal.Operator::new);
    if (operator.isPresent() || token.chars().filter(c -> c == '.').count() != 2) {
      return operator;
    }
    return switch (identity.verifyBearer(token)) {
      case Identity.Verdict.Verified v -> Optional.of(new OutsideCalls.Principal.Agent(v.token()));
      case Identity.Verdict.Refused r -> {
        LOG.debug("an MCP client's agent token was refused: {}", r.reason());
        yield Optional.empty();
      }
    };
  }

  /** Why an agent session token was refused, when the token has a session token's shape. */
  private Optional<String> refusal(String token) {
    if (token.chars().filter(c -> c == '.').count() != 2) {
      return Optional.empty();
    }
    try {
      return switch (identity.verifyBearer(token)) {
        case Identity.Verdict.Verified v -> Optional.empty();
        case Identity.Verdict.Refused r -> Optional.of(r.reason());
      };
    } catch (KeelException e) {
      return Optional.empty();
    }
  }

  private static void unauthorized(HttpServletResponse res, String detail) throws IOException {
    res.setStatus(401);
    res.setHeader("WWW-Authenticate", "Bearer realm=\"keel\"");
    res.setContentType("application/problem+json");
    res.getOutputStream().write(problem(401, "Unauthenticated", detail));
  }

  private static byte[] problem(int status, String title, String detail) {
    return Views.JSON.writeValueAsString(Views.JSON.createObjectNode()
        .put("type", "about:blank").put("title", title).put("status", status).put("detail", detail))
        .getBytes(StandardCharsets.UTF_8);
  }

  private static OutsideCalls.Principal principal(McpTransportContext context) {
    if (context.get(PRINCIPAL) instanceof OutsideCalls.Principal p) {
      return p;
    }
    // the servlet in front sets it on every request; reaching here is a wiring bug
    throw new IllegalStateException("an MCP request reached its handler without an authenticated principal");
  }

  private McpSchema.ListToolsResult list(OutsideCalls.Principal principal) {
    List<McpSchema.Tool> tools = calls.tools(principal).stream().map(this::tool).toList();
    return new McpSchema.ListToolsResult(tools, null);
  }

  private McpSchema.Tool tool(CatalogEntry e) {
    McpSchema.Tool.Builder b = McpSchema.Tool.builder()
        .name(e.modelName())
        .title(e.catalogName())
        .description(e.description())
        .inputSchema(json, e.inputSchema())
        .meta(Map.of("dev.keel/tool", e.catalogName(), "dev.keel/version", e.version(), "dev.keel/side-effects",
            e.sideEffects().wireName()));
    e.outputSchema().ifPresent(o -> b.outputSchema(json, o));
    return b.build();
  }

  private McpSchema.CallToolResult call(
      OutsideCalls.Principal principal, McpSchema.CallToolRequest request, java.util.function.Consumer<String> progress)
      throws IOException {
    Map<String, Object> meta = request.meta() == null ? Map.of() : request.meta();
    String arguments = json.writeValueAsString(request.arguments() == null ? Map.of() : request.arguments());
    String key = meta.get(CallMeta.IDEMPOTENCY_KEY) instanceof String s ? s : "";
    String traceparent = meta.get(CallMeta.TRACEPARENT) instanceof String s ? s : "";
    OutsideCalls.Result r = calls.call(principal, request.name(), arguments, key, traceparent, progress);
    McpSchema.CallToolResult.Builder b = McpSchema.CallToolResult.builder().addTextContent(r.text()).isError(r.error());
    if (!r.error() && r.structured().isPresent()) {
      b.structuredContent(json, r.structured().get());
    }
    return b.build();
  }

  private void progress(
      io.modelcontextprotocol.server.McpAsyncServerExchange exchange, McpSchema.CallToolRequest request, int step,
      String message) {
    Object token = request.meta() == null ? null : request.meta().get(PROGRESS_TOKEN);
    if (token == null) {
      return;
    }
    exchange.progressNotification(new McpSchema.ProgressNotification(token, step, null, message)).block(Duration.ofSeconds(5));
  }
}
