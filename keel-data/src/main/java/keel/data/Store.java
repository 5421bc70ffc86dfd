package keel.data;

import java.nio.file.Path;
import java.time.Clock;

/**
 * An open data store: one database holding every session, blob, note, revision, operator and
 * session lease.
 *
 * <p>Thread-safe. Concurrent sessions share disk flushes: on SQLite every write goes through one
 * group-committing writer; on PostgreSQL writes run in parallel on a connection pool and the server
 * groups their commits. Reads run concurrently.
 */
public interface Store extends AutoCloseable {

  EventStore events();

  BlobStore blobs();

  MemoryStore memory();

  InventoryStore inventory();

  /** Operators, their role bindings and their API tokens (as hashes). */
  OperatorStore operators();
  /** The control plane's token signing keys. */
  SigningKeyStore signingKeys();

  /** The MCP gateway's tool catalog: every schema version of every upstream tool. */
  ToolCatalogStore toolCatalog();
  /** The approvals inbox: external calls that wait for a human, and their decisions. */
  ApprovalStore approvals();
  /** The calls outside MCP clients make through the gateway's MCP server, by caller and idempotency key. */
  McpCallStore mcpCalls();

  /** Agents' budgets: what each has spent and reserved per budget window. */
  BudgetStore budgets();

  /** The hash-chained audit log, written alone or with the session events it records. */
  AuditStore audit();

  /** The cost ledger, written with the events that record each cost. */
  CostLedger ledger();

  /** What the OpenTelemetry export keeps beside the event log: remote parents, export markers. */
  TraceExportStore traceExports();

  /** Leases on sessions: which node runs each, under which epoch (the fence of its appends). */
  LeaseStore leases();

  /**
   * Tells {@code nanos} how long each event append took (queueing, the transaction and its share
   * of the group commit's flush), for metrics. Replaces any earlier timer; it must be fast and
   * must not throw.
   */
  void timeAppends(java.util.function.LongConsumer nanos);

  /**
   * Tells {@code sessionIds} the id of each session an input was written for (a message, a
   * decision, a sub-agent's result, a delivery), by any node sharing this store, soon after the
   * write commits: how the node that should run the session learns of it without polling. A
   * notification may be lost (a dropped connection), so this is a hint; polling stays the
   * fallback. The SQLite store, with one node, tells nothing. The listener must be fast and must
   * not throw; close the handle to stop.
   */
  default AutoCloseable listenForInputs(java.util.function.Consumer<String> sessionIds) {
    return () -> {};
  }

  /**
   * Tells {@code changes} of each approval requested, decided, expired or withdrawn by another node
   * sharing this store (PostgreSQL {@code NOTIFY}, sent in the transaction of the change), soon
   * after it commits; changes this store made are not told (its node knows them). A notice may be
   * lost while the connection is down, so the inbox ({@link #approvals()}) stays the truth. The
   * SQLite store, with one node, tells nothing. The listener must be fast and must not throw; close
   * the handle to stop.
   */
  default AutoCloseable listenForApprovals(java.util.function.Consumer<ApprovalChange> changes) {
    return () -> {};
  }

  /** A short description for logs and {@code /readyz}, e.g. {@code sqlite:/data/keel.db}. */
  String describe();

  /** Whether the store answers a trivial query now. */
  boolean healthy();

  @Override
  void close();

  /**
   * Opens (creating and migrating if needed) the SQLite store {@code keel.db} in a data directory.
   *
   * @param dataDir the directory; created if missing
   * @param node this node's name, stamped on every event it appends
   * @param clock the source of event timestamps
   * @param durable whether each commit is flushed to disk before it is acknowledged ({@code
   *     synchronous=FULL}); when false a power loss may lose the last commits, a process crash not
   */
  static Store sqlite(Path dataDir, String node, Clock clock, boolean durable) {
    return SqliteStore.open(dataDir, node, clock, durable);
  }

  /**
   * Opens the PostgreSQL store a configuration names, migrating its schema to the current version
   * if needed. Many nodes may open the same store at once: they migrate it once, and each append's
   * expected sequence number keeps every session's log single-writer across them.
   *
   * @param config the server, database, login, pool and durability ({@link PostgresConfig#parse})
   * @param node this node's name, stamped on every event it appends
   * @param clock the source of event timestamps
   * @throws keel.core.KeelException.Unavailable if the server cannot be reached, refuses the login,
   *     or holds a schema this version cannot migrate; the message says which, never the password
   */
  static Store postgresql(PostgresConfig config, String node, Clock clock) {
    return PostgresStore.open(config, node, clock);
  }
}
