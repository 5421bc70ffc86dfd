package keel.testkit.mcp;

import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The demo ledger server of the finance scenario, an MCP server over <b>Streamable HTTP</b> at
 * {@code http://127.0.0.1:<port>/mcp}, started in-process ({@link #start()}) or as a process
 * ({@code java -cp <classpath> keel.testkit.mcp.LedgerServer --port 8930}). Its tools:
 *
 * <ul>
 *   <li>{@code read-entries} (read-only): the ledger's entries, optionally of one supplier or one
 *       invoice;
 *   <li>{@code post-entry} (side-effecting): books an entry for an invoice and answers its id;
 *       honours an idempotency key in {@code _meta} ({@value McpMeta#IDEMPOTENCY_KEY}).
 * </ul>
 *
 * <p>The ledger starts with {@linkplain #seed() three entries} that match the invoices server's
 * demo data with one deliberate mismatch (INV-1003 booked at 890.50 against an invoice of 980.50)
 * and one missing entry (INV-1004), so a reconciling agent has something to find. State is in
 * memory: {@link #posted()} is the journal of executed posts, {@link #receivedCalls()} every call.
 *
 * <p>Thread-safe.
 */
public final class LedgerServer implements AutoCloseable {

  /** The port of {@code examples/finance.yaml}, the default of {@link #main}. */
  public static final int DEFAULT_PORT = 8930;

  /** The server's name in the MCP handshake. */
  public static final String NAME = "keel-demo-ledger";

  private final Journal journal;
  private final CallLog calls = CallLog.inMemory();
  private final Clock clock;
  private volatile HttpEndpoint endpoint; // set once by start, before the server is handed out

  private LedgerServer(Clock clock) {
    this.clock = clock;
    this.journal = Journal.inMemory(clock);
  }

  /** Starts a ledger on a free port of 127.0.0.1. */
  public static LedgerServer start() {
    return start(0, Clock.systemUTC());
  }

  /** Starts a ledger on 127.0.0.1:{@code port} ({@code 0}: a free port); {@code clock} dates the entries. */
  public static LedgerServer start(int port, Clock clock) {
    LedgerServer s = new LedgerServer(clock);
    s.endpoint =
        HttpEndpoint.start(
            NAME, "The general ledger of the Keel finance demo: read and post entries.", s.tools(), port, Optional.empty());
    return s;
  }

  /**
   * Runs a ledger until the process is stopped and prints its URL on stdout. Option: {@code --port
   * N} (default {@value #DEFAULT_PORT}; 0 for a free port).
   */
  public static void main(String[] args) throws InterruptedException {
    int port;
    try {
      port = HttpEndpoint.portOption(args, "LedgerServer [--port N]", DEFAULT_PORT);
    } catch (IllegalArgumentException e) {
      System.err.println("LedgerServer: " + e.getMessage());
      System.exit(2);
      return;
    }
    LedgerServer server = start(port, Clock.systemUTC());
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

  /** Every entry of the ledger: the seed, then the posted ones, oldest first. */
  public List<Map<String, Object>> entries() {
    List<Map<String, Object>> all = new ArrayList<>(seed());
    for (JournalEntry e : journal.entries()) {
      all.add(e.result());
    }
    return List.copyOf(all);
  }

  /** The executed {@code post-entry} calls, oldest first (a replayed call adds none). */
  public List<JournalEntry> posted() {
    return journal.entries();
  }

  /** The last {@value CallLog#LIMIT} {@code tools/call} requests received, oldest first. */
  public List<ReceivedCall> receivedCalls() {
    return calls.calls();
  }

  /** Stops the server. */
  @Override
  public void close() {
    endpoint.close();
  }

  private List<SyncToolSpecification> tools() {
    String entry =
        """
        {"type": "object",
         "properties": {"id": {"type": "string"}, "invoice_id": {"type": "string"}, "supplier_id": {"type": "string"},
                        "amount": {"type": "number"}, "currency": {"type": "string"}, "booked": {"type": "string"},
                        "memo": {"type": "string"}},
         "required": ["id", "invoice_id", "supplier_id", "amount", "currency", "booked"]}""";
    return List.of(
        Tools.tool(
            "read-entries",
            "Read ledger entries",
            "The ledger's entries, oldest first; optionally only one supplier's or one invoice's.",
            Tools.Effects.READ_ONLY,
            """
            {"type": "object",
             "properties": {"supplier_id": {"type": "string"}, "invoice_id": {"type": "string"}},
             "additionalProperties": false}""",
            """
            {"type": "object", "properties": {"entries": {"type": "array", "items": %s}}, "required": ["entries"]}"""
                .formatted(entry),
            calls,
            clock,
            (args, meta) -> {
              Optional<String> supplier = Tools.optionalText(args, "supplier_id");
              Optional<String> invoice = Tools.optionalText(args, "invoice_id");
              List<Map<String, Object>> rows =
                  entries().stream()
                      .filter(e -> supplier.isEmpty() || supplier.get().equals(e.get("supplier_id")))
                      .filter(e -> invoice.isEmpty() || invoice.get().equals(e.get("invoice_id")))
                      .toList();
              return Tools.Reply.of(Map.of("entries", rows));
            }),
        Tools.tool(
            "post-entry",
            "Post a ledger entry",
            "Books an entry for a supplier invoice and answers its id. Send an idempotency key in _meta ("
                + McpMeta.IDEMPOTENCY_KEY + ") so a retry books nothing twice.",
            Tools.Effects.SIDE_EFFECTING,
            """
            {"type": "object",
             "properties": {"invoice_id": {"type": "string"}, "supplier_id": {"type": "string"}, "amount": %s,
                            "currency": %s, "memo": {"type": "string"}},
             "required": ["invoice_id", "supplier_id", "amount", "currency"], "additionalProperties": false}"""
                .formatted(Tools.AMOUNT_SCHEMA, Tools.CURRENCY_SCHEMA),
            entry,
            calls,
            clock,
            (args, meta) ->
                Tools.Reply.of(
                    journal.once(
                        "post-entry",
                        args,
                        meta,
                        (history, sequence) -> {
                          Map<String, Object> e = new LinkedHashMap<>();
                          e.put("id", "LE-%04d".formatted(seed().size() + sequence));
                          e.put("invoice_id", Tools.text(args, "invoice_id"));
                          e.put("supplier_id", Tools.text(args, "supplier_id"));
                          e.put("amount", Tools.amount(args, "amount"));
                          e.put("currency", Tools.currency(args, "currency"));
                          e.put("booked", LocalDate.ofInstant(clock.instant(), ZoneOffset.UTC).toString());
                          e.put("memo", Tools.optionalText(args, "memo").orElse(""));
                          return e;
                        }))));
  }

  /** The ledger's first entries (see the class comment). */
  public static List<Map<String, Object>> seed() {
    return List.of(
        entry("LE-0001", "INV-1001", "sup-acme", "420.00", "2026-10-03", "printer paper, October"),
        entry("LE-0002", "INV-1002", "sup-globex", "12500.00", "2026-10-06", "freight, Q4 contract"),
        entry("LE-0003", "INV-1003", "sup-acme", "890.50", "2026-10-13", "toner and binders"));
  }

  private static Map<String, Object> entry(
      String id, String invoice, String supplier, String amount, String booked, String memo) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", id);
    m.put("invoice_id", invoice);
    m.put("supplier_id", supplier);
    m.put("amount", new BigDecimal(amount));
    m.put("currency", "USD");
    m.put("booked", booked);
    m.put("memo", memo);
    return java.util.Collections.unmodifiableMap(m);
  }
}
