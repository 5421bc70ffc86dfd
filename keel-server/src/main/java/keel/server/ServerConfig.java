package keel.server;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import keel.control.IdentitySettings;
import keel.data.PostgresConfig;
import keel.execution.CostSettings;
import keel.execution.ExecutionSettings;

/**
 * How a server runs.
 *
 * @param host the address to listen on (loopback by default)
 * @param port the port, or 0 for any free port
 * @param dataDir where the store, the admin token and the lock live
 * @param durable whether every acknowledged write is flushed to disk before it is acknowledged
 * @param execution the execution plane's settings
 * @param environment environment variables for model providers and tools (credentials come from
 *     here, never from descriptors)
 * @param secretsFile a file of {@code NAME=value} lines (provider keys and other secrets) whose
 *     entries take precedence over the environment; it should be readable by the server's user only
 * @param pricesFile a YAML price table whose entries override and extend the built-in one
 * @param identity how session tokens are issued: lifetime, key rotation, delegation depth
 * @param costs how compute is priced and model calls are estimated for budgets
 * @param postgres the PostgreSQL store to use instead of SQLite in the data directory; when its URL
 *     has no password, {@value #STORE_PASSWORD} from the environment or the secrets file gives it
 */
public record ServerConfig(
    String host,
    int port,
    Path dataDir,
    boolean durable,
    ExecutionSettings execution,
    Map<String, String> environment,
    Optional<Path> secretsFile,
    Optional<Path> pricesFile,
    IdentitySettings identity,
    CostSettings costs,
    Optional<PostgresConfig> postgres) {

  public static final int DEFAULT_PORT = 8420;
  /** The variable (environment or secrets file) holding the PostgreSQL password. */
  public static final String STORE_PASSWORD = "KEEL_STORE_PASSWORD";
  public static final String DEFAULT_DATA_DIR = ".keel";

  public ServerConfig {
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(dataDir, "dataDir");
    Objects.requireNonNull(execution, "execution");
    environment = Map.copyOf(environment);
    Objects.requireNonNull(secretsFile, "secretsFile");
    Objects.requireNonNull(pricesFile, "pricesFile");
    Objects.requireNonNull(identity, "identity");
    Objects.requireNonNull(costs, "costs");
    Objects.requireNonNull(postgres, "postgres");
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
  }

  /** A configuration with the default identity and cost settings, on SQLite. */
  public ServerConfig(
      String host,
      int port,
      Path dataDir,
      boolean durable,
      ExecutionSettings execution,
      Map<String, String> environment,
      Optional<Path> secretsFile,
      Optional<Path> pricesFile) {
    this(host, port, dataDir, durable, execution, environment, secretsFile, pricesFile, IdentitySettings.defaults(),
        CostSettings.defaults(), Optional.empty());
  }

  /** A configuration without a secrets file or a price table of its own, on SQLite. */
  public ServerConfig(
      String host, int port, Path dataDir, boolean durable, ExecutionSettings execution, Map<String, String> environment) {
    this(host, port, dataDir, durable, execution, environment, Optional.empty(), Optional.empty());
  }

  /** Loopback, the given port and data directory, durable, default execution settings. */
  public static ServerConfig of(int port, Path dataDir) {
    return new ServerConfig(
        "127.0.0.1", port, dataDir, true, ExecutionSettings.defaults(nodeName()), System.getenv());
  }

  /** This node's default name: the host name and the process id. */
  public static String nodeName() {
    String host = System.getenv().getOrDefault("HOSTNAME", "");
    if (host.isBlank()) {
      try {
        host = java.net.InetAddress.getLocalHost().getHostName();
      } catch (java.io.IOException e) {
        host = "node";
      }
    }
    return host + "-" + ProcessHandle.current().pid();
  }

  public ServerConfig withExecution(ExecutionSettings settings) {
    return new ServerConfig(host, port, dataDir, durable, settings, environment, secretsFile, pricesFile, identity, costs, postgres);
  }

  public ServerConfig withEnvironment(Map<String, String> env) {
    return new ServerConfig(host, port, dataDir, durable, execution, env, secretsFile, pricesFile, identity, costs, postgres);
  }

  public ServerConfig withDurable(boolean d) {
    return new ServerConfig(host, port, dataDir, d, execution, environment, secretsFile, pricesFile, identity, costs, postgres);
  }

  public ServerConfig withSecretsFile(Path file) {
    return new ServerConfig(host, port, dataDir, durable, execution, environment, Optional.of(file), pricesFile, identity, costs, postgres);
  }

  public ServerConfig withPricesFile(Path file) {
    return new ServerConfig(host, port, dataDir, durable, execution, environment, secretsFile, Optional.of(file), identity, costs, postgres);
  }

  public ServerConfig withIdentity(IdentitySettings settings) {
    return new ServerConfig(host, port, dataDir, durable, execution, environment, secretsFile, pricesFile, settings, costs, postgres);
  }

  public ServerConfig withCosts(CostSettings c) {
    return new ServerConfig(host, port, dataDir, durable, execution, environment, secretsFile, pricesFile, identity, c, postgres);
  }

  /** The same node on a PostgreSQL store instead of SQLite in the data directory. */
  public ServerConfig withPostgres(PostgresConfig store) {
    return new ServerConfig(host, port, dataDir, durable, execution, environment, secretsFile, pricesFile, identity, costs, Optional.of(store));
  }
}
