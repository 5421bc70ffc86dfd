package keel.execution;

import java.util.List;
import keel.core.SessionState;
import keel.core.StoredEvent;
import keel.data.EventStore;

/** Rehydrates a session: its latest snapshot, then the events after it, folded. */
final class SessionLoader {

  private SessionLoader() {}

  /** A rehydrated state and the sequence number of the snapshot it started from (0 if none). */
  record Loaded(SessionState state, long snapshotSeq) {}

  static SessionState load(EventStore events, String sessionId) {
    return loadWithSnapshot(events, sessionId).state();
  }

  static Loaded loadWithSnapshot(EventStore events, String sessionId) {
    SessionState state =
        events.snapshot(sessionId).map(SessionState::restore).orElseGet(SessionState::empty);
    long snapshotSeq = state.lastSeq();
    events.forEachEvent(sessionId, snapshotSeq, state::apply);
    return new Loaded(state, snapshotSeq);
  }
}
