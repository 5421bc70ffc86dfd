package keel.data;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.ThreadLocalRandom;
import javax.sql.DataSource;
import keel.core.KeelException;

/**
 * Reads and writes on the PostgreSQL pool. Each write is one transaction on its own pooled
 * connection: concurrent writes run in parallel, and PostgreSQL's own group commit lets commits
 * that arrive together share one WAL flush. A write that PostgreSQL aborts because of a deadlock or
 * a serialization failure is run again (it had no effect); a write that refuses itself (a stale
 * sequence number, a missing session) is rolled back and its {@link KeelException} reaches the
 * caller; any other failure is {@link KeelException.Unavailable}, saying whether anything of the
 * write may have been stored.
 *
 * <p>Thread-safe.
 */
final class PostgresTransactions {

  /** Work inside one transaction (a write) or on one autocommit connection (a read). */
  @FunctionalInterface
  interface Work<T> {
    T run(Connection c) throws SQLException;
  }

  private static final int ATTEMPTS = 5;

  private final DataSource pool;
  private final String description;
  private volatile boolean closed;

  PostgresTransactions(DataSource pool, String description) {
    this.pool = pool;
    this.description = description;
  }

  /** Marks the store closed: every later call fails with a message that says so. */
  void close() {
    closed = true;
  }

  boolean closed() {
    return closed;
  }

  KeelException.Unavailable closedError() {
    return new KeelException.Unavailable("the store " + description + " is closed", null);
  }

  <T> T read(String what, Work<T> work) {
    if (closed) {
      throw closedError();
    }
    try (Connection c = pool.getConnection()) {
      return work.run(c);
    } catch (SQLException e) {
      throw new KeelException.Unavailable(
          "cannot read " + what + " from " + description + ": " + withHint(e), e);
    }
  }

  /**
   * Runs {@code work} in one transaction and commits it; returns its result once the commit is
   * acknowledged (durable, unless the store was opened without durability).
   */
  <T> T write(String what, Work<T> work) {
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (closed) {
        throw closedError();
      }
      Connection c;
      try {
        c = pool.getConnection();
      } catch (SQLException e) {
        throw new KeelException.Unavailable(
            "cannot write " + what + " to " + description + " (nothing of it was stored): " + withHint(e),
            e);
      }
      try {
        return attempt(what, c, work);
      } catch (Retry again) {
        // the connection goes back to the pool before the pause, then the write runs again
      } finally {
        release(c);
      }
      backOff(attempt);
    }
    throw new KeelException.Unavailable(
        "could not write " + what + " to " + description + " (nothing of it was stored): PostgreSQL"
            + " aborted it " + ATTEMPTS + " times for deadlocks or serialization failures with other writers",
        null);
  }

  /**
   * {@link #write} for work written against {@link GroupCommitWriter.Tx} (prepared statements
   * cached for the transaction's length), so that a store's SQL can be shared with SQLite's.
   */
  <T> T writeTx(String what, GroupCommitWriter.Op<T> op) {
    return write(
        what,
        c -> {
          GroupCommitWriter.Tx t = new GroupCommitWriter.Tx(c);
          try {
            return op.run(t);
          } finally {
            t.closeAll();
          }
        });
  }

  /** Thrown inside {@link #write} when PostgreSQL aborted the transaction and it may run again. */
  private static final class Retry extends Exception {
    Retry() {
      super(null, null, false, false);
    }
  }

  private <T> T attempt(String what, Connection c, Work<T> work) throws Retry {
    T result;
    try {
      c.setAutoCommit(false);
      result = work.run(c);
    } catch (KeelException | IllegalArgumentException refused) {
      rollback(c, refused);
      throw refused;
    } catch (SQLException e) {
      rollback(c, e);
      if (retryable(e)) {
        throw new Retry();
      }
      throw new KeelException.Unavailable(
          "could not write " + what + " to " + description + " (nothing of it was stored): "
              + withHint(e),
          e);
    } catch (RuntimeException | Error e) {
      rollback(c, e);
      throw new KeelException.Unavailable(
          "could not write " + what + " to " + description + " (nothing of it was stored): " + e, e);
    }
    try {
      c.commit();
      return result;
    } catch (SQLException e) {
      if (retryable(e)) {
        throw new Retry();
      }
      // a connection lost during the commit leaves its outcome unknown: the server may have
      // committed before the answer was lost. Appends are safe to retry (a repeat is refused by
      // its sequence number) and inputs too (by their id).
      boolean unknown = e.getSQLState() != null && e.getSQLState().startsWith("08");
      throw new KeelException.Unavailable(
          "could not commit " + what + " to " + description
              + (unknown
                  ? " (the connection was lost: it may or may not have been stored)"
                  : " (nothing of it was stored)")
              + ": " + withHint(e),
          e);
    }
  }

  /** Returns a connection to the pool; the pool rolls back what was not committed. */
  private static void release(Connection c) {
    try {
      c.close();
    } catch (SQLException e) {
      // the pool discards a connection it cannot reset; the write's outcome is already decided
    }
  }

  private static void rollback(Connection c, Throwable cause) {
    try {
      c.rollback();
    } catch (SQLException e) {
      // the connection is broken: the server aborts the transaction by itself
      cause.addSuppressed(e);
    }
  }

  /** Deadlocks and serialization failures: PostgreSQL aborted the transaction, which had no effect. */
  private static boolean retryable(SQLException e) {
    String state = e.getSQLState();
    return "40P01".equals(state) || "40001".equals(state);
  }

  private static void backOff(int attempt) {
    try {
      Thread.sleep(ThreadLocalRandom.current().nextLong(1, 10L << attempt));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KeelException.Unavailable("interrupted while retrying a write", e);
    }
  }

  /** The driver's message, followed by what a person can do about it when PostgreSQL says what went wrong. */
  static String withHint(SQLException e) {
    String message = String.valueOf(e.getMessage()).strip();
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    if (root != e && root.getMessage() != null && !message.contains(root.getMessage())) {
      // e.g. "The connection attempt failed." says nothing without "UnknownHostException: db"
      message = (message.endsWith(".") ? message.substring(0, message.length() - 1) : message) + " (" + root + ")";
    }
    String hint = hint(e.getSQLState());
    if (hint.isEmpty()) {
      return message;
    }
    return message + (message.endsWith(".") ? " " : ". ") + hint;
  }

  private static String hint(String state) {
    if (state == null) {
      return "";
    }
    if (state.equals("08004")) {
      return "The server refused the login: check the user and password of the store (the URL, or"
          + " KEEL_STORE_PASSWORD) and the server's pg_hba.conf.";
    }
    if (state.startsWith("08")) {
      return "Check that the PostgreSQL server is running and reachable.";
    }
    if (state.equals("28P01") || state.equals("28000")) {
      return "Check the user and password of the store (the URL, or KEEL_STORE_PASSWORD).";
    }
    if (state.equals("3D000")) {
      return "Create the database first (CREATE DATABASE) or fix its name in the store URL.";
    }
    if (state.equals("53100")) {
      return "The PostgreSQL server's disk is full.";
    }
    if (state.equals("53300")) {
      return "The PostgreSQL server has too many connections: lower pool_size or raise max_connections.";
    }
    return "";
  }
}
