package keel.control;

import com.github.difflib.DiffUtils;
import com.github.difflib.UnifiedDiffUtils;
import com.github.difflib.patch.Patch;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.core.EventCodec;
import keel.data.InventoryStore;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;
import tools.jackson.dataformat.yaml.YAMLWriteFeature;

/**
 * A readable difference between two revisions of a descriptor: a unified diff of their canonical
 * YAML (sorted keys, defaults applied, so only real changes show), and, for agents, whether going
 * from the first to the second widens what the agent may do.
 *
 * <p>Immutable and thread-safe.
 *
 * @param from the earlier (or any) revision
 * @param to the revision compared with it
 * @param unified the unified diff, one line per element, with {@value #CONTEXT} lines of context;
 *     empty when the descriptors are equal
 * @param review what the change from {@code from} to {@code to} grants or takes away
 */
public record RevisionDiff(InventoryStore.Revision from, InventoryStore.Revision to, List<String> unified, ChangeReview review) {

  /** Lines of context around each change. */
  public static final int CONTEXT = 3;

  private static final YAMLMapper YAML =
      YAMLMapper.builder()
          .disable(YAMLWriteFeature.WRITE_DOC_START_MARKER)
          .disable(YAMLWriteFeature.SPLIT_LINES)
          .enable(YAMLWriteFeature.MINIMIZE_QUOTES)
          .enable(YAMLWriteFeature.LITERAL_BLOCK_STYLE)
          .enable(YAMLWriteFeature.INDENT_ARRAYS_WITH_INDICATOR)
          .build();

  public RevisionDiff {
    Objects.requireNonNull(from, "from");
    Objects.requireNonNull(to, "to");
    unified = List.copyOf(unified);
    Objects.requireNonNull(review, "review");
  }

  /** Compares two revisions of the same descriptor. */
  public static RevisionDiff between(InventoryStore.Revision from, InventoryStore.Revision to) {
    List<String> a = canonicalYaml(from.spec());
    List<String> b = canonicalYaml(to.spec());
    Patch<String> patch = DiffUtils.diff(a, b);
    List<String> unified =
        patch.getDeltas().isEmpty()
            ? List.of()
            : UnifiedDiffUtils.generateUnifiedDiff(label(from), label(to), a, patch, CONTEXT);
    ChangeReview review =
        from.kind().equals("Agent")
            ? ChangeReview.between(
                (AgentDescriptor) Descriptors.fromCanonicalJson("Agent", from.spec()),
                (AgentDescriptor) Descriptors.fromCanonicalJson("Agent", to.spec()))
            : new ChangeReview(List.of(), List.of());
    return new RevisionDiff(from, to, unified, review);
  }

  /** A descriptor's canonical JSON as YAML lines: what {@code keel diff} compares. */
  public static List<String> canonicalYaml(String canonicalJson) {
    JsonNode tree = EventCodec.mapper().readTree(canonicalJson);
    return YAML.writeValueAsString(tree).lines().toList();
  }

  private static String label(InventoryStore.Revision r) {
    return r.kind().toLowerCase(Locale.ROOT) + "/" + r.name() + " revision " + r.number();
  }
}
