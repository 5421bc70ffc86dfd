package keel.execution;

import keel.control.SessionToken;

/**
 * What the step executor presents to the identity check before each use of its session token:
 * the token it holds. The check ({@link keel.control.Identity}) trusts nothing about the presented
 * string, so a different presenter can only make uses be refused; tests use one to present forged,
 * altered, expired and other sessions' tokens and prove that they are.
 */
@FunctionalInterface
interface TokenPresenter {

  /** The token to present for one use: {@code model}, or the capability URI a tool call needs. */
  String present(String use, SessionToken held);

  /** Presents the token the session holds. */
  TokenPresenter HELD = (use, held) -> held.compact();
}
