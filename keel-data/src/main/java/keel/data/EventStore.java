package keel.data;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import keel.core.SessionState;
import keel.core.SessionStatus;
import keel.core.StoredEvent;

/**
 * Sessions: their append-only event logs, inboxes and snapshots.
 *
 * <p>Appends are single-writer per session: each names the sequence number it expects to follow,
 * and a stale one is refused with {@link keel.core.KeelException.Conflict}. Implementations are
 * thread-safe; a contract test suite runs against each.
 */
public interface EventStore {

  /**
   * Creates a session with its first events and, optionally, its first input, in one transaction.
   *
   * @throws keel.core.KeelException.Conflict if a session with that id exists
   */
  void create(NewSession session);

  /**
   * Appends events after {@code expectedSeq}, consuming inbox inputs and replacing the snapshot in
   * the same transaction. Returns the sequence number of the last appended event.
   *
   * @throws keel.core.KeelException.Conflict if the session's last sequence number is not {@code
   *     expectedSeq} (another writer appended first)
   * @throws keel.core.KeelException.NotFound if the session does not exist
   */
  long append(Append append);

  /** Events with a sequence number above {@code afterSeq}, in order, at most {@code limit}. */
  List<StoredEvent> events(String sessionId, long afterSeq, int limit);

  /**
   * Every event with a sequence number above {@code afterSeq}, in order, handed to {@code each} one
   * at a time; read in bounded pages, so a long session is never one unbounded read.
   */
  default void forEachEvent(String sessionId, long afterSeq, java.util.function.Consumer<StoredEvent> each) {
    final int page = 1000;
    long after = afterSeq;
    while (true) {
      List<StoredEvent> events = events(sessionId, after, page);
      for (StoredEvent e : events) {
        each.accept(e);
        after = e.seq();
      }
      if (events.size() < page) {
        return;
      }
    }
  }

  /** Every event with a sequence number above {@code afterSeq}, in order. */
  default List<StoredEvent> eventsAfter(String sessionId, long afterSeq) {
    List<StoredEvent> out = new java.util.ArrayList<>();
    forEachEvent(sessionId, afterSeq, out::add);
    return out;
  }

  /** The latest snapshot of a session, if one was taken. */
  Optional<SessionState.Snapshot> snapshot(String sessionId);

  Optional<SessionRecord> session(String sessionId);

  /** Sessions matching the query, newest first. */
  List<SessionRecord> sessions(SessionQuery query);

  /** Counts of sessions by status, for one agent or (with an empty name) for all. */
  Map<SessionStatus, Long> countByStatus(String agent);

  /**
   * Persists an input to a session's inbox. When an input with the same id was already accepted for
   * the session, nothing is written and the earlier input is returned.
   *
   * @return the input as stored
   * @throws keel.core.KeelException.NotFound if the session does not exist
   * @throws keel.core.KeelException.Conflict if the session has ended (completed, failed or
   *     cancelled)
   */
  Input enqueue(Input input);

  /** The inputs of a session not yet consumed, in the order they were accepted. */
  List<Input> pendingInputs(String sessionId);

  /**
   * Sessions that have work to do: an unconsumed input, or a step that was in progress (status
   * {@code runnable} or {@code running}); ended sessions never have work. Used at start-up to resume what a crash interrupted.
   */
  List<String> sessionsWithWork(int limit);

  /** The total bytes of the events stored for a session (encoded payloads). */
  long eventBytes(String sessionId);
}
