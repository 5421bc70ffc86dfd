package keel.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import keel.control.Caller;
import keel.control.Revisions;
import keel.control.Role;
import keel.core.AgentDescriptor;
import keel.core.Descriptor;
import keel.core.Descriptors;
import keel.core.KeelException;
import keel.data.InventoryStore;
import keel.execution.ModelProviders;
import keel.execution.ToolRegistry;

/**
 * Applies descriptors: validates a whole file, then stores every changed descriptor as a new
 * immutable revision in one transaction (an invalid file changes nothing; an unchanged descriptor
 * creates no revision). A change that widens what an agent may do is stored as pending and waits for
 * approval ({@link Revisions}); running sessions keep the revision they started with.
 *
 * <p>Applying needs the role admin for the owner of every descriptor in the file and for the owner
 * of every descriptor it replaces, so that no one takes a descriptor over by changing its {@code
 * metadata.owner}; a descriptor without an owner (a cluster-wide policy) needs admin for every
 * owner. A refusal names every descriptor refused and stores nothing.
 *
 * <p>Thread-safe. Applies on this node are serialized, so the owners checked are the owners of the
 * revisions the write replaces.
 */
final class Inventory {

  /**
   * What applying one descriptor did, with warnings about what this server cannot do yet.
   *
   * @param revision the revision created, or the existing one the descriptor equals
   * @param status whether that revision is active or pending approval
   * @param review why it is pending (widening) and what else changed
   * @param superseded the pending revision this apply replaced or withdrew
   * @param appliedBy who applied that revision (for a dry run: who would)
   */
  record Result(
      String kind,
      String name,
      int revision,
      boolean created,
      List<String> warnings,
      String appliedBy,
      InventoryStore.Status status,
      InventoryStore.Review review,
      Optional<Integer> superseded) {}

  private final InventoryStore store;
  private final ToolRegistry tools;
  private final ModelProviders models;
  private final Revisions revisions;
  /** Guards the ownership check and the write that follows it, so nothing changes between them. */
  private final ReentrantLock applying = new ReentrantLock();

  /**
   * @param onActivated told an agent's name after each of its revisions becomes active (an apply,
   *     an approval, a rollback)
   */
  Inventory(InventoryStore store, ToolRegistry tools, ModelProviders models, Consumer<String> onActivated) {
    this(store, tools, models, onActivated, r -> {});
  }

  /**
   * @param onActivated told an agent's name after each of its revisions becomes active
   * @param onAnyActivated told each revision of any kind that becomes active
   */
  Inventory(InventoryStore store, ToolRegistry tools, ModelProviders models, Consumer<String> onActivated,
      Consumer<InventoryStore.Revision> onAnyActivated) {
    this.store = store;
    this.tools = tools;
    this.models = models;
    this.revisions = new Revisions(store, onActivated, onAnyActivated);
  }

  /** Approvals, rollbacks, history and diffs of agent revisions. */
  Revisions revisions() {
    return revisions;
  }

  /**
   * Applies (or, with {@code dryRun}, checks) a file of descriptors as {@code caller}.
   *
   * @throws KeelException.Invalid if the file is not valid (every problem listed); nothing is stored
   * @throws KeelException.Forbidden if the caller is not admin for an owner involved; nothing is
   *     stored
   */
  List<Result> apply(String yaml, String source, Caller caller, boolean dryRun) {
    List<Descriptor> parsed = Descriptors.parse(yaml, source);
    if (parsed.isEmpty()) {
      throw new KeelException.Invalid(source + ": no descriptors found");
    }
    checkCel(parsed, source);
    List<InventoryStore.Change> changes = new ArrayList<>();
    for (Descriptor d : parsed) {
      changes.add(new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d)));
    }
    String principal = caller.principal();
    List<String> agentsInFile = parsed.stream().filter(d -> d instanceof AgentDescriptor).map(Descriptor::name).toList();
    applying.lock();
    try {
      authorize(parsed, source, caller);
      List<Result> results = new ArrayList<>();
      if (dryRun) {
        List<Revisions.Preview> previews = revisions.preview(changes);
        for (int i = 0; i < parsed.size(); i++) {
          Revisions.Preview p = previews.get(i);
          Descriptor d = parsed.get(i);
          results.add(new Result(d.kind(), d.name(), p.revision(), p.created(), warnings(d, agentsInFile), principal, p.status(), p.review(), Optional.empty()));
        }
        return results;
      }
      List<InventoryStore.Applied> applied = revisions.apply(changes, principal);
      for (int i = 0; i < parsed.size(); i++) {
        InventoryStore.Applied a = applied.get(i);
        InventoryStore.Revision r = a.revision();
        results.add(new Result(r.kind(), r.name(), r.number(), a.created(), warnings(parsed.get(i), agentsInFile), r.appliedBy(), r.status(),
            a.created() ? r.review() : InventoryStore.Review.NONE, a.superseded().map(InventoryStore.Revision::number)));
      }
      return results;
    } finally {
      applying.unlock();
    }
  }

  /**
   * Refuses a file whose CEL does not compile (policies' conditions, agents' approval rules),
   * naming each descriptor, field and the error's position; nothing is applied.
   */
  private static void checkCel(List<Descriptor> parsed, String source) {
    List<String> problems = new ArrayList<>();
    for (Descriptor d : parsed) {
      String where = source + ": " + d.kind().toLowerCase(java.util.Locale.ROOT) + "/" + d.name() + ": ";
      switch (d) {
        case keel.core.PolicyDescriptor p -> {
          cel(problems, where + "spec.deny_when", p.spec().denyWhen());
          cel(problems, where + "spec.require_approval_when", p.spec().requireApprovalWhen());
        }
        case AgentDescriptor a -> {
          List<AgentDescriptor.ApprovalRule> rules = a.spec().approval().map(AgentDescriptor.ApprovalSpec::rules).orElse(List.of());
          for (int i = 0; i < rules.size(); i++) {
            cel(problems, where + "spec.approval.rules[" + i + "].when", rules.get(i).when());
          }
        }
        default -> {}
      }
    }
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid("invalid CEL; nothing was applied: " + String.join("; ", problems));
    }
  }

  private static void cel(List<String> problems, String path, String expression) {
    if (!expression.isEmpty()) {
      for (String p : keel.control.Policies.validateRule(expression)) {
        problems.add(path + ": " + p);
      }
    }
  }

  /** Refuses the whole file unless the caller is admin for every owner it sets or replaces. */
  private void authorize(List<Descriptor> parsed, String source, Caller caller) {
    List<String> refused = new ArrayList<>();
    for (Descriptor d : parsed) {
      String what = d.kind().toLowerCase(java.util.Locale.ROOT) + "/" + d.name();
      String owner = d.metadata().owner();
      if (!caller.may(Role.ADMIN, owner)) {
        refused.add(what + " has " + ownerText(owner));
      }
      store.latest(d.kind(), d.name())
          .filter(r -> !r.owner().equals(owner) && !caller.may(Role.ADMIN, r.owner()))
          .ifPresent(r -> refused.add(what + " exists with " + ownerText(r.owner()) + " (revision " + r.number() + ")"));
    }
    if (!refused.isEmpty()) {
      throw new KeelException.Forbidden(caller.principal() + " may not apply " + source + "; nothing was applied: "
          + String.join("; ", refused) + ". Applying needs the role admin for the owner of each descriptor and of what"
          + " it replaces; " + caller.principal() + " has " + (caller.bindings().isEmpty() ? "no roles" : caller.bindings()));
    }
  }

  private static String ownerText(String owner) {
    return owner.isEmpty() ? "no owner (cluster-wide, which needs admin for every owner)" : "owner \"" + owner + "\"";
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
