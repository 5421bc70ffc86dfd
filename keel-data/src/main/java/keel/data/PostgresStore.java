package keel.data;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.pool.HikariPool;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Clock;
import java.util.Properties;
import keel.core.KeelException;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;

/**
 * The scale-out store: every table in one PostgreSQL database (or schema), which any number of
 * nodes share. A HikariCP pool serves reads and writes; each write is one transaction on its own
 * connection (see {@link PostgresTransactions}), so concurrent sessions write in parallel and
 * PostgreSQL groups their commits into shared WAL flushes. Opening migrates the schema with
 * Flyway, which holds a PostgreSQL lock meanwhile, so nodes starting together migrate once.
 *
 * <p>Thread-safe.
 */
final class PostgresStore implements Store {

  private final PostgresConfig config;
  private final HikariDataSource pool;
  private final PostgresTransactions tx;
  private final PostgresEventStore events;
  private final PostgresBlobStore blobs;
  private final PostgresMemoryStore memory;
  private final PostgresInventoryStore inventory;
  private final PostgresOperatorStore operators;
  private final PostgresSigningKeyStore signingKeys;
  private final JdbcToolCatalogStore toolCatalog;
  private final JdbcBudgetStore budgets;
  private final JdbcAuditStore audit;
  private final JdbcApprovalStore approvals;
  private final JdbcMcpCallStore mcpCalls;
  private final PostgresCostLedger ledger;
  private final PostgresTraceExportStore traceExports;
  private final PostgresLeaseStore leases;
  /** This open store's own id in approval notices, so it skips the ones it sent. */
  private final String instance = java.util.UUID.randomUUID().toString();
  private final ApprovalAnnouncer announcer;

  private PostgresStore(PostgresConfig config, HikariDataSource pool, String node, Clock clock) {
    this.config = config;
    this.pool = pool;
    this.tx = new PostgresTransactions(pool, config.describe());
    this.announcer = ApprovalAnnouncer.postgres(instance);
    this.events = new PostgresEventStore(tx, node, clock, announcer);
    this.blobs = new PostgresBlobStore(tx);
    this.memory = new PostgresMemoryStore(tx, clock);
    this.inventory = new PostgresInventoryStore(tx, clock);
    this.operators = new PostgresOperatorStore(tx, clock);
    this.signingKeys = new PostgresSigningKeyStore(tx);
    JdbcBudgetStore.Transactions transactions = new JdbcBudgetStore.Transactions() {
      @Override
      public <T> T write(String what, GroupCommitWriter.Op<T> op) {
        return tx.writeTx(what, op);
      }

      @Override
      public <T> T read(String what, Jdbc.Read<T> read) {
        return tx.read(what, read::run);
      }
    };
    // nodes share the rows: a reservation locks its windows, an audit append the chain head
    this.budgets = new JdbcBudgetStore(transactions, " FOR UPDATE");
    this.audit = new JdbcAuditStore(transactions, true, clock);
    this.toolCatalog = new JdbcToolCatalogStore(transactions, true);
    this.approvals = new JdbcApprovalStore(transactions, (t, in) -> PostgresEventStore.deliver(t.connection(), in), true,
        announcer);
    this.mcpCalls = new JdbcMcpCallStore(transactions, true, announcer);
    this.ledger = new PostgresCostLedger(tx);
    this.traceExports = new PostgresTraceExportStore(tx);
    this.leases = new PostgresLeaseStore(tx, clock);
  }

  static Store open(PostgresConfig config, String node, Clock clock) {
    HikariDataSource pool = null;
    try {
      pool = new HikariDataSource(hikari(config));
      migrate(pool, config);
      return new PostgresStore(config, pool, node, clock);
    } catch (HikariPool.PoolInitializationException e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      String reason = cause instanceof SQLException s ? PostgresTransactions.withHint(s) : cause.getMessage();
      throw new KeelException.Unavailable(
          "cannot connect to the PostgreSQL store " + config.describe() + ": " + reason, e);
    } catch (RuntimeException e) {
      // a store that fails to open holds no connections and no threads
      if (pool != null) {
        pool.close();
      }
      if (e instanceof KeelException k) {
        throw k;
      }
      throw new KeelException.Unavailable(
          "cannot open the PostgreSQL store " + config.describe() + ": " + e.getMessage(), e);
    }
  }

  /** How long a transaction may sit idle (its node paused or cut off) before the server ends it. */
  static final long IDLE_IN_TRANSACTION_MILLIS = 2000;

  private static HikariConfig hikari(PostgresConfig config) {
    HikariConfig h = new HikariConfig();
    h.setPoolName("keel-postgresql");
    h.setJdbcUrl(config.jdbcUrl());
    config.user().ifPresent(h::setUsername);
    config.password().ifPresent(h::setPassword);
    h.setMaximumPoolSize(config.poolSize());
    h.setMinimumIdle(Math.min(2, config.poolSize()));
    h.setConnectionTimeout(config.poolTimeout().toMillis());
    // fail at once, with the driver's reason, when the server cannot be reached at start
    h.setInitializationFailTimeout(1);
    Properties driver = new Properties();
    if (!config.parameters().containsKey("reWriteBatchedInserts")) {
      // the events of one append go to the server as one multi-row INSERT
      driver.setProperty("reWriteBatchedInserts", "true");
    }
    if (!config.parameters().containsKey("connectTimeout")) {
      driver.setProperty("connectTimeout", "10");
    }
    if (!config.parameters().containsKey("ApplicationName")) {
      driver.setProperty("ApplicationName", "keel");
    }
    h.setDataSourceProperties(driver);
    // a node paused or cut off inside a transaction (SIGSTOP, a partition) must not keep the row
    // locks it holds, which would stall every other node: the server ends such a transaction
    String init = "SELECT set_config('idle_in_transaction_session_timeout', '" + IDLE_IN_TRANSACTION_MILLIS + "', false)";
    if (!config.durable()) {
      // commits are acknowledged before their WAL flush: a server crash may lose the last ones,
      // never corrupt anything
      init += ", set_config('synchronous_commit', 'off', false)";
    }
    h.setConnectionInitSql(init);
    return h;
  }

  private static void migrate(HikariDataSource pool, PostgresConfig config) {
    try {
      Flyway.configure()
          .dataSource(pool)
          .schemas(config.schema())
          .defaultSchema(config.schema())
          .locations("classpath:keel/data/postgresql")
          .loggers("slf4j")
          .load()
          .migrate();
    } catch (FlywayException e) {
      throw new KeelException.Unavailable(
          "cannot migrate the PostgreSQL store " + config.describe() + " to the current schema: " + e.getMessage(), e);
    }
  }

  @Override
  public EventStore events() {
    return events;
  }

  @Override
  public BlobStore blobs() {
    return blobs;
  }

  @Override
  public MemoryStore memory() {
    return memory;
  }

  @Override
  public InventoryStore inventory() {
    return inventory;
  }

  @Override
  public OperatorStore operators() {
    return operators;
  }

  @Override
  public SigningKeyStore signingKeys() {
    return signingKeys;
  }

  @Override
  public ToolCatalogStore toolCatalog() {
    return toolCatalog;
  }

  @Override
  public ApprovalStore approvals() {
    return approvals;
  }

  @Override
  public McpCallStore mcpCalls() {
    return mcpCalls;
  }

  @Override
  public BudgetStore budgets() {
    return budgets;
  }

  @Override
  public AuditStore audit() {
    return audit;
  }

  @Override
  public CostLedger ledger() {
    return ledger;
  }

  @Override
  public TraceExportStore traceExports() {
    return traceExports;
  }

  @Override
  public AutoCloseable listenForInputs(java.util.function.Consumer<String> sessionIds) {
    return PostgresInputListener.start(config, PostgresInputListener.CHANNEL, sessionIds);
  }

  @Override
  public AutoCloseable listenForApprovals(java.util.function.Consumer<ApprovalChange> changes) {
    return PostgresInputListener.start(config, ApprovalAnnouncer.CHANNEL,
        payload -> ApprovalAnnouncer.parse(payload, instance).ifPresent(changes));
  }

  @Override
  public LeaseStore leases() {
    return leases;
  }

  @Override
  public void timeAppends(java.util.function.LongConsumer nanos) {
    events.timeAppends(nanos);
  }

  @Override
  public String describe() {
    return config.describe();
  }

  @Override
  public boolean healthy() {
    if (tx.closed()) {
      return false;
    }
    try (Connection c = pool.getConnection()) {
      return c.isValid(2);
    } catch (SQLException e) {
      return false;
    }
  }

  @Override
  public void close() {
    tx.close();
    pool.close();
  }
}
