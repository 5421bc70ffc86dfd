package keel.data;

import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * The calls outside MCP clients make through the gateway's MCP server, one per caller and
 * idempotency key. A call is executed only by whoever moves its row to {@link Status#STARTED} (a
 * conditional insert or update), so a key never runs its upstream tool twice, on any node; a
 * completed call keeps its result, which a repeat of the key gets back.
 *
 * <p>Thread-safe, and safe for many nodes on one PostgreSQL database.
 */
public interface McpCallStore {

  /** Where a call is. */
  enum Status {
    /** Waiting for its approval's decision; nothing ran yet. */
    AWAITING_APPROVAL,
    /** Being executed (or its node stopped while it was: its outcome is unknown). */
    STARTED,
    /** Done, or refused after a decision: {@link McpCall#result()} is what the client got. */
    COMPLETED;

    public String wireName() {
      return name().toLowerCase(Locale.ROOT);
    }

    static Status fromWire(String s) {
      return valueOf(s.toUpperCase(Locale.ROOT));
    }
  }

  /**
   * One call.
   *
   * @param principal who made it ({@code operator:<name>} or {@code agent:<name>})
   * @param idempotencyKey the client's key ({@code _meta} {@code dev.keel/idempotency-key}), or one
   *     Keel made up when the client sent none
   * @param tool the catalog name {@code <server>/<tool>}
   * @param arguments the arguments as run (an approver's edit included), as a JSON object text
   * @param approvalId the approval it waited for; empty when it needed none
   * @param result the text the client got (empty until completed)
   * @param error whether that result is an error
   * @param structured the structured content of the result as JSON text, empty when none
   */
  record McpCall(
      String principal,
      String idempotencyKey,
      String tool,
      String arguments,
      String approvalId,
      Status status,
      String result,
      boolean error,
      String structured,
      Instant createdAt,
      Instant updatedAt) {
    public McpCall {
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(idempotencyKey, "idempotencyKey");
      Objects.requireNonNull(tool, "tool");
      Objects.requireNonNull(arguments, "arguments");
      Objects.requireNonNull(approvalId, "approvalId");
      Objects.requireNonNull(status, "status");
      Objects.requireNonNull(result, "result");
      Objects.requireNonNull(structured, "structured");
      Objects.requireNonNull(createdAt, "createdAt");
      Objects.requireNonNull(updatedAt, "updatedAt");
    }
  }

  Optional<McpCall> find(String principal, String idempotencyKey);

  /**
   * Records a new call (started, or awaiting approval), with its approval's inbox row when it
   * needs one and its audit records, in one transaction.
   *
   * @return false, writing nothing, when the principal already has a call with this key
   */
  boolean insert(McpCall call, Optional<Approval> approval, List<AuditRecord> audit);

  /**
   * Moves a call awaiting approval to started, with the arguments as approved, and writes its
   * audit records, in one transaction.
   *
   * @return false, writing nothing, when the call is not awaiting approval (another request took it)
   */
  boolean start(String principal, String idempotencyKey, String arguments, Instant at, List<AuditRecord> audit);

  /**
   * Resolves a call whose outcome is unknown (it started and its node stopped before it completed):
   * an operator, having checked the upstream, says what happened; the text becomes the call's
   * stored result, which a repeat of the key gets. Written with its audit records in one
   * transaction, and only while the call is {@link Status#STARTED}: if the call completes first,
   * nothing is written; if the resolution comes first, the late completion changes nothing.
   *
   * @return false, writing nothing, when the call is not started (completed, awaiting approval or absent)
   */
  boolean resolve(
      String principal, String idempotencyKey, String result, boolean error, Instant at, List<AuditRecord> audit);

  /**
   * The calls that started and did not complete before {@code startedBefore}, oldest first: running
   * for long, or interrupted with their outcome unknown.
   */
  List<McpCall> unfinished(Instant startedBefore, int limit);

  /** Completes a call with what the client gets, and writes its audit records, in one transaction. */
  void complete(
      String principal, String idempotencyKey, String result, boolean error, String structured, Instant at,
      List<AuditRecord> audit);
}
