package keel.control;

import java.time.Duration;
import java.util.Objects;

/**
 * How the control plane issues session tokens.
 *
 * @param issuer the {@code iss} of every token, checked on every verification
 * @param tokenLifetime how long a token is valid; the step executor takes a fresh one when less
 *     than a third of it remains
 * @param keyRotation how long a signing key signs new tokens before a new key replaces it; the old
 *     key's public half stays published until every token it signed has expired
 * @param clockSkew how far the clocks of the nodes that issue and verify may disagree
 * @param maxDelegationDepth the most levels of sub-agents below a root session
 */
public record IdentitySettings(
    String issuer, Duration tokenLifetime, Duration keyRotation, Duration clockSkew, int maxDelegationDepth) {

  public IdentitySettings {
    Objects.requireNonNull(issuer, "issuer");
    Objects.requireNonNull(tokenLifetime, "tokenLifetime");
    Objects.requireNonNull(keyRotation, "keyRotation");
    Objects.requireNonNull(clockSkew, "clockSkew");
    if (issuer.isBlank()) {
      throw new IllegalArgumentException("issuer: expected a non-empty name");
    }
    if (tokenLifetime.compareTo(Duration.ofSeconds(30)) < 0 || tokenLifetime.compareTo(Duration.ofHours(1)) > 0) {
      throw new IllegalArgumentException(
          "token lifetime: expected from 30 s to 1 h (tokens are short-lived), got " + tokenLifetime.toSeconds() + " s");
    }
    if (keyRotation.compareTo(tokenLifetime) < 0) {
      throw new IllegalArgumentException(
          "key rotation: expected at least the token lifetime (" + tokenLifetime.toSeconds() + " s), got "
              + keyRotation.toSeconds() + " s");
    }
    if (clockSkew.isNegative() || clockSkew.compareTo(Duration.ofMinutes(5)) > 0) {
      throw new IllegalArgumentException("clock skew: expected from 0 to 5 min, got " + clockSkew.toSeconds() + " s");
    }
    if (maxDelegationDepth < 0 || maxDelegationDepth > 20) {
      throw new IllegalArgumentException("max delegation depth: expected 0 to 20, got " + maxDelegationDepth);
    }
  }

  /** Issuer {@code keel}, 10-minute tokens, keys rotated every 24 h, 30 s of skew, depth 5. */
  public static IdentitySettings defaults() {
    return new IdentitySettings("keel", Duration.ofMinutes(10), Duration.ofHours(24), Duration.ofSeconds(30), 5);
  }

  public IdentitySettings withTokenLifetime(Duration d) {
    return new IdentitySettings(issuer, d, keyRotation, clockSkew, maxDelegationDepth);
  }

  public IdentitySettings withKeyRotation(Duration d) {
    return new IdentitySettings(issuer, tokenLifetime, d, clockSkew, maxDelegationDepth);
  }

  public IdentitySettings withMaxDelegationDepth(int depth) {
    return new IdentitySettings(issuer, tokenLifetime, keyRotation, clockSkew, depth);
  }

  /** A token this close to its expiry is replaced before it is used again. */
  public Duration refreshBefore() {
    return tokenLifetime.dividedBy(3);
  }
}
