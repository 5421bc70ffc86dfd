package keel.data;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import keel.core.KeelException;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.sqlite.SQLiteConfig;

/**
 * The embedded store: one SQLite database in WAL mode in the data directory. Writes go through a
 * {@link GroupCommitWriter} on a dedicated connection; reads use a small pool of read-only
 * connections, which WAL lets run while the writer commits.
 *
 * <p>Thread-safe.
 */
final class SqliteStore implements Store {

  private static final int READERS = 8;

  private final Path file;
  private final HikariDataSource readers;
  private final GroupCommitWriter writer;
  private final SqliteEventStore events;
  private final SqliteBlobStore blobs;
  private final SqliteMemoryStore memory;
  private final SqliteInventoryStore inventory;
  private final SqliteOperatorStore operators;
  private final SqliteSigningKeyStore signingKeys;
  private final JdbcToolCatalogStore toolCatalog;
  private final JdbcBudgetStore budgets;
  private final JdbcAuditStore audit;
  private final JdbcApprovalStore approvals;
  private final JdbcMcpCallStore mcpCalls;
  private final SqliteCostLedger ledger;
  private final SqliteTraceExportStore traceExports;
  private final SqliteLeaseStore leases;

  private SqliteStore(Path file, HikariDataSource readers, GroupCommitWriter writer, String node, Clock clock) {
    this.file = file;
    this.readers = readers;
    this.writer = writer;
    this.events = new SqliteEventStore(readers, writer, node, clock);
    this.blobs = new SqliteBlobStore(readers, writer);
    this.memory = new SqliteMemoryStore(readers, writer, clock);
    this.inventory = new SqliteInventoryStore(readers, writer, clock);
    this.operators = new SqliteOperatorStore(readers, writer, clock);
    this.signingKeys = new SqliteSigningKeyStore(readers, writer);
    JdbcBudgetStore.Transactions transactions = new JdbcBudgetStore.Transactions() {
      @Override
      public <T> T write(String what, GroupCommitWriter.Op<T> op) {
        return writer.execute(op);
      }

      @Override
      public <T> T read(String what, Jdbc.Read<T> read) {
        return Jdbc.read(readers, what, read);
      }
    };
    // the single writer makes each reservation and each audit append atomic: no row locks needed
    this.budgets = new JdbcBudgetStore(transactions, "");
    this.audit = new JdbcAuditStore(transactions, false, clock);
    this.toolCatalog = new JdbcToolCatalogStore(transactions, false);
    this.approvals = new JdbcApprovalStore(transactions, SqliteEventStore::deliver, false, ApprovalAnnouncer.NONE);
    this.mcpCalls = new JdbcMcpCallStore(transactions, false, ApprovalAnnouncer.NONE);
    this.ledger = new SqliteCostLedger(readers);
    this.traceExports = new SqliteTraceExportStore(readers, writer);
    this.leases = new SqliteLeaseStore(readers, writer, clock);
  }

  static Store open(Path dataDir, String node, Clock clock, boolean durable) {
    Path file = dataDir.resolve("keel.db").toAbsolutePath();
    if (Files.exists(dataDir) && !Files.isDirectory(dataDir)) {
      throw new KeelException.Unavailable(
          "cannot use " + dataDir.toAbsolutePath() + " as the data directory: it is not a directory", null);
    }
    try {
      Files.createDirectories(dataDir);
    } catch (IOException e) {
      throw new KeelException.Unavailable(
          "cannot create the data directory " + dataDir + ": " + e.getMessage(), e);
    }
    String url = "jdbc:sqlite:" + file;
    Connection writerConnection = null;
    HikariDataSource readers = null;
    try {
      writerConnection = DriverManager.getConnection(url);
      try (Statement st = writerConnection.createStatement()) {
        st.execute("PRAGMA journal_mode=WAL");
        st.execute("PRAGMA synchronous=" + (durable ? "FULL" : "NORMAL"));
        st.execute("PRAGMA busy_timeout=10000");
        st.execute("PRAGMA foreign_keys=ON");
      }
      migrate(url, file);
      HikariConfig config = new HikariConfig();
      config.setJdbcUrl(url);
      config.setPoolName("keel-sqlite-readers");
      config.setMaximumPoolSize(READERS);
      config.setMinimumIdle(1);
      // sqlite-jdbc cannot make an open connection read-only (Hikari's setReadOnly fails on every
      // connection), so the readers are opened read-only, with their busy timeout, by the driver.
      SQLiteConfig readOnly = new SQLiteConfig();
      readOnly.setReadOnly(true);
      readOnly.setBusyTimeout(10_000);
      config.setDataSourceProperties(readOnly.toProperties());
      config.setReadOnly(true);
      readers = new HikariDataSource(config);
      GroupCommitWriter writer = new GroupCommitWriter("sqlite:" + file, writerConnection);
      return new SqliteStore(file, readers, writer, node, clock);
    } catch (SQLException | RuntimeException e) {
      // a store that fails to open holds no file handles and no threads
      if (readers != null) {
        readers.close();
      }
      if (writerConnection != null) {
        try {
          writerConnection.close();
        } catch (SQLException closing) {
          e.addSuppressed(closing);
        }
      }
      if (e instanceof KeelException k) {
        throw k;
      }
      throw new KeelException.Unavailable("cannot open the store " + file + ": " + e.getMessage(), e);
    }
  }

  private static void migrate(String url, Path file) {
    try {
      Flyway.configure()
          .dataSource(url, null, null)
          .locations("classpath:keel/data/sqlite")
          .loggers("slf4j")
          .load()
          .migrate();
    } catch (FlywayException e) {
      throw new KeelException.Unavailable(
          "cannot migrate the store " + file + " to the current schema: " + e.getMessage(), e);
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
  public LeaseStore leases() {
    return leases;
  }

  @Override
  public void timeAppends(java.util.function.LongConsumer nanos) {
    events.timeAppends(nanos);
  }

  @Override
  public String describe() {
    return "sqlite:" + file;
  }

  @Override
  public boolean healthy() {
    try (Connection c = readers.getConnection();
        Statement st = c.createStatement()) {
      st.executeQuery("SELECT 1").close();
      return true;
    } catch (SQLException e) {
      return false;
    }
  }

  @Override
  public void close() {
    writer.close();
    readers.close();
  }
}
