package keel.execution;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.core.KeelException;
import keel.data.InventoryStore;

/**
 * Reads agent revisions from the inventory. Revisions are immutable, so each is parsed once and
 * kept. Which revision is active changes: {@link #active} remembers it for at most {@link
 * #ACTIVE_TTL} (this node forgets it at once when told, through {@link #forget}), so checking it on
 * every call costs no store read.
 *
 * <p>Thread-safe.
 */
public final class AgentCatalog {

  private record Key(String name, int revision) {}

  private final InventoryStore inventory;
  /** How long a node may act on an active revision another node has since replaced. */
  static final Duration ACTIVE_TTL = Duration.ofSeconds(1);

  private final Map<Key, AgentDescriptor> cache = new ConcurrentHashMap<>();
  private final Cache<String, Optional<Versioned>> active =
      Caffeine.newBuilder().expireAfterWrite(ACTIVE_TTL).maximumSize(100_000).build();

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

  /**
   * The agent's active revision as this node saw it at most {@link #ACTIVE_TTL} ago, or empty if
   * there is no such agent.
   */
  public Optional<Versioned> active(String name) {
    return active.get(name, this::find);
  }

  /** Forgets the active revision remembered for an agent: one of its revisions was just activated. */
  public void forget(String name) {
    active.invalidate(name);
  }

  /**
   * The active {@code kind: Policy} descriptors, read from the inventory on every call, so a policy
   * applied (or removed) takes effect for the next external call on every node.
   */
  public java.util.List<keel.core.PolicyDescriptor> policies() {
    return inventory.latestOfKind("Policy").stream()
        .map(r -> (keel.core.PolicyDescriptor) Descriptors.fromCanonicalJson("Policy", r.spec()))
        .toList();
  }

  /** An agent descriptor with its revision number. */
  public record Versioned(AgentDescriptor agent, int revision) {}
}
