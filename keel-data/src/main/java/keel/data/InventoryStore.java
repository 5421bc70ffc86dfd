package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Descriptors and their immutable revisions. Thread-safe.
 *
 * <p>Applying an unchanged descriptor creates nothing; a changed one creates the next revision.
 * Several descriptors apply in one transaction: all or nothing.
 */
public interface InventoryStore {

  /** A descriptor to apply, as its canonical JSON. */
  record Change(String kind, String name, String owner, String spec) {
    public Change {
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(spec, "spec");
    }
  }

  /** One immutable revision of a descriptor. */
  record Revision(
      String kind,
      String name,
      int number,
      String owner,
      String spec,
      String appliedBy,
      Instant appliedAt) {}

  /** What applying one change did. */
  record Applied(Revision revision, boolean created) {}

  /** Applies every change atomically, in order; returns one result per change. */
  List<Applied> apply(List<Change> changes, String appliedBy);

  Optional<Revision> latest(String kind, String name);

  Optional<Revision> revision(String kind, String name, int number);

  /** Every revision of one descriptor, oldest first. */
  List<Revision> history(String kind, String name);

  /** The latest revision of every descriptor of a kind, by name. */
  List<Revision> latestOfKind(String kind);
}
