package keel.execution;

import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Wraps a caller's {@link ModelStream} so that a subscriber that throws never fails the model call:
 * the first failure is logged, later pieces are dropped for that subscriber.
 *
 * <p>Thread-safe.
 */
final class GuardedStream implements ModelStream {

  private static final Logger LOG = LoggerFactory.getLogger(GuardedStream.class);

  private final ModelStream delegate;
  private final String what;
  private final AtomicBoolean broken = new AtomicBoolean();

  GuardedStream(ModelStream delegate, String what) {
    this.delegate = delegate;
    this.what = what;
  }

  @Override
  public void onText(String text) {
    if (text.isEmpty() || broken.get()) {
      return;
    }
    try {
      delegate.onText(text);
    } catch (RuntimeException e) {
      if (broken.compareAndSet(false, true)) {
        LOG.warn("a stream subscriber of {} failed; it gets no more text", what, e);
      }
    }
  }
}
