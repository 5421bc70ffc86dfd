package keel.execution;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.core.KeelException;
import keel.data.InventoryStore;

/**
 * Reads agent revisions from the inventory. Revisions are immutable, so each is parsed once and
 * kept.
 *
 * <p>Thread-safe.
 */
public final class AgentCatalog {

  private record Key(String name, int revision) {}

  private final InventoryStore inventory;
  private final Map<Key, AgentDescriptor> cache = new ConcurrentHashMap<>();

  public AgentCatalog(InventoryStore inventory) {
    this.inventory = inventory;
  }

  /** One revision of an agent. */
  public AgentDescriptor revision(String name, int revision) {
    return cache.computeIfAbsent(
        new Key(name, revision),
        k ->
            inventory
                .revision("Agent", name, revision)
                .map(r -> (AgentDescriptor) Descriptors.fromCanonicalJson("Agent", r.spec()))
                .orElseThrow(
                    () ->
                        new KeelException.NotFound(
                            "agent \"" + name + "\" has no revision " + revision)));
  }

  /**
   * The agent's active revision and its number: the one in force, which new sessions and budget
   * checks use. A revision pending approval is never returned here.
   */
  public Versioned latest(String name) {
    InventoryStore.Revision r =
        inventory
            .latest("Agent", name)
            .orElseThrow(
                () ->
                    new KeelException.NotFound(
                        "there is no agent named \"" + name + "\"; apply its descriptor first"));
    return new Versioned(revision(name, r.number()), r.number());
  }

  /** The latest revision of an agent, if there is an agent of that name. */
  public java.util.Optional<Versioned> find(String name) {
    return inventory.latest("Agent", name).map(r -> new Versioned(revision(name, r.number()), r.number()));
  }

  /** An agent descriptor with its revision number. */
  public record Versioned(AgentDescriptor agent, int revision) {}
}
