package keel.data;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import keel.core.EventCodec;
import keel.core.KeelException;
import tools.jackson.core.type.TypeReference;

/**
 * Descriptor revisions in PostgreSQL. Thread-safe; safe for many nodes sharing one database.
 *
 * <p>Every write (apply, rollback, approve, reject) first takes one transaction-scoped advisory
 * lock, so writes from every node run one at a time, as the single SQLite writer runs them: a write
 * reads the statuses it changes after the previous write committed, two nodes applying at once
 * never number two revisions alike, and a decision and a concurrent apply cannot both win. Such
 * writes are rare. The partial unique indexes of V3 (one active, one pending per descriptor) back
 * this up.
 */
final class PostgresInventoryStore implements InventoryStore {

  private static final String COLUMNS =
      "kind, name, number, owner, spec, applied_by, applied_at, status, widening, narrowing, rollback_of,"
          + " activated_at, decided_by, decided_at, reason";
  private static final TypeReference<List<String>> STRINGS = new TypeReference<>() {};

  /** The advisory lock key of inventory writes ("keel.inv" in ASCII). */
  private static final long WRITE_LOCK = 0x6b65656c2e696e76L;

  private final PostgresTransactions pg;
  private final Clock clock;

  PostgresInventoryStore(PostgresTransactions pg, Clock clock) {
    this.pg = pg;
    this.clock = clock;
  }

  /** Runs an inventory write in one transaction, after every other node's (see the class comment). */
  private <T> T write(String what, GroupCommitWriter.Op<T> op) {
    return pg.writeTx(
        what,
        tx -> {
          PreparedStatement lock = tx.prepare("SELECT pg_advisory_xact_lock(?)");
          lock.setLong(1, WRITE_LOCK);
          lock.executeQuery().close();
          return op.run(tx);
        });
  }

  @Override
  public List<Applied> apply(List<Change> changes, String appliedBy, Reviewer reviewer) {
    List<Change> checked = List.copyOf(changes); // no null among them, before anything is written
    Objects.requireNonNull(appliedBy, "appliedBy");
    Objects.requireNonNull(reviewer, "reviewer");
    Instant now = Instant.ofEpochMilli(clock.millis());
    return write(
        "the inventory",
        tx -> {
          List<Applied> out = new ArrayList<>();
          for (Change ch : checked) {
            out.add(applyOne(tx, ch, appliedBy, reviewer, Optional.empty(), now));
          }
          return out;
        });
  }

  @Override
  public Applied rollback(String kind, String name, int to, String by, Reviewer reviewer) {
    Objects.requireNonNull(by, "by");
    Objects.requireNonNull(reviewer, "reviewer");
    Instant now = Instant.ofEpochMilli(clock.millis());
    return write(
        "a rollback of " + describe(kind, name),
        tx -> {
          Revision target =
              one(tx, "number = ?", kind, name, to)
                  .orElseThrow(() -> new KeelException.NotFound(describe(kind, name) + " has no revision " + to));
          if (!target.wasActive()) {
            throw new KeelException.Conflict(
                describe(kind, name) + " revision " + to + " was never active (it is " + target.status().wireName()
                    + "), so there is nothing to roll back to; apply its descriptor instead if you want it");
          }
          return applyOne(tx, new Change(kind, name, target.owner(), target.spec()), by, reviewer, Optional.of(to), now);
        });
  }

  private Applied applyOne(
      GroupCommitWriter.Tx tx, Change ch, String by, Reviewer reviewer, Optional<Integer> rollbackOf, Instant now)
      throws SQLException {
    Optional<Revision> active = one(tx, "status = 'active'", ch.kind(), ch.name(), null);
    Optional<Revision> pending = one(tx, "status = 'pending'", ch.kind(), ch.name(), null);
    if (pending.isPresent() && same(pending.get(), ch)) {
      return new Applied(pending.get(), false, Optional.empty());
    }
    if (active.isPresent() && same(active.get(), ch)) {
      Optional<Revision> withdrawn = Optional.empty();
      if (pending.isPresent()) {
        withdrawn = Optional.of(decide(tx, pending.get(), Status.SUPERSEDED,
            new Decision(by, now, "withdrawn: revision " + active.get().number() + ", the active one, was applied again")));
      }
      return new Applied(active.get(), false, withdrawn);
    }
    Review review = active.isEmpty() ? Review.NONE : Objects.requireNonNull(reviewer.review(active.get(), ch), "review");
    int number = next(tx, ch.kind(), ch.name());
    Status status = review.widens() ? Status.PENDING : Status.ACTIVE;
    Optional<Revision> superseded = Optional.empty();
    if (pending.isPresent()) {
      superseded = Optional.of(decide(tx, pending.get(), Status.SUPERSEDED,
          new Decision(by, now, "superseded by revision " + number + " before it was decided")));
    }
    if (status == Status.ACTIVE && active.isPresent()) {
      setStatus(tx, active.get(), Status.SUPERSEDED);
    }
    Revision created =
        new Revision(ch.kind(), ch.name(), number, ch.owner(), ch.spec(), by, now, status, review, rollbackOf,
            status == Status.ACTIVE ? Optional.of(now) : Optional.empty(), Optional.empty());
    insert(tx, created);
    return new Applied(created, true, superseded);
  }

  private static boolean same(Revision r, Change ch) {
    return r.spec().equals(ch.spec()) && r.owner().equals(ch.owner());
  }

  @Override
  public Revision approve(String kind, String name, int number, String by) {
    Objects.requireNonNull(by, "by");
    Instant now = Instant.ofEpochMilli(clock.millis());
    return write(
        "the approval of " + describe(kind, name) + " revision " + number,
        tx -> {
          Revision r = pendingOrThrow(tx, kind, name, number, "approve");
          Optional<Revision> active = one(tx, "status = 'active'", kind, name, null);
          if (active.isPresent()) {
            setStatus(tx, active.get(), Status.SUPERSEDED);
          }
          return decide(tx, r, Status.ACTIVE, new Decision(by, now, ""));
        });
  }

  @Override
  public Revision reject(String kind, String name, int number, String by, String reason) {
    Objects.requireNonNull(by, "by");
    Objects.requireNonNull(reason, "reason");
    Instant now = Instant.ofEpochMilli(clock.millis());
    return write(
        "the rejection of " + describe(kind, name) + " revision " + number,
        tx -> decide(tx, pendingOrThrow(tx, kind, name, number, "reject"), Status.REJECTED, new Decision(by, now, reason)));
  }

  private Revision pendingOrThrow(GroupCommitWriter.Tx tx, String kind, String name, int number, String verb)
      throws SQLException {
    Revision r =
        one(tx, "number = ?", kind, name, number)
            .orElseThrow(() -> new KeelException.NotFound(describe(kind, name) + " has no revision " + number));
    if (r.status() != Status.PENDING) {
      String why =
          switch (r.status()) {
            case ACTIVE -> "it is already active";
            case REJECTED -> "it was rejected" + r.decision().map(d -> " by " + d.by()).orElse("");
            case SUPERSEDED ->
                r.wasActive()
                    ? "it was active and has been superseded since"
                    : "it was " + r.decision().map(d -> d.reason() + " (" + d.by() + ")").orElse("superseded");
            case PENDING -> throw new IllegalStateException();
          };
      throw new KeelException.Conflict(
          "cannot " + verb + " " + describe(kind, name) + " revision " + number + ": only a pending revision can be decided, and "
              + why);
    }
    return r;
  }

  private static String describe(String kind, String name) {
    return kind.toLowerCase(Locale.ROOT) + " \"" + name + "\"";
  }

  /** Moves a pending revision out of pending, recording the decision. */
  private static Revision decide(GroupCommitWriter.Tx tx, Revision r, Status to, Decision d) throws SQLException {
    check(r, to);
    PreparedStatement ps =
        tx.prepare(
            "UPDATE revisions SET status = ?, decided_by = ?, decided_at = ?, reason = ?,"
                + " activated_at = coalesce(activated_at, ?::timestamptz) WHERE kind = ? AND name = ? AND number = ?");
    ps.setString(1, to.wireName());
    ps.setString(2, d.by());
    ps.setObject(3, PostgresEventStore.time(d.at().toEpochMilli()));
    ps.setString(4, d.reason());
    if (to == Status.ACTIVE) {
      ps.setObject(5, PostgresEventStore.time(d.at().toEpochMilli()));
    } else {
      ps.setNull(5, Types.TIMESTAMP_WITH_TIMEZONE);
    }
    ps.setString(6, r.kind());
    ps.setString(7, r.name());
    ps.setInt(8, r.number());
    ps.executeUpdate();
    Optional<Instant> activated = to == Status.ACTIVE ? Optional.of(d.at()) : r.activatedAt();
    return new Revision(r.kind(), r.name(), r.number(), r.owner(), r.spec(), r.appliedBy(), r.appliedAt(), to,
        r.review(), r.rollbackOf(), activated, Optional.of(d));
  }

  private static void setStatus(GroupCommitWriter.Tx tx, Revision r, Status to) throws SQLException {
    check(r, to);
    PreparedStatement ps = tx.prepare("UPDATE revisions SET status = ? WHERE kind = ? AND name = ? AND number = ?");
    ps.setString(1, to.wireName());
    ps.setString(2, r.kind());
    ps.setString(3, r.name());
    ps.setInt(4, r.number());
    ps.executeUpdate();
  }

  private static void check(Revision r, Status to) {
    if (!r.status().canBecome(to)) {
      throw new IllegalStateException(r.kind() + " " + r.name() + " revision " + r.number() + " cannot go from "
          + r.status().wireName() + " to " + to.wireName());
    }
  }

  private static int next(GroupCommitWriter.Tx tx, String kind, String name) throws SQLException {
    PreparedStatement ps = tx.prepare("SELECT coalesce(max(number), 0) FROM revisions WHERE kind = ? AND name = ?");
    ps.setString(1, kind);
    ps.setString(2, name);
    try (ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getInt(1) + 1;
    }
  }

  private static void insert(GroupCommitWriter.Tx tx, Revision r) throws SQLException {
    PreparedStatement ins =
        tx.prepare("INSERT INTO revisions (" + COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.setString(1, r.kind());
    ins.setString(2, r.name());
    ins.setInt(3, r.number());
    ins.setString(4, r.owner());
    ins.setString(5, r.spec());
    ins.setString(6, r.appliedBy());
    ins.setObject(7, PostgresEventStore.time(r.appliedAt().toEpochMilli()));
    ins.setString(8, r.status().wireName());
    ins.setString(9, EventCodec.mapper().writeValueAsString(r.review().widening()));
    ins.setString(10, EventCodec.mapper().writeValueAsString(r.review().narrowing()));
    setInt(ins, 11, r.rollbackOf());
    if (r.activatedAt().isPresent()) {
      ins.setObject(12, PostgresEventStore.time(r.activatedAt().get().toEpochMilli()));
    } else {
      ins.setNull(12, Types.TIMESTAMP_WITH_TIMEZONE);
    }
    ins.setNull(13, Types.VARCHAR);
    ins.setNull(14, Types.TIMESTAMP_WITH_TIMEZONE);
    ins.setNull(15, Types.VARCHAR);
    ins.executeUpdate();
  }

  private static void setInt(PreparedStatement ps, int i, Optional<Integer> v) throws SQLException {
    if (v.isPresent()) {
      ps.setInt(i, v.get());
    } else {
      ps.setNull(i, Types.INTEGER);
    }
  }

  /** One revision of a descriptor inside the writer's transaction, selected by a condition. */
  private static Optional<Revision> one(GroupCommitWriter.Tx tx, String where, String kind, String name, Integer number)
      throws SQLException {
    PreparedStatement sel = tx.prepare("SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? AND " + where);
    sel.setString(1, kind);
    sel.setString(2, name);
    if (number != null) {
      sel.setInt(3, number);
    }
    try (ResultSet rs = sel.executeQuery()) {
      return rs.next() ? Optional.of(revision(rs)) : Optional.empty();
    }
  }

  private static Revision revision(ResultSet rs) throws SQLException {
    Optional<Instant> activatedAt =
        Optional.ofNullable(rs.getObject(12, java.time.OffsetDateTime.class)).map(java.time.OffsetDateTime::toInstant);
    int rollback = rs.getInt(11);
    Optional<Integer> rollbackOf = rs.wasNull() ? Optional.empty() : Optional.of(rollback);
    String decidedBy = rs.getString(13);
    Optional<Decision> decision =
        decidedBy == null
            ? Optional.empty()
            : Optional.of(new Decision(decidedBy, PostgresEventStore.instant(rs, 14), Objects.requireNonNullElse(rs.getString(15), "")));
    return new Revision(
        rs.getString(1),
        rs.getString(2),
        rs.getInt(3),
        rs.getString(4),
        rs.getString(5),
        rs.getString(6),
        PostgresEventStore.instant(rs, 7),
        Status.fromWire(rs.getString(8)),
        new Review(strings(rs.getString(9)), strings(rs.getString(10))),
        rollbackOf,
        activatedAt,
        decision);
  }

  private static List<String> strings(String json) {
    return EventCodec.mapper().readValue(json, STRINGS);
  }

  private List<Revision> query(String what, String sql, Object... args) {
    return pg.read(
        what,
        c -> {
          try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
              ps.setObject(i + 1, args[i]);
            }
            List<Revision> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(revision(rs));
              }
            }
            return out;
          }
        });
  }

  @Override
  public Optional<Revision> latest(String kind, String name) {
    return query(
            kind + " " + name,
            "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? AND status = 'active'",
            kind,
            name)
        .stream()
        .findFirst();
  }

  @Override
  public Optional<Revision> pending(String kind, String name) {
    return query(
            kind + " " + name,
            "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? AND status = 'pending'",
            kind,
            name)
        .stream()
        .findFirst();
  }

  @Override
  public Optional<Revision> revision(String kind, String name, int number) {
    return query(
            kind + " " + name,
            "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? AND number = ?",
            kind,
            name,
            number)
        .stream()
        .findFirst();
  }

  @Override
  public List<Revision> history(String kind, String name) {
    return query(
        kind + " " + name,
        "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND name = ? ORDER BY number",
        kind,
        name);
  }

  @Override
  public List<Revision> latestOfKind(String kind) {
    return query(
        "every " + kind,
        "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND status = 'active' ORDER BY name",
        kind);
  }

  @Override
  public List<Revision> pendingOfKind(String kind) {
    return query(
        "every pending " + kind,
        "SELECT " + COLUMNS + " FROM revisions WHERE kind = ? AND status = 'pending' ORDER BY name",
        kind);
  }
}
