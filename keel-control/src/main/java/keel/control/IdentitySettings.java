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
 * @param maxSubagentsPerSession the most sub-agent calls (delegations) one session makes over its
 *     life: the fan-out bound; later calls are refused with the reason
 */
public record IdentitySettings(
    String issuer,
    Duration tokenLifetime,
    Duration keyRotation,
    Duration clockSkew,
    int maxDelegationDepth,
    int maxSubagentsPerSession) {

  /** The default fan-out bound: sub-agent calls per session. */
  public static final int DEFAULT_MAX_SUBAGENTS_PER_SESSION = 16;

  /** Settings with the default fan-out bound. */
  public IdentitySettings(String issuer, Duration tokenLifetime, Duration keyRotation, Duration clockSkew, int maxDelegationDepth) {
    this(issuer, tokenLifetime, keyRotation, clockSkew, maxDelegationDepth, DEFAULT_MAX_SUBAGENTS_PER_SESSION);
  }

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
    if (maxSubagentsPerSession < 0 || maxSubagentsPerSession > 1000) {
      throw new IllegalArgumentException("max sub-agents per session: expected 0 to 1000, got " + maxSubagentsPerSession);
    }
  }

  /** Issuer {@code keel}, 10-minute tokens, keys rotated every 24 h, 30 s of skew, depth 5. */
  public static IdentitySettings defaults() {
    return new IdentitySettings("keel", Duration.ofMinutes(10), Duration.ofHours(24), Duration.ofSeconds(30), 5, DEFAULT_MAX_SUBAGENTS_PER_SESSION);
  }

  public IdentitySettings withTokenLifetime(Duration d) {
    return new IdentitySettings(issuer, d, keyRotation, clockSkew, maxDelegationDepth, maxSubagentsPerSession);
  }

  public IdentitySettings withKeyRotation(Duration d) {
    return new IdentitySettings(issuer, tokenLifetime, d, clockSkew, maxDelegationDepth, maxSubagentsPerSession);
  }

  public IdentitySettings withMaxDelegationDepth(int depth) {
    return new IdentitySettings(issuer, tokenLifetime, keyRotation, clockSkew, depth, maxSubagentsPerSession);
  }

  public IdentitySettings withMaxSubagentsPerSession(int n) {
    return new IdentitySettings(issuer, tokenLifetime, keyRotation, clockSkew, maxDelegationDepth, n);
  }

  /** A token this close to its expiry is replaced before it is used again. */
  public Duration refreshBefore() {
    return tokenLifetime.dividedBy(3);
  }
}
