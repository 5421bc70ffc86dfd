package keel.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import keel.core.KeelException;
import keel.data.MutableClock;
import keel.data.Store;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The operators service over a real SQLite store. */
class OperatorsTest {

  static final Instant START = Instant.parse("2025-03-01T10:00:00Z");
  static final String ADMIN_TOKEN = "keel_the-bootstrap-admin-token";

  @TempDir Path dir;
  Store store;
  Operators operators;
  Caller root;

  @BeforeEach
  void open() {
    store = Store.sqlite(dir, "node-a", new MutableClock(START), true);
    operators = new Operators(store.operators(), new SecureRandom(), Operators.Bootstrap.of(ADMIN_TOKEN, START));
    root = operators.authenticate(ADMIN_TOKEN).orElseThrow();
  }

  @AfterEach
  void close() {
    store.close();
  }

  static Caller caller(String... bindings) {
    return new Caller("operator:test", Stream.of(bindings).map(Caller.Binding::parse).toList());
  }

  @Test
  void theAdminToken_isTheBootstrapOperator_adminForEveryOwner() {
    assertThat(root.principal()).isEqualTo("operator:admin");
    assertThat(root.bindings()).containsExactly(Caller.Binding.everywhere(Role.ADMIN));
    assertThat(operators.list(root).getFirst().bootstrap()).isTrue();
  }

  @Test
  void create_issuesATokenOnce_thatAuthenticatesAsTheOperator() {
    Operators.Issued issued = operators.create(root, "alice", List.of("approver@finance", "viewer"));
    assertThat(issued.token()).startsWith(Operators.TOKEN_PREFIX).hasSizeGreaterThan(40);
    assertThat(issued.toString()).doesNotContain(issued.token());
    assertThat(issued.operator().createdBy()).isEqualTo("operator:admin");
    Caller alice = operators.authenticate(issued.token()).orElseThrow();
    assertThat(alice.principal()).isEqualTo("operator:alice");
    assertThat(alice.bindings()).containsExactly(Caller.Binding.of(Role.APPROVER, "finance"), Caller.Binding.everywhere(Role.VIEWER));
    assertThat(alice.may(Role.APPROVER, "finance")).isTrue();
    assertThat(alice.may(Role.APPROVER, "hr")).isFalse();
    assertThat(alice.may(Role.VIEWER, "hr")).isTrue();
    assertThat(operators.create(root, "bob", List.of("viewer")).token()).as("every token is new").isNotEqualTo(issued.token());
  }

  @Test
  void tokens_areStoredOnlyAsHashes() throws Exception {
    Operators.Issued issued = operators.create(root, "alice", List.of("viewer"));
    Operators.Issued second = operators.issueToken(root, "alice");
    byte[] everything = readAll(dir);
    String text = new String(everything, StandardCharsets.ISO_8859_1);
    assertThat(text).doesNotContain(issued.token()).doesNotContain(second.token()).doesNotContain(ADMIN_TOKEN);
    assertThat(text).contains(HexFormat.of().formatHex(Operators.sha256(second.token())));
  }

  private static byte[] readAll(Path dir) throws Exception {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        out.write(Files.readAllBytes(f));
      }
    }
    return out.toByteArray();
  }

  @Test
  void authenticate_refusesWhatIsNotALiveToken() {
    assertThat(operators.authenticate("")).isEmpty();
    assertThat(operators.authenticate("keel_garbage")).isEmpty();
    assertThat(operators.authenticate("x".repeat(10_000))).isEmpty();
    assertThat(operators.authenticate(ADMIN_TOKEN + " ")).isEmpty();
  }

  @Test
  void revoke_stopsTheTokenForTheNextRequest() {
    Operators.Issued issued = operators.create(root, "alice", List.of("operator@finance"));
    assertThat(operators.authenticate(issued.token())).isPresent();
    Operators.Operator revoked = operators.revoke(root, "alice");
    assertThat(revoked.revoked()).isTrue();
    assertThat(revoked.revokedBy()).contains("operator:admin");
    assertThat(operators.authenticate(issued.token())).isEmpty();
    assertThatThrownBy(() -> operators.issueToken(root, "alice"))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("was revoked");
    assertThatThrownBy(() -> operators.create(root, "alice", List.of("viewer")))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("names are not reused");
  }

  @Test
  void issueToken_replacesTheOldToken() {
    Operators.Issued first = operators.create(root, "ci", List.of("operator"));
    Operators.Issued second = operators.issueToken(root, "ci");
    assertThat(operators.authenticate(first.token())).isEmpty();
    assertThat(operators.authenticate(second.token()).orElseThrow().principal()).isEqualTo("operator:ci");
  }

  @Test
  void theBootstrapOperator_cannotBeRevokedReissuedOrImpersonated() {
    assertThatThrownBy(() -> operators.revoke(root, "admin"))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("admin token");
    assertThatThrownBy(() -> operators.issueToken(root, "admin")).isInstanceOf(KeelException.Conflict.class);
    assertThatThrownBy(() -> operators.create(root, "admin", List.of("viewer")))
        .isInstanceOf(KeelException.Conflict.class)
        .hasMessageContaining("bootstrap");
    assertThat(operators.authenticate(ADMIN_TOKEN)).isPresent();
  }

  @Test
  void create_withBadInput_listsEveryProblem_andStoresNothing() {
    assertThatThrownBy(() -> operators.create(root, "Alice Smith", List.of("viewr", "approver@", "viewer", "viewer", "admin@ finance")))
        .isInstanceOfSatisfying(KeelException.Invalid.class, e -> assertThat(e.problems()).satisfiesExactly(
            p -> assertThat(p).startsWith("name: expected").contains("\"Alice Smith\""),
            p -> assertThat(p).contains("role \"viewr\"").contains("[viewer, operator, approver, admin]"),
            p -> assertThat(p).contains("the owner after @ is empty"),
            p -> assertThat(p).contains("\"viewer\" is given twice"),
            p -> assertThat(p).contains("surrounding spaces")));
    assertThatThrownBy(() -> operators.create(root, "bob", List.of()))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageContaining("at least one role");
    assertThat(operators.list(root)).extracting(Operators.Operator::name).containsExactly("admin");
  }

  @Test
  void aScopedAdmin_managesOnlyOperatorsWithinItsOwners() {
    Caller financeAdmin = operators.authenticate(operators.create(root, "fin-admin", List.of("admin@finance")).token()).orElseThrow();

    operators.create(financeAdmin, "fin-viewer", List.of("viewer@finance"));
    operators.create(financeAdmin, "fin-admin-2", List.of("admin@finance", "approver@finance"));
    for (List<String> roles : List.of(List.of("viewer"), List.of("viewer@hr"), List.of("viewer@finance", "operator@hr"), List.of("admin"))) {
      assertThatThrownBy(() -> operators.create(financeAdmin, "escalated", roles))
          .as("%s", roles)
          .isInstanceOf(KeelException.Forbidden.class)
          .hasMessageContaining("operator:fin-admin may not create an operator")
          .hasMessageContaining("admin only for finance");
    }
    assertThat(store.operators().find("escalated")).as("a refused create stores nothing").isEmpty();

    operators.create(root, "mixed", List.of("viewer@finance", "viewer@hr"));
    operators.create(root, "hr-viewer", List.of("viewer@hr"));
    assertThat(operators.list(financeAdmin)).extracting(Operators.Operator::name)
        .containsExactly("fin-admin", "fin-admin-2", "fin-viewer");
    assertThatThrownBy(() -> operators.revoke(financeAdmin, "mixed"))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("it holds viewer@finance, viewer@hr");
    assertThatThrownBy(() -> operators.issueToken(financeAdmin, "hr-viewer")).isInstanceOf(KeelException.Forbidden.class);
    assertThatThrownBy(() -> operators.revoke(financeAdmin, "admin")).isInstanceOf(KeelException.Conflict.class);
    assertThat(operators.revoke(financeAdmin, "fin-viewer").revoked()).isTrue();
    assertThat(operators.issueToken(financeAdmin, "fin-admin-2").token()).isNotBlank();

    assertThat(operators.list(root)).extracting(Operators.Operator::name)
        .containsExactly("admin", "fin-admin", "fin-admin-2", "fin-viewer", "hr-viewer", "mixed");
  }

  @Test
  void nonAdmins_manageNoOperators() {
    for (Caller c : List.of(caller("approver"), caller("operator"), caller("viewer"), caller())) {
      assertThatThrownBy(() -> operators.create(c, "x", List.of("viewer@finance")))
          .isInstanceOf(KeelException.Forbidden.class);
      assertThat(operators.list(c)).isEmpty();
    }
    operators.create(root, "alice", List.of("viewer@finance"));
    assertThatThrownBy(() -> operators.revoke(caller("approver@finance"), "alice"))
        .isInstanceOf(KeelException.Forbidden.class)
        .hasMessageContaining("needs the role admin");
    assertThatThrownBy(() -> operators.revoke(root, "ghost")).isInstanceOf(KeelException.NotFound.class);
  }
}
