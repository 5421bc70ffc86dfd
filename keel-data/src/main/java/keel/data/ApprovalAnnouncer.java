package keel.data;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.Optional;

/**
 * Tells the other nodes sharing a PostgreSQL database of an approval change, inside the
 * transaction that makes it: a {@code NOTIFY} on {@link #CHANNEL}, delivered when (and only if) the
 * transaction commits. The payload is {@code <store instance> <what> <approval id>}: each store
 * instance ignores its own notices (its node told its listeners itself), so a change reaches every
 * node's listeners exactly once while the nodes stay connected. SQLite, with one node, announces
 * nothing ({@link #NONE}).
 *
 * <p>Thread-safe (stateless).
 */
@FunctionalInterface
interface ApprovalAnnouncer {

  String CHANNEL = "keel_approvals";

  ApprovalAnnouncer NONE = (c, what, id) -> {};

  void announce(Connection c, String what, String approvalId) throws SQLException;

  /** Announces as the store instance {@code instance} (a random id of one open store). */
  static ApprovalAnnouncer postgres(String instance) {
    return (c, what, id) -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT pg_notify('" + CHANNEL + "', ?)")) {
        ps.setString(1, instance + " " + what + " " + id);
        ps.execute();
      }
    };
  }

  /** A notice's change, unless the store instance {@code self} wrote it (or the payload is not a notice). */
  static Optional<ApprovalChange> parse(String payload, String self) {
    String[] parts = payload.split(" ", 3);
    if (parts.length != 3 || parts[0].equals(self) || !ApprovalChange.KINDS.contains(parts[1])) {
      return Optional.empty();
    }
    return Optional.of(new ApprovalChange(parts[1], parts[2]));
  }
}
