package keel.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How grants cover capabilities, and the intersection a sub-agent gets. */
class GrantsTest {

  @ParameterizedTest(name = "{0} covers {1}: {2}")
  @CsvSource({
    "internal://memory, internal://memory, true",
    "internal://memory, internal://time, false",
    "agent://helper, agent://helper, true",
    "agent://helper, agent://helper-2, false",
    "mcp://gateway/crm, mcp://gateway/crm, true",
    "mcp://gateway/crm, mcp://gateway/crm/read, true",
    "mcp://gateway/crm, mcp://gateway/crmx/read, false",
    "mcp://gateway/crm, mcp://gateway/crm/read/more, false",
    "mcp://gateway/crm/read, mcp://gateway/crm, false",
    "mcp://gateway/crm/read, mcp://gateway/crm/write, false",
    "internal://memory, internal://memory/x, false",
    "agent://a, agent://a/b, false",
    "mcp://gateway/crm, mcp://gateway/crm/read@2, true",
    "mcp://gateway/crm/read, mcp://gateway/crm/read@2, true",
    "mcp://gateway/crm/read@2, mcp://gateway/crm/read@2, true",
    "mcp://gateway/crm/read@1, mcp://gateway/crm/read@2, false",
    "mcp://gateway/crm/read@1, mcp://gateway/crm/read, false",
    "mcp://gateway/crm/read@1, mcp://gateway/crm, false",
    "mcp://gateway/crm/rea, mcp://gateway/crm/read@1, false",
    "mcp://gateway/crmx, mcp://gateway/crm/read@1, false",
  })
  void covers(String grant, String capability, boolean expected) {
    assertThat(Grants.covers(grant, capability)).isEqualTo(expected);
  }

  @ParameterizedTest(name = "parent {0} ∩ child {1} = {2}")
  @CsvSource(delimiter = '|', value = {
    "internal://time internal://memory | internal://memory agent://x | internal://memory",
    "mcp://gateway/crm | mcp://gateway/crm/read | mcp://gateway/crm/read",
    "mcp://gateway/crm/read | mcp://gateway/crm | mcp://gateway/crm/read",
    "mcp://gateway/crm/read@1 | mcp://gateway/crm | mcp://gateway/crm/read@1",
    "mcp://gateway/crm/read@1 | mcp://gateway/crm/read | mcp://gateway/crm/read@1",
    "mcp://gateway/crm | mcp://gateway/crm/read@3 | mcp://gateway/crm/read@3",
    "mcp://gateway/crm/read@1 | mcp://gateway/crm/read@2 | ''",
    "mcp://gateway/crm/read mcp://gateway/crm/write | mcp://gateway/crm | mcp://gateway/crm/read mcp://gateway/crm/write",
    "mcp://gateway/crm/read | mcp://gateway/crm/write | ''",
    "mcp://gateway/crm | mcp://gateway/crm mcp://gateway/crm/read | mcp://gateway/crm",
    "mcp://gateway/crm | mcp://gateway/erp | ''",
    "agent://a agent://b | agent://b agent://c | agent://b",
    "'' | internal://time | ''",
  })
  void intersect(String parent, String child, String expected) {
    assertThat(Grants.intersect(list(parent), list(child))).isEqualTo(list(expected));
  }

  private static List<String> list(String spaceSeparated) {
    return spaceSeparated.isBlank() ? List.of() : List.of(spaceSeparated.strip().split(" +"));
  }

  static final List<String> UNIVERSE = List.of(
      "internal://time", "internal://memory", "agent://a", "agent://b", "mcp://gateway/crm",
      "mcp://gateway/crm/read", "mcp://gateway/crm/write", "mcp://gateway/erp", "mcp://gateway/erp/pay",
      "mcp://gateway/crm/read@1", "mcp://gateway/crm/read@2");

  @Provide
  Arbitrary<List<String>> grantLists() {
    return Arbitraries.of(UNIVERSE).list().ofMaxSize(6);
  }

  /** The defining property: the intersection covers exactly what both sides cover. */
  @Property(tries = 500)
  void intersection_coversExactlyWhatBothCover(
      @ForAll("grantLists") List<String> parent, @ForAll("grantLists") List<String> child) {
    List<String> both = Grants.intersect(parent, child);
    for (String capability : UNIVERSE) {
      assertThat(Grants.allows(both, capability))
          .as("%s ∩ %s = %s, for %s", parent, child, both, capability)
          .isEqualTo(Grants.allows(parent, capability) && Grants.allows(child, capability));
    }
    assertThat(both).doesNotHaveDuplicates();
  }

  /** A chain of delegations never widens: a grandchild can do nothing its grandparent cannot. */
  @Property(tries = 300)
  void nestedIntersections_neverWiden(
      @ForAll("grantLists") List<String> root, @ForAll("grantLists") List<String> child,
      @ForAll("grantLists") List<String> grandchild) {
    List<String> g = Grants.intersect(Grants.intersect(root, child), grandchild);
    for (String capability : UNIVERSE) {
      if (Grants.allows(g, capability)) {
        assertThat(Grants.allows(root, capability)).isTrue();
        assertThat(Grants.allows(child, capability)).isTrue();
        assertThat(Grants.allows(grandchild, capability)).isTrue();
      }
    }
  }
}
