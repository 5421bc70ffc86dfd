package keel.data;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The audit log: an append-only, hash-chained record of every external call, policy decision,
 * approval and catalog change. Each entry carries a global sequence number (1, 2, 3… with no gap)
 * and {@code hash = SHA-256(previous entry's hash ‖ canonical encoding of the entry)}, the first
 * entry chaining from 32 zero bytes. A head row, updated in the same transaction as every append,
 * holds the last sequence number and hash, so deleting the newest entries is detectable too.
 *
 * <p>Entries are written either here ({@link #append}) or with a session's events, in the same
 * transaction ({@link Append#audit()}), so an external call and its audit record are durable
 * together. There is no update and no delete. Appends are serialized on the chain head: SQLite's
 * single writer runs them one at a time; on PostgreSQL each append locks the head row, so nodes
 * sharing a database never fork the chain.
 *
 * <p>Thread-safe.
 */
public interface AuditStore {

  /** The hash the first entry chains from: 32 zero bytes, in hex. */
  String GENESIS = "0".repeat(64);

  /**
   * Appends records in one transaction, in order; returns their stored entries (with sequence
   * numbers and hashes). An empty list stores nothing.
   */
  List<AuditEntry> append(List<AuditRecord> records);

  /** The entries a filter selects, oldest first. */
  List<AuditEntry> query(AuditQuery query);

  /** The chain head: the last sequence number (0 when empty) and its hash ({@link #GENESIS} when empty). */
  Head head();

  /**
   * Walks the whole chain in pages (bounded memory) and checks every link: sequence numbers follow
   * each other from 1, each entry's previous hash is the hash of the entry before it, each entry's
   * hash is the hash of its content, and the last entry is the head row's.
   *
   * @param expectHead a hash kept outside the store (an earlier head): when given, the chain must
   *     contain an entry with that hash, else the verification fails (the log was rewritten)
   */
  Verification verify(Optional<String> expectHead);

  /** The chain head as its row says. */
  record Head(long seq, String hash) {
    public Head {
      Objects.requireNonNull(hash, "hash");
    }
  }

  /** The outcome of {@link #verify}. */
  sealed interface Verification {
    /** How many entries were checked. */
    long checked();

    /**
     * The chain is intact.
     *
     * @param checked the number of entries (the head's sequence number)
     * @param headHash the hash of the last entry ({@link #GENESIS} for an empty log)
     * @param anchorSeq the entry whose hash matched the expected head, when one was given
     */
    record Intact(long checked, String headHash, Optional<Long> anchorSeq) implements Verification {
      public Intact {
        Objects.requireNonNull(headHash, "headHash");
        Objects.requireNonNull(anchorSeq, "anchorSeq");
      }
    }

    /**
     * The chain is broken at an entry.
     *
     * @param seq the first entry found broken (or missing)
     * @param problem what kind of break
     * @param reason what was found, for a person
     * @param checked the number of entries checked before the break
     */
    record Broken(long seq, Problem problem, String reason, long checked) implements Verification {
      public Broken {
        Objects.requireNonNull(problem, "problem");
        Objects.requireNonNull(reason, "reason");
      }
    }
  }

  /** How a chain can be broken. */
  enum Problem {
    /** An entry's content does not hash to its stored hash: it was edited. */
    HASH_MISMATCH,
    /** An entry's previous hash is not the hash of the entry before it: an entry was replaced or re-hashed. */
    LINK_MISMATCH,
    /** A sequence number is missing: an entry was deleted. */
    SEQUENCE_GAP,
    /** The chain ends before the head row: the newest entries were deleted (or the head row was edited). */
    TAIL_MISSING,
    /** The last entry's hash is not the head row's: the last entry was re-hashed (or the head row edited). */
    HEAD_MISMATCH,
    /** The externally kept head is not in the chain: the log was rewritten. */
    ANCHOR_MISSING;

    public String wireName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** Checks a hash given by a person (an anchor): 64 hex digits. */
  static String checkHash(String hash, String where) {
    if (!Pattern.matches("[0-9a-f]{64}", hash)) {
      throw new IllegalArgumentException(
          where + ": expected a SHA-256 hash in 64 lowercase hex digits, got \"" + hash + "\"");
    }
    return hash;
  }
}
