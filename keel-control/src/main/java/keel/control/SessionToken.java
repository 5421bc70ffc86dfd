package keel.control;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A session token whose signature and claims were checked: who a session acts as and what it may
 * do. Only {@link Identity} makes these, by issuing or verifying a token.
 *
 * @param tokenId the token's unique id ({@code jti}), recorded on the events it authorizes
 * @param principal the subject ({@code sub}): {@code agent:<name>}
 * @param agent the agent's name
 * @param revision the agent revision the session runs
 * @param sessionId the session the token is for ({@code sid}); it is refused for any other
 * @param rootSessionId the root session of the delegation tree ({@code root_sid})
 * @param grants the capability URIs the session may use
 * @param chain the delegation chain: who started the root session, then each delegating agent
 * @param issuer the control plane that signed it ({@code iss})
 * @param keyId the signing key ({@code kid} header)
 * @param issuedAt {@code iat}
 * @param expiresAt {@code exp}
 * @param compact the signed token as sent (a JWS in compact form); a bearer credential, never
 *     logged or shown to a model
 */
public record SessionToken(
    String tokenId,
    String principal,
    String agent,
    int revision,
    String sessionId,
    String rootSessionId,
    List<String> grants,
    List<String> chain,
    String issuer,
    String keyId,
    Instant issuedAt,
    Instant expiresAt,
    String compact) {

  public SessionToken {
    Objects.requireNonNull(tokenId, "tokenId");
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(agent, "agent");
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(rootSessionId, "rootSessionId");
    grants = List.copyOf(grants);
    chain = List.copyOf(chain);
    Objects.requireNonNull(issuer, "issuer");
    Objects.requireNonNull(keyId, "keyId");
    Objects.requireNonNull(issuedAt, "issuedAt");
    Objects.requireNonNull(expiresAt, "expiresAt");
    Objects.requireNonNull(compact, "compact");
  }

  /** How many sub-agent levels below its root session the token's session is (a root is 0). */
  public int depth() {
    return Math.max(0, chain.size() - 1);
  }

  /** Everything but the signed token itself, which is a credential. */
  @Override
  public String toString() {
    return "SessionToken[jti=" + tokenId + ", sub=" + principal + ", revision=" + revision + ", sid=" + sessionId
        + ", root_sid=" + rootSessionId + ", grants=" + grants + ", chain=" + chain + ", iss=" + issuer + ", kid="
        + keyId + ", iat=" + issuedAt + ", exp=" + expiresAt + "]";
  }
}
