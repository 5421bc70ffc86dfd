package keel.control;

import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Who is calling the API, and what they may do: a principal ({@code operator:<name>}) and its role
 * bindings, each either for every owner or scoped to one owner (the {@code metadata.owner} of
 * agents).
 *
 * @param principal the name recorded for everything this caller does, e.g. {@code operator:alice}
 * @param bindings what the caller may do, and where
 */
public record Caller(String principal, List<Binding> bindings) {

  /** One role, for every owner ({@code owner} empty) or for one. */
  public record Binding(Role role, Optional<String> owner) {
    public Binding {
      owner = owner.filter(o -> !o.isBlank());
    }

    /** The wire form: {@code admin}, or {@code approver@finance}. */
    @Override
    public String toString() {
      return role.wireName() + owner.map(o -> "@" + o).orElse("");
    }
  }

  public Caller {
    bindings = List.copyOf(bindings);
  }

  /** True when the caller holds {@code role} for things owned by {@code owner}. */
  public boolean may(Role role, String owner) {
    return bindings.stream()
        .anyMatch(b -> b.role().includes(role) && (b.owner().isEmpty() || b.owner().get().equals(owner)));
  }

  /** True when the caller holds {@code role} for every owner. */
  public boolean mayEverywhere(Role role) {
    return bindings.stream().anyMatch(b -> b.role().includes(role) && b.owner().isEmpty());
  }

  /** True when the caller holds {@code role} for at least one owner. */
  public boolean mayAnywhere(Role role) {
    return bindings.stream().anyMatch(b -> b.role().includes(role));
  }

  /** The owners whose things the caller may act on with {@code role}, as a filter. */
  public Predicate<String> owners(Role role) {
    return owner -> may(role, owner);
  }
}
