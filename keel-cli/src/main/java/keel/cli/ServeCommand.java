package keel.cli;

import java.net.BindException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.time.Duration;
import keel.control.IdentitySettings;
import keel.core.KeelException;
import keel.data.PostgresConfig;
import keel.execution.ExecutionSettings;
import keel.server.KeelServer;
import keel.server.ServerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code keel serve}: runs a Keel server in this process until SIGTERM or SIGINT. */
@Command(
    name = "serve",
    header = "Run a Keel server.",
    mixinStandardHelpOptions = true,
    description = {
      "Run a Keel server: the HTTP API, the scheduler and the store (SQLite in the data directory, or PostgreSQL with --store). It runs until it gets SIGTERM or SIGINT (Ctrl+C), then stops cleanly: running steps reach their next write, and sessions resume where they were on the next start."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel serve                                  127.0.0.1:8420, data in ./.keel",
      "  keel serve --port 9000 --data-dir /var/lib/keel",
      "  keel serve --store postgresql://keel@db.internal:5432/keel     password from KEEL_STORE_PASSWORD",
      "  KEEL_PORT=9000 keel serve"
    })
final class ServeCommand implements Callable<Integer> {

  private final Io io;

  @Option(names = "--port", paramLabel = "PORT", description = "The port to listen on, 0 for any free port (env KEEL_PORT; default 8420).")
  Integer port;

  @Option(names = "--host", paramLabel = "ADDRESS", description = "The address to listen on (env KEEL_HOST; default 127.0.0.1, this machine only).")
  String host;

  @Option(names = "--data-dir", paramLabel = "DIR", description = "Where the admin token, the lock and (without --store) the SQLite store live (env KEEL_DATA_DIR; default .keel in the current directory).")
  Path dataDir;

  @Option(
      names = "--store",
      paramLabel = "URL",
      description =
          "Keep sessions, memory and the inventory in PostgreSQL instead of SQLite in the data directory:"
              + " postgresql://USER:PASSWORD@HOST:PORT/DATABASE?PARAMS (or a jdbc:postgresql: URL). Params:"
              + " pool_size (connections, default 10), pool_timeout (seconds, default 10) and the PostgreSQL"
              + " JDBC driver's (sslmode, connectTimeout, currentSchema, …). Without a password in the URL,"
              + " KEEL_STORE_PASSWORD (environment or --secrets file) gives it. \"sqlite\" means the default"
              + " (env KEEL_STORE).")
  String store;

  @Option(names = "--secrets", paramLabel = "FILE", description = "A file of NAME=value lines (e.g. OPENAI_API_KEY=…) for model providers, taking precedence over the environment; keep it readable by the server's user only (env KEEL_SECRETS_FILE).")
  Path secrets;

  @Option(names = "--prices", paramLabel = "FILE", description = "A YAML price table (prices: {provider: {model: {input, output, cache_write, cache_read}}}, USD per million tokens) that overrides and extends the built-in one (env KEEL_PRICES_FILE).")
  Path prices;

  @Option(names = "--max-concurrent-steps", paramLabel = "N", description = "The most sessions running a step at once (default ${DEFAULT-VALUE}).")
  int maxConcurrentSteps = ExecutionSettings.defaults("x").maxConcurrentSteps();

  @Option(names = "--admission-capacity", paramLabel = "N", description = "The most sessions waiting for a slot before new work is refused with 429 (default ${DEFAULT-VALUE}).")
  int admissionCapacity = ExecutionSettings.defaults("x").admissionCapacity();

  @Option(
      names = "--cluster-admission-capacity",
      paramLabel = "N",
      description =
          "With --store postgresql: the most sessions waiting for a node to run them, counted in the store over every"
              + " node, before new work is refused with 429 on any node (default: --admission-capacity).")
  Integer clusterAdmissionCapacity;

  @Option(
      names = "--lease-ttl",
      paramLabel = "DURATION",
      description =
          "With --store postgresql: how long this node's lease on a session it runs lasts without a heartbeat,"
              + " e.g. 10s (default 10s; 1s to 1h). A node that dies is replaced on its sessions this long after"
              + " its last heartbeat; the heartbeat renews every lease of the node three times per period (env KEEL_LEASE_TTL).")
  String leaseTtl;

  @Option(names = "--token-lifetime", paramLabel = "DURATION", description = "How long a session token is valid, e.g. 10m or 90s (default 10m; 30s to 1h). Sessions renew theirs when a third of it is left.")
  String tokenLifetime;

  @Option(names = "--key-rotation", paramLabel = "DURATION", description = "How long a token signing key signs before a new one replaces it, e.g. 24h or 7d (default 24h). Old public keys stay in the JWKS until their tokens expire.")
  String keyRotation;

  @Option(names = "--max-delegation-depth", paramLabel = "N", description = "The most levels of sub-agents below a session an operator started (default ${DEFAULT-VALUE}).")
  int maxDelegationDepth = IdentitySettings.defaults().maxDelegationDepth();

  @Option(names = "--max-subagents", paramLabel = "N", description = "The most sub-agent calls one session may make over its life, the fan-out bound (default ${DEFAULT-VALUE}).")
  int maxSubagents = IdentitySettings.DEFAULT_MAX_SUBAGENTS_PER_SESSION;

  @Option(names = "--otlp-endpoint", paramLabel = "URL", description = "Export session traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (env OTEL_EXPORTER_OTLP_ENDPOINT; off by default).")
  String otlpEndpoint;

  @Option(names = "--approval-webhook", paramLabel = "URL", description = "POST approval notifications (requested, decided, expired) to this URL, signed with HMAC-SHA256 of the body under KEEL_APPROVAL_WEBHOOK_SECRET (environment or --secrets file) in the Keel-Signature header (env KEEL_APPROVAL_WEBHOOK; off by default).")
  String approvalWebhook;

  @Option(
      names = "--compute-usd-per-second",
      paramLabel = "USD",
      description = "The price of a second of compute in the cost ledger: time steps spend running in Keel and time tools run (default ${DEFAULT-VALUE}).")
  java.math.BigDecimal computeUsdPerSecond = keel.execution.CostSettings.DEFAULT_COMPUTE_USD_PER_SECOND;

  @Option(
      names = "--budget-output-tokens",
      paramLabel = "N",
      description = "The completion tokens a model call is assumed to produce when its cost is reserved against the agent's budgets before the call (default ${DEFAULT-VALUE}).")
  long budgetOutputTokens = keel.execution.CostSettings.DEFAULT_OUTPUT_TOKEN_ESTIMATE;

  @Option(
      names = "--no-fsync",
      description =
          "Acknowledge writes before they are flushed to disk. Faster, but a power loss or an"
              + " operating-system crash can lose the last acknowledged events (a crash of Keel"
              + " alone loses nothing). For development and benchmarks only.")
  boolean noFsync;

  ServeCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    int p = port != null ? port : parsePort(io.env("KEEL_PORT").orElse(Integer.toString(ServerConfig.DEFAULT_PORT)));
    String h = host != null ? host : io.env("KEEL_HOST").orElse("127.0.0.1");
    ServerConfig config;
    try {
      ExecutionSettings defaults = ExecutionSettings.defaults(ServerConfig.nodeName());
      config = new ServerConfig(
          h, p, io.dataDir(dataDir), !noFsync,
          new ExecutionSettings(defaults.node(), maxConcurrentSteps, admissionCapacity, defaults.maxInputChars(),
              java.util.Optional.empty(), clusterAdmissionCapacity != null ? clusterAdmissionCapacity : admissionCapacity),
          io.env());
      String ttl = leaseTtl != null ? leaseTtl : io.env("KEEL_LEASE_TTL").orElse(null);
      if (ttl != null) {
        Duration d = duration("--lease-ttl", ttl);
        if (d.compareTo(Duration.ofSeconds(1)) < 0 || d.compareTo(Duration.ofHours(1)) > 0) {
          throw new IllegalArgumentException("--lease-ttl: expected 1s to 1h, got \"" + ttl + "\"");
        }
        config = config.withExecution(config.execution().withLeaseTtl(d));
      }
      if (computeUsdPerSecond.signum() < 0) {
        throw new CliException(ExitCodes.USAGE, "--compute-usd-per-second: expected a number zero or greater, got " + computeUsdPerSecond.toPlainString());
      }
      if (budgetOutputTokens < 0) {
        throw new CliException(ExitCodes.USAGE, "--budget-output-tokens: expected a number zero or greater, got " + budgetOutputTokens);
      }
      config = config.withCosts(keel.execution.CostSettings.defaults()
          .withComputeUsdPerSecond(computeUsdPerSecond).withOutputTokenEstimate(budgetOutputTokens));
      Path secretsFile = secrets != null ? secrets : io.env("KEEL_SECRETS_FILE").map(Path::of).orElse(null);
      Path pricesFile = prices != null ? prices : io.env("KEEL_PRICES_FILE").map(Path::of).orElse(null);
      Optional<PostgresConfig> postgres = postgres(store != null ? store : io.env("KEEL_STORE").orElse(null));
      if (postgres.isPresent()) {
        config = config.withPostgres(postgres.get());
      }
      if (secretsFile != null) {
        config = config.withSecretsFile(secretsFile);
      }
      if (pricesFile != null) {
        config = config.withPricesFile(pricesFile);
      }
      IdentitySettings identity = IdentitySettings.defaults().withMaxDelegationDepth(maxDelegationDepth).withMaxSubagentsPerSession(maxSubagents);
      if (tokenLifetime != null) {
        identity = identity.withTokenLifetime(duration("--token-lifetime", tokenLifetime));
      }
      if (keyRotation != null) {
        identity = identity.withKeyRotation(duration("--key-rotation", keyRotation));
      }
      config = config.withIdentity(identity);
      if (otlpEndpoint != null) {
        java.util.Map<String, String> env = new java.util.HashMap<>(config.environment());
        env.put(KeelServer.OTLP_ENDPOINT, otlpEndpoint);
        config = config.withEnvironment(env);
      }
      if (approvalWebhook != null) {
        java.util.Map<String, String> env = new java.util.HashMap<>(config.environment());
        env.put("KEEL_APPROVAL_WEBHOOK", approvalWebhook);
        config = config.withEnvironment(env);
      }
    } catch (IllegalArgumentException e) {
      throw new CliException(ExitCodes.USAGE, e.getMessage());
    }
    KeelServer server = start(config);
    CountDownLatch stopped = new CountDownLatch(1);
    Thread hook = new Thread(() -> {
      io.err().println("keel: stopping…");
      server.close();
      stopped.countDown();
    }, "keel-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    io.out().println("Keel is listening on " + server.url());
    io.out().println("  store:          " + server.store().describe());
    io.out().println("  data directory: " + config.dataDir());
    io.out().println("  admin token:    " + server.adminTokenFile());
    boolean defaultDir = config.dataDir().equals(Path.of(ServerConfig.DEFAULT_DATA_DIR).toAbsolutePath().normalize());
    boolean defaultUrl = server.url().equals("http://127.0.0.1:" + ServerConfig.DEFAULT_PORT);
    if (defaultDir && defaultUrl) {
      io.out().println("Client commands run from this directory find this server and its token by themselves.");
    } else {
      io.out().println("Client commands find this server and its token with:");
      if (!defaultUrl) {
        io.out().println("  export KEEL_SERVER=" + server.url());
      }
      if (!defaultDir) {
        io.out().println("  export KEEL_DATA_DIR=" + config.dataDir());
      }
    }
    currentContextNote();
    if (noFsync) {
      io.out().println("  --no-fsync: writes are acknowledged before they reach the disk");
    }
    io.out().println("Stop it with Ctrl+C.");
    io.out().flush();
    try {
      stopped.await();
    } catch (InterruptedException e) {
      // embedded use (tests): the caller stops the server by interrupting this thread
      Runtime.getRuntime().removeShutdownHook(hook);
      server.close();
      Thread.currentThread().interrupt();
    }
    return ExitCodes.OK;
  }

  /** The PostgreSQL store a {@code --store} value names; empty for the default SQLite store. */
  private static Optional<PostgresConfig> postgres(String value) {
    if (value == null || value.isBlank() || value.strip().equals("sqlite")) {
      return Optional.empty();
    }
    if (!PostgresConfig.isPostgresUrl(value)) {
      throw new CliException(
          ExitCodes.USAGE,
          "--store: expected a PostgreSQL URL, " + PostgresConfig.URL_FORMS
              + ", or \"sqlite\" for the embedded store in the data directory");
    }
    try {
      return Optional.of(PostgresConfig.parse(value));
    } catch (IllegalArgumentException e) {
      throw new CliException(ExitCodes.USAGE, "--store: " + e.getMessage());
    }
  }

  /** A duration written as a number and a unit: {@code 90s}, {@code 10m}, {@code 24h}, {@code 7d}. */
  static Duration duration(String option, String text) {
    String t = text.strip();
    if (t.matches("[0-9]{1,9}[smhd]")) {
      long n = Long.parseLong(t.substring(0, t.length() - 1));
      return switch (t.charAt(t.length() - 1)) {
        case 's' -> Duration.ofSeconds(n);
        case 'm' -> Duration.ofMinutes(n);
        case 'h' -> Duration.ofHours(n);
        default -> Duration.ofDays(n);
      };
    }
    throw new IllegalArgumentException(option + ": expected a number and a unit (s, m, h or d), e.g. 10m, got \"" + text + "\"");
  }

  private static int parsePort(String s) {
    try {
      return Integer.parseInt(s.strip());
    } catch (NumberFormatException e) {
      throw new CliException(ExitCodes.USAGE, "KEEL_PORT: expected a port number, got \"" + s + "\"");
    }
  }

  /** Starts a server, turning the usual start-up failures into messages a person can act on. */
  static KeelServer start(ServerConfig config) {
    try {
      return KeelServer.start(config);
    } catch (KeelException.Conflict e) {
      throw new CliException(ExitCodes.CONFLICT, e.getMessage());
    } catch (KeelException e) {
      throw new CliException(ExitCodes.FAILED, e.getMessage());
    } catch (RuntimeException e) {
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (t instanceof BindException) {
          throw new CliException(
              ExitCodes.CONFLICT,
              "cannot listen on " + config.host() + ":" + config.port() + " (" + t.getMessage()
                  + "); another process uses the port: stop it or pass --port");
        }
      }
      if (e.getClass().getSimpleName().contains("Bind")) {
        throw new CliException(
            ExitCodes.CONFLICT,
            "cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage() + "; pass --port");
      }
      throw e;
    }
  }

  /** A current context wins over the local server: say so, or client commands surprise. */
  private void currentContextNote() {
    try {
      CliConfig cli = CliConfig.load(io);
      cli.current().flatMap(cli::context).ifPresent(c -> io.out().println(
          "Note: the CLI's current context is \"" + c.name() + "\" (" + c.server() + "); client commands go there"
              + " unless you pass --server and --token, or forget it with: keel logout " + c.name()));
    } catch (CliException unreadable) {
      // a broken config file is reported by the client commands that read it
    }
  }
}
