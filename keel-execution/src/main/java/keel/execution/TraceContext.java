package keel.execution;

import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The W3C trace context of the activity the current thread performs for a session, so that the
 * HTTP requests a model provider makes carry a {@code traceparent} header naming the model call's
 * span as their parent. It is an inheritable thread-local: the worker threads a provider starts for
 * a streamed answer see it too.
 *
 * <p>Thread-safe (each thread sees its own value).
 */
public final class TraceContext {

  private static final Pattern TRACEPARENT = Pattern.compile("00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");
  private static final InheritableThreadLocal<String> CURRENT = new InheritableThreadLocal<>();

  private TraceContext() {}

  /** The {@code traceparent} value for a span of a trace: {@code 00-<trace>-<span>-01} (sampled). */
  public static String traceparent(String traceId, String spanId) {
    return "00-" + traceId + "-" + spanId + "-01";
  }

  /** Whether {@code value} is a well-formed version-00 {@code traceparent} with non-zero ids. */
  public static boolean valid(String value) {
    return value != null
        && TRACEPARENT.matcher(value).matches()
        && !value.substring(3, 35).equals("0".repeat(32))
        && !value.substring(36, 52).equals("0".repeat(16));
  }

  /** Runs {@code work} with {@code traceparent} as the current trace context, restoring the previous one after. */
  static <T> T with(String traceparent, Supplier<T> work) {
    String previous = CURRENT.get();
    CURRENT.set(traceparent);
    try {
      return work.get();
    } finally {
      if (previous == null) {
        CURRENT.remove();
      } else {
        CURRENT.set(previous);
      }
    }
  }

  /** The current trace context, if this thread works for a traced activity. */
  public static Optional<String> current() {
    return Optional.ofNullable(CURRENT.get());
  }
}
