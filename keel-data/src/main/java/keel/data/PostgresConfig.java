package keel.data;

import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.StringJoiner;
import org.postgresql.PGProperty;

/**
 * Where a PostgreSQL store lives and how a node uses it: the server, the database, the login, the
 * connection pool and whether commits wait for the server's disk flush.
 *
 * <p>Parsed from a URL by {@link #parse}: either the libpq form {@code
 * postgresql://user:password@host:port/database?param=value} (also {@code postgres://}) or the
 * JDBC form {@code jdbc:postgresql://host:port/database?param=value}. Parameters are the PostgreSQL
 * JDBC driver's ({@code sslmode}, {@code connectTimeout}, {@code currentSchema}, …; the libpq names
 * {@code connect_timeout} and {@code application_name} are accepted too) plus Keel's own {@code
 * pool_size} and {@code pool_timeout} (seconds). An unknown parameter is an error, not ignored.
 *
 * <p>Immutable and thread-safe. {@link #toString} never shows the password.
 *
 * @param hosts one or more {@code host[:port]}, comma-separated, as the driver takes them
 * @param database the database name
 * @param parameters the driver's parameters, in the order given (never {@code user} or {@code
 *     password})
 * @param user the role to log in as; empty lets the driver choose (the operating-system user)
 * @param password the role's password, if it needs one
 * @param poolSize the most connections this node holds open, 1 to 1000
 * @param poolTimeout how long a read or write waits for a free connection before it fails
 * @param durable whether a commit is acknowledged only once the server has flushed it to disk
 *     ({@code synchronous_commit} on); when false a server crash may lose the last commits
 */
public record PostgresConfig(
    String hosts,
    String database,
    Map<String, String> parameters,
    Optional<String> user,
    Optional<String> password,
    int poolSize,
    Duration poolTimeout,
    boolean durable) {

  public static final int DEFAULT_POOL_SIZE = 10;
  public static final Duration DEFAULT_POOL_TIMEOUT = Duration.ofSeconds(10);
  /** What {@code --store} and {@code KEEL_STORE} expect, for error messages. */
  public static final String URL_FORMS =
      "postgresql://USER:PASSWORD@HOST:PORT/DATABASE?PARAMS or jdbc:postgresql://HOST:PORT/DATABASE?PARAMS";

  private static final String POOL_SIZE = "pool_size";
  private static final String POOL_TIMEOUT = "pool_timeout";
  /** libpq parameter names and the driver's names for them. */
  private static final Map<String, String> LIBPQ_NAMES =
      Map.of("connect_timeout", "connectTimeout", "application_name", "ApplicationName");

  public PostgresConfig {
    Objects.requireNonNull(hosts, "hosts");
    Objects.requireNonNull(database, "database");
    parameters = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
    Objects.requireNonNull(user, "user");
    Objects.requireNonNull(password, "password");
    Objects.requireNonNull(poolTimeout, "poolTimeout");
    if (hosts.isBlank()) {
      throw new IllegalArgumentException("the PostgreSQL store needs a host");
    }
    if (database.isBlank()) {
      throw new IllegalArgumentException("the PostgreSQL store needs a database name");
    }
    for (String name : parameters.keySet()) {
      if (name.equals(PGProperty.USER.getName()) || name.equals(PGProperty.PASSWORD.getName())) {
        throw new IllegalArgumentException("user and password are separate fields, not parameters");
      }
    }
    if (poolSize < 1 || poolSize > 1000) {
      throw new IllegalArgumentException(POOL_SIZE + " must be between 1 and 1000, got " + poolSize);
    }
    if (poolTimeout.toMillis() < 250) {
      throw new IllegalArgumentException(POOL_TIMEOUT + " must be at least 250 ms, got " + poolTimeout);
    }
  }

  /** Whether a {@code --store} value names a PostgreSQL server (by its scheme). */
  public static boolean isPostgresUrl(String url) {
    String u = url.strip().toLowerCase(Locale.ROOT);
    return u.startsWith("postgresql://") || u.startsWith("postgres://") || u.startsWith("jdbc:postgresql:");
  }

  /**
   * Parses a store URL (see the class comment), durable, with the default pool.
   *
   * @throws IllegalArgumentException naming what is wrong, never echoing the password
   */
  public static PostgresConfig parse(String url) {
    Objects.requireNonNull(url, "url");
    String u = url.strip();
    String lower = u.toLowerCase(Locale.ROOT);
    String rest;
    boolean jdbc;
    if (lower.startsWith("postgresql://")) {
      rest = u.substring("postgresql://".length());
      jdbc = false;
    } else if (lower.startsWith("postgres://")) {
      rest = u.substring("postgres://".length());
      jdbc = false;
    } else if (lower.startsWith("jdbc:postgresql://")) {
      rest = u.substring("jdbc:postgresql://".length());
      jdbc = true;
    } else if (lower.startsWith("jdbc:postgresql:")) {
      rest = "localhost/" + u.substring("jdbc:postgresql:".length());
      jdbc = true;
    } else {
      throw new IllegalArgumentException("not a PostgreSQL URL (expected " + URL_FORMS + ")");
    }
    String query = "";
    int q = rest.indexOf('?');
    if (q >= 0) {
      query = rest.substring(q + 1);
      rest = rest.substring(0, q);
    }
    String database = "";
    int slash = rest.indexOf('/');
    if (slash >= 0) {
      database = decode(rest.substring(slash + 1), "the database name");
      rest = rest.substring(0, slash);
    }
    Optional<String> user = Optional.empty();
    Optional<String> password = Optional.empty();
    int at = rest.lastIndexOf('@');
    if (at >= 0) {
      if (jdbc) {
        throw new IllegalArgumentException(
            "a jdbc:postgresql: URL takes the login as ?user=…&password=…, not before the host");
      }
      String userInfo = rest.substring(0, at);
      rest = rest.substring(at + 1);
      int colon = userInfo.indexOf(':');
      String name = colon >= 0 ? userInfo.substring(0, colon) : userInfo;
      if (!name.isEmpty()) {
        user = Optional.of(decode(name, "the user name"));
      }
      if (colon >= 0) {
        password = Optional.of(decode(userInfo.substring(colon + 1), "the password"));
      }
    }
    String hosts = rest.isEmpty() ? "localhost" : rest;
    checkHosts(hosts);
    if (database.isEmpty()) {
      throw new IllegalArgumentException(
          "the PostgreSQL URL names no database (expected " + URL_FORMS + ")");
    }
    Map<String, String> parameters = new LinkedHashMap<>();
    int poolSize = DEFAULT_POOL_SIZE;
    Duration poolTimeout = DEFAULT_POOL_TIMEOUT;
    if (!query.isEmpty()) {
      for (String pair : query.split("&")) {
        if (pair.isEmpty()) {
          continue;
        }
        int eq = pair.indexOf('=');
        String name = decode(eq >= 0 ? pair.substring(0, eq) : pair, "a parameter name");
        String value = eq >= 0 ? decode(pair.substring(eq + 1), "parameter " + name) : "";
        name = LIBPQ_NAMES.getOrDefault(name, name);
        if (name.equals(POOL_SIZE)) {
          poolSize = positiveInt(POOL_SIZE, value);
        } else if (name.equals(POOL_TIMEOUT)) {
          poolTimeout = Duration.ofSeconds(positiveInt(POOL_TIMEOUT, value));
        } else if (name.equals(PGProperty.USER.getName())) {
          user = Optional.of(value);
        } else if (name.equals(PGProperty.PASSWORD.getName())) {
          password = Optional.of(value);
        } else if (PGProperty.forName(name) == null) {
          throw new IllegalArgumentException(
              "unknown parameter \"" + name + "\" in the PostgreSQL URL; Keel takes " + POOL_SIZE + " and "
                  + POOL_TIMEOUT + " (seconds) and the PostgreSQL JDBC driver's parameters, such as"
                  + " sslmode, connectTimeout, ApplicationName or currentSchema");
        } else {
          parameters.put(name, value);
        }
      }
    }
    return new PostgresConfig(hosts, database, parameters, user, password, poolSize, poolTimeout, true);
  }

  private static void checkHosts(String hosts) {
    for (String host : hosts.split(",", -1)) {
      String h = host.strip();
      if (h.isEmpty()) {
        throw new IllegalArgumentException("the PostgreSQL URL has an empty host in \"" + hosts + "\"");
      }
      int close = h.lastIndexOf(']');
      int colon = h.lastIndexOf(':');
      if (colon > close && (h.startsWith("[") || h.indexOf(':') == colon)) {
        String port = h.substring(colon + 1);
        try {
          int p = Integer.parseInt(port);
          if (p < 1 || p > 65535) {
            throw new NumberFormatException();
          }
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              "the PostgreSQL URL has an invalid port \"" + port + "\" (expected 1 to 65535)");
        }
      }
    }
  }

  private static int positiveInt(String name, String value) {
    try {
      int n = Integer.parseInt(value.strip());
      if (n < 1) {
        throw new NumberFormatException();
      }
      return n;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " must be a positive whole number, got \"" + value + "\"");
    }
  }

  private static String decode(String s, String what) {
    try {
      return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the PostgreSQL URL has a malformed %-escape in " + what);
    }
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /** The driver's URL: hosts, database and parameters, without the user or the password. */
  public String jdbcUrl() {
    StringBuilder url = new StringBuilder("jdbc:postgresql://").append(hosts).append('/').append(encode(database));
    appendParameters(url);
    return url.toString();
  }

  private void appendParameters(StringBuilder url) {
    if (!parameters.isEmpty()) {
      StringJoiner query = new StringJoiner("&", "?", "");
      parameters.forEach((k, v) -> query.add(encode(k) + "=" + encode(v)));
      url.append(query);
    }
  }

  /** The schema the store's tables live in: the {@code currentSchema} parameter, else {@code public}. */
  public String schema() {
    String s = parameters.get(PGProperty.CURRENT_SCHEMA.getName());
    return s == null || s.isBlank() ? "public" : s.split(",")[0].strip();
  }

  /**
   * The store as logs and {@code /readyz} show it: {@code postgresql://user@host:port/database},
   * never with the password.
   */
  public String describe() {
    StringBuilder s = new StringBuilder("postgresql://");
    user.ifPresent(u -> s.append(encode(u)).append('@'));
    s.append(hosts).append('/').append(encode(database));
    appendParameters(s);
    return s.toString();
  }

  public PostgresConfig withDatabase(String name) {
    return new PostgresConfig(hosts, name, parameters, user, password, poolSize, poolTimeout, durable);
  }

  /** The same server and database, with the tables in another schema (created if missing). */
  public PostgresConfig withSchema(String schema) {
    Map<String, String> p = new LinkedHashMap<>(parameters);
    p.put(PGProperty.CURRENT_SCHEMA.getName(), schema);
    return new PostgresConfig(hosts, database, p, user, password, poolSize, poolTimeout, durable);
  }

  public PostgresConfig withPassword(String secret) {
    return new PostgresConfig(hosts, database, parameters, user, Optional.of(secret), poolSize, poolTimeout, durable);
  }

  public PostgresConfig withPoolSize(int size) {
    return new PostgresConfig(hosts, database, parameters, user, password, size, poolTimeout, durable);
  }

  public PostgresConfig withDurable(boolean d) {
    return new PostgresConfig(hosts, database, parameters, user, password, poolSize, poolTimeout, d);
  }

  @Override
  public String toString() {
    return "PostgresConfig[" + describe() + ", password " + (password.isPresent() ? "set" : "not set")
        + ", poolSize " + poolSize + ", poolTimeout " + poolTimeout + ", durable " + durable + "]";
  }
}
