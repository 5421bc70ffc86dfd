package keel.testkit.mcp;

import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The demo email server of the finance scenario, an MCP server over <b>Streamable HTTP</b> at
 * {@code http://127.0.0.1:<port>/mcp} that only drafts emails (it never sends one). Every request
 * must carry {@code Authorization: Bearer <token>} with the token given at start; others are
 * refused with 401 and counted ({@link #refusedRequests()}). Started in-process ({@link
 * #start(String)}) or as a process ({@code EMAIL_BEARER_TOKEN=... java -cp <classpath>
 * keel.testkit.mcp.EmailServer --port 8931}; the token comes from the environment so that it does
 * not show in the process list).
 *
 * <p>Its one tool, {@code draft} (idempotent), takes {@code to}, {@code subject} and {@code body}
 * and answers a draft id; a call with an idempotency key already used ({@value
 * McpMeta#IDEMPOTENCY_KEY} in {@code _meta}) answers the first draft and creates none. {@link
 * #drafts()} is the journal of drafts created and {@link #receivedCalls()} every call with its
 * {@code _meta} (trace context, idempotency key).
 *
 * <p>Thread-safe.
 */
public final class EmailServer implements AutoCloseable {

  /** The port of {@code examples/finance.yaml}, the default of {@link #main}. */
  public static final int DEFAULT_PORT = 8931;

  /** The environment variable {@link #main} reads the bearer token from. */
  public static final String TOKEN_ENV = "EMAIL_BEARER_TOKEN";

  /** The server's name in the MCP handshake. */
  public static final String NAME = "keel-demo-email";

  private static final Pattern ADDRESS = Pattern.compile("[^@\\s]+@[^@\\s]+\\.[^@\\s]+");

  private final Journal journal;
  private final CallLog calls = CallLog.inMemory();
  private final Clock clock;
  private volatile HttpEndpoint endpoint; // set once by start, before the server is handed out

  private EmailServer(Clock clock) {
    this.clock = clock;
    this.journal = Journal.inMemory(clock);
  }

  /** Starts a server on a free port of 127.0.0.1 that admits only {@code bearerToken}. */
  public static EmailServer start(String bearerToken) {
    return start(0, bearerToken, Clock.systemUTC());
  }

  /** Starts a server on 127.0.0.1:{@code port} ({@code 0}: a free port) that admits only {@code bearerToken}. */
  public static EmailServer start(int port, String bearerToken, Clock clock) {
    Objects.requireNonNull(bearerToken, "bearerToken");
    if (bearerToken.isBlank() || !bearerToken.strip().equals(bearerToken)) {
      throw new IllegalArgumentException("the bearer token must be non-empty, without spaces around it");
    }
    EmailServer s = new EmailServer(clock);
    s.endpoint =
        HttpEndpoint.start(
            NAME, "Email drafts of the Keel finance demo: drafts are stored, never sent.", s.tools(), port, Optional.of(bearerToken));
    return s;
  }

  /**
   * Runs a server until the process is stopped and prints its URL on stdout. The bearer token is
   * read from {@value #TOKEN_ENV}; option: {@code --port N} (default {@value #DEFAULT_PORT}; 0 for a
   * free port).
   */
  public static void main(String[] args) throws InterruptedException {
    String token = System.getenv(TOKEN_ENV);
    int port;
    try {
      port = HttpEndpoint.portOption(args, "EMAIL_BEARER_TOKEN=TOKEN EmailServer [--port N]", DEFAULT_PORT);
      if (token == null || token.isBlank()) {
        throw new IllegalArgumentException(TOKEN_ENV + " is not set: put the bearer token clients must send in it");
      }
    } catch (IllegalArgumentException e) {
      System.err.println("EmailServer: " + e.getMessage());
      System.exit(2);
      return;
    }
    EmailServer server = start(port, token, Clock.systemUTC());
    System.out.println(server.url());
    System.out.flush();
    HttpEndpoint.awaitShutdown(server);
  }

  /** The port it listens on. */
  public int port() {
    return endpoint.port();
  }

  /** The MCP endpoint, e.g. {@code http://127.0.0.1:41234/mcp}. */
  public String url() {
    return endpoint.url();
  }

  /** The drafts created, oldest first (a replayed call adds none). */
  public List<JournalEntry> drafts() {
    return journal.entries();
  }

  /** The last {@value CallLog#LIMIT} {@code tools/call} requests received, oldest first. */
  public List<ReceivedCall> receivedCalls() {
    return calls.calls();
  }

  /** How many HTTP requests were refused for a missing or wrong bearer token. */
  public long refusedRequests() {
    return endpoint.refusedRequests();
  }

  /** Stops the server. */
  @Override
  public void close() {
    endpoint.close();
  }

  private List<SyncToolSpecification> tools() {
    return List.of(
        Tools.tool(
            "draft",
            "Draft an email",
            "Stores an email draft for a person to review and send; answers the draft id. Nothing is sent. "
                + "With an idempotency key in _meta (" + McpMeta.IDEMPOTENCY_KEY + ") a retry returns the same draft.",
            Tools.Effects.IDEMPOTENT,
            """
            {"type": "object",
             "properties": {"to": {"type": "string", "description": "one email address"},
                            "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                            "body": {"type": "string", "minLength": 1, "maxLength": 20000}},
             "required": ["to", "subject", "body"], "additionalProperties": false}""",
            """
            {"type": "object",
             "properties": {"draft_id": {"type": "string"}, "to": {"type": "string"}, "subject": {"type": "string"},
                            "status": {"const": "draft"}},
             "required": ["draft_id", "to", "subject", "status"]}""",
            calls,
            clock,
            (args, meta) ->
                Tools.Reply.of(
                    journal.once(
                        "draft",
                        args,
                        meta,
                        (history, sequence) -> {
                          String to = Tools.text(args, "to");
                          if (!ADDRESS.matcher(to).matches()) {
                            throw new ToolError("argument \"to\": expected one email address such as ap@example.com, got \"" + to + "\"");
                          }
                          Tools.text(args, "body");
                          Map<String, Object> d = new LinkedHashMap<>();
                          d.put("draft_id", "DRAFT-%04d".formatted(sequence));
                          d.put("to", to);
                          d.put("subject", Tools.text(args, "subject"));
                          d.put("status", "draft");
                          return d;
                        }))));
  }
}
