package keel.gateway;

/**
 * An upstream call or listing that did not complete: the server could not be reached, broke, did
 * not answer in time, or is backing off after such a failure. The message says which, for the
 * model and the operator.
 */
final class UpstreamException extends Exception {
  private static final long serialVersionUID = 1L;

  UpstreamException(String message) {
    super(message, null, false, false);
  }
}
