package keel.gateway;

import java.util.Objects;

/**
 * Who makes an upstream call, sent to the server in the request's {@code _meta}.
 *
 * @param sessionId the calling session ({@code dev.keel/session})
 * @param principal who the call is made as, e.g. {@code agent:billing} ({@code dev.keel/principal})
 * @param idempotencyKey the same on every attempt of one call ({@code dev.keel/idempotency-key})
 * @param traceparent the W3C trace context of the call's span ({@code traceparent}); empty when
 *     untraced, and then not sent
 */
public record CallMeta(String sessionId, String principal, String idempotencyKey, String traceparent) {

  /** The {@code _meta} key of the idempotency key. */
  public static final String IDEMPOTENCY_KEY = "dev.keel/idempotency-key";
  /** The {@code _meta} key of the session id. */
  public static final String SESSION = "dev.keel/session";
  /** The {@code _meta} key of the principal. */
  public static final String PRINCIPAL = "dev.keel/principal";
  /** The {@code _meta} key of the W3C trace context. */
  public static final String TRACEPARENT = "traceparent";

  public CallMeta {
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
    Objects.requireNonNull(traceparent, "traceparent");
  }
}
