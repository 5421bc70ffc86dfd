package keel.control;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import java.security.SecureRandom;
import java.text.ParseException;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import keel.core.KeelException;
import keel.data.SigningKeyStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Agent identity: the control plane signs a short-lived token for every session and checks it on
 * every use. A token is a JWT signed with ES256 (ECDSA on P-256) carrying the agent and revision,
 * the session and its root session, the grants (capability URIs) and the delegation chain.
 *
 * <p>Keys live in the data plane ({@link SigningKeyStore}), so every node signs with the same
 * active key and verifies every node's tokens. A key signs for {@link IdentitySettings#keyRotation}
 * and is then replaced by a new one, made by the first node that needs to sign after the old one
 * retired; the old key's public half stays published (JWKS) until every token it signed has
 * expired, and is then deleted. Private keys never leave this class except to the store, and are
 * never logged.
 *
 * <p>Verification checks, in order: the token parses as a JWS; it is signed with ES256 by a key of
 * this control plane that has not expired; the signature matches; the issuer is ours; it has not
 * expired and was not issued in the future (both with {@link IdentitySettings#clockSkew}); it is for
 * the session that presents it; and, for a capability, one of its grants covers it (see {@link
 * Grants}). Each refusal says which check failed.
 *
 * <p>An ES256 signature check costs a few hundred microseconds, and a session presents the same
 * token for every call of a run: so tokens whose signature and issuer were verified are remembered,
 * by their exact text, in a bounded cache (tokens this node issued go there at once). Any other text,
 * an altered token included, misses the cache and is checked in full; expiry, session and grants are
 * checked on every use, cached or not.
 *
 * <p>Thread-safe. The active key is guarded by {@code rotation}; verification keys are cached in a
 * concurrent map holding only keys that have not expired; verified tokens are in an LRU map guarded
 * by {@code verifiedLock}.
 */
public final class Identity {

  private static final Logger LOG = LoggerFactory.getLogger(Identity.class);
  private static final DateTimeFormatter KID_TIME =
      DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);

  /** What a token is issued for. */
  public record Subject(
      String agent, int revision, String sessionId, String rootSessionId, List<String> grants, List<String> chain) {
    public Subject {
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(sessionId, "sessionId");
      Objects.requireNonNull(rootSessionId, "rootSessionId");
      grants = List.copyOf(grants);
      chain = List.copyOf(chain);
      if (chain.isEmpty()) {
        throw new IllegalArgumentException(
            "session " + sessionId + ": a token needs a delegation chain naming at least who started the root session");
      }
    }
  }

  /** The outcome of checking a presented token. */
  public sealed interface Verdict {
    /** The token is genuine, current, for this session, and (when asked) grants the capability. */
    record Verified(SessionToken token) implements Verdict {}

    /**
     * The token is refused.
     *
     * @param reason which check failed, for the record and for the model
     * @param token the token, when it is genuine and current but does not grant what was asked;
     *     empty when its signature or claims could not be trusted
     */
    record Refused(String reason, Optional<SessionToken> token) implements Verdict {}
  }

  /** The outcome of asking whether a session may delegate to a sub-agent. */
  public sealed interface Delegation {
    /** The child's token subject: its grants (the intersection) and its chain. */
    record Allowed(List<String> grants, List<String> chain) implements Delegation {}

    record Refused(String reason) implements Delegation {}
  }

  private record VerificationKey(ECDSAVerifier verifier, Instant expireAt) {}

  private final SigningKeyStore keys;
  private final Clock clock;
  private final IdentitySettings settings;
  private final SecureRandom random = new SecureRandom();
  private final ReentrantLock rotation = new ReentrantLock();
  /** The key new tokens are signed with; guarded by {@code rotation}. */
  private SigningKeyStore.SigningKey active;
  private ECDSASigner signer;
  private final Map<String, VerificationKey> verificationKeys = new ConcurrentHashMap<>();
  private static final int VERIFIED_TOKENS = 4096;
  private final ReentrantLock verifiedLock = new ReentrantLock();
  /** Tokens whose signature and issuer checked out, by their compact text; guarded by {@code verifiedLock}. */
  private final Map<String, SessionToken> verified =
      new java.util.LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, SessionToken> eldest) {
          return size() > VERIFIED_TOKENS;
        }
      };

  public Identity(SigningKeyStore keys, Clock clock, IdentitySettings settings) {
    this.keys = Objects.requireNonNull(keys, "keys");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.settings = Objects.requireNonNull(settings, "settings");
  }

  public IdentitySettings settings() {
    return settings;
  }

  /**
   * Signs a token for a session with the active key, rotating the key first when it is due.
   *
   * @throws KeelException.Unavailable when the key store cannot be reached
   */
  public SessionToken issue(Subject subject) {
    Instant now = clock.instant();
    SigningKeyStore.SigningKey key;
    ECDSASigner keySigner;
    // only the choice of key is guarded: the signature (the costly part) runs outside the lock,
    // so that sessions starting at once on several cores sign in parallel (ECDSASigner is thread-safe)
    rotation.lock();
    try {
      ensureActiveKey(now);
      key = active;
      keySigner = signer;
    } finally {
      rotation.unlock();
    }
    Instant exp = now.plus(settings.tokenLifetime());
    String jti = "t_" + randomHex(16);
    String principal = "agent:" + subject.agent();
    JWTClaimsSet claims =
        new JWTClaimsSet.Builder()
            .issuer(settings.issuer())
            .subject(principal)
            .issueTime(Date.from(now))
            .expirationTime(Date.from(exp))
            .jwtID(jti)
            .claim("agent", subject.agent())
            .claim("revision", subject.revision())
            .claim("sid", subject.sessionId())
            .claim("root_sid", subject.rootSessionId())
            .claim("grants", subject.grants())
            .claim("chain", subject.chain())
            .build();
    JWSHeader header = new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(key.kid()).type(JOSEObjectType.JWT).build();
    SignedJWT jwt = new SignedJWT(header, claims);
    try {
      jwt.sign(keySigner);
    } catch (JOSEException e) {
      throw new KeelException.Unavailable("cannot sign a token for session " + subject.sessionId() + ": " + e.getMessage(), e);
    }
    // iat and exp travel in whole seconds; the token says what it says
    SessionToken token = new SessionToken(
        jti, principal, subject.agent(), subject.revision(), subject.sessionId(), subject.rootSessionId(),
        subject.grants(), subject.chain(), settings.issuer(), key.kid(), claims.getIssueTime().toInstant(),
        claims.getExpirationTime().toInstant(), jwt.serialize());
    remember(token);
    return token;
  }

  /** Whether a token should be replaced before its next use: less than a third of its life is left. */
  public boolean dueForRefresh(SessionToken token) {
    return !clock.instant().plus(settings.refreshBefore()).isBefore(token.expiresAt());
  }

  /** Checks a presented token's signature, issuer, expiry and session. */
  public Verdict verify(String compact, String sessionId) {
    Objects.requireNonNull(compact, "compact");
    Objects.requireNonNull(sessionId, "sessionId");
    return check(compact, sessionId);
  }

  /**
   * Checks a token presented from outside a session (an MCP client of the gateway holding an agent's
   * token): its signature, issuer and expiry, whatever session it was issued for.
   */
  public Verdict verifyBearer(String compact) {
    Objects.requireNonNull(compact, "compact");
    return check(compact, null);
  }

  /** Checks a presented token as {@link #verify} does, and that one of its grants covers the capability. */
  public Verdict authorize(String compact, String sessionId, String capability) {
    Objects.requireNonNull(capability, "capability");
    Verdict v = verify(compact, sessionId);
    if (v instanceof Verdict.Verified ok && !Grants.allows(ok.token().grants(), capability)) {
      return new Verdict.Refused(
          ok.token().principal() + " is not granted " + capability + " (its token grants "
              + (ok.token().grants().isEmpty() ? "nothing" : String.join(", ", ok.token().grants())) + ")",
          Optional.of(ok.token()));
    }
    return v;
  }

  /**
   * Whether the holder of a verified token may start a sub-agent of {@code childAgent}, whose
   * {@code spec.tools} are {@code childTools}, and with which grants and chain: the grants are
   * the intersection (see {@link Grants}); the chain is the parent's plus the parent itself.
   * Refused when the parent is not granted {@code agent://<child>}, when the child would be deeper
   * than {@link IdentitySettings#maxDelegationDepth}, or when the child's agent is already in the
   * chain (a cycle).
   */
  public Delegation delegate(SessionToken parent, String childAgent, List<String> childTools) {
    return delegate(parent, childAgent, childTools, 0);
  }

  /**
   * As {@link #delegate(SessionToken, String, List)}, for a session that has already made {@code
   * delegatedBefore} sub-agent calls: refused once that reaches {@link
   * IdentitySettings#maxSubagentsPerSession} (the fan-out bound).
   */
  public Delegation delegate(SessionToken parent, String childAgent, List<String> childTools, int delegatedBefore) {
    String capability = "agent://" + childAgent;
    if (!Grants.allows(parent.grants(), capability)) {
      return new Delegation.Refused(parent.principal() + " is not granted " + capability);
    }
    if (delegatedBefore >= settings.maxSubagentsPerSession()) {
      return new Delegation.Refused(
          "this session has already made " + delegatedBefore + " sub-agent calls; the most one session may make is "
              + settings.maxSubagentsPerSession() + " (the fan-out bound); answer with what you have");
    }
    List<String> chain = new ArrayList<>(parent.chain());
    chain.add(parent.principal());
    int depth = chain.size() - 1;
    if (depth > settings.maxDelegationDepth()) {
      return new Delegation.Refused(
          "delegating to " + childAgent + " would start a sub-agent at depth " + depth + " (the root session is depth 0);"
              + " the deepest allowed is " + settings.maxDelegationDepth() + " (delegation chain: " + String.join(" → ", chain) + ")");
    }
    String child = "agent:" + childAgent;
    if (chain.contains(child)) {
      return new Delegation.Refused(
          childAgent + " is already in the delegation chain (" + String.join(" → ", chain)
              + "); an agent may not delegate to itself or to an agent that delegated to it");
    }
    return new Delegation.Allowed(Grants.intersect(parent.grants(), childTools), chain);
  }

  /**
   * The JWKS document: the public keys of every key whose tokens may still be valid, so that any
   * service can verify a session token. Public by design.
   */
  public String jwks() {
    Instant now = clock.instant();
    List<com.nimbusds.jose.jwk.JWK> out = new ArrayList<>();
    for (SigningKeyStore.SigningKey k : keys.published(now)) {
      out.add(parse(k.publicJwk(), k.kid()).toPublicJWK());
    }
    return new JWKSet(out).toString(true);
  }

  /** Makes sure a key is active, so that the JWKS document is never empty; returns its id. */
  public String activeKeyId() {
    rotation.lock();
    try {
      ensureActiveKey(clock.instant());
      return active.kid();
    } finally {
      rotation.unlock();
    }
  }

  // ---- keys ------------------------------------------------------------------------------------

  /** Called with {@code rotation} held. */
  private void ensureActiveKey(Instant now) {
    if (active != null && active.activeAt(now)) {
      return;
    }
    SigningKeyStore.SigningKey chosen = keys.activeOrInsert(newKey(now), now);
    ECKey key = parse(chosen.privateJwk(), chosen.kid());
    try {
      signer = new ECDSASigner(key);
    } catch (JOSEException e) {
      throw new KeelException.Unavailable("signing key " + chosen.kid() + " cannot sign: " + e.getMessage(), e);
    }
    boolean rotated = active != null;
    active = chosen;
    try {
      verificationKeys.put(chosen.kid(), new VerificationKey(new ECDSAVerifier(key.toPublicJWK()), chosen.expireAt()));
    } catch (JOSEException e) {
      throw new KeelException.Unavailable("signing key " + chosen.kid() + " cannot verify: " + e.getMessage(), e);
    }
    int purged = keys.purgeExpired(now);
    verificationKeys.values().removeIf(v -> !v.expireAt().isAfter(now));
    LOG.info("{} token signing key {} (signs until {}, published until {}){}", rotated ? "rotated to" : "using",
        chosen.kid(), chosen.retireAt(), chosen.expireAt(), purged > 0 ? "; deleted " + purged + " expired keys" : "");
  }

  private SigningKeyStore.SigningKey newKey(Instant now) {
    String kid = "k-" + KID_TIME.format(now) + "-" + randomHex(8);
    ECKey key;
    try {
      key = new ECKeyGenerator(Curve.P_256).keyID(kid).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256)
          .secureRandom(random).generate();
    } catch (JOSEException e) {
      throw new IllegalStateException("cannot generate a P-256 key: " + e.getMessage(), e);
    }
    Instant retire = now.plus(settings.keyRotation());
    Instant expire = retire.plus(settings.tokenLifetime()).plus(settings.clockSkew());
    return new SigningKeyStore.SigningKey(
        kid, JWSAlgorithm.ES256.getName(), key.toPublicJWK().toJSONString(), key.toJSONString(), now, retire, expire);
  }

  private static ECKey parse(String jwk, String kid) {
    try {
      return ECKey.parse(jwk);
    } catch (ParseException e) {
      // never include the JWK itself: it may hold the private key
      throw new KeelException.Unavailable("stored signing key " + kid + " is not a valid EC JWK: " + e.getMessage(), e);
    }
  }

  private Optional<VerificationKey> verificationKey(String kid, Instant now) {
    VerificationKey cached = verificationKeys.get(kid);
    if (cached != null) {
      return Optional.of(cached);
    }
    // another node may have rotated: read the store
    Optional<SigningKeyStore.SigningKey> stored = keys.key(kid);
    if (stored.isEmpty() || !stored.get().expireAt().isAfter(now)) {
      return Optional.empty();
    }
    try {
      VerificationKey v = new VerificationKey(
          new ECDSAVerifier(parse(stored.get().publicJwk(), kid).toPublicJWK()), stored.get().expireAt());
      verificationKeys.put(kid, v);
      return Optional.of(v);
    } catch (JOSEException e) {
      throw new KeelException.Unavailable("stored signing key " + kid + " cannot verify: " + e.getMessage(), e);
    }
  }

  // ---- verification ----------------------------------------------------------------------------

  /** {@code sessionId} null: any session. */
  private Verdict check(String compact, String sessionId) {
    Instant now = clock.instant();
    SessionToken token = known(compact, now);
    if (token == null) {
      Verdict signed = signed(compact, now);
      if (!(signed instanceof Verdict.Verified v)) {
        return signed;
      }
      token = v.token();
      remember(token);
    }
    if (!now.minus(settings.clockSkew()).isBefore(token.expiresAt())) {
      return refused("the token expired at " + token.expiresAt() + " (now " + now + ")");
    }
    if (token.issuedAt().isAfter(now.plus(settings.clockSkew()))) {
      return refused("the token was issued in the future (" + token.issuedAt() + ", now " + now + ")");
    }
    if (sessionId != null && !sessionId.equals(token.sessionId())) {
      return refused("the token is for session " + token.sessionId() + ", not for session " + sessionId);
    }
    return new Verdict.Verified(token);
  }

  /** A token verified before, whose signing key is still current; null otherwise. */
  private SessionToken known(String compact, Instant now) {
    SessionToken t;
    verifiedLock.lock();
    try {
      t = verified.get(compact);
    } finally {
      verifiedLock.unlock();
    }
    if (t == null) {
      return null;
    }
    VerificationKey key = verificationKeys.get(t.keyId());
    return key != null && key.expireAt().isAfter(now) ? t : null;
  }

  private void remember(SessionToken token) {
    verifiedLock.lock();
    try {
      verified.put(token.compact(), token);
    } finally {
      verifiedLock.unlock();
    }
  }

  /** The checks that depend only on the token's text: form, algorithm, key, signature, issuer, claims. */
  private Verdict signed(String compact, Instant now) {
    SignedJWT jwt;
    try {
      jwt = SignedJWT.parse(compact);
    } catch (ParseException e) {
      return refused("the token is not a signed JWT (" + e.getMessage() + ")");
    }
    JWSAlgorithm alg = jwt.getHeader().getAlgorithm();
    if (!JWSAlgorithm.ES256.equals(alg)) {
      return refused("the token is signed with " + alg + "; only ES256 tokens of this control plane are accepted");
    }
    String kid = jwt.getHeader().getKeyID();
    if (kid == null || kid.isBlank()) {
      return refused("the token names no signing key (no kid header)");
    }
    Optional<VerificationKey> key = verificationKey(kid, now);
    if (key.isEmpty()) {
      return refused("the token is signed with key \"" + kid + "\", which is not a current key of this control plane"
          + " (forged, or its key expired)");
    }
    if (!key.get().expireAt().isAfter(now)) {
      verificationKeys.remove(kid);
      return refused("the token's signing key \"" + kid + "\" has expired");
    }
    try {
      if (!jwt.verify(key.get().verifier())) {
        return refused("the token's signature does not match key \"" + kid + "\" (it was altered, or signed by another key)");
      }
    } catch (JOSEException e) {
      return refused("the token's signature cannot be checked: " + e.getMessage());
    }
    JWTClaimsSet c;
    try {
      c = jwt.getJWTClaimsSet();
    } catch (ParseException e) {
      return refused("the token's claims are not valid JSON: " + e.getMessage());
    }
    try {
      if (!settings.issuer().equals(c.getIssuer())) {
        return refused("the token was issued by \"" + c.getIssuer() + "\", not by \"" + settings.issuer() + "\"");
      }
      Date exp = c.getExpirationTime();
      Date iat = c.getIssueTime();
      String sid = c.getStringClaim("sid");
      String agent = c.getStringClaim("agent");
      String sub = c.getSubject();
      List<String> grants = c.getStringListClaim("grants");
      List<String> chain = c.getStringListClaim("chain");
      Integer revision = c.getIntegerClaim("revision");
      String root = c.getStringClaim("root_sid");
      if (exp == null || iat == null || sid == null || agent == null || !("agent:" + agent).equals(sub) || grants == null
          || chain == null || chain.isEmpty() || revision == null || root == null || c.getJWTID() == null) {
        return refused("the token lacks claims a session token has (sub, agent, revision, sid, root_sid, grants, chain,"
            + " iat, exp, jti)");
      }
      return new Verdict.Verified(new SessionToken(
          c.getJWTID(), sub, agent, revision, sid, root, grants, chain, c.getIssuer(), kid, iat.toInstant(),
          exp.toInstant(), compact));
    } catch (ParseException e) {
      return refused("the token's claims have the wrong types: " + e.getMessage());
    }
  }

  private static Verdict refused(String reason) {
    return new Verdict.Refused(reason, Optional.empty());
  }

  private String randomHex(int bytes) {
    byte[] b = new byte[bytes];
    random.nextBytes(b);
    return HexFormat.of().formatHex(b);
  }
}
