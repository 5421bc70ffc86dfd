package keel.server;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import keel.core.KeelException;
import keel.data.CostLedger;

/**
 * The parameters of {@code GET /v1/costs}, checked: a range of UTC time and a grouping.
 *
 * <p>{@code from} and {@code to} are dates ({@code 2026-11-21}, a whole UTC day) or instants
 * ({@code 2026-11-21T09:30:00Z}). A date in {@code to} includes that day. Without {@code from}, the
 * range starts six days before today (the last seven days); without {@code to}, it ends with today.
 *
 * @param groupBy in the order given
 */
record CostsQuery(CostLedger.Query query, List<CostLedger.Dimension> groupBy) {

  static CostsQuery parse(String from, String to, String groupBy, String agent, String owner, Instant now) {
    Instant today = now.truncatedTo(ChronoUnit.DAYS);
    Instant start = blank(from) ? today.minus(6, ChronoUnit.DAYS) : instant("from", from, false);
    Instant end = blank(to) ? today.plus(1, ChronoUnit.DAYS) : instant("to", to, true);
    if (!end.isAfter(start)) {
      throw new KeelException.Invalid("to: expected a time after from (" + start + "), got " + end);
    }
    List<CostLedger.Dimension> dims = new ArrayList<>();
    if (!blank(groupBy)) {
      for (String part : groupBy.split(",")) {
        String name = part.strip().toLowerCase(Locale.ROOT);
        if (name.isEmpty()) {
          continue;
        }
        CostLedger.Dimension d = switch (name) {
          case "agent" -> CostLedger.Dimension.AGENT;
          case "owner" -> CostLedger.Dimension.OWNER;
          case "day" -> CostLedger.Dimension.DAY;
          case "kind" -> CostLedger.Dimension.KIND;
          default -> throw new KeelException.Invalid(
              "group_by: unknown dimension \"" + part.strip() + "\"; expected a comma-separated list of agent, owner, day, kind");
        };
        if (!dims.contains(d)) {
          dims.add(d);
        }
      }
    }
    CostLedger.Query q = new CostLedger.Query(start, end, dims.isEmpty() ? EnumSet.noneOf(CostLedger.Dimension.class) : EnumSet.copyOf(dims),
        optional(agent), optional(owner));
    return new CostsQuery(q, List.copyOf(dims));
  }

  /** A date (its start, or with {@code endOfDay} the next day's start) or a UTC instant; {@code name} names it in errors. */
  static Instant instant(String name, String value, boolean endOfDay) {
    String v = value.strip();
    try {
      if (v.length() == 10) {
        LocalDate day = LocalDate.parse(v);
        return (endOfDay ? day.plusDays(1) : day).atStartOfDay(ZoneOffset.UTC).toInstant();
      }
      return Instant.parse(v);
    } catch (DateTimeParseException e) {
      throw new KeelException.Invalid(
          name + ": expected a date (2026-11-21) or a UTC instant (2026-11-21T09:30:00Z), got \"" + value + "\"");
    }
  }

  private static boolean blank(String s) {
    return s == null || s.isBlank();
  }

  private static Optional<String> optional(String s) {
    return blank(s) ? Optional.empty() : Optional.of(s.strip());
  }
}
