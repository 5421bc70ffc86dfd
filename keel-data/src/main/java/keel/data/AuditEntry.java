package keel.data;

import java.time.Instant;
import java.util.Objects;

/**
 * One stored audit entry.
 *
 * @param seq its place in the global chain, from 1
 * @param at when it was stored (millisecond precision)
 * @param record what it records
 * @param prevHash the hash of the entry before it ({@link AuditStore#GENESIS} for the first)
 * @param hash SHA-256 of the previous hash's 32 bytes followed by the entry's canonical encoding,
 *     in lowercase hex
 */
public record AuditEntry(long seq, Instant at, AuditRecord record, String prevHash, String hash) {
  public AuditEntry {
    Objects.requireNonNull(at, "at");
    Objects.requireNonNull(record, "record");
    Objects.requireNonNull(prevHash, "prevHash");
    Objects.requireNonNull(hash, "hash");
  }
}
