package keel.execution;

import java.util.List;
import keel.core.SessionState;
import keel.core.StoredEvent;
import keel.data.EventStore;

/** Rehydrates a session: its latest snapshot, then the events after it, folded. */
final class SessionLoader {

  private static final int PAGE = 1000;

  private SessionLoader() {}

  static SessionState load(EventStore events, String sessionId) {
    SessionState state =
        events.snapshot(sessionId).map(SessionState::restore).orElseGet(SessionState::empty);
    while (true) {
      List<StoredEvent> page = events.events(sessionId, state.lastSeq(), PAGE);
      for (StoredEvent e : page) {
        state.apply(e);
      }
      if (page.size() < PAGE) {
        return state;
      }
    }
  }
}
