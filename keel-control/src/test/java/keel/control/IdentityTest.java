package keel.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.PlainJWT;
import com.nimbusds.jwt.SignedJWT;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import keel.data.MutableClock;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Session tokens against a real SQLite key store: what they carry, every way a token is refused
 * (forged, tampered, expired, for another session, not granting the capability, wrong issuer or
 * algorithm), key rotation, nodes sharing keys through the store, delegation and the JWKS document.
 */
class IdentityTest {

  static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(T0);
  Store store;
  Identity identity;

  static final Identity.Subject PLANNER = new Identity.Subject(
      "planner", 3, "s_parent", "s_parent", List.of("internal://memory", "mcp://gateway/crm", "agent://researcher"),
      List.of("operator:alice"));

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-a", clock, true);
    identity = new Identity(store.signingKeys(), clock, IdentitySettings.defaults());
  }

  @AfterEach
  void close() {
    store.close();
  }

  static String reason(Identity.Verdict v) {
    assertThat(v).isInstanceOf(Identity.Verdict.Refused.class);
    return ((Identity.Verdict.Refused) v).reason();
  }

  static SessionToken verified(Identity.Verdict v) {
    assertThat(v).as("verdict %s", v).isInstanceOf(Identity.Verdict.Verified.class);
    return ((Identity.Verdict.Verified) v).token();
  }

  @Test
  void issuedToken_carriesTheSessionsIdentity_andVerifies() throws Exception {
    SessionToken t = identity.issue(PLANNER);
    SignedJWT jwt = SignedJWT.parse(t.compact());
    assertThat(jwt.getHeader().getAlgorithm()).isEqualTo(JWSAlgorithm.ES256);
    assertThat(jwt.getHeader().getType()).isEqualTo(JOSEObjectType.JWT);
    assertThat(jwt.getHeader().getKeyID()).isEqualTo(t.keyId()).startsWith("k-20260301T100000Z-");
    JWTClaimsSet c = jwt.getJWTClaimsSet();
    assertThat(c.getSubject()).isEqualTo("agent:planner");
    assertThat(c.getIssuer()).isEqualTo("keel");
    assertThat(c.getStringClaim("agent")).isEqualTo("planner");
    assertThat(c.getIntegerClaim("revision")).isEqualTo(3);
    assertThat(c.getStringClaim("sid")).isEqualTo("s_parent");
    assertThat(c.getStringClaim("root_sid")).isEqualTo("s_parent");
    assertThat(c.getStringListClaim("grants")).containsExactly("internal://memory", "mcp://gateway/crm", "agent://researcher");
    assertThat(c.getStringListClaim("chain")).containsExactly("operator:alice");
    assertThat(c.getIssueTime().toInstant()).isEqualTo(T0);
    assertThat(c.getExpirationTime().toInstant()).isEqualTo(T0.plus(Duration.ofMinutes(10)));
    assertThat(c.getJWTID()).isEqualTo(t.tokenId()).startsWith("t_");

    SessionToken v = verified(identity.verify(t.compact(), "s_parent"));
    assertThat(v).isEqualTo(t);
    assertThat(t.toString()).doesNotContain(t.compact()).contains(t.tokenId());
    assertThat(identity.issue(PLANNER).tokenId()).isNotEqualTo(t.tokenId());
  }

  @Test
  void authorize_aGrantedCapability_isVerified_andAServerGrantCoversItsTools() {
    String t = identity.issue(PLANNER).compact();
    verified(identity.authorize(t, "s_parent", "internal://memory"));
    verified(identity.authorize(t, "s_parent", "mcp://gateway/crm/read"));
    verified(identity.authorize(t, "s_parent", "agent://researcher"));
  }

  @Test
  void authorize_aCapabilityNotGranted_isRefused_namingWhatTheTokenGrants() {
    SessionToken t = identity.issue(PLANNER);
    Identity.Verdict v = identity.authorize(t.compact(), "s_parent", "internal://time");
    assertThat(reason(v)).isEqualTo("agent:planner is not granted internal://time (its token grants internal://memory,"
        + " mcp://gateway/crm, agent://researcher)");
    // the token itself was genuine: the refusal names who asked
    assertThat(((Identity.Verdict.Refused) v).token()).contains(t);
    assertThat(reason(identity.authorize(t.compact(), "s_parent", "mcp://gateway/erp/pay"))).contains("not granted");
  }

  @Test
  void forgedToken_signedByAnotherKeyUnderOurKid_isRefused() throws Exception {
    SessionToken genuine = identity.issue(PLANNER);
    ECKey attacker = new ECKeyGenerator(Curve.P_256).keyID(genuine.keyId()).generate();
    SignedJWT forged = new SignedJWT(
        new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(genuine.keyId()).build(),
        SignedJWT.parse(genuine.compact()).getJWTClaimsSet());
    forged.sign(new ECDSASigner(attacker));
    assertThat(reason(identity.verify(forged.serialize(), "s_parent")))
        .contains("signature does not match key \"" + genuine.keyId() + "\"");
  }

  @Test
  void forgedToken_underAnUnknownKid_isRefused() throws Exception {
    identity.issue(PLANNER);
    ECKey attacker = new ECKeyGenerator(Curve.P_256).keyID("k-attacker").generate();
    SignedJWT forged = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID("k-attacker").build(), claims("s_parent"));
    forged.sign(new ECDSASigner(attacker));
    assertThat(reason(identity.verify(forged.serialize(), "s_parent")))
        .isEqualTo("the token is signed with key \"k-attacker\", which is not a current key of this control plane"
            + " (forged, or its key expired)");
  }

  @Test
  void tamperedToken_withGrantsEdited_isRefused() throws Exception {
    String[] parts = identity.issue(PLANNER).compact().split("\\.");
    String payload = new String(Base64URL.from(parts[1]).decode(), StandardCharsets.UTF_8)
        .replace("\"internal://memory\"", "\"internal://memory\",\"mcp://gateway/erp\"");
    assertThat(payload).contains("mcp://gateway/erp");
    String tampered = parts[0] + "." + Base64URL.encode(payload.getBytes(StandardCharsets.UTF_8)) + "." + parts[2];
    assertThat(reason(identity.authorize(tampered, "s_parent", "mcp://gateway/erp/pay")))
        .contains("signature does not match").contains("altered");
  }

  @Test
  void expiredToken_isRefused_afterItsLifetimeAndTheSkew() {
    SessionToken t = identity.issue(PLANNER);
    clock.advance(Duration.ofMinutes(10));
    // within the allowed clock skew of another node
    verified(identity.verify(t.compact(), "s_parent"));
    clock.advance(Duration.ofSeconds(30));
    assertThat(reason(identity.verify(t.compact(), "s_parent")))
        .isEqualTo("the token expired at 2026-03-01T10:10:00Z (now 2026-03-01T10:10:30Z)");
  }

  @Test
  void tokenOfAnotherSession_isRefused() {
    SessionToken t = identity.issue(PLANNER);
    assertThat(reason(identity.verify(t.compact(), "s_other")))
        .isEqualTo("the token is for session s_parent, not for session s_other");
  }

  @Test
  void tokenOfAnotherIssuer_sharingTheKeys_isRefused() {
    Identity other = new Identity(store.signingKeys(), clock,
        new IdentitySettings("other-plane", Duration.ofMinutes(10), Duration.ofHours(24), Duration.ofSeconds(30), 5));
    String t = other.issue(PLANNER).compact();
    assertThat(reason(identity.verify(t, "s_parent"))).isEqualTo("the token was issued by \"other-plane\", not by \"keel\"");
  }

  @Test
  void unsignedOrSymmetricTokens_areRefused() throws Exception {
    String kid = identity.issue(PLANNER).keyId();
    assertThat(reason(identity.verify(new PlainJWT(claims("s_parent")).serialize(), "s_parent")))
        .startsWith("the token is not a signed JWT");
    SignedJWT hs = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).keyID(kid).build(), claims("s_parent"));
    hs.sign(new MACSigner("0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.UTF_8)));
    assertThat(reason(identity.verify(hs.serialize(), "s_parent"))).startsWith("the token is signed with HS256");
    assertThat(reason(identity.verify("not a token", "s_parent"))).startsWith("the token is not a signed JWT");
  }

  @Test
  void tokenIssuedInTheFuture_isRefused() {
    clock.advance(Duration.ofMinutes(5));
    SessionToken t = identity.issue(PLANNER);
    MutableClock behind = new MutableClock(T0);
    Identity lagging = new Identity(store.signingKeys(), behind, IdentitySettings.defaults());
    assertThat(reason(lagging.verify(t.compact(), "s_parent"))).startsWith("the token was issued in the future");
  }

  @Test
  void dueForRefresh_whenLessThanAThirdOfItsLifeRemains() {
    SessionToken t = identity.issue(PLANNER);
    clock.advance(Duration.ofMinutes(6));
    assertThat(identity.dueForRefresh(t)).isFalse();
    clock.advance(Duration.ofSeconds(40));
    assertThat(identity.dueForRefresh(t)).isTrue();
  }

  @Test
  void rotation_newTokensUseTheNewKey_andTokensOfTheOldKeyVerifyUntilTheyExpire() {
    identity = new Identity(store.signingKeys(), clock, IdentitySettings.defaults().withKeyRotation(Duration.ofHours(1)));
    assertThat(identity.activeKeyId()).startsWith("k-20260301T100000Z-"); // signs from 10:00 to 11:00
    clock.advance(Duration.ofMinutes(55));
    SessionToken old = identity.issue(PLANNER);
    clock.advance(Duration.ofMinutes(6));
    SessionToken fresh = identity.issue(PLANNER);
    assertThat(fresh.keyId()).isNotEqualTo(old.keyId());
    verified(identity.verify(old.compact(), "s_parent"));
    verified(identity.verify(fresh.compact(), "s_parent"));
    assertThat(publishedKids()).containsExactly(fresh.keyId(), old.keyId());

    // the old key is published until every token it could have signed has expired
    clock.advance(Duration.ofMinutes(9)); // 1:10, past the old token's expiry and skew
    assertThat(reason(identity.verify(old.compact(), "s_parent"))).contains("expired");
    clock.advance(Duration.ofSeconds(30)); // retire (1:00) + lifetime (10 min) + skew (30 s)
    assertThat(publishedKids()).containsExactly(fresh.keyId());
    assertThat(reason(identity.verify(old.compact(), "s_parent"))).contains("expired");
    verified(identity.verify(fresh.compact(), "s_parent"));
  }

  @Test
  void nodesSharingTheStore_signWithOneKey_andVerifyEachOthersTokens() {
    Identity nodeB = new Identity(store.signingKeys(), clock, IdentitySettings.defaults());
    SessionToken a = identity.issue(PLANNER);
    SessionToken b = nodeB.issue(PLANNER);
    assertThat(b.keyId()).isEqualTo(a.keyId());
    verified(nodeB.verify(a.compact(), "s_parent"));
    verified(identity.verify(b.compact(), "s_parent"));
    // node B rotates first; node A learns the new key from the store when it meets a token of it
    clock.advance(Duration.ofHours(24));
    SessionToken b2 = nodeB.issue(PLANNER);
    assertThat(b2.keyId()).isNotEqualTo(a.keyId());
    verified(identity.verify(b2.compact(), "s_parent"));
    assertThat(identity.issue(PLANNER).keyId()).isEqualTo(b2.keyId());
  }

  @Test
  void aTokenVerifiedBefore_isStillCheckedForSessionGrantAndExpiry_onEveryUse() {
    Identity nodeB = new Identity(store.signingKeys(), clock, IdentitySettings.defaults());
    SessionToken t = identity.issue(PLANNER);
    verified(nodeB.verify(t.compact(), "s_parent")); // a full check; remembered from now on
    verified(nodeB.authorize(t.compact(), "s_parent", "internal://memory"));
    assertThat(reason(nodeB.verify(t.compact(), "s_other"))).isEqualTo("the token is for session s_parent, not for session s_other");
    assertThat(reason(nodeB.authorize(t.compact(), "s_parent", "internal://time"))).contains("is not granted internal://time");
    clock.advance(Duration.ofMinutes(11));
    assertThat(reason(nodeB.verify(t.compact(), "s_parent"))).startsWith("the token expired at");
    assertThat(reason(identity.verify(t.compact(), "s_parent"))).startsWith("the token expired at");
  }

  @Test
  void jwks_publishesOnlyPublicKeys_andAStandardVerifierAcceptsOurTokens() throws Exception {
    SessionToken t = identity.issue(PLANNER);
    String jwks = identity.jwks();
    assertThat(jwks).doesNotContain("\"d\"").contains(t.keyId()).contains("\"crv\":\"P-256\"");
    JWKSet set = JWKSet.parse(jwks);
    assertThat(set.getKeys()).hasSize(1);
    assertThat(set.getKeys().getFirst().isPrivate()).isFalse();

    DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
    processor.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256, new ImmutableJWKSet<>(set)));
    // the standard processor reads the system clock; this token is from the test's clock
    processor.setJWTClaimsSetVerifier((claims, context) -> {});
    JWTClaimsSet claims = processor.process(t.compact(), null);
    assertThat(claims.getSubject()).isEqualTo("agent:planner");
  }

  @Test
  void delegate_givesTheChildTheIntersectionAndTheChain() {
    SessionToken parent = identity.issue(PLANNER);
    Identity.Delegation d = identity.delegate(parent, "researcher",
        List.of("internal://memory", "internal://time", "mcp://gateway/crm/read", "agent://writer"));
    assertThat(d).isEqualTo(new Identity.Delegation.Allowed(
        List.of("internal://memory", "mcp://gateway/crm/read"), List.of("operator:alice", "agent:planner")));
  }

  @Test
  void delegate_toAnAgentNotGranted_isRefused() {
    SessionToken parent = identity.issue(PLANNER);
    assertThat(identity.delegate(parent, "writer", List.of()))
        .isEqualTo(new Identity.Delegation.Refused("agent:planner is not granted agent://writer"));
  }

  @Test
  void delegate_toAnAgentAlreadyInTheChain_isRefusedAsACycle() {
    SessionToken child = identity.issue(new Identity.Subject("researcher", 1, "s_child", "s_parent",
        List.of("agent://planner", "agent://researcher"), List.of("operator:alice", "agent:planner")));
    assertThat(identity.delegate(child, "planner", List.of())).isEqualTo(new Identity.Delegation.Refused(
        "planner is already in the delegation chain (operator:alice → agent:planner → agent:researcher); an agent may"
            + " not delegate to itself or to an agent that delegated to it"));
    assertThat(identity.delegate(child, "researcher", List.of())).isInstanceOf(Identity.Delegation.Refused.class);
  }

  @Test
  void delegate_deeperThanTheLimit_isRefused() {
    Identity shallow = new Identity(store.signingKeys(), clock, IdentitySettings.defaults().withMaxDelegationDepth(2));
    SessionToken depth1 = shallow.issue(new Identity.Subject("a1", 1, "s1", "s0", List.of("agent://a2"),
        List.of("operator:alice", "agent:a0")));
    assertThat(depth1.depth()).isEqualTo(1);
    assertThat(shallow.delegate(depth1, "a2", List.of("agent://a3"))).isInstanceOf(Identity.Delegation.Allowed.class);
    SessionToken depth2 = shallow.issue(new Identity.Subject("a2", 1, "s2", "s0", List.of("agent://a3"),
        List.of("operator:alice", "agent:a0", "agent:a1")));
    assertThat(shallow.delegate(depth2, "a3", List.of())).isEqualTo(new Identity.Delegation.Refused(
        "delegating to a3 would start a sub-agent at depth 3 (the root session is depth 0); the deepest allowed is 2"
            + " (delegation chain: operator:alice → agent:a0 → agent:a1 → agent:a2)"));
  }

  private List<String> publishedKids() {
    return store.signingKeys().published(clock.instant()).stream().map(k -> k.kid()).toList();
  }

  private static JWTClaimsSet claims(String sid) {
    return new JWTClaimsSet.Builder().issuer("keel").subject("agent:planner").claim("agent", "planner")
        .claim("revision", 1).claim("sid", sid).claim("root_sid", sid).claim("grants", List.of("internal://time"))
        .claim("chain", List.of("operator:alice")).jwtID("t_forged").issueTime(Date.from(T0))
        .expirationTime(Date.from(T0.plus(Duration.ofMinutes(10)))).build();
  }
}
