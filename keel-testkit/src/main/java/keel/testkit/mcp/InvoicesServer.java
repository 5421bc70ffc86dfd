package keel.testkit.mcp;

import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The demo invoices server of the finance scenario, an MCP server over <b>stdio</b> meant to run as
 * a child process ({@code java -cp <classpath> keel.testkit.mcp.InvoicesServer}). Its tools:
 *
 * <ul>
 *   <li>{@code list-open} (read-only): the invoices not fully paid, optionally of one supplier;
 *   <li>{@code get-supplier} (read-only): a supplier's name, email and payment terms;
 *   <li>{@code schedule-payment} (side-effecting): pays an amount of an open invoice in its
 *       currency and answers a payment id. With an idempotency key in the request's {@code _meta}
 *       ({@value McpMeta#IDEMPOTENCY_KEY}) a repeated call returns the first result and pays nothing.
 * </ul>
 *
 * <p>Its state lives in files named by environment variables: {@value #DB_ENV} (required) is a
 * JSON file of suppliers and invoices, written with {@linkplain #seed() the seed} when it does not
 * exist; {@value #JOURNAL_ENV} (default: the database's path + {@code .journal.jsonl}) is the
 * append-only journal of executed payments, one JSON line each, forced to disk before the call
 * answers — it is the payments' only record, so the open amount of an invoice is its amount minus
 * its journaled payments, and a restarted server still honours the keys; {@value #CALLS_ENV}
 * (default: the database's path + {@code .calls.jsonl}) records every {@code tools/call} received.
 * {@link Files} reads them from a test.
 *
 * <p>Thread-safe: calls run on the SDK's threads; the journal serializes payments under its lock
 * and the file's lock.
 */
public final class InvoicesServer {

  /** The environment variable naming the JSON database (a file path). */
  public static final String DB_ENV = "INVOICES_DB";

  /** The environment variable naming the payments journal (a file path). */
  public static final String JOURNAL_ENV = "INVOICES_JOURNAL";

  /** The environment variable naming the received-calls log (a file path). */
  public static final String CALLS_ENV = "INVOICES_CALLS";

  /** The server's name in the MCP handshake. */
  public static final String NAME = "keel-demo-invoices";

  private final Files files;
  private final Journal journal;
  private final CallLog calls;
  private final Clock clock;

  private InvoicesServer(Files files, Clock clock) {
    this.files = files;
    this.clock = clock;
    this.journal = Journal.file(files.journal(), clock);
    this.calls = CallLog.file(files.calls());
  }

  /**
   * The files of one invoices server: its database, its journal of payments and its log of received
   * calls. Reading them is safe while the server runs.
   *
   * @param db the JSON database of suppliers and invoices
   * @param journal the JSON-lines journal of executed payments
   * @param calls the JSON-lines log of received calls
   */
  public record Files(Path db, Path journal, Path calls) {

    public Files {
      Objects.requireNonNull(db, "db");
      Objects.requireNonNull(journal, "journal");
      Objects.requireNonNull(calls, "calls");
    }

    /**
     * The files {@code invoices.json}, {@code payments.jsonl} and {@code calls.jsonl} in {@code
     * directory}.
     */
    public static Files in(Path directory) {
      return new Files(
          directory.resolve("invoices.json"), directory.resolve("payments.jsonl"), directory.resolve("calls.jsonl"));
    }

    /** The files a server started with {@code environment} uses (the defaults as documented). */
    public static Files from(Map<String, String> environment) {
      String db = environment.get(DB_ENV);
      if (db == null || db.isBlank()) {
        throw new IllegalArgumentException(
            DB_ENV + " is not set: name the JSON file of invoices in it (it is created with the demo data when missing)");
      }
      Path dbPath = Path.of(db);
      return new Files(
          dbPath,
          Path.of(Optional.ofNullable(environment.get(JOURNAL_ENV)).filter(s -> !s.isBlank()).orElse(db + ".journal.jsonl")),
          Path.of(Optional.ofNullable(environment.get(CALLS_ENV)).filter(s -> !s.isBlank()).orElse(db + ".calls.jsonl")));
    }

    /** The environment variables that make a server use these files. */
    public Map<String, String> environment() {
      return Map.of(DB_ENV, db.toString(), JOURNAL_ENV, journal.toString(), CALLS_ENV, calls.toString());
    }

    /**
     * How the MCP SDK's {@code StdioClientTransport} starts a server on these files with this JVM's
     * java and class path (see {@link InvoicesServer#command()}).
     */
    public ServerParameters serverParameters() {
      List<String> command = command();
      return ServerParameters.builder(command.getFirst())
          .args(command.subList(1, command.size()))
          .env(environment())
          .build();
    }

    /** Writes {@linkplain #seed() the seed} to the database unless it exists; returns these files. */
    public Files seedIfAbsent() {
      if (!java.nio.file.Files.exists(db)) {
        Json.writeAtomically(db, seed());
      }
      return this;
    }

    /** The payments executed so far, oldest first. */
    public List<JournalEntry> payments() {
      return Journal.read(journal);
    }

    /** The {@code tools/call} requests received so far, oldest first. */
    public List<ReceivedCall> receivedCalls() {
      return CallLog.read(calls);
    }
  }

  // ---------------------------------------------------------------- running it

  /**
   * Runs the server on this process's stdin and stdout until stdin closes. The files come from the
   * environment (see the class comment); logs go to stderr.
   */
  public static void main(String[] args) throws InterruptedException {
    if (args.length > 0) {
      System.err.println("InvoicesServer takes no arguments (got " + String.join(" ", args) + "); set " + DB_ENV + " instead");
      System.exit(2);
    }
    Files files;
    try {
      files = Files.from(System.getenv()).seedIfAbsent();
    } catch (IllegalArgumentException | UncheckedIOException e) {
      System.err.println("InvoicesServer: " + e.getMessage());
      System.exit(2);
      return;
    }
    // the SDK drops the answers it has not written when stdin ends: hold the end back until then
    StdioDrain drain = new StdioDrain(Duration.ofSeconds(10));
    McpSyncServer server =
        build(
            new StdioServerTransportProvider(
                McpJsonDefaults.getMapper(), drain.input(System.in), drain.output(System.out)),
            files,
            Clock.systemUTC());
    drain.ended().await();
    server.closeGracefully();
    System.exit(0);
  }

  /** The command that runs this server as a child process: this JVM's java, its class path, the class. */
  public static List<String> command() {
    String java =
        ProcessHandle.current()
            .info()
            .command()
            .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    return List.of(java, "-cp", System.getProperty("java.class.path"), InvoicesServer.class.getName());
  }

  /** Builds the MCP server on {@code transport} over {@code files}. */
  static McpSyncServer build(StdioServerTransportProvider transport, Files files, Clock clock) {
    InvoicesServer s = new InvoicesServer(files, clock);
    return McpServer.sync(transport)
        .serverInfo(NAME, "1.0.0")
        .instructions("Supplier invoices of the Keel finance demo: list open invoices, look up suppliers, schedule payments.")
        .capabilities(McpSchema.ServerCapabilities.builder().tools(false).build())
        .requestTimeout(Duration.ofSeconds(30))
        .tools(s.tools())
        .build();
  }

  // ---------------------------------------------------------------- the tools

  private List<SyncToolSpecification> tools() {
    return List.of(
        Tools.tool(
            "list-open",
            "List open invoices",
            "The supplier invoices not fully paid yet, with the amount still open; optionally only one supplier's.",
            Tools.Effects.READ_ONLY,
            """
            {"type": "object",
             "properties": {"supplier_id": {"type": "string", "description": "only this supplier's invoices"}},
             "additionalProperties": false}""",
            """
            {"type": "object",
             "properties": {"invoices": {"type": "array", "items": %s}},
             "required": ["invoices"]}"""
                .formatted(INVOICE_SCHEMA),
            calls,
            clock,
            (args, meta) -> Tools.Reply.of(Map.of("invoices", listOpen(Tools.optionalText(args, "supplier_id"))))),
        Tools.tool(
            "get-supplier",
            "Get a supplier",
            "A supplier's name, billing email address and payment terms.",
            Tools.Effects.READ_ONLY,
            """
            {"type": "object",
             "properties": {"supplier_id": {"type": "string"}},
             "required": ["supplier_id"], "additionalProperties": false}""",
            """
            {"type": "object",
             "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"},
                            "payment_terms": {"type": "string"}},
             "required": ["id", "name", "email", "payment_terms"]}""",
            calls,
            clock,
            (args, meta) -> Tools.Reply.of(supplier(Tools.text(args, "supplier_id")))),
        Tools.tool(
            "schedule-payment",
            "Schedule a payment",
            "Schedules the payment of an amount of an open invoice, in the invoice's currency, and answers the "
                + "payment id. Moves money: send an idempotency key in _meta (" + McpMeta.IDEMPOTENCY_KEY + ").",
            Tools.Effects.SIDE_EFFECTING,
            """
            {"type": "object",
             "properties": {"invoice_id": {"type": "string"}, "amount": %s, "currency": %s},
             "required": ["invoice_id", "amount", "currency"], "additionalProperties": false}"""
                .formatted(Tools.AMOUNT_SCHEMA, Tools.CURRENCY_SCHEMA),
            """
            {"type": "object",
             "properties": {"payment_id": {"type": "string"}, "invoice_id": {"type": "string"},
                            "supplier_id": {"type": "string"}, "amount": {"type": "number"},
                            "currency": {"type": "string"}, "status": {"const": "scheduled"},
                            "remaining_amount": {"type": "number"}},
             "required": ["payment_id", "invoice_id", "supplier_id", "amount", "currency", "status", "remaining_amount"]}""",
            calls,
            clock,
            (args, meta) -> Tools.Reply.of(journal.once("schedule-payment", args, meta, (history, seq) -> pay(args, history, seq)))));
  }

  private static final String INVOICE_SCHEMA =
      """
      {"type": "object",
       "properties": {"id": {"type": "string"}, "supplier_id": {"type": "string"}, "amount": {"type": "number"},
                      "open_amount": {"type": "number"}, "currency": {"type": "string"},
                      "issued": {"type": "string"}, "due": {"type": "string"}, "description": {"type": "string"}},
       "required": ["id", "supplier_id", "amount", "open_amount", "currency", "due"]}""";

  private List<Map<String, Object>> listOpen(Optional<String> supplier) {
    List<JournalEntry> payments = journal.entries();
    List<Map<String, Object>> open = new ArrayList<>();
    for (Map<String, Object> invoice : list(database(), "invoices")) {
      if (supplier.isPresent() && !supplier.get().equals(invoice.get("supplier_id"))) {
        continue;
      }
      BigDecimal remaining = openAmount(invoice, payments);
      if (remaining.signum() > 0) {
        Map<String, Object> row = new LinkedHashMap<>(invoice);
        row.put("open_amount", remaining);
        open.add(row);
      }
    }
    return open;
  }

  private Map<String, Object> supplier(String id) {
    return list(database(), "suppliers").stream()
        .filter(s -> id.equals(s.get("id")))
        .findFirst()
        .orElseThrow(() -> new ToolError("no supplier \"" + id + "\"; list-open shows the supplier_id of each invoice"));
  }

  private Map<String, Object> pay(Map<String, Object> args, List<JournalEntry> history, long sequence) {
    String invoiceId = Tools.text(args, "invoice_id");
    BigDecimal amount = Tools.amount(args, "amount");
    String currency = Tools.currency(args, "currency");
    Map<String, Object> invoice =
        list(database(), "invoices").stream()
            .filter(i -> invoiceId.equals(i.get("id")))
            .findFirst()
            .orElseThrow(() -> new ToolError("no invoice \"" + invoiceId + "\"; list-open shows the open invoices"));
    if (!currency.equals(invoice.get("currency"))) {
      throw new ToolError(
          "invoice " + invoiceId + " is in " + invoice.get("currency") + ", not " + currency + "; pay it in its own currency");
    }
    BigDecimal open = openAmount(invoice, history);
    if (open.signum() == 0) {
      throw new ToolError("invoice " + invoiceId + " is already paid in full");
    }
    if (amount.compareTo(open) > 0) {
      throw new ToolError(
          "amount " + amount.toPlainString() + " is more than the " + open.toPlainString() + " " + currency
              + " still open on invoice " + invoiceId);
    }
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("payment_id", "PAY-%04d".formatted(sequence));
    result.put("invoice_id", invoiceId);
    result.put("supplier_id", invoice.get("supplier_id"));
    result.put("amount", amount);
    result.put("currency", currency);
    result.put("status", "scheduled");
    result.put("remaining_amount", open.subtract(amount));
    return result;
  }

  private static BigDecimal openAmount(Map<String, Object> invoice, List<JournalEntry> payments) {
    BigDecimal open = Json.decimal(invoice.get("amount"));
    for (JournalEntry p : payments) {
      if (invoice.get("id").equals(p.result().get("invoice_id"))) {
        open = open.subtract(Json.decimal(p.result().get("amount")));
      }
    }
    return open.setScale(2, java.math.RoundingMode.UNNECESSARY);
  }

  private Map<String, Object> database() {
    try {
      return Json.readObject(java.nio.file.Files.readString(files.db()), files.db().toString());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the invoices database " + files.db() + ": " + e.getMessage(), e);
    }
  }

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> list(Map<String, Object> db, String key) {
    return db.get(key) instanceof List<?> l ? (List<Map<String, Object>>) l : List.of();
  }

  // ---------------------------------------------------------------- demo data

  /**
   * The demo database: three suppliers (one whose email is outside {@code example-supplier.com})
   * and four open USD invoices, one of them (INV-1002, 12,500.00) above a 1,000 USD approval
   * threshold and the others below it.
   */
  public static Map<String, Object> seed() {
    return Map.of(
        "suppliers",
        List.of(
            supplier("sup-acme", "Acme Paper Co.", "billing@example-supplier.com", "net 30"),
            supplier("sup-globex", "Globex Logistics", "accounts@globex.example", "net 45"),
            supplier("sup-initech", "Initech Software", "invoices@example-supplier.com", "net 15")),
        "invoices",
        List.of(
            invoice("INV-1001", "sup-acme", "420.00", "2026-10-02", "2026-11-01", "printer paper, October"),
            invoice("INV-1002", "sup-globex", "12500.00", "2026-10-05", "2026-11-19", "freight, Q4 contract"),
            invoice("INV-1003", "sup-acme", "980.50", "2026-10-12", "2026-11-11", "toner and binders"),
            invoice("INV-1004", "sup-initech", "75.00", "2026-10-20", "2026-11-04", "licence renewal")));
  }

  private static Map<String, Object> supplier(String id, String name, String email, String terms) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", id);
    m.put("name", name);
    m.put("email", email);
    m.put("payment_terms", terms);
    return m;
  }

  private static Map<String, Object> invoice(
      String id, String supplier, String amount, String issued, String due, String description) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", id);
    m.put("supplier_id", supplier);
    m.put("amount", new BigDecimal(amount));
    m.put("currency", "USD");
    m.put("issued", issued);
    m.put("due", due);
    m.put("description", description);
    return m;
  }
}
