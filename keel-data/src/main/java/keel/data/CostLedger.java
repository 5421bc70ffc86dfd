package keel.data;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The cost ledger: every cost Keel records, attributed to the agent, owner, session and root
 * session that spent it. Entries are written only with the session events that record them (see
 * {@link Append#costs()}), in the same transaction, so the ledger and the sessions' logs never
 * disagree, even after a crash.
 *
 * <p>Thread-safe; reads only.
 */
public interface CostLedger {

  /** One stored cost. */
  record Entry(
      long id,
      Instant at,
      String agent,
      String owner,
      String sessionId,
      String rootSessionId,
      long seq,
      CostKind kind,
      long quantity,
      BigDecimal usd,
      String detail) {
    public Entry {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(owner, "owner");
      Objects.requireNonNull(sessionId, "sessionId");
      Objects.requireNonNull(rootSessionId, "rootSessionId");
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(usd, "usd");
      Objects.requireNonNull(detail, "detail");
    }
  }

  /** What totals can be grouped by. */
  enum Dimension {
    AGENT,
    OWNER,
    /** The UTC day, {@code 2026-11-21}. */
    DAY,
    KIND;

    public String wireName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * Which entries to total, and how to group them.
   *
   * @param from the first instant counted
   * @param to the first instant not counted
   * @param groupBy the dimensions of each row; empty for one grand total
   * @param agent only this agent's entries
   * @param owner only entries of agents with this owner
   */
  record Query(Instant from, Instant to, Set<Dimension> groupBy, Optional<String> agent, Optional<String> owner) {
    public Query {
      Objects.requireNonNull(from, "from");
      Objects.requireNonNull(to, "to");
      groupBy = groupBy.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(groupBy));
      Objects.requireNonNull(agent, "agent");
      Objects.requireNonNull(owner, "owner");
      if (!to.isAfter(from)) {
        throw new IllegalArgumentException("the range must end after it starts: from " + from + " to " + to);
      }
    }
  }

  /**
   * One group's total.
   *
   * @param group the group's value for each dimension grouped by
   * @param quantity the quantities summed; meaningful only when grouped by kind (units differ)
   * @param usd the exact sum of the entries' dollars
   * @param entries how many entries were summed
   */
  record Row(Map<Dimension, String> group, long quantity, BigDecimal usd, long entries) {
    public Row {
      EnumMap<Dimension, String> copy = new EnumMap<>(Dimension.class);
      copy.putAll(group);
      group = java.util.Collections.unmodifiableMap(copy);
      Objects.requireNonNull(usd, "usd");
    }
  }

  /** A session's entries, in the order they were written. */
  List<Entry> entries(String sessionId);

  /**
   * Totals of the entries in the query's range, grouped by the query's dimensions <em>and</em> by
   * owner, in a stable order (each dimension ascending).
   */
  List<Row> totalsByOwner(Query query);

  /**
   * Totals of the entries in the query's range whose owner {@code visible} accepts, grouped by the
   * query's dimensions, in a stable order.
   */
  default List<Row> totals(Query query, Predicate<String> visible) {
    boolean byOwner = query.groupBy().contains(Dimension.OWNER);
    Map<Map<Dimension, String>, Row> merged = new LinkedHashMap<>();
    for (Row r : totalsByOwner(query)) {
      if (!visible.test(r.group().get(Dimension.OWNER))) {
        continue;
      }
      Map<Dimension, String> key = new EnumMap<>(Dimension.class);
      key.putAll(r.group());
      if (!byOwner) {
        key.remove(Dimension.OWNER);
      }
      merged.merge(key, new Row(key, r.quantity(), r.usd(), r.entries()),
          (a, b) -> new Row(key, a.quantity() + b.quantity(), a.usd().add(b.usd()), a.entries() + b.entries()));
    }
    List<Row> out = new ArrayList<>(merged.values());
    out.sort((a, b) -> {
      for (Dimension d : Dimension.values()) {
        int c = a.group().getOrDefault(d, "").compareTo(b.group().getOrDefault(d, ""));
        if (c != 0) {
          return c;
        }
      }
      return 0;
    });
    return out;
  }
}
