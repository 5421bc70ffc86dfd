package keel.data;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import java.util.function.Consumer;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One node's {@code LISTEN} on a channel: the one every input write notifies (see {@link
 * Store#listenForInputs}), or the one approval changes notify ({@link Store#listenForApprovals}): a dedicated connection outside the pool, read by one platform thread
 * that hands each notified session id to the listener. When the connection drops, it reconnects
 * after a pause that doubles up to five seconds; notifications sent meanwhile are lost, which the
 * nodes' polling covers.
 *
 * <p>Thread-safe: {@link #close} may be called from any thread.
 */
final class PostgresInputListener implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(PostgresInputListener.class);
  /** The channel an input's transaction notifies, with the session id as the payload. */
  static final String CHANNEL = "keel_inputs";

  private final PostgresConfig config;
  private final String channel;
  private final Consumer<String> sessionIds;
  private final Thread thread;
  private volatile boolean closed;
  /** Counted down once the first {@code LISTEN} is in place. */
  private final java.util.concurrent.CountDownLatch listening = new java.util.concurrent.CountDownLatch(1);
  /** The current connection, closed by {@link #close} to unblock the reader. */
  private volatile Connection connection;

  private PostgresInputListener(PostgresConfig config, String channel, Consumer<String> sessionIds) {
    this.config = config;
    this.channel = channel;
    this.sessionIds = sessionIds;
    this.thread = Thread.ofPlatform().name("keel-listener-" + channel).daemon(true).unstarted(this::loop);
  }

  /**
   * Listens on {@code channel} ({@link #CHANNEL} for inputs, {@link ApprovalAnnouncer#CHANNEL} for
   * approvals), handing each notification's payload to {@code payloads}.
   */
  static PostgresInputListener start(PostgresConfig config, String channel, Consumer<String> payloads) {
    PostgresInputListener l = new PostgresInputListener(config, channel, payloads);
    l.thread.start();
    // what commits after this returns is heard (unless the database is unreachable now: then the
    // listener keeps trying in the background)
    try {
      if (!l.listening.await(5, java.util.concurrent.TimeUnit.SECONDS)) {
        LOG.warn("not yet listening on {} at {} after 5 s; going on, the listener keeps trying", channel, config.describe());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return l;
  }

  private void loop() {
    long pause = 100;
    while (!closed) {
      try (Connection c = connect()) {
        connection = c;
        try (Statement st = c.createStatement()) {
          st.execute("LISTEN " + channel);
        }
        listening.countDown();
        pause = 100;
        PGConnection pg = c.unwrap(PGConnection.class);
        while (!closed) {
          PGNotification[] got = pg.getNotifications(1000);
          if (got == null) {
            continue;
          }
          for (PGNotification n : got) {
            try {
              sessionIds.accept(n.getParameter());
            } catch (RuntimeException e) {
              LOG.warn("a listener on {} failed on {}: {}", channel, n.getParameter(), e.toString());
            }
          }
        }
      } catch (SQLException e) {
        if (closed) {
          return;
        }
        LOG.warn("listening on {} at {} failed; reconnecting in {} ms (notices sent meanwhile are lost): {}",
            channel, config.describe(), pause, e.getMessage());
        try {
          Thread.sleep(pause);
        } catch (InterruptedException ie) {
          return;
        }
        pause = Math.min(5000, pause * 2);
      }
    }
  }

  private Connection connect() throws SQLException {
    Properties p = new Properties();
    config.user().ifPresent(u -> p.setProperty("user", u));
    config.password().ifPresent(pw -> p.setProperty("password", pw));
    if (!config.parameters().containsKey("ApplicationName")) {
      p.setProperty("ApplicationName", "keel-listener");
    }
    if (!config.parameters().containsKey("connectTimeout")) {
      p.setProperty("connectTimeout", "10");
    }
    // a dead server is noticed by the keepalive, not only by the next query
    p.setProperty("tcpKeepAlive", "true");
    return DriverManager.getConnection(config.jdbcUrl(), p);
  }

  @Override
  public void close() {
    closed = true;
    Connection c = connection;
    if (c != null) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // closing anyway
      }
    }
    thread.interrupt();
  }
}
