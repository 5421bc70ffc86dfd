package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Operators (the people and scripts that use the API), their role bindings and their API tokens.
 *
 * <p>Tokens are stored only as the hex SHA-256 of the token: the store never sees a token, and a
 * value that does not look like such a hash is refused, so a token cannot be stored by mistake.
 * Each operator has at most one live token; issuing a new one revokes the previous one in the same
 * transaction. Operators are never deleted: a revoked operator keeps its name, so a principal
 * recorded in events and revisions ({@code operator:<name>}) never comes to mean someone else.
 *
 * <p>The store does not know what roles mean; {@code keel.control.Operators} validates them.
 *
 * <p>Thread-safe.
 */
public interface OperatorStore {

  /** The form every token hash has: 64 lower-case hex digits. */
  Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");

  /**
   * One role binding.
   *
   * @param role the role's wire name, e.g. {@code approver}
   * @param owner the owner it is limited to, or {@code ""} for every owner
   */
  record Grant(String role, String owner) {
    public Grant {
      Objects.requireNonNull(role, "role");
      Objects.requireNonNull(owner, "owner");
    }
  }

  /**
   * An operator as stored.
   *
   * @param grants its role bindings, in the order they were given
   * @param tokenIssuedAt when its live token was issued; empty once it is revoked
   */
  record Operator(
      String name,
      List<Grant> grants,
      String createdBy,
      Instant createdAt,
      Optional<Instant> revokedAt,
      Optional<String> revokedBy,
      Optional<Instant> tokenIssuedAt) {
    public Operator {
      Objects.requireNonNull(name, "name");
      grants = List.copyOf(grants);
      Objects.requireNonNull(createdBy, "createdBy");
      Objects.requireNonNull(createdAt, "createdAt");
      Objects.requireNonNull(revokedAt, "revokedAt");
      Objects.requireNonNull(revokedBy, "revokedBy");
      Objects.requireNonNull(tokenIssuedAt, "tokenIssuedAt");
    }

    public boolean revoked() {
      return revokedAt.isPresent();
    }
  }

  /**
   * Creates an operator with its first token.
   *
   * @param tokenSha256 the hex SHA-256 of its token
   * @param createdBy the principal that created it
   * @throws keel.core.KeelException.Conflict if an operator of that name exists or existed
   */
  Operator create(String name, List<Grant> grants, String tokenSha256, String createdBy);

  /** The operator of that name, revoked or not. */
  Optional<Operator> find(String name);

  /** Every operator, revoked ones included, by name. */
  List<Operator> list();

  /**
   * Revokes an operator and its token; its token stops working for the next request. Revoking a
   * revoked operator changes nothing and returns it as it is.
   *
   * @throws keel.core.KeelException.NotFound if there is no such operator
   */
  Operator revoke(String name, String revokedBy);

  /**
   * Gives an operator a new token and revokes the one it had, atomically.
   *
   * @throws keel.core.KeelException.NotFound if there is no such operator
   * @throws keel.core.KeelException.Conflict if it is revoked
   */
  Operator replaceToken(String name, String tokenSha256, String issuedBy);

  /**
   * The live operator whose live token has this hash: what every authenticated request asks, so it
   * is one indexed lookup.
   */
  Optional<Operator> byToken(String tokenSha256);

  /** Checks a token hash argument, so a raw token is never written or looked up. */
  static String checkedHash(String tokenSha256) {
    Objects.requireNonNull(tokenSha256, "tokenSha256");
    if (!SHA256_HEX.matcher(tokenSha256).matches()) {
      throw new IllegalArgumentException("expected the hex SHA-256 of a token (64 lower-case hex digits), not a token");
    }
    return tokenSha256;
  }
}
