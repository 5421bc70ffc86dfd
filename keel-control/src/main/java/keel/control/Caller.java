package keel.control;

import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import keel.core.KeelException;

/**
 * Who is calling the API, and what they may do: a principal ({@code operator:<name>}) and its role
 * bindings, each either for every owner or scoped to one owner (the {@code metadata.owner} of
 * agents).
 *
 * <p>Immutable and thread-safe.
 *
 * @param principal the name recorded for everything this caller does, e.g. {@code operator:alice}
 * @param bindings what the caller may do, and where
 */
public record Caller(String principal, List<Binding> bindings) {

  /** One role, for every owner ({@code owner} empty) or for one. */
  public record Binding(Role role, Optional<String> owner) {

    /** The longest owner a binding may name. */
    public static final int MAX_OWNER_LENGTH = 253;

    public Binding {
      java.util.Objects.requireNonNull(role, "role");
      java.util.Objects.requireNonNull(owner, "owner");
      // a blank owner must not quietly become "every owner": that would widen the binding
      if (owner.isPresent() && owner.get().isBlank()) {
        throw new IllegalArgumentException("a binding's owner is blank; use Optional.empty() for every owner");
      }
    }

    /** A binding for every owner. */
    public static Binding everywhere(Role role) {
      return new Binding(role, Optional.empty());
    }

    /** A binding for one owner. */
    public static Binding of(Role role, String owner) {
      return new Binding(role, Optional.of(owner));
    }

    /**
     * Parses the wire form: a role ({@code viewer}, {@code operator}, {@code approver}, {@code
     * admin}) for every owner, or {@code role@owner} for one owner (everything after the first
     * {@code @}, as written in agents' {@code metadata.owner}).
     *
     * @throws KeelException.Invalid naming the text and what was expected
     */
    public static Binding parse(String text) {
      java.util.Objects.requireNonNull(text, "text");
      int at = text.indexOf('@');
      String roleName = at < 0 ? text : text.substring(0, at);
      Role role;
      try {
        role = Role.fromWire(roleName);
      } catch (KeelException.Invalid e) {
        throw new KeelException.Invalid("role \"" + text + "\": expected ROLE or ROLE@OWNER where ROLE is one of "
            + java.util.Arrays.stream(Role.values()).map(Role::wireName).toList() + ", got the role \"" + roleName + "\"");
      }
      if (at < 0) {
        return everywhere(role);
      }
      String owner = text.substring(at + 1);
      if (owner.isBlank()) {
        throw new KeelException.Invalid("role \"" + text + "\": the owner after @ is empty; write " + roleName
            + " for every owner or " + roleName + "@OWNER for one");
      }
      if (!owner.equals(owner.strip()) || owner.length() > MAX_OWNER_LENGTH || owner.chars().anyMatch(Character::isISOControl)) {
        throw new KeelException.Invalid("role \"" + text + "\": the owner must be an agent owner as written in"
            + " metadata.owner: 1 to " + MAX_OWNER_LENGTH + " characters without control characters or surrounding spaces");
      }
      return of(role, owner);
    }

    /** The wire form: {@code admin}, or {@code approver@finance}. */
    @Override
    public String toString() {
      return role.wireName() + owner.map(o -> "@" + o).orElse("");
    }
  }

  public Caller {
    java.util.Objects.requireNonNull(principal, "principal");
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

  /**
   * The owners the caller holds {@code role} for through bindings scoped to one owner. With {@link
   * #mayEverywhere} false, these are all the owners it may act on with that role: what a listing
   * filters by.
   */
  public Set<String> scopedOwners(Role role) {
    Set<String> out = new TreeSet<>();
    for (Binding b : bindings) {
      if (b.role().includes(role)) {
        b.owner().ifPresent(out::add);
      }
    }
    return out;
  }

  /** The owners whose things the caller may act on with {@code role}, as a filter. */
  public Predicate<String> owners(Role role) {
    return owner -> may(role, owner);
  }
}
