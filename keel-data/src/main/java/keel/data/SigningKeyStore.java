package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The keys the control plane signs session tokens with, shared by every node through the store.
 * At any time at most one key is <em>active</em> (signs new tokens): the newest whose {@code
 * retireAt} is in the future. Older keys stay until {@code expireAt}, so the tokens they signed
 * can still be verified, and are then deleted.
 *
 * <p>Thread-safe. Implementations make {@link #activeOrInsert} atomic, so nodes that rotate at the
 * same moment agree on one active key.
 */
public interface SigningKeyStore {

  /**
   * One signing key.
   *
   * @param kid the key id, as in a token's {@code kid} header and the JWKS document
   * @param algorithm the JWS algorithm, e.g. {@code ES256}
   * @param publicJwk the public key as a JWK (JSON), published in the JWKS document
   * @param privateJwk the whole key, private part included, as a JWK (JSON); never logged
   * @param createdAt when it was made
   * @param retireAt when it stops signing new tokens
   * @param expireAt when its public key is no longer needed: every token it signed has expired
   */
  record SigningKey(
      String kid,
      String algorithm,
      String publicJwk,
      String privateJwk,
      Instant createdAt,
      Instant retireAt,
      Instant expireAt) {
    public SigningKey {
      Objects.requireNonNull(kid, "kid");
      Objects.requireNonNull(algorithm, "algorithm");
      Objects.requireNonNull(publicJwk, "publicJwk");
      Objects.requireNonNull(privateJwk, "privateJwk");
      Objects.requireNonNull(createdAt, "createdAt");
      Objects.requireNonNull(retireAt, "retireAt");
      Objects.requireNonNull(expireAt, "expireAt");
      if (!retireAt.isAfter(createdAt) || expireAt.isBefore(retireAt)) {
        throw new IllegalArgumentException(
            "signing key " + kid + ": expected created_at < retire_at <= expire_at, got " + createdAt + ", "
                + retireAt + ", " + expireAt);
      }
    }

    /** Whether it signs new tokens at {@code now}. */
    public boolean activeAt(Instant now) {
      return now.isBefore(retireAt);
    }

    /** Shows everything but the private key. */
    @Override
    public String toString() {
      return "SigningKey[kid=" + kid + ", algorithm=" + algorithm + ", createdAt=" + createdAt + ", retireAt="
          + retireAt + ", expireAt=" + expireAt + ", privateJwk=(redacted)]";
    }
  }

  /**
   * The active key at {@code now} if there is one; otherwise stores {@code candidate} and returns
   * it. Atomic: of several callers racing with different candidates, all get the same key.
   */
  SigningKey activeOrInsert(SigningKey candidate, Instant now);

  /** A key by id, if it is stored (expired keys are deleted by {@link #purgeExpired}). */
  Optional<SigningKey> key(String kid);

  /** Every key whose public part is still needed at {@code now} (expireAt after now), newest first. */
  List<SigningKey> published(Instant now);

  /** Deletes the keys whose every token has expired (expireAt at or before now); returns how many. */
  int purgeExpired(Instant now);
}
