package keel.data;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import keel.core.KeelException;

/**
 * The one thread that writes to the database. Callers from any thread submit write operations;
 * the writer takes every operation waiting in its queue, runs each inside its own savepoint (so one
 * failing operation does not undo the others), commits them all in one transaction, and only then
 * completes the callers' futures. Concurrent sessions therefore share one disk flush per batch
 * (group commit) while each caller is acknowledged only once its write is durable.
 *
 * <p>Thread-safe. The connection and its prepared statements are confined to the writer thread.
 * The queue is bounded: a caller that cannot enqueue within the timeout gets an error instead of
 * the queue growing without limit.
 */
final class GroupCommitWriter implements AutoCloseable {

  /** A write run on the writer thread, inside a transaction. */
  @FunctionalInterface
  interface Op<T> {
    T run(Tx tx) throws SQLException;
  }

  /** What an operation may use: prepared statements cached on the writer's connection. */
  static final class Tx {
    private final Connection connection;
    private final Map<String, PreparedStatement> statements = new HashMap<>();

    Tx(Connection connection) {
      this.connection = connection;
    }

    /** The transaction's connection, for helpers written against a plain connection. */
    Connection connection() {
      return connection;
    }

    PreparedStatement prepare(String sql) throws SQLException {
      PreparedStatement ps = statements.get(sql);
      if (ps == null) {
        ps = connection.prepareStatement(sql);
        statements.put(sql, ps);
      }
      ps.clearParameters();
      // an operation that failed between addBatch and executeBatch leaves its rows batched on
      // this shared statement; they must not be written by the next operation that uses it
      ps.clearBatch();
      return ps;
    }

    /** Prepares {@code sql}, binds {@code args} in order and executes it; returns the rows changed. */
    int update(String sql, Object... args) throws SQLException {
      return Jdbc.bind(prepare(sql), args).executeUpdate();
    }

    void closeAll() {
      for (PreparedStatement ps : statements.values()) {
        try {
          ps.close();
        } catch (SQLException ignored) {
          // closing at shutdown; nothing to recover
        }
      }
      statements.clear();
    }
  }

  private record Task<T>(Op<T> op, CompletableFuture<T> result) {}

  private static final int MAX_BATCH = 1024;
  private static final int QUEUE_CAPACITY = 16_384;
  private static final long ENQUEUE_TIMEOUT_SECONDS = 30;

  private final String description;
  private final Connection connection;
  private final Tx tx;
  private final BlockingQueue<Task<?>> queue = new ArrayBlockingQueue<>(QUEUE_CAPACITY);
  private final Thread thread;
  private volatile boolean closing;

  GroupCommitWriter(String description, Connection connection) throws SQLException {
    this.description = description;
    this.connection = connection;
    this.connection.setAutoCommit(false);
    this.tx = new Tx(connection);
    this.thread = Thread.ofPlatform().name("keel-store-writer").daemon(true).unstarted(this::loop);
    this.thread.start();
  }

  /**
   * Runs an operation in the next batch and waits until its batch is committed.
   *
   * @throws KeelException whatever the operation threw on purpose (a conflict, a missing session)
   * @throws KeelException.Unavailable if the database failed (a full disk, a corrupt file)
   */
  <T> T execute(Op<T> op) {
    if (closing) {
      throw closed();
    }
    CompletableFuture<T> result = new CompletableFuture<>();
    Task<T> task = new Task<>(op, result);
    try {
      if (!queue.offer(task, ENQUEUE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        throw new KeelException.Unavailable(
            "the store " + description + " is not keeping up: its write queue stayed full for "
                + ENQUEUE_TIMEOUT_SECONDS + " s",
            null);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KeelException.Unavailable("interrupted while waiting to write", e);
    }
    if (closing) {
      // close() may have begun after the check above: once the writer has stopped, nobody else
      // takes from the queue, so either it ran (or failed) the task, or the task is still here
      awaitWriterStopped();
      if (queue.remove(task)) {
        throw closed();
      }
    }
    try {
      return result.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof KeelException k) {
        throw k;
      }
      throw new KeelException.Unavailable(
          "write to " + description + " failed: " + e.getCause().getMessage(), e.getCause());
    }
  }

  private void loop() {
    List<Task<?>> batch = new ArrayList<>(MAX_BATCH);
    while (true) {
      try {
        Task<?> first = queue.poll(100, TimeUnit.MILLISECONDS);
        if (first == null) {
          if (closing) {
            break;
          }
          continue;
        }
        batch.add(first);
        queue.drainTo(batch, MAX_BATCH - 1);
        runBatch(batch);
      } catch (InterruptedException e) {
        break;
      } catch (RuntimeException | Error e) {
        for (Task<?> t : batch) {
          t.result().completeExceptionally(e);
        }
      } finally {
        batch.clear();
      }
    }
    failQueued();
    tx.closeAll();
  }

  private void failQueued() {
    List<Task<?>> left = new ArrayList<>();
    queue.drainTo(left);
    for (Task<?> t : left) {
      t.result().completeExceptionally(closed());
    }
  }

  private KeelException.Unavailable closed() {
    return new KeelException.Unavailable("the store " + description + " is closed", null);
  }

  private void runBatch(List<Task<?>> batch) {
    Object[] values = new Object[batch.size()];
    Throwable[] failures = new Throwable[batch.size()];
    for (int i = 0; i < batch.size(); i++) {
      Savepoint sp = null;
      try {
        sp = connection.setSavepoint();
        values[i] = batch.get(i).op().run(tx);
        connection.releaseSavepoint(sp);
      } catch (KeelException.Unavailable databaseFailure) {
        // an operation that met a database failure and reported it: not a refusal, the whole
        // transaction may be gone (see below)
        abort(batch, databaseFailure, "could not write");
        return;
      } catch (KeelException | IllegalArgumentException refused) {
        // The operation refused itself (a stale sequence number, a missing session): undo its
        // writes and go on with the rest of the batch.
        failures[i] = refused;
        try {
          connection.rollback(sp);
          connection.releaseSavepoint(sp);
        } catch (SQLException rollbackFailure) {
          abort(batch, rollbackFailure, "could not undo a refused write");
          return;
        }
      } catch (Exception | Error databaseFailure) {
        // The database failed (a full disk, an I/O error, a bug in an operation). SQLite may have
        // rolled the whole transaction back already, and later statements would then run outside
        // any transaction: the whole batch fails and nothing of it is acknowledged.
        abort(batch, databaseFailure, "could not write");
        return;
      }
    }
    try {
      connection.commit();
    } catch (SQLException e) {
      // A write the batch refused may have hit the real cause (SQLite rolls the whole transaction
      // back on a full disk, and the commit then finds none): keep it for the message.
      for (Throwable f : failures) {
        if (f != null) {
          e.addSuppressed(f);
        }
      }
      abort(batch, e, "could not commit");
      return;
    }
    for (int i = 0; i < batch.size(); i++) {
      complete(batch.get(i), values[i], failures[i]);
    }
  }

  /** Rolls back and fails every call of the batch: none of its writes is stored. */
  private void abort(List<Task<?>> batch, Throwable cause, String what) {
    try {
      connection.rollback();
    } catch (SQLException rollbackFailure) {
      // SQLite rolls back by itself on I/O errors; there may be no transaction left to roll back
      cause.addSuppressed(rollbackFailure);
    }
    KeelException.Unavailable failure =
        new KeelException.Unavailable(
            what + " to " + description + " (nothing of this write was stored): "
                + cause.getMessage() + diskHint(cause),
            cause);
    for (Task<?> t : batch) {
      t.result().completeExceptionally(failure);
    }
  }

  /** A hint for the failures a full or read-only disk causes, which SQLite reports as I/O errors. */
  private static String diskHint(Throwable e) {
    return diskFailure(e, 0) ? "; check that the disk holding the data directory has free space and is writable" : "";
  }

  /** Whether {@code e}, its causes or what it suppressed is an I/O failure of the database file. */
  private static boolean diskFailure(Throwable e, int depth) {
    if (e == null || depth > 8) {
      return false;
    }
    String m = String.valueOf(e.getMessage());
    if (m.contains("SQLITE_FULL") || m.contains("SQLITE_IOERR") || m.contains("SQLITE_READONLY")) {
      return true;
    }
    for (Throwable s : e.getSuppressed()) {
      if (diskFailure(s, depth + 1)) {
        return true;
      }
    }
    return diskFailure(e.getCause(), depth + 1);
  }

  @SuppressWarnings("unchecked")
  private static <T> void complete(Task<T> task, Object value, Throwable failure) {
    if (failure != null) {
      task.result().completeExceptionally(failure);
    } else {
      task.result().complete((T) value);
    }
  }

  private void awaitWriterStopped() {
    try {
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KeelException.Unavailable("interrupted while the store " + description + " closed", e);
    }
  }

  @Override
  public void close() {
    closing = true;
    try {
      thread.join(TimeUnit.SECONDS.toMillis(10));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try {
      connection.close();
    } catch (SQLException ignored) {
      // closing at shutdown
    }
  }
}
