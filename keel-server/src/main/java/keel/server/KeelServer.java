package keel.server;

import io.javalin.Javalin;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import keel.data.PostgresConfig;
import keel.control.Identity;
import keel.data.Store;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.control.Operators;
import keel.control.Policies;
import keel.execution.ModelProviders;
import keel.execution.OutsideCalls;
import keel.execution.PriceTable;
import keel.execution.ExecutionSettings;
import keel.execution.SessionService;
import keel.execution.ToolEnvironment;
import keel.execution.ToolRegistry;
import keel.gateway.CatalogChange;
import keel.gateway.Gateway;
import keel.gateway.GatewaySettings;
import keel.core.Descriptors;
import keel.core.McpServerDescriptor;
import keel.data.InventoryStore;
import java.util.ArrayList;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running Keel node: the store, the execution plane and the HTTP API, wired by constructors. On
 * start it locks its data directory, opens (and migrates) the store (SQLite in the data directory,
 * or the PostgreSQL store the configuration names), makes sure an admin token exists, resumes
 * every session a previous run left with work, and starts listening.
 *
 * <p>Thread-safe.
 */
public final class KeelServer implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(KeelServer.class);

  /**
   * The listen backlog of the HTTP connector: how many connections the kernel completes and holds
   * for the server to accept. Jetty's default (the JVM's 50) overflows when a thousand clients
   * connect at once, and an overflowing listen queue drops handshakes and later resets
   * connections; with room for a burst, every connection is accepted and then answered, with 429
   * and {@code Retry-After} when the node is overloaded. The kernel caps it at {@code
   * net.core.somaxconn} (4096 on current Linux).
   */
  public static final int ACCEPT_QUEUE_SIZE = 1024;

  private final ServerConfig config;
  private final DataDirLock lock;
  private final Store store;
  private final SessionService sessions;
  private final AdminToken token;
  private final Operators operators;
  private final Api api;
  private final Javalin app;
  private final Metrics metrics;
  private final Optional<TraceExport> traceExport;
  private final Gateway gateway;
  /** The approval webhook, when {@value ApprovalWebhook#URL_VARIABLE} names one; closed with the server. */
  private volatile Optional<ApprovalWebhook> webhook = Optional.empty();
  private volatile boolean ready;
  /** The MCP endpoint at {@code /mcp}; closed with the server. */
  private volatile McpEndpoint mcp;

  private KeelServer(
      ServerConfig config, DataDirLock lock, Store store, SessionService sessions, AdminToken token, Operators operators, Api api,
      Javalin app, Metrics metrics, Optional<TraceExport> traceExport, Gateway gateway) {
    this.gateway = gateway;
    this.metrics = metrics;
    this.traceExport = traceExport;
    this.config = config;
    this.lock = lock;
    this.store = store;
    this.sessions = sessions;
    this.token = token;
    this.operators = operators;
    this.api = api;
    this.app = app;
  }

  /** Starts a node; returns once it is listening and has resumed unfinished sessions. */
  public static KeelServer start(ServerConfig config) {
    DataDirLock lock = DataDirLock.acquire(config.dataDir());
    Store store = null;
    try {
      Clock clock = Clock.systemUTC();
      Map<String, String> environment = new HashMap<>(config.environment());
      config.secretsFile().ifPresent(f -> environment.putAll(Secrets.load(f)));
      store = openStore(config, environment, clock);
      AdminToken token = AdminToken.loadOrCreate(config.dataDir());
      PriceTable prices = config.pricesFile().map(f -> PriceTable.builtIn().overriddenBy(PriceTable.load(f))).orElseGet(PriceTable::builtIn);
      ModelProviders models = ModelProviders.create(environment);
      // the MCP gateway: its servers are the active McpServer revisions, reconfigured on each activation
      Store inventoryStore = store;
      // every catalog change is logged and chained into the audit log
      Gateway gateway = new Gateway(store.toolCatalog(), config.dataDir(), environment, clock, GatewaySettings.defaults(),
          change -> {
            LOG.info("tool catalog: {}", describe(change));
            inventoryStore.audit().append(List.of(catalogAudit(change, inventoryStore)));
          });
      Runnable reconfigure = () -> gateway.configure(mcpServers(inventoryStore));
      reconfigure.run();
      ToolRegistry tools = ToolRegistry.load(new ToolEnvironment(store, clock, config.dataDir(), environment)).withGateway(gateway);
      Identity identity = new Identity(store.signingKeys(), clock, config.identity());
      // a signing key exists before the first token is asked for, so the JWKS document is never empty
      identity.activeKeyId();
      // on a shared store (PostgreSQL) sessions run under leases, so several nodes can serve it
      ExecutionSettings execution = config.postgres().isPresent() && config.execution().leaseTtl().isEmpty()
          ? config.execution().withLeaseTtl(ExecutionSettings.DEFAULT_LEASE_TTL)
          : config.execution();
      SessionService sessions = SessionService.create(store, models, tools, clock, execution, prices, identity, config.costs());
      // a revision that becomes active (applied, approved, rolled back) may raise a budget: the
      // agent's budget-blocked sessions check again
      Inventory inventory = new Inventory(store.inventory(), tools, models, sessions::agentChanged, r -> {
        if (r.kind().equals("McpServer")) {
          reconfigure.run();
        }
      });
      Operators operators = new Operators(store.operators(), new SecureRandom(), token.bootstrap());
      KeelServer[] self = new KeelServer[1];
      Store opened = store;
      Metrics metrics = new Metrics(sessions, store);
      Optional<TraceExport> traceExport = otlpEndpoint(environment).map(url -> {
        LOG.info("exporting traces over OTLP to {}", url);
        return new TraceExport(opened, exporter(url), config.execution().node());
      });
      traceExport.ifPresent(t -> sessions.addRunListener((id, took) -> t.sessionSuspended(id)));
      Optional<ApprovalWebhook> webhook = Optional.ofNullable(environment.get(ApprovalWebhook.URL_VARIABLE)).filter(u -> !u.isBlank())
          .map(u -> {
            java.net.URI uri;
            try {
              uri = java.net.URI.create(u.strip());
            } catch (IllegalArgumentException e) {
              throw new keel.core.KeelException.Invalid(ApprovalWebhook.URL_VARIABLE + ": not a URL: " + e.getMessage());
            }
            LOG.info("posting approval notifications to {}", uri.getHost());
            return new ApprovalWebhook(uri, environment.getOrDefault(ApprovalWebhook.SECRET_VARIABLE, ""), java.time.Duration.ofSeconds(1));
          });
      webhook.ifPresent(w -> sessions.addApprovalListener(w::notify));
      Api api = new Api(sessions, store, inventory, operators, metrics::scrape, new Api.Health() {
        @Override
        public boolean ready() {
          // ready: migrated and started, the store answers, and (under leases) the heartbeat is current
          return self[0] != null && self[0].ready && opened.healthy() && sessions.scheduler().heartbeating();
        }

        @Override
        public String describe() {
          return opened.describe();
        }
      }, clock, Optional.of(gateway));
      Dashboard dashboard = new Dashboard(api, sessions, store, inventory, operators, clock);
      // the gateway as an MCP server for outside clients, under the same policies, approvals and audit
      OutsideCalls outside = new OutsideCalls(gateway, store, sessions.catalog(), new Policies(), clock,
          approvalWait(environment), sessions::approvalRequested);
      McpEndpoint mcp = new McpEndpoint(outside, operators, identity, KeelServer.class.getPackage().getImplementationVersion() == null
          ? "dev" : KeelServer.class.getPackage().getImplementationVersion());
      Javalin app = Javalin.create(cfg -> {
        cfg.concurrency.useVirtualThreads = true;
        cfg.startup.showJavalinBanner = false;
        cfg.http.maxRequestSize = 16L * 1024 * 1024;
        cfg.jetty.host = config.host();
        cfg.jetty.port = config.port();
        // Javalin's own connector would take Jetty's default accept queue (the JVM's backlog of 50):
        // a burst of new connections overflows it and the kernel resets some of them
        cfg.jetty.addConnector((jetty, http) -> {
          ServerConnector c = new ServerConnector(jetty, new HttpConnectionFactory(http));
          c.setHost(config.host());
          c.setPort(config.port());
          c.setAcceptQueueSize(ACCEPT_QUEUE_SIZE);
          return c;
        });
        api.install(cfg);
        dashboard.install(cfg);
        cfg.jetty.modifyServletContextHandler(mcp::mount);
      });
      app.start();
      KeelServer server = new KeelServer(config, lock, store, sessions, token, operators, api, app, metrics, traceExport, gateway);
      server.mcp = mcp;
      self[0] = server;
      server.webhook = webhook;
      sessions.recover();
      server.ready = true;
      LOG.info("Keel is listening on {} (store {}, node {})", server.url(), store.describe(), config.execution().node());
      return server;
    } catch (RuntimeException e) {
      if (store != null) {
        store.close();
      }
      lock.close();
      throw e;
    }
  }

  /**
   * The configured PostgreSQL store (its password from {@link ServerConfig#STORE_PASSWORD} when the
   * URL has none), else SQLite in the data directory; {@code --no-fsync} applies to either.
   */
  private static Store openStore(ServerConfig config, Map<String, String> environment, Clock clock) {
    String node = config.execution().node();
    if (config.postgres().isEmpty()) {
      return Store.sqlite(config.dataDir(), node, clock, config.durable());
    }
    PostgresConfig pg = config.postgres().get();
    String password = environment.get(ServerConfig.STORE_PASSWORD);
    if (pg.password().isEmpty() && password != null && !password.isEmpty()) {
      pg = pg.withPassword(password);
    }
    return Store.postgresql(pg.withDurable(pg.durable() && config.durable()), node, clock);
  }

  /** The active McpServer descriptors of the inventory. */
  private static List<McpServerDescriptor> mcpServers(Store store) {
    List<McpServerDescriptor> out = new ArrayList<>();
    for (InventoryStore.Revision r : store.inventory().latestOfKind("McpServer")) {
      if (Descriptors.fromCanonicalJson(r.kind(), r.spec()) instanceof McpServerDescriptor d) {
        out.add(d);
      }
    }
    return out;
  }

  /** The audit record of a catalog change: what changed, from which version to which, and the schema hash. */
  private static keel.data.AuditRecord catalogAudit(CatalogChange change, Store store) {
    tools.jackson.databind.node.ObjectNode d = keel.core.EventCodec.mapper().createObjectNode();
    String server = switch (change) {
      case CatalogChange.Added a -> {
        d.put("change", "added").put("version", a.entry().version()).put("hash", a.entry().hash());
        yield a.entry().server();
      }
      case CatalogChange.Changed c -> {
        d.put("change", "changed").put("version", c.entry().version()).put("hash", c.entry().hash())
            .put("previous_version", c.previousVersion()).put("previous_hash", c.previousHash());
        yield c.entry().server();
      }
      case CatalogChange.Removed r -> {
        d.put("change", "removed").put("version", r.lastVersion());
        yield r.server();
      }
    };
    String owner = store.inventory().latest("McpServer", server).map(InventoryStore.Revision::owner).orElse("");
    return new keel.data.AuditRecord("catalog_change", "keel:gateway", owner, "", "", change.catalogName(),
        keel.core.EventCodec.mapper().writeValueAsString(d));
  }

  private static String describe(CatalogChange change) {
    return switch (change) {
      case CatalogChange.Added a -> a.catalogName() + " added at version " + a.entry().version();
      case CatalogChange.Changed c -> c.catalogName() + " changed from version " + c.previousVersion() + " to "
          + c.entry().version();
      case CatalogChange.Removed r -> r.catalogName() + " removed (it was at version " + r.lastVersion() + ")";
    };
  }

  /** How long an MCP call waits for its approval: {@value McpEndpoint#APPROVAL_WAIT_VARIABLE}, else 30 s. */
  private static java.time.Duration approvalWait(Map<String, String> environment) {
    String v = environment.get(McpEndpoint.APPROVAL_WAIT_VARIABLE);
    if (v == null || v.isBlank()) {
      return McpEndpoint.DEFAULT_APPROVAL_WAIT;
    }
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,6})(ms|s|m)").matcher(v.strip());
    if (!m.matches()) {
      throw new keel.core.KeelException.Invalid(McpEndpoint.APPROVAL_WAIT_VARIABLE + ": expected a duration such as 500ms,"
          + " 30s or 2m, got \"" + v + "\"");
    }
    long n = Long.parseLong(m.group(1));
    return switch (m.group(2)) {
      case "ms" -> java.time.Duration.ofMillis(n);
      case "s" -> java.time.Duration.ofSeconds(n);
      default -> java.time.Duration.ofMinutes(n);
    };
  }

  /** Environment variable naming the OTLP endpoint (its base URL; {@code /v1/traces} is added). */
  public static final String OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT";

  private static Optional<String> otlpEndpoint(Map<String, String> environment) {
    return Optional.ofNullable(environment.get(OTLP_ENDPOINT)).map(String::strip).filter(s -> !s.isEmpty());
  }

  /** An OTLP/HTTP protobuf span exporter (JDK HTTP client) for a base URL such as {@code http://collector:4318}. */
  private static io.opentelemetry.sdk.trace.export.SpanExporter exporter(String base) {
    String url = base.endsWith("/v1/traces") ? base : (base.endsWith("/") ? base.substring(0, base.length() - 1) : base) + "/v1/traces";
    try {
      java.net.URI uri = java.net.URI.create(url);
      if (uri.getScheme() == null || !(uri.getScheme().equals("http") || uri.getScheme().equals("https")) || uri.getHost() == null) {
        throw new IllegalArgumentException("not an http(s) URL");
      }
    } catch (IllegalArgumentException e) {
      throw new keel.core.KeelException.Invalid(
          "the OTLP endpoint \"" + base + "\" is not an http(s) URL such as http://127.0.0.1:4318 (" + e.getMessage() + ")");
    }
    return io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter.builder()
        .setEndpoint(url)
        .setTimeout(java.time.Duration.ofSeconds(10))
        .build();
  }

  public int port() {
    return app.port();
  }

  /** The listen backlog the HTTP connector asked the kernel for ({@link #ACCEPT_QUEUE_SIZE}). */
  public int acceptQueueSize() {
    return ((ServerConnector) app.jettyServer().server().getConnectors()[0]).getAcceptQueueSize();
  }

  /** The base URL, e.g. {@code http://127.0.0.1:8420}. */
  public String url() {
    String host = config.host().contains(":") ? "[" + config.host() + "]" : config.host();
    return "http://" + (host.equals("0.0.0.0") ? "127.0.0.1" : host) + ":" + port();
  }

  public Path adminTokenFile() {
    return token.file();
  }

  /** The operators of this server: who may call its API, with which roles. */
  public Operators operators() {
    return operators;
  }

  /** The API's route table, as registered (for tests that walk every route). */
  List<Api.Route> routes() {
    return api.routes();
  }

  public SessionService sessions() {
    return sessions;
  }

  public Store store() {
    return store;
  }

  public ServerConfig config() {
    return config;
  }

  /** Stops listening, lets runs reach their next write, and closes the store. */
  @Override
  public void close() {
    ready = false;
    if (mcp != null) {
      mcp.close();
    }
    sessions.close();
    app.stop();
    gateway.close();
    traceExport.ifPresent(TraceExport::close);
    webhook.ifPresent(ApprovalWebhook::close);
    metrics.close();
    store.close();
    lock.close();
  }
}
