package keel.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Optional;
import keel.core.KeelException;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

/** The wire form of role bindings, and what a caller's bindings allow. */
class BindingTest {

  @Provide
  Arbitrary<Caller.Binding> bindings() {
    Arbitrary<String> owners = Arbitraries.strings().withCharRange('!', '~').withChars(' ', 'é', '@').ofMinLength(1).ofMaxLength(40)
        .filter(s -> s.equals(s.strip()));
    return Arbitraries.of(Role.class).flatMap(r -> owners.optional(0.7).map(o -> new Caller.Binding(r, o)));
  }

  @Property
  void parse_readsBackWhatToStringWrote(@ForAll("bindings") Caller.Binding b) {
    assertThat(Caller.Binding.parse(b.toString())).isEqualTo(b);
  }

  @Test
  void theOwnerIsEverythingAfterTheFirstAt() {
    assertThat(Caller.Binding.parse("viewer@team@corp")).isEqualTo(Caller.Binding.of(Role.VIEWER, "team@corp"));
    assertThat(Caller.Binding.parse("admin")).isEqualTo(Caller.Binding.everywhere(Role.ADMIN));
  }

  @Test
  void aBlankOwner_neverBecomesEveryOwner() {
    assertThatThrownBy(() -> new Caller.Binding(Role.ADMIN, Optional.of(" "))).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Caller.Binding.parse("admin@")).isInstanceOf(KeelException.Invalid.class);
    assertThatThrownBy(() -> Caller.Binding.parse("admin@  ")).isInstanceOf(KeelException.Invalid.class);
    assertThatThrownBy(() -> Caller.Binding.parse("Admin")).isInstanceOf(KeelException.Invalid.class);
  }

  @Test
  void scopedOwners_areTheOwnersOfScopedBindingsThatIncludeTheRole() {
    Caller c = new Caller("operator:x", java.util.List.of(
        Caller.Binding.parse("approver@finance"), Caller.Binding.parse("operator@hr"), Caller.Binding.parse("admin@ops")));
    assertThat(c.scopedOwners(Role.VIEWER)).containsExactly("finance", "hr", "ops");
    assertThat(c.scopedOwners(Role.OPERATOR)).containsExactly("hr", "ops");
    assertThat(c.scopedOwners(Role.APPROVER)).containsExactly("finance", "ops");
    assertThat(c.scopedOwners(Role.ADMIN)).containsExactly("ops");
    assertThat(c.mayEverywhere(Role.VIEWER)).isFalse();
  }
}
