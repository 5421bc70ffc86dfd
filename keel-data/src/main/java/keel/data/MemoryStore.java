package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * Agents' notes: key/value pairs per agent, in a scope. Persistent notes use the scope {@code ""};
 * session notes use the session id as scope and are deleted with it. Thread-safe.
 */
public interface MemoryStore {

  /** A note. */
  record Note(String key, String value, Instant updatedAt) {}

  void put(String agent, String scope, String key, String value);

  Optional<Note> get(String agent, String scope, String key);

  /**
   * Notes whose key or value contains any of the query's words (case-insensitive), best first
   * (most words matched, then most recent).
   */
  List<Note> search(String agent, String scope, String query, int limit);

  /** Deletes every note of a scope; returns how many. */
  int deleteScope(String agent, String scope);

  /** Deletes notes of an agent's scope not updated since {@code before}; returns how many. */
  int purge(String agent, String scope, Instant before);
}
