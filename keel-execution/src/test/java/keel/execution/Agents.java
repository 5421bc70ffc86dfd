package keel.execution;

import java.util.List;
import keel.core.Descriptor;
import keel.core.Descriptors;
import keel.data.InventoryStore;
import keel.data.Store;

/** Test helper: applies descriptors written as YAML to a store's inventory. */
final class Agents {

  private Agents() {}

  static void apply(Store store, String yaml) {
    List<Descriptor> ds = Descriptors.parse(yaml, "test.yaml");
    store
        .inventory()
        .apply(
            ds.stream()
                .map(d -> new InventoryStore.Change(d.kind(), d.name(), d.metadata().owner(), Descriptors.canonicalJson(d)))
                .toList(),
            "test");
  }
}
