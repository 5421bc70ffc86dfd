package keel.server;

import java.util.ArrayList;
import java.util.List;
import keel.core.AgentDescriptor;
import keel.core.Descriptor;
import keel.core.Descriptors;
import keel.data.InventoryStore;
import keel.execution.ModelProviders;
import keel.execution.ToolRegistry;

/**
 * Applies descriptors: validates a whole file, then stores every changed descriptor as a new
 * immutable revision in one transaction (an invalid file changes nothing; an unchanged descriptor
 * creates no revision). Running sessions keep the revision they started with.
 *
 * <p>Thread-safe.
 */
final class Inventory {

  /** What applying one descriptor did, with warnings about what this server cannot do yet. */
  record Result(String kind, String name, int revision, boolean created, List<String> warnings) {}

  private final InventoryStore store;
  private final ToolRegistry tools;
  private final ModelProviders models;

  Inventory(InventoryStore store, ToolRegistry tools, ModelProviders models) {
    this.store = store;
    this.tools = tools;
    this.models = models;
  }

  List<Result> apply(String yaml, String source, String principal, boolean dryRun) {
    List<Descriptor> parsed = Descriptors.parse(yaml, source);
    if (parsed.isEmpty()) {
      throw new keel.core.KeelException.Invalid(source + ": no descriptors found");
    }
    List<InventoryStore.Change> changes = new ArrayList<>();
    for (Descriptor d : parsed) {
      changes.add(new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d)));
    }
    List<String> applying = parsed.stream().filter(d -> d instanceof AgentDescriptor).map(Descriptor::name).toList();
    List<Result> results = new ArrayList<>();
    if (dryRun) {
      for (int i = 0; i < parsed.size(); i++) {
        Descriptor d = parsed.get(i);
        var latest = store.latest(d.kind(), d.name());
        boolean changed = latest.isEmpty() || !latest.get().spec().equals(changes.get(i).spec());
        int rev = latest.map(r -> changed ? r.number() + 1 : r.number()).orElse(1);
        results.add(new Result(d.kind(), d.name(), rev, changed, warnings(d, applying)));
      }
      return results;
    }
    List<InventoryStore.Applied> applied = store.apply(changes, principal);
    for (int i = 0; i < parsed.size(); i++) {
      InventoryStore.Applied a = applied.get(i);
      results.add(new Result(a.revision().kind(), a.revision().name(), a.revision().number(), a.created(), warnings(parsed.get(i), applying)));
    }
    return results;
  }

  /** What this server cannot act on in a descriptor; {@code applying} are the agents of the same file. */
  private List<String> warnings(Descriptor d, List<String> applying) {
    List<String> out = new ArrayList<>();
    if (!(d instanceof AgentDescriptor a)) {
      out.add(d.kind() + " descriptors are stored; this server does not act on them yet");
      return out;
    }
    String provider = a.spec().model().provider();
    if (!models.names().contains(provider)) {
      out.add("spec.model.provider: \"" + provider + "\" is not available in this server (available: "
          + String.join(", ", models.names()) + "); its sessions will fail until it is");
    }
    List<String> capabilities = tools.capabilities();
    for (int i = 0; i < a.spec().tools().size(); i++) {
      String t = a.spec().tools().get(i);
      if (t.startsWith("internal://") && !capabilities.contains(t)) {
        out.add("spec.tools[" + i + "]: \"" + t + "\" is not an internal capability of this server (available: "
            + String.join(", ", capabilities.stream().filter(c -> c.startsWith("internal://")).toList()) + ")");
      } else if (t.startsWith("agent://")) {
        String sub = t.substring("agent://".length());
        if (!applying.contains(sub) && store.latest("Agent", sub).isEmpty()) {
          out.add("spec.tools[" + i + "]: there is no agent \"" + sub + "\" yet; the model will be offered it once it is applied");
        }
      } else if (!t.startsWith("internal://")) {
        out.add("spec.tools[" + i + "]: \"" + t + "\" is granted, but this server cannot reach it yet; the model will not see it");
      }
    }
    return out;
  }
}
