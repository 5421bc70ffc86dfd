package keel.data;

import java.util.List;
import java.util.Optional;

/**
 * What the OpenTelemetry export of session traces keeps beside the event log: the caller's span
 * under which a root session's trace starts, and per session how far its spans have been exported.
 * The spans themselves are always derived from the events, so an export can be redone after a
 * crash from these two facts alone.
 *
 * <p>Thread-safe.
 */
public interface TraceExportStore {

  /**
   * Records the span (16 hex digits) of the caller's system that a session's root span is a child
   * of, from the W3C {@code traceparent} it was started with. Called before the session exists.
   */
  void linkRemoteParent(String sessionId, String spanId);

  /** The caller's span a session's root span is a child of, if it was started with one. */
  Optional<String> remoteParent(String sessionId);

  /** The sequence number up to which the session's ended spans have been exported (0: none). */
  long exportedSeq(String sessionId);

  /**
   * Records that every span of the session that had ended at event {@code seq} has been exported.
   * The marker only moves forward: a lower {@code seq} than the stored one changes nothing.
   */
  void markExported(String sessionId, long seq);

  /**
   * Sessions whose spans are not exported as far as their log goes and that are not in the middle
   * of a step (status other than {@code runnable} and {@code running}), oldest first, at most
   * {@code limit}: what a restarted node exports.
   */
  List<String> unexported(int limit);
}
