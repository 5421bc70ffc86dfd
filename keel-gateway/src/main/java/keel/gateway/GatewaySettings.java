package keel.gateway;

import java.time.Duration;
import java.util.Objects;

/**
 * How the gateway treats upstream servers when their descriptors do not say.
 *
 * @param defaultTimeout a call's (and a server start's) time limit without {@code timeout}
 * @param defaultMaxOutputBytes the largest message read from a server without {@code max_output_bytes}
 * @param firstBackoff how long a server that failed is left alone before its next start
 * @param maxBackoff the longest such pause; each failure in a row doubles it up to this
 */
public record GatewaySettings(
    Duration defaultTimeout, int defaultMaxOutputBytes, Duration firstBackoff, Duration maxBackoff) {

  public GatewaySettings {
    Objects.requireNonNull(defaultTimeout, "defaultTimeout");
    Objects.requireNonNull(firstBackoff, "firstBackoff");
    Objects.requireNonNull(maxBackoff, "maxBackoff");
    if (defaultMaxOutputBytes < 1024) {
      throw new IllegalArgumentException("defaultMaxOutputBytes must be at least 1024, got " + defaultMaxOutputBytes);
    }
    if (maxBackoff.compareTo(firstBackoff) < 0) {
      throw new IllegalArgumentException("maxBackoff " + maxBackoff + " is shorter than firstBackoff " + firstBackoff);
    }
  }

  /** 30 s calls, 4 MiB messages, a backoff from 1 s doubling up to 1 min. */
  public static GatewaySettings defaults() {
    return new GatewaySettings(Duration.ofSeconds(30), 4 << 20, Duration.ofSeconds(1), Duration.ofMinutes(1));
  }
}
