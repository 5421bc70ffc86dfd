package keel.control;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import keel.core.KeelException;
import keel.data.OperatorStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Operators: the people and scripts that use the API, with role bindings and API tokens.
 *
 * <p>Tokens are {@value #TOKEN_PREFIX} followed by 256 random bits; only their SHA-256 is stored,
 * and a token is shown once, when it is issued. Authenticating hashes the presented token and looks
 * the hash up in the store on every request (no cache), so a revoked or replaced token stops
 * working for the very next request. Guessing is hopeless at 256 bits, and the lookup compares
 * hashes, not tokens, so its timing reveals nothing useful about a token.
 *
 * <p>The bootstrap operator {@value #BOOTSTRAP_NAME} (admin for every owner) is the server's admin
 * token file: it is not in the store, cannot be revoked or re-issued here, and its name is reserved.
 *
 * <p>Who may manage whom: an admin for every owner manages every operator. An admin scoped to some
 * owners ({@code admin@finance}) manages exactly the operators whose every binding is scoped to an
 * owner it administers: it may create {@code viewer@finance} or even {@code admin@finance}, but
 * not {@code viewer} (every owner) nor {@code viewer@hr}, and it may not revoke or re-issue the
 * token of an operator that also holds a binding elsewhere. So no one can hand out more than they
 * hold. Listing shows an admin the operators it manages.
 *
 * <p>Thread-safe.
 */
public final class Operators {

  private static final Logger LOG = LoggerFactory.getLogger(Operators.class);

  /** The name of the bootstrap operator, whose token is the server's admin token file. */
  public static final String BOOTSTRAP_NAME = "admin";

  /** What every token this class issues starts with, so secret scanners can recognise one. */
  public static final String TOKEN_PREFIX = "keel_";

  /** A presented token longer than this is not one of ours; it is refused without hashing. */
  private static final int MAX_TOKEN_LENGTH = 512;

  private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?");

  /**
   * An operator as the API shows it.
   *
   * @param bindings its roles, as given when it was created
   * @param tokenIssuedAt when its live token was issued; empty once revoked
   * @param bootstrap whether this is the bootstrap operator (the server's admin token file)
   */
  public record Operator(
      String name,
      List<Caller.Binding> bindings,
      String createdBy,
      Instant createdAt,
      Optional<Instant> revokedAt,
      Optional<String> revokedBy,
      Optional<Instant> tokenIssuedAt,
      boolean bootstrap) {
    public Operator {
      Objects.requireNonNull(name, "name");
      bindings = List.copyOf(bindings);
      Objects.requireNonNull(createdBy, "createdBy");
      Objects.requireNonNull(createdAt, "createdAt");
      Objects.requireNonNull(revokedAt, "revokedAt");
      Objects.requireNonNull(revokedBy, "revokedBy");
      Objects.requireNonNull(tokenIssuedAt, "tokenIssuedAt");
    }

    /** The principal recorded for what this operator does: {@code operator:<name>}. */
    public String principal() {
      return principalOf(name);
    }

    public boolean revoked() {
      return revokedAt.isPresent();
    }

    /** The caller this operator is when it presents its token. */
    public Caller caller() {
      return new Caller(principal(), bindings);
    }
  }

  /**
   * A token just issued, with its operator. The token is shown to the caller once and kept nowhere.
   */
  public record Issued(Operator operator, String token) {
    public Issued {
      Objects.requireNonNull(operator, "operator");
      Objects.requireNonNull(token, "token");
    }

    /** Never the token: an {@code Issued} that ends up in a log must not leak it. */
    @Override
    public String toString() {
      return "Issued[operator=" + operator.name() + ", token=(hidden)]";
    }
  }

  /**
   * The bootstrap operator's token, as its SHA-256, and when it was created.
   *
   * @param tokenSha256 the SHA-256 of the admin token (32 bytes)
   * @param createdAt when the admin token file was written
   */
  public record Bootstrap(byte[] tokenSha256, Instant createdAt) {
    public Bootstrap {
      if (tokenSha256.length != 32) {
        throw new IllegalArgumentException("expected a SHA-256 (32 bytes), got " + tokenSha256.length + " bytes");
      }
      tokenSha256 = tokenSha256.clone();
      Objects.requireNonNull(createdAt, "createdAt");
    }

    /** A copy: the record's own array is never handed out. */
    @Override
    public byte[] tokenSha256() {
      return tokenSha256.clone();
    }

    /** Never the hash. */
    @Override
    public String toString() {
      return "Bootstrap[createdAt=" + createdAt + "]";
    }

    /** The bootstrap of a token. */
    public static Bootstrap of(String token, Instant createdAt) {
      return new Bootstrap(sha256(token), createdAt);
    }
  }

  private final OperatorStore store;
  private final SecureRandom random;
  private final Bootstrap bootstrap;

  /**
   * @param store where operators and their token hashes live
   * @param random the source of tokens
   * @param bootstrap the server's admin token, which authenticates as {@value #BOOTSTRAP_NAME}
   */
  public Operators(OperatorStore store, SecureRandom random, Bootstrap bootstrap) {
    this.store = Objects.requireNonNull(store, "store");
    this.random = Objects.requireNonNull(random, "random");
    this.bootstrap = Objects.requireNonNull(bootstrap, "bootstrap");
  }

  /** The principal of an operator's name. */
  public static String principalOf(String name) {
    return "operator:" + name;
  }

  /**
   * Parses role bindings ({@code viewer}, {@code approver@finance}…), reporting every problem at
   * once.
   *
   * @throws KeelException.Invalid listing each bad or repeated binding, or none given
   */
  public static List<Caller.Binding> parseRoles(List<String> roles) {
    List<String> problems = new ArrayList<>();
    Set<Caller.Binding> out = new LinkedHashSet<>();
    if (roles.isEmpty()) {
      problems.add("roles: expected at least one role, such as viewer, operator@OWNER, approver@OWNER or admin");
    }
    for (String r : roles) {
      try {
        if (!out.add(Caller.Binding.parse(r))) {
          problems.add("role \"" + r + "\" is given twice");
        }
      } catch (KeelException.Invalid e) {
        problems.addAll(e.problems());
      }
    }
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid(problems);
    }
    return List.copyOf(out);
  }

  /**
   * Creates an operator and issues its first token.
   *
   * @param actor who asks; must manage every binding given (see the class comment)
   * @param name 1 to 63 lower-case letters, digits, dots, dashes and underscores, starting and
   *     ending with a letter or digit
   * @param roles the bindings, in wire form
   * @throws KeelException.Invalid if the name or a role is not valid (every problem listed)
   * @throws KeelException.Forbidden if the actor may not give one of the roles
   * @throws KeelException.Conflict if the name is taken, or was ever taken
   */
  public Issued create(Caller actor, String name, List<String> roles) {
    List<String> problems = new ArrayList<>();
    if (!NAME.matcher(name).matches()) {
      problems.add("name: expected 1 to 63 lower-case letters, digits, dots, dashes and underscores that starts and"
          + " ends with a letter or digit, got \"" + name + "\"");
    }
    List<Caller.Binding> bindings = List.of();
    try {
      bindings = parseRoles(roles);
    } catch (KeelException.Invalid e) {
      problems.addAll(e.problems());
    }
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid(problems);
    }
    if (name.equals(BOOTSTRAP_NAME)) {
      throw new KeelException.Conflict("the name \"" + BOOTSTRAP_NAME + "\" is the bootstrap operator's (the server's"
          + " admin token); choose another name");
    }
    List<Caller.Binding> beyond = beyondReach(actor, bindings);
    if (!beyond.isEmpty()) {
      throw new KeelException.Forbidden(actor.principal() + " may not create an operator with the role"
          + (beyond.size() == 1 ? " " : "s ") + join(beyond) + ": " + reach(actor));
    }
    String token = newToken();
    OperatorStore.Operator stored = store.create(name, grants(bindings), hex(sha256(token)), actor.principal());
    LOG.info("{} created operator {} with roles {}", actor.principal(), name, join(bindings));
    return new Issued(view(stored), token);
  }

  /** The operators the actor manages (the bootstrap one only for an admin of every owner), by name. */
  public List<Operator> list(Caller actor) {
    List<Operator> out = new ArrayList<>();
    if (actor.mayEverywhere(Role.ADMIN)) {
      out.add(bootstrapView());
    }
    for (OperatorStore.Operator o : store.list()) {
      Operator v = view(o);
      if (beyondReach(actor, v.bindings()).isEmpty() && actor.mayAnywhere(Role.ADMIN)) {
        out.add(v);
      }
    }
    return out;
  }

  /**
   * Revokes an operator: its token stops working for the next request. Revoking a revoked
   * operator changes nothing.
   *
   * @throws KeelException.NotFound if there is no such operator
   * @throws KeelException.Forbidden if the actor does not manage it
   * @throws KeelException.Conflict for the bootstrap operator
   */
  public Operator revoke(Caller actor, String name) {
    managed(actor, name, "revoke");
    Operator revoked = view(store.revoke(name, actor.principal()));
    LOG.info("{} revoked operator {}", actor.principal(), name);
    return revoked;
  }

  /**
   * Issues a new token for an operator; the one it had stops working at once.
   *
   * @throws KeelException.NotFound if there is no such operator
   * @throws KeelException.Forbidden if the actor does not manage it
   * @throws KeelException.Conflict for a revoked operator and for the bootstrap operator
   */
  public Issued issueToken(Caller actor, String name) {
    Operator target = managed(actor, name, "issue a token for");
    if (target.revoked()) {
      throw new KeelException.Conflict("operator \"" + name + "\" was revoked" + target.revokedAt().map(t -> " at " + t).orElse("")
          + "; a revoked operator gets no new token (create a new operator instead)");
    }
    String token = newToken();
    Operator after = view(store.replaceToken(name, hex(sha256(token)), actor.principal()));
    LOG.info("{} issued a new token for operator {}; the previous one no longer works", actor.principal(), name);
    return new Issued(after, token);
  }

  /**
   * The caller a bearer token stands for: the bootstrap operator for the admin token, the live
   * operator whose live token it is, or nothing.
   */
  public Optional<Caller> authenticate(String token) {
    if (token == null || token.isEmpty() || token.length() > MAX_TOKEN_LENGTH) {
      return Optional.empty();
    }
    byte[] hash = sha256(token);
    if (MessageDigest.isEqual(hash, bootstrap.tokenSha256())) {
      return Optional.of(bootstrapView().caller());
    }
    return store.byToken(hex(hash)).map(o -> view(o).caller());
  }

  private Operator managed(Caller actor, String name, String what) {
    if (name.equals(BOOTSTRAP_NAME)) {
      throw new KeelException.Conflict("the bootstrap operator \"" + BOOTSTRAP_NAME + "\" is the server's admin token"
          + " file (admin.token in its data directory), not a stored operator: to replace its token, stop the"
          + " server, delete that file and start the server again");
    }
    Operator target = store.find(name).map(Operators::view)
        .orElseThrow(() -> new KeelException.NotFound("there is no operator named \"" + name + "\""));
    List<Caller.Binding> beyond = beyondReach(actor, target.bindings());
    if (!beyond.isEmpty() || !actor.mayAnywhere(Role.ADMIN)) {
      throw new KeelException.Forbidden(actor.principal() + " may not " + what + " operator \"" + name + "\": it holds "
          + join(target.bindings()) + ", and " + reach(actor));
    }
    return target;
  }

  /** The bindings the actor may not give or take away: those outside the owners it administers. */
  private static List<Caller.Binding> beyondReach(Caller actor, List<Caller.Binding> bindings) {
    return bindings.stream()
        .filter(b -> b.owner().isEmpty() ? !actor.mayEverywhere(Role.ADMIN) : !actor.may(Role.ADMIN, b.owner().get()))
        .toList();
  }

  /** What an actor may hand out, for messages. */
  private static String reach(Caller actor) {
    if (actor.mayEverywhere(Role.ADMIN)) {
      return "it is admin for every owner";
    }
    Set<String> owners = actor.scopedOwners(Role.ADMIN);
    if (owners.isEmpty()) {
      return "managing operators needs the role admin";
    }
    return "an admin scoped to owners manages only roles scoped to them, and it is admin only for " + String.join(", ", owners);
  }

  private Operator bootstrapView() {
    return new Operator(
        BOOTSTRAP_NAME, List.of(Caller.Binding.everywhere(Role.ADMIN)), "keel (the admin token file)", bootstrap.createdAt(),
        Optional.empty(), Optional.empty(), Optional.of(bootstrap.createdAt()), true);
  }

  private static Operator view(OperatorStore.Operator o) {
    List<Caller.Binding> bindings = new ArrayList<>();
    for (OperatorStore.Grant g : o.grants()) {
      try {
        Role role = Role.fromWire(g.role());
        bindings.add(g.owner().isEmpty() ? Caller.Binding.everywhere(role) : Caller.Binding.of(role, g.owner()));
      } catch (KeelException.Invalid unknown) {
        // a role this version does not know (written by a newer one) grants nothing here
        LOG.warn("operator {} has a role this server does not know, \"{}\"; it is ignored", o.name(), g.role());
      }
    }
    return new Operator(o.name(), bindings, o.createdBy(), o.createdAt(), o.revokedAt(), o.revokedBy(), o.tokenIssuedAt(), false);
  }

  private static List<OperatorStore.Grant> grants(List<Caller.Binding> bindings) {
    return bindings.stream().map(b -> new OperatorStore.Grant(b.role().wireName(), b.owner().orElse(""))).toList();
  }

  private static String join(List<Caller.Binding> bindings) {
    return String.join(", ", bindings.stream().map(Caller.Binding::toString).toList());
  }

  private String newToken() {
    byte[] raw = new byte[32];
    random.nextBytes(raw);
    return TOKEN_PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
  }

  static byte[] sha256(String s) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  private static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }
}
